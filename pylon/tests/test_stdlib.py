"""The standard library works inside pylon."""
import json
import re
import zlib

data = json.dumps({"primes": [n for n in range(2, 60) if all(n % d for d in range(2, n))]})
assert json.loads(data)["primes"][:5] == [2, 3, 5, 7, 11]
assert re.findall(r"\d+", "a1b22c333") == ["1", "22", "333"]
packed = zlib.compress(data.encode() * 10)
assert zlib.decompress(packed) == data.encode() * 10
assert zlib.crc32(b"abc") == 891568578
print("stdlib: ok")
