// libbz2's streaming C API (the part CPython's `_bz2` module calls) over the
// multiplexer interface `pylon:compress/codec`: each stream is a coder of the
// compression provider, and each BZ2_bzCompress/BZ2_bzDecompress call is one
// `code` call there, with this call's input and output room. The library's
// return codes pass through unchanged.
#include <bzlib.h>
#include <stdlib.h>
#include <string.h>

#include "pylon.h"

typedef struct {
  pylon_compress_codec_own_coder_t coder;
  int compress;
} coder_state;

static int start(bz_stream *strm, pylon_compress_codec_setup_t *setup, int compress) {
  if (strm == NULL) return BZ_PARAM_ERROR;
  coder_state *s = malloc(sizeof *s);
  if (s == NULL) return BZ_MEM_ERROR;
  int32_t err = 0;
  if (!pylon_compress_codec_open(PYLON_COMPRESS_CODEC_CODEC_BZIP2, setup, &s->coder, &err)) {
    free(s);
    strm->state = NULL;
    return err;
  }
  s->compress = compress;
  strm->state = s;
  strm->total_in_lo32 = strm->total_in_hi32 = 0;
  strm->total_out_lo32 = strm->total_out_hi32 = 0;
  return BZ_OK;
}

static void add(unsigned int *lo, unsigned int *hi, unsigned int n) {
  unsigned int before = *lo;
  *lo += n;
  if (*lo < before) (*hi)++;
}

static int step(bz_stream *strm, int action, int compress) {
  if (strm == NULL || strm->state == NULL) return BZ_PARAM_ERROR;
  coder_state *s = strm->state;
  if (s->compress != compress) return BZ_PARAM_ERROR;
  pylon_list_u8_t input = {(uint8_t *)strm->next_in, strm->avail_in};
  pylon_compress_codec_step_t out;
  pylon_compress_codec_method_coder_code(pylon_compress_codec_borrow_coder(s->coder), &input, strm->avail_out, (uint32_t)action, &out);
  size_t produced = out.output.len <= strm->avail_out ? out.output.len : strm->avail_out;
  unsigned int consumed = out.consumed <= strm->avail_in ? out.consumed : strm->avail_in;
  if (produced) memcpy(strm->next_out, out.output.ptr, produced);
  strm->next_out += produced;
  strm->avail_out -= (unsigned int)produced;
  strm->next_in += consumed;
  strm->avail_in -= consumed;
  add(&strm->total_in_lo32, &strm->total_in_hi32, consumed);
  add(&strm->total_out_lo32, &strm->total_out_hi32, (unsigned int)produced);
  pylon_list_u8_free(&out.output);
  return out.code;
}

static int finish(bz_stream *strm, int compress) {
  if (strm == NULL || strm->state == NULL) return BZ_PARAM_ERROR;
  coder_state *s = strm->state;
  if (s->compress != compress) return BZ_PARAM_ERROR;
  pylon_compress_codec_coder_drop_own(s->coder);
  free(s);
  strm->state = NULL;
  return BZ_OK;
}

int BZ2_bzCompressInit(bz_stream *strm, int blockSize100k, int verbosity, int workFactor) {
  (void)verbosity;  // the provider's library prints nothing
  pylon_compress_codec_setup_t setup = {.tag = PYLON_COMPRESS_CODEC_SETUP_BZIP2_COMPRESS};
  setup.val.bzip2_compress.f0 = (uint32_t)blockSize100k;
  setup.val.bzip2_compress.f1 = (uint32_t)workFactor;
  if (blockSize100k < 1 || blockSize100k > 9 || workFactor < 0 || workFactor > 250) return BZ_PARAM_ERROR;
  return start(strm, &setup, 1);
}

int BZ2_bzCompress(bz_stream *strm, int action) { return step(strm, action, 1); }

int BZ2_bzCompressEnd(bz_stream *strm) { return finish(strm, 1); }

int BZ2_bzDecompressInit(bz_stream *strm, int verbosity, int small) {
  (void)verbosity;
  if (small != 0 && small != 1) return BZ_PARAM_ERROR;
  pylon_compress_codec_setup_t setup = {.tag = PYLON_COMPRESS_CODEC_SETUP_BZIP2_DECOMPRESS};
  setup.val.bzip2_decompress = small != 0;
  return start(strm, &setup, 0);
}

int BZ2_bzDecompress(bz_stream *strm) { return step(strm, 0, 0); }

int BZ2_bzDecompressEnd(bz_stream *strm) { return finish(strm, 0); }
