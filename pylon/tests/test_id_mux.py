"""mux: ULID, NanoID and KSUID through one dispatcher interface."""
import id_mux

CROCKFORD = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
BASE62 = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
URLSAFE = set("_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

for scheme, length, alphabet in [("ulid", 26, CROCKFORD), ("ksuid", 27, BASE62), ("nanoid", 21, URLSAFE)]:
    a, b = id_mux.generate(scheme), id_mux.generate(scheme)
    assert len(a) == length and set(a) <= alphabet, (scheme, a)
    assert a != b, (scheme, a, b)

try:
    id_mux.generate("uuid")
    raise AssertionError("an unknown scheme must raise")
except ValueError as e:
    assert "uuid" in str(e), e
print("id_mux: ok")
