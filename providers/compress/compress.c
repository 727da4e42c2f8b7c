// bzip2 and xz/LZMA behind one interface (linkage mode: mux). Each coder
// owns one library stream; `code` is exactly one library call over the
// caller's input and output room, so the caps can present libbz2's and
// liblzma's own C API to CPython's unchanged `_bz2` and `_lzma` modules.
//
// `-DCOMPRESS_ONLY=1` (bzip2) or `=2` (lzma) builds a one-library provider
// (the other codec's setups are refused, its library not linked):
// tests/bench/stdlib_caps.py measures the multiplexer against two of them.
#include <bzlib.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>

#include "mux.h"

#ifndef COMPRESS_ONLY
#define COMPRESS_ONLY 0
#endif
#define HAS_BZIP2 (COMPRESS_ONLY != 2)
#define HAS_LZMA (COMPRESS_ONLY != 1)

typedef exports_pylon_compress_codec_lzma_options_t wit_lzma_options;
typedef exports_pylon_compress_codec_filter_t wit_filter;
typedef exports_pylon_compress_codec_list_filter_t wit_filters;
typedef exports_pylon_compress_codec_setup_t wit_setup;

struct exports_pylon_compress_codec_coder_t {
  exports_pylon_compress_codec_codec_t codec;
  int compress;  // bzip2: which End to call
  bz_stream bz;
  lzma_stream xz;
};

// ---- conversions between the WIT records and liblzma's structs ----

static void lzma_options_to_wit(const lzma_options_lzma *o, wit_lzma_options *w) {
  w->dict_size = o->dict_size;
  w->lc = o->lc;
  w->lp = o->lp;
  w->pb = o->pb;
  w->mode = (uint32_t)o->mode;
  w->nice_len = o->nice_len;
  w->mf = (uint32_t)o->mf;
  w->depth = o->depth;
}

static void lzma_options_from_wit(const wit_lzma_options *w, lzma_options_lzma *o) {
  memset(o, 0, sizeof *o);
  o->dict_size = w->dict_size;
  o->lc = w->lc;
  o->lp = w->lp;
  o->pb = w->pb;
  o->mode = (lzma_mode)w->mode;
  o->nice_len = w->nice_len;
  o->mf = (lzma_match_finder)w->mf;
  o->depth = w->depth;
}

// Options storage for one filter of a chain.
typedef union {
  lzma_options_lzma lzma;
  lzma_options_delta delta;
  lzma_options_bcj bcj;
} filter_storage;

static void filter_from_wit(const wit_filter *w, lzma_filter *f, filter_storage *s) {
  memset(s, 0, sizeof *s);
  f->id = w->id;
  f->options = NULL;
  switch (w->options.tag) {
    case EXPORTS_PYLON_COMPRESS_CODEC_FILTER_OPTIONS_LZMA:
      lzma_options_from_wit(&w->options.val.lzma, &s->lzma);
      f->options = &s->lzma;
      break;
    case EXPORTS_PYLON_COMPRESS_CODEC_FILTER_OPTIONS_DELTA:
      s->delta.type = LZMA_DELTA_TYPE_BYTE;
      s->delta.dist = w->options.val.delta;
      f->options = &s->delta;
      break;
    case EXPORTS_PYLON_COMPRESS_CODEC_FILTER_OPTIONS_BCJ:
      s->bcj.start_offset = w->options.val.bcj;
      f->options = &s->bcj;
      break;
    default:
      break;
  }
}

// A chain in liblzma's form (terminated by LZMA_VLI_UNKNOWN); a chain longer
// than LZMA_FILTERS_MAX is cut there, which liblzma then rejects as such.
typedef struct {
  lzma_filter f[LZMA_FILTERS_MAX + 2];
  filter_storage s[LZMA_FILTERS_MAX + 1];
} chain;

static lzma_ret chain_from_wit(const wit_filters *w, chain *c) {
  if (w->len > LZMA_FILTERS_MAX) return LZMA_OPTIONS_ERROR;
  size_t i = 0;
  for (; i < w->len; i++) filter_from_wit(&w->ptr[i], &c->f[i], &c->s[i]);
  c->f[i].id = LZMA_VLI_UNKNOWN;
  c->f[i].options = NULL;
  return LZMA_OK;
}

static void filter_to_wit(const lzma_filter *f, wit_filter *w) {
  w->id = f->id;
  w->options.tag = EXPORTS_PYLON_COMPRESS_CODEC_FILTER_OPTIONS_NONE;
  if (!f->options) return;
  switch (f->id) {
    case LZMA_FILTER_LZMA1:
    case LZMA_FILTER_LZMA1EXT:
    case LZMA_FILTER_LZMA2:
      w->options.tag = EXPORTS_PYLON_COMPRESS_CODEC_FILTER_OPTIONS_LZMA;
      lzma_options_to_wit((const lzma_options_lzma *)f->options, &w->options.val.lzma);
      break;
    case LZMA_FILTER_DELTA:
      w->options.tag = EXPORTS_PYLON_COMPRESS_CODEC_FILTER_OPTIONS_DELTA;
      w->options.val.delta = ((const lzma_options_delta *)f->options)->dist;
      break;
    case LZMA_FILTER_X86:
    case LZMA_FILTER_POWERPC:
    case LZMA_FILTER_IA64:
    case LZMA_FILTER_ARM:
    case LZMA_FILTER_ARMTHUMB:
    case LZMA_FILTER_ARM64:
    case LZMA_FILTER_SPARC:
      w->options.tag = EXPORTS_PYLON_COMPRESS_CODEC_FILTER_OPTIONS_BCJ;
      w->options.val.bcj = ((const lzma_options_bcj *)f->options)->start_offset;
      break;
    default:
      break;
  }
}

