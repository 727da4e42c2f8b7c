// The C side of `_id_mux_cap`: ids of several schemes (ULID, NanoID, KSUID)
// from one multiplexer provider behind one dispatcher interface.
#ifndef ID_MUX_CAP_H
#define ID_MUX_CAP_H

// A new id of `scheme`: 0 and `*out` (free it), or -1 and `*err` (free it),
// e.g. for an unknown scheme.
int id_mux_cap_dispatch(const char *scheme, char **out, char **err);

#endif
