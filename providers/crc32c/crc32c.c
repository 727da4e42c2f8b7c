// CRC-32C (Castagnoli) as a dynlink provider: method "compute" takes the
// bytes to checksum and answers the CRC as 4 little-endian bytes.
#include <stdlib.h>
#include <string.h>

#include "provider.h"

static uint32_t crc32c(const uint8_t *data, size_t len) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < len; i++) {
    crc ^= data[i];
    for (int k = 0; k < 8; k++) {
      crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
  }
  return crc ^ 0xFFFFFFFFu;
}

// Returns true with `ret` set on success; false with `err` set otherwise.
// The bindings own neither argument after the call: both are freed here.
bool exports_compose_dynlink_endpoint_handle(provider_string_t *method, provider_list_u8_t *payload,
                                             provider_list_u8_t *ret, provider_string_t *err) {
  bool ok = method->len == 7 && memcmp(method->ptr, "compute", 7) == 0;
  if (ok) {
    uint32_t crc = crc32c(payload->ptr, payload->len);
    uint8_t *out = malloc(4);
    for (int i = 0; i < 4; i++) {
      out[i] = (uint8_t)(crc >> (8 * i));
    }
    ret->ptr = out;
    ret->len = 4;
  } else {
    provider_string_dup(err, "crc32c: unknown method");
  }
  provider_string_free(method);
  provider_list_u8_free(payload);
  return ok;
}
