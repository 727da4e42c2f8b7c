// `_crc32c_dynlink_cap`: resolves the "crc32c" provider once and calls
// `invoke("compute", data)` on the cached instance.
#include <stdlib.h>
#include <string.h>

#include "crc32c_cap.h"
#include "pylon.h"

static bool resolved;
static compose_dynlink_linker_own_instance_t instance;
static unsigned resolutions;

static char *take_message(pylon_string_t *s, const char *context) {
  size_t n = strlen(context);
  char *m = malloc(n + s->len + 3);
  memcpy(m, context, n);
  memcpy(m + n, ": ", 2);
  memcpy(m + n + 2, s->ptr, s->len);
  m[n + 2 + s->len] = 0;
  pylon_string_free(s);
  return m;
}

static int resolve(const char *id, compose_dynlink_linker_own_instance_t *out, char **err) {
  pylon_string_t sid = {(uint8_t *)id, strlen(id)};
  pylon_string_t e;
  if (!compose_dynlink_linker_resolve_by_id(&sid, out, &e)) {
    size_t n = strlen(id) + 32;
    char *context = malloc(n);
    strcpy(context, "dynlink provider `");
    strcat(context, id);
    strcat(context, "`");
    *err = take_message(&e, context);
    free(context);
    return -1;
  }
  return 0;
}

int crc32c_cap_init(char **err) {
  if (resolved) {
    return 0;
  }
  if (resolve(CRC32C_CAP_PROVIDER, &instance, err) != 0) {
    return -1;
  }
  resolved = true;
  resolutions++;
  return 0;
}

int crc32c_cap_compute(const uint8_t *data, size_t len, uint32_t *out, char **err) {
  if (crc32c_cap_init(err) != 0) {
    return -1;
  }
  pylon_string_t method = {(uint8_t *)"compute", 7};
  pylon_list_u8_t payload = {(uint8_t *)data, len};
  pylon_list_u8_t ret;
  pylon_string_t e;
  compose_dynlink_linker_borrow_instance_t self = compose_dynlink_linker_borrow_instance(instance);
  if (!compose_dynlink_linker_method_instance_invoke(self, &method, &payload, &ret, &e)) {
    *err = take_message(&e, "crc32c");
    return -1;
  }
  if (ret.len != 4) {
    pylon_list_u8_free(&ret);
    *err = strdup("crc32c: the provider answered a value that is not 4 bytes");
    return -1;
  }
  *out = (uint32_t)ret.ptr[0] | (uint32_t)ret.ptr[1] << 8 | (uint32_t)ret.ptr[2] << 16 |
         (uint32_t)ret.ptr[3] << 24;
  pylon_list_u8_free(&ret);
  return 0;
}

int crc32c_cap_probe(const char *id, char **err) {
  compose_dynlink_linker_own_instance_t probe;
  if (resolve(id, &probe, err) != 0) {
    return -1;
  }
  compose_dynlink_linker_instance_drop_own(probe);
  return 0;
}

unsigned crc32c_cap_resolutions(void) { return resolutions; }
