"""CRC-32C (Castagnoli), computed by a provider pylon links at run time."""

import _crc32c_dynlink_cap


def crc32c(data: bytes) -> int:
    """The CRC-32C of `data`."""
    return _crc32c_dynlink_cap.compute(bytes(data))
