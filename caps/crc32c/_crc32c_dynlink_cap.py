"""`_crc32c_dynlink_cap`: resolves the "crc32c" provider once, at import,
through `compose:dynlink/linker`; `compute(data)` then invokes it."""

from _crc32c_dynlink_wit import linker as _linker

PROVIDER = "crc32c"

_resolutions = 0


def _resolve(provider_id):
    try:
        return _linker.resolve_by_id(provider_id)
    except _linker.Error as e:
        raise LookupError(f"dynlink provider `{provider_id}`: {e}") from None


try:
    _instance = _resolve(PROVIDER)
except LookupError as e:
    raise ImportError(str(e)) from None
_resolutions += 1
_invoke = _instance.invoke


def compute(data) -> int:
    """CRC-32C of a bytes-like object, through the dynlink provider."""
    try:
        out = _invoke("compute", data)
    except _linker.Error as e:
        raise RuntimeError(f"crc32c: {e}") from None
    if len(out) != 4:
        raise RuntimeError("crc32c: the provider answered a value that is not 4 bytes")
    return int.from_bytes(out, "little")


def probe(provider_id: str) -> None:
    """Resolve the provider registered as `provider_id` and release it;
    LookupError naming it if the plan has none."""
    _resolve(provider_id).close()


def resolutions() -> int:
    """How many times the provider was resolved (1 after import)."""
    return _resolutions
