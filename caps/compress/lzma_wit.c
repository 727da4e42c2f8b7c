// liblzma's C API (the part CPython's `_lzma` module calls) over the
// multiplexer interface `pylon:compress/codec`: each stream is a coder of the
// compression provider and each lzma_code call one `code` call there, with
// this call's input and output room; filter chains and options cross as WIT
// records. Return codes are liblzma's own.
#include <lzma.h>
#include <stdlib.h>
#include <string.h>

#include "pylon.h"

typedef struct {
  pylon_compress_codec_own_coder_t coder;
} coder_state;

typedef pylon_compress_codec_lzma_options_t wit_lzma_options;
typedef pylon_compress_codec_filter_t wit_filter;

static void options_to_wit(const lzma_options_lzma *o, wit_lzma_options *w) {
  w->dict_size = o->dict_size;
  w->lc = o->lc;
  w->lp = o->lp;
  w->pb = o->pb;
  w->mode = (uint32_t)o->mode;
  w->nice_len = o->nice_len;
  w->mf = (uint32_t)o->mf;
  w->depth = o->depth;
}

static void options_from_wit(const wit_lzma_options *w, lzma_options_lzma *o) {
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

static int is_lzma(lzma_vli id) { return id == LZMA_FILTER_LZMA1 || id == LZMA_FILTER_LZMA1EXT || id == LZMA_FILTER_LZMA2; }

static int is_bcj(lzma_vli id) {
  return id == LZMA_FILTER_X86 || id == LZMA_FILTER_POWERPC || id == LZMA_FILTER_IA64 || id == LZMA_FILTER_ARM || id == LZMA_FILTER_ARMTHUMB ||
         id == LZMA_FILTER_ARM64 || id == LZMA_FILTER_SPARC;
}

static void filter_to_wit(const lzma_filter *f, wit_filter *w) {
  w->id = f->id;
  w->options.tag = PYLON_COMPRESS_CODEC_FILTER_OPTIONS_NONE;
  if (f->options == NULL) return;
  if (is_lzma(f->id)) {
    w->options.tag = PYLON_COMPRESS_CODEC_FILTER_OPTIONS_LZMA;
    options_to_wit(f->options, &w->options.val.lzma);
  } else if (f->id == LZMA_FILTER_DELTA) {
    w->options.tag = PYLON_COMPRESS_CODEC_FILTER_OPTIONS_DELTA;
    w->options.val.delta = ((const lzma_options_delta *)f->options)->dist;
  } else if (is_bcj(f->id)) {
    w->options.tag = PYLON_COMPRESS_CODEC_FILTER_OPTIONS_BCJ;
    w->options.val.bcj = ((const lzma_options_bcj *)f->options)->start_offset;
  }
}

// A chain up to LZMA_VLI_UNKNOWN, as WIT filters in `buf`.
static lzma_ret chain_to_wit(const lzma_filter *filters, wit_filter buf[LZMA_FILTERS_MAX], pylon_compress_codec_list_filter_t *out) {
  if (filters == NULL) return LZMA_PROG_ERROR;
  size_t n = 0;
  while (filters[n].id != LZMA_VLI_UNKNOWN) {
    if (n == LZMA_FILTERS_MAX) return LZMA_OPTIONS_ERROR;
    filter_to_wit(&filters[n], &buf[n]);
    n++;
  }
  out->ptr = buf;
  out->len = n;
  return LZMA_OK;
}

static lzma_ret start(lzma_stream *strm, pylon_compress_codec_setup_t *setup) {
  if (strm == NULL) return LZMA_PROG_ERROR;
  lzma_end(strm);  // re-initializing a stream ends its coder first
  coder_state *s = malloc(sizeof *s);
  if (s == NULL) return LZMA_MEM_ERROR;
  int32_t err = 0;
  if (!pylon_compress_codec_open(PYLON_COMPRESS_CODEC_CODEC_LZMA, setup, &s->coder, &err)) {
    free(s);
    return (lzma_ret)err;
  }
  strm->internal = (lzma_internal *)s;
  strm->total_in = 0;
  strm->total_out = 0;
  return LZMA_OK;
}

lzma_ret lzma_easy_encoder(lzma_stream *strm, uint32_t preset, lzma_check check) {
  pylon_compress_codec_setup_t setup = {.tag = PYLON_COMPRESS_CODEC_SETUP_LZMA_EASY_ENCODER};
  setup.val.lzma_easy_encoder.f0 = preset;
  setup.val.lzma_easy_encoder.f1 = (uint32_t)check;
  return start(strm, &setup);
}

lzma_ret lzma_stream_encoder(lzma_stream *strm, const lzma_filter *filters, lzma_check check) {
  wit_filter buf[LZMA_FILTERS_MAX];
  pylon_compress_codec_setup_t setup = {.tag = PYLON_COMPRESS_CODEC_SETUP_LZMA_STREAM_ENCODER};
  lzma_ret r = chain_to_wit(filters, buf, &setup.val.lzma_stream_encoder.f0);
  if (r != LZMA_OK) return r;
  setup.val.lzma_stream_encoder.f1 = (uint32_t)check;
  return start(strm, &setup);
}

lzma_ret lzma_alone_encoder(lzma_stream *strm, const lzma_options_lzma *options) {
  if (options == NULL) return LZMA_PROG_ERROR;
  pylon_compress_codec_setup_t setup = {.tag = PYLON_COMPRESS_CODEC_SETUP_LZMA_ALONE_ENCODER};
  options_to_wit(options, &setup.val.lzma_alone_encoder);
  return start(strm, &setup);
}

lzma_ret lzma_raw_encoder(lzma_stream *strm, const lzma_filter *filters) {
  wit_filter buf[LZMA_FILTERS_MAX];
  pylon_compress_codec_setup_t setup = {.tag = PYLON_COMPRESS_CODEC_SETUP_LZMA_RAW_ENCODER};
  lzma_ret r = chain_to_wit(filters, buf, &setup.val.lzma_raw_encoder);
  if (r != LZMA_OK) return r;
  return start(strm, &setup);
}

lzma_ret lzma_stream_decoder(lzma_stream *strm, uint64_t memlimit, uint32_t flags) {
  pylon_compress_codec_setup_t setup = {.tag = PYLON_COMPRESS_CODEC_SETUP_LZMA_STREAM_DECODER};
  setup.val.lzma_stream_decoder.f0 = memlimit;
  setup.val.lzma_stream_decoder.f1 = flags;
  return start(strm, &setup);
}

lzma_ret lzma_auto_decoder(lzma_stream *strm, uint64_t memlimit, uint32_t flags) {
  pylon_compress_codec_setup_t setup = {.tag = PYLON_COMPRESS_CODEC_SETUP_LZMA_AUTO_DECODER};
  setup.val.lzma_auto_decoder.f0 = memlimit;
  setup.val.lzma_auto_decoder.f1 = flags;
  return start(strm, &setup);
}

lzma_ret lzma_alone_decoder(lzma_stream *strm, uint64_t memlimit) {
  pylon_compress_codec_setup_t setup = {.tag = PYLON_COMPRESS_CODEC_SETUP_LZMA_ALONE_DECODER};
  setup.val.lzma_alone_decoder = memlimit;
  return start(strm, &setup);
}

lzma_ret lzma_raw_decoder(lzma_stream *strm, const lzma_filter *filters) {
  wit_filter buf[LZMA_FILTERS_MAX];
  pylon_compress_codec_setup_t setup = {.tag = PYLON_COMPRESS_CODEC_SETUP_LZMA_RAW_DECODER};
  lzma_ret r = chain_to_wit(filters, buf, &setup.val.lzma_raw_decoder);
  if (r != LZMA_OK) return r;
  return start(strm, &setup);
}

lzma_ret lzma_code(lzma_stream *strm, lzma_action action) {
  if (strm == NULL || strm->internal == NULL) return LZMA_PROG_ERROR;
  coder_state *s = (coder_state *)strm->internal;
  // The interface carries sizes as u32; a bigger buffer is offered in part,
  // which liblzma's contract allows (it may always stop early).
  size_t in_len = strm->avail_in <= UINT32_MAX ? strm->avail_in : UINT32_MAX;
  uint32_t room = strm->avail_out <= UINT32_MAX ? (uint32_t)strm->avail_out : UINT32_MAX;
  pylon_list_u8_t input = {(uint8_t *)strm->next_in, in_len};
  pylon_compress_codec_step_t out;
  pylon_compress_codec_method_coder_code(pylon_compress_codec_borrow_coder(s->coder), &input, room, (uint32_t)action, &out);
  size_t produced = out.output.len <= room ? out.output.len : room;
  size_t consumed = out.consumed <= in_len ? out.consumed : in_len;
  if (produced) memcpy(strm->next_out, out.output.ptr, produced);
  strm->next_out += produced;
  strm->avail_out -= produced;
  strm->next_in += consumed;
  strm->avail_in -= consumed;
  strm->total_in += consumed;
  strm->total_out += produced;
  pylon_list_u8_free(&out.output);
  return (lzma_ret)out.code;
}

void lzma_end(lzma_stream *strm) {
  if (strm == NULL || strm->internal == NULL) return;
  coder_state *s = (coder_state *)strm->internal;
  pylon_compress_codec_coder_drop_own(s->coder);
  free(s);
  strm->internal = NULL;
}

lzma_check lzma_get_check(const lzma_stream *strm) {
  if (strm == NULL || strm->internal == NULL) return LZMA_CHECK_NONE;
  const coder_state *s = (const coder_state *)strm->internal;
  return (lzma_check)pylon_compress_codec_method_coder_get_check(pylon_compress_codec_borrow_coder(s->coder));
}

lzma_bool lzma_check_is_supported(lzma_check check) {
  return pylon_compress_codec_check_supported(PYLON_COMPRESS_CODEC_CODEC_LZMA, (uint32_t)check);
}

lzma_bool lzma_lzma_preset(lzma_options_lzma *options, uint32_t preset) {
  wit_lzma_options w;
  if (options == NULL || !pylon_compress_codec_lzma_preset(preset, &w)) return 1;  // true: unsupported
  options_from_wit(&w, options);
  return 0;
}

// The encoded properties of `filter`, from the provider.
static lzma_ret encode(const lzma_filter *filter, pylon_list_u8_t *props) {
  if (filter == NULL) return LZMA_PROG_ERROR;
  wit_filter w;
  filter_to_wit(filter, &w);
  int32_t err = 0;
  if (!pylon_compress_codec_encode_properties(&w, props, &err)) return (lzma_ret)err;
  return LZMA_OK;
}

lzma_ret lzma_properties_size(uint32_t *size, const lzma_filter *filter) {
  if (size == NULL) return LZMA_PROG_ERROR;
  pylon_list_u8_t props;
  lzma_ret r = encode(filter, &props);
  if (r != LZMA_OK) return r;
  *size = (uint32_t)props.len;
  pylon_list_u8_free(&props);
  return LZMA_OK;
}

lzma_ret lzma_properties_encode(const lzma_filter *filter, uint8_t *out) {
  pylon_list_u8_t props;
  lzma_ret r = encode(filter, &props);
  if (r != LZMA_OK) return r;
  if (props.len) memcpy(out, props.ptr, props.len);
  pylon_list_u8_free(&props);
  return LZMA_OK;
}

// The options are allocated with malloc (as liblzma does with a NULL
// allocator); the caller frees them.
lzma_ret lzma_properties_decode(lzma_filter *filter, const lzma_allocator *allocator, const uint8_t *props, size_t props_size) {
  if (filter == NULL) return LZMA_PROG_ERROR;
  filter->options = NULL;
  pylon_list_u8_t input = {(uint8_t *)props, props_size};
  wit_filter w;
  int32_t err = 0;
  if (!pylon_compress_codec_decode_properties(filter->id, &input, &w, &err)) return (lzma_ret)err;
  size_t size = 0;
  switch (w.options.tag) {
    case PYLON_COMPRESS_CODEC_FILTER_OPTIONS_LZMA: size = sizeof(lzma_options_lzma); break;
    case PYLON_COMPRESS_CODEC_FILTER_OPTIONS_DELTA: size = sizeof(lzma_options_delta); break;
    case PYLON_COMPRESS_CODEC_FILTER_OPTIONS_BCJ: size = sizeof(lzma_options_bcj); break;
    default: return LZMA_OK;
  }
  void *o = allocator != NULL && allocator->alloc != NULL ? allocator->alloc(allocator->opaque, 1, size) : malloc(size);
  if (o == NULL) return LZMA_MEM_ERROR;
  memset(o, 0, size);
  switch (w.options.tag) {
    case PYLON_COMPRESS_CODEC_FILTER_OPTIONS_LZMA: options_from_wit(&w.options.val.lzma, o); break;
    case PYLON_COMPRESS_CODEC_FILTER_OPTIONS_DELTA:
      ((lzma_options_delta *)o)->type = LZMA_DELTA_TYPE_BYTE;
      ((lzma_options_delta *)o)->dist = w.options.val.delta;
      break;
    default: ((lzma_options_bcj *)o)->start_offset = w.options.val.bcj; break;
  }
  filter->options = o;
  return LZMA_OK;
}
