"""Ids of several schemes from one multiplexer: generate("ulid"),
generate("nanoid"), generate("ksuid")."""

from _id_mux_cap import id_dispatcher

SCHEMES = ("ulid", "nanoid", "ksuid")


def generate(scheme: str) -> str:
    """A new id of `scheme`; ValueError for a scheme the provider lacks."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown id scheme {scheme!r}; known: {', '.join(SCHEMES)}")
    try:
        return id_dispatcher.generate(scheme)
    except id_dispatcher.Error as e:
        raise ValueError(str(e)) from None
