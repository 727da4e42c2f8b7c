// The C side of `_crc32c_dynlink_cap`: CRC-32C computed by a provider that
// is resolved at run time through `compose:dynlink/linker`.
//
// Errors: functions return 0 on success, or -1 and set `*err` to a message
// the caller frees with `free`.
#ifndef CRC32C_CAP_H
#define CRC32C_CAP_H

#include <stddef.h>
#include <stdint.h>

// The provider id this cap resolves (declared in its BUILD file too).
#define CRC32C_CAP_PROVIDER "crc32c"

// Resolve the provider once (module init); later calls do nothing.
int crc32c_cap_init(char **err);

// CRC-32C of `data` through the resolved provider (`invoke("compute")`).
int crc32c_cap_compute(const uint8_t *data, size_t len, uint32_t *out, char **err);

// Resolve the provider registered as `id` and release it again: 0 when the
// plan has it, else -1 with an error naming the id.
int crc32c_cap_probe(const char *id, char **err);

// How many times the cap has resolved its provider (stays 1 after init).
unsigned crc32c_cap_resolutions(void);

#endif
