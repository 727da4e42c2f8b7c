"""Ids of several schemes from one multiplexer: generate("ulid"),
generate("nanoid"), generate("ksuid")."""

import _id_mux_cap

SCHEMES = ("ulid", "nanoid", "ksuid")


def generate(scheme: str) -> str:
    """A new id of `scheme`; ValueError for a scheme the provider lacks."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown id scheme {scheme!r}; known: {', '.join(SCHEMES)}")
    return _id_mux_cap.dispatch(scheme)
