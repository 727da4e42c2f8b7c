// ULID, NanoID and KSUID behind one dispatcher (linkage mode: multiplexer).
// Randomness comes from getentropy() and time from clock_gettime(), which
// the WASI adapter maps to wasi:random and wasi:clocks.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "multiplexer.h"

static int random_bytes(uint8_t *buf, size_t len) { return getentropy(buf, len); }

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

// ULID: 48-bit milliseconds + 80 random bits, Crockford base32, 26 chars.
static int ulid(char out[27]) {
  static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  uint8_t bytes[16];
  uint64_t ms = now_ms();
  for (int i = 0; i < 6; i++) bytes[i] = (uint8_t)(ms >> (8 * (5 - i)));
  if (random_bytes(bytes + 6, 10) != 0) return -1;
  // 128 bits -> 26 symbols of 5 bits (the first symbol carries 3 bits).
  for (int i = 25; i >= 0; i--) {
    int bit = 128 - 5 * (26 - i);  // position of this symbol's lowest bit from the top
    unsigned value = 0;
    for (int b = 0; b < 5; b++) {
      int pos = bit + b;  // bit index from the most significant end
      if (pos < 0) continue;
      unsigned v = (bytes[pos / 8] >> (7 - pos % 8)) & 1u;
      value = (value << 1) | v;
    }
    out[i] = alphabet[value & 31u];
  }
  out[26] = 0;
  return 0;
}

// NanoID: 21 symbols of the URL-safe alphabet.
static int nanoid(char out[22]) {
  static const char alphabet[] = "_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  uint8_t bytes[21];
  if (random_bytes(bytes, sizeof bytes) != 0) return -1;
  for (int i = 0; i < 21; i++) out[i] = alphabet[bytes[i] & 63u];
  out[21] = 0;
  return 0;
}

// KSUID: 32-bit seconds since 2014-05-13 + 128 random bits, base62, 27 chars.
static int ksuid(char out[28]) {
  static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  uint8_t bytes[20];
  uint32_t ts = (uint32_t)(now_ms() / 1000u - 1400000000u);
  for (int i = 0; i < 4; i++) bytes[i] = (uint8_t)(ts >> (8 * (3 - i)));
  if (random_bytes(bytes + 4, 16) != 0) return -1;
  // Base62 by repeated division of the 160-bit big-endian number.
  for (int i = 26; i >= 0; i--) {
    unsigned rem = 0;
    for (int j = 0; j < 20; j++) {
      unsigned acc = (rem << 8) | bytes[j];
      bytes[j] = (uint8_t)(acc / 62u);
      rem = acc % 62u;
    }
    out[i] = alphabet[rem];
  }
  out[27] = 0;
  return 0;
}

static bool is(const multiplexer_string_t *s, const char *lit) {
  size_t n = strlen(lit);
  return s->len == n && memcmp(s->ptr, lit, n) == 0;
}

bool exports_tegmentum_id_multiplexer_id_dispatcher_generate(multiplexer_string_t *scheme,
                                                             multiplexer_string_t *ret,
                                                             multiplexer_string_t *err) {
  char id[28];
  int rc;
  if (is(scheme, "ulid")) {
    rc = ulid(id);
  } else if (is(scheme, "nanoid")) {
    rc = nanoid(id);
  } else if (is(scheme, "ksuid")) {
    rc = ksuid(id);
  } else {
    char msg[128];
    snprintf(msg, sizeof msg, "unknown id scheme `%.*s`; known: ulid, nanoid, ksuid", (int)scheme->len,
             (const char *)scheme->ptr);
    multiplexer_string_dup(err, msg);
    multiplexer_string_free(scheme);
    return false;
  }
  multiplexer_string_free(scheme);
  if (rc != 0) {
    multiplexer_string_dup(err, "no entropy available");
    return false;
  }
  multiplexer_string_dup(ret, id);
  return true;
}