// ---- coders ----

static int32_t open_bzip2(exports_pylon_compress_codec_coder_t *c, const wit_setup *setup) {
  switch (setup->tag) {
    case EXPORTS_PYLON_COMPRESS_CODEC_SETUP_BZIP2_COMPRESS:
      c->compress = 1;
      return BZ2_bzCompressInit(&c->bz, (int)setup->val.bzip2_compress.f0, 0, (int)setup->val.bzip2_compress.f1);
    case EXPORTS_PYLON_COMPRESS_CODEC_SETUP_BZIP2_DECOMPRESS:
      c->compress = 0;
      return BZ2_bzDecompressInit(&c->bz, 0, setup->val.bzip2_decompress ? 1 : 0);
    default:
      return BZ_PARAM_ERROR;
  }
}

static int32_t open_lzma(exports_pylon_compress_codec_coder_t *c, const wit_setup *setup) {
  lzma_stream init = LZMA_STREAM_INIT;
  c->xz = init;
  chain ch;
  lzma_options_lzma opts;
  lzma_ret r;
  switch (setup->tag) {
    case EXPORTS_PYLON_COMPRESS_CODEC_SETUP_LZMA_EASY_ENCODER:
      return lzma_easy_encoder(&c->xz, setup->val.lzma_easy_encoder.f0, (lzma_check)setup->val.lzma_easy_encoder.f1);
    case EXPORTS_PYLON_COMPRESS_CODEC_SETUP_LZMA_STREAM_ENCODER:
      if ((r = chain_from_wit(&setup->val.lzma_stream_encoder.f0, &ch)) != LZMA_OK) return r;
      return lzma_stream_encoder(&c->xz, ch.f, (lzma_check)setup->val.lzma_stream_encoder.f1);
    case EXPORTS_PYLON_COMPRESS_CODEC_SETUP_LZMA_ALONE_ENCODER:
      lzma_options_from_wit(&setup->val.lzma_alone_encoder, &opts);
      return lzma_alone_encoder(&c->xz, &opts);
    case EXPORTS_PYLON_COMPRESS_CODEC_SETUP_LZMA_RAW_ENCODER:
      if ((r = chain_from_wit(&setup->val.lzma_raw_encoder, &ch)) != LZMA_OK) return r;
      return lzma_raw_encoder(&c->xz, ch.f);
    case EXPORTS_PYLON_COMPRESS_CODEC_SETUP_LZMA_STREAM_DECODER:
      return lzma_stream_decoder(&c->xz, setup->val.lzma_stream_decoder.f0, setup->val.lzma_stream_decoder.f1);
    case EXPORTS_PYLON_COMPRESS_CODEC_SETUP_LZMA_AUTO_DECODER:
      return lzma_auto_decoder(&c->xz, setup->val.lzma_auto_decoder.f0, setup->val.lzma_auto_decoder.f1);
    case EXPORTS_PYLON_COMPRESS_CODEC_SETUP_LZMA_ALONE_DECODER:
      return lzma_alone_decoder(&c->xz, setup->val.lzma_alone_decoder);
    case EXPORTS_PYLON_COMPRESS_CODEC_SETUP_LZMA_RAW_DECODER:
      if ((r = chain_from_wit(&setup->val.lzma_raw_decoder, &ch)) != LZMA_OK) return r;
      return lzma_raw_decoder(&c->xz, ch.f);
    default:
      return LZMA_PROG_ERROR;
  }
}

bool exports_pylon_compress_codec_open(exports_pylon_compress_codec_codec_t codec, wit_setup *setup, exports_pylon_compress_codec_own_coder_t *ret, int32_t *err) {
  exports_pylon_compress_codec_coder_t *c = calloc(1, sizeof *c);
  int32_t code;
  if (!c) {
    code = codec == EXPORTS_PYLON_COMPRESS_CODEC_CODEC_BZIP2 ? BZ_MEM_ERROR : LZMA_MEM_ERROR;
  } else {
    c->codec = codec;
    if (codec == EXPORTS_PYLON_COMPRESS_CODEC_CODEC_BZIP2)
      code = HAS_BZIP2 ? open_bzip2(c, setup) : BZ_PARAM_ERROR;
    else
      code = HAS_LZMA ? open_lzma(c, setup) : LZMA_OPTIONS_ERROR;
  }
  exports_pylon_compress_codec_setup_free(setup);
  if (code != 0) {  // BZ_OK and LZMA_OK are both 0
    free(c);
    *err = code;
    return false;
  }
  *ret = exports_pylon_compress_codec_coder_new(c);
  return true;
}

