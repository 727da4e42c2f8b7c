"""dynlink: the cap resolves its provider by id once at import, then every
call is invoke("compute", data) on the cached instance."""
import _crc32c_dynlink_cap
import crc32c

assert crc32c.crc32c(b"123456789") == 0xE3069283
assert crc32c.crc32c(b"") == 0
assert crc32c.crc32c(bytearray(b"123456789")) == 0xE3069283
for _ in range(3):
    crc32c.crc32c(b"again")
assert _crc32c_dynlink_cap.resolutions() == 1, "the instance is resolved once"

try:
    _crc32c_dynlink_cap.probe("no-such-provider")
    raise AssertionError("an unknown provider id must raise")
except LookupError as e:
    assert "no-such-provider" in str(e), e
print("crc32c: ok")
