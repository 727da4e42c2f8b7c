// `_id_mux_cap`: one `dispatch(scheme)` over tegmentum:id-multiplexer.
#include <stdlib.h>
#include <string.h>

#include "id_mux_cap.h"
#include "pylon.h"

static char *take(pylon_string_t *s) {
  char *m = malloc(s->len + 1);
  memcpy(m, s->ptr, s->len);
  m[s->len] = 0;
  pylon_string_free(s);
  return m;
}

int id_mux_cap_dispatch(const char *scheme, char **out, char **err) {
  pylon_string_t s = {(uint8_t *)scheme, strlen(scheme)};
  pylon_string_t ret;
  pylon_string_t e;
  if (!tegmentum_id_multiplexer_id_dispatcher_generate(&s, &ret, &e)) {
    *err = take(&e);
    return -1;
  }
  *out = take(&ret);
  return 0;
}