void exports_pylon_compress_codec_method_coder_code(exports_pylon_compress_codec_borrow_coder_t c, mux_list_u8_t *input, uint32_t room, uint32_t action, exports_pylon_compress_codec_step_t *ret) {
  uint8_t *out = malloc(room ? room : 1);
  ret->consumed = 0;
  ret->output.ptr = out;
  ret->output.len = 0;
  if (!out) {
    ret->code = c->codec == EXPORTS_PYLON_COMPRESS_CODEC_CODEC_BZIP2 ? BZ_MEM_ERROR : LZMA_MEM_ERROR;
    mux_list_u8_free(input);
    return;
  }
  if (c->codec == EXPORTS_PYLON_COMPRESS_CODEC_CODEC_BZIP2 && HAS_BZIP2) {
    c->bz.next_in = (char *)input->ptr;
    c->bz.avail_in = (unsigned)input->len;
    c->bz.next_out = (char *)out;
    c->bz.avail_out = room;
    ret->code = c->compress ? BZ2_bzCompress(&c->bz, (int)action) : BZ2_bzDecompress(&c->bz);
    ret->consumed = (uint32_t)(input->len - c->bz.avail_in);
    ret->output.len = room - c->bz.avail_out;
    c->bz.next_in = NULL;
    c->bz.next_out = NULL;
  } else if (HAS_LZMA) {
    c->xz.next_in = input->ptr;
    c->xz.avail_in = input->len;
    c->xz.next_out = out;
    c->xz.avail_out = room;
    ret->code = (int32_t)lzma_code(&c->xz, (lzma_action)action);
    ret->consumed = (uint32_t)(input->len - c->xz.avail_in);
    ret->output.len = room - c->xz.avail_out;
    c->xz.next_in = NULL;
    c->xz.next_out = NULL;
  }
  mux_list_u8_free(input);
}

uint32_t exports_pylon_compress_codec_method_coder_get_check(exports_pylon_compress_codec_borrow_coder_t c) {
  return HAS_LZMA && c->codec == EXPORTS_PYLON_COMPRESS_CODEC_CODEC_LZMA ? (uint32_t)lzma_get_check(&c->xz) : 0;
}

void exports_pylon_compress_codec_coder_destructor(exports_pylon_compress_codec_coder_t *c) {
  if (c->codec == EXPORTS_PYLON_COMPRESS_CODEC_CODEC_BZIP2 && HAS_BZIP2) {
    if (c->compress)
      BZ2_bzCompressEnd(&c->bz);
    else
      BZ2_bzDecompressEnd(&c->bz);
  } else if (HAS_LZMA) {
    lzma_end(&c->xz);
  }
  free(c);
}

// ---- free functions ----

bool exports_pylon_compress_codec_check_supported(exports_pylon_compress_codec_codec_t codec, uint32_t check) {
  if (codec == EXPORTS_PYLON_COMPRESS_CODEC_CODEC_BZIP2) return HAS_BZIP2 && check == 0;
  return HAS_LZMA && lzma_check_is_supported((lzma_check)check) != 0;
}

bool exports_pylon_compress_codec_lzma_preset(uint32_t preset, wit_lzma_options *ret) {
  lzma_options_lzma o;
  if (!HAS_LZMA || lzma_lzma_preset(&o, preset)) return false;  // true means unsupported
  lzma_options_to_wit(&o, ret);
  return true;
}

bool exports_pylon_compress_codec_encode_properties(wit_filter *filter, mux_list_u8_t *ret, int32_t *err) {
  lzma_filter f;
  filter_storage s;
  filter_from_wit(filter, &f, &s);
  exports_pylon_compress_codec_filter_free(filter);
  if (!HAS_LZMA) {
    *err = LZMA_OPTIONS_ERROR;
    return false;
  }
  uint32_t size = 0;
  lzma_ret r = lzma_properties_size(&size, &f);
  if (r != LZMA_OK) {
    *err = r;
    return false;
  }
  uint8_t *buf = malloc(size ? size : 1);
  if (!buf) {
    *err = LZMA_MEM_ERROR;
    return false;
  }
  r = lzma_properties_encode(&f, buf);
  if (r != LZMA_OK) {
    free(buf);
    *err = r;
    return false;
  }
  ret->ptr = buf;
  ret->len = size;
  return true;
}

bool exports_pylon_compress_codec_decode_properties(uint64_t id, mux_list_u8_t *properties, wit_filter *ret, int32_t *err) {
  lzma_filter f = {.id = id, .options = NULL};
  if (!HAS_LZMA) {
    mux_list_u8_free(properties);
    *err = LZMA_OPTIONS_ERROR;
    return false;
  }
  lzma_ret r = lzma_properties_decode(&f, NULL, properties->ptr, properties->len);
  mux_list_u8_free(properties);
  if (r != LZMA_OK) {
    *err = r;
    return false;
  }
  filter_to_wit(&f, ret);
  free(f.options);
  return true;
}
