"""Every WIT type through a generated cap: each value goes to the provider
and back unchanged; bad values raise TypeError/OverflowError/ValueError
naming the WIT function, argument and type."""
import enum
import math
import struct

import _kitchen_cap
from _kitchen_cap import Err, Ok, Some, types as t


def raises(exc, fn, *args, contains=(), **kwargs):
    try:
        fn(*args, **kwargs)
    except exc as e:
        for word in contains:
            assert word in str(e), (word, str(e))
        return e
    raise AssertionError(f"{fn.__name__}{args} did not raise {exc.__name__}")


# The module's shape: a submodule per interface, also in sys.modules.
import sys
assert sys.modules["_kitchen_cap.types"] is t
from _kitchen_cap.types import Point  # noqa: E402
assert Point is t.Point

# Integers at their bounds, and one past them.
for name, lo, hi in [
    ("u8", 0, 2**8 - 1), ("u16", 0, 2**16 - 1), ("u32", 0, 2**32 - 1), ("u64", 0, 2**64 - 1),
    ("s8", -2**7, 2**7 - 1), ("s16", -2**15, 2**15 - 1), ("s32", -2**31, 2**31 - 1), ("s64", -2**63, 2**63 - 1),
]:
    echo = getattr(t, "echo_" + name)
    for v in (lo, hi, lo + 1, hi - 1, (lo + hi) // 2):
        assert echo(v) == v, (name, v)
        assert echo(x=v) == v, (name, v)
    raises(OverflowError, echo, hi + 1, contains=(name, f"echo-{name}", "`x`"))
    raises(OverflowError, echo, lo - 1, contains=(name,))
    raises(TypeError, echo, "1", contains=(name, "str"))
    raises(TypeError, echo, 1.0, contains=(name,))

assert t.echo_bool(True) is True and t.echo_bool(False) is False
raises(TypeError, t.echo_bool, 1, contains=("bool",))

# Floats, NaN and infinities included.
for v in (0.0, -0.0, 1.5, -2.25, 1e300, -1e-300, math.inf, -math.inf, 5e-324):
    r = t.echo_f64(v)
    assert r == v and math.copysign(1, r) == math.copysign(1, v), v
assert math.isnan(t.echo_f64(math.nan))
for v in (0.0, 1.5, -2.25, 3.4028234663852886e38, math.inf, -math.inf):
    assert t.echo_f32(v) == v, v
assert t.echo_f32(0.1) == struct.unpack("f", struct.pack("f", 0.1))[0]
assert math.isnan(t.echo_f32(math.nan))
raises(OverflowError, t.echo_f32, 1e300, contains=("f32",))
assert t.echo_f64(3) == 3.0

# Characters and strings, non-ASCII included.
for ch in ("a", "\0", "é", "€", "😀", "\U0010FFFF"):
    assert t.echo_char(ch) == ch, ch
raises(ValueError, t.echo_char, "\ud800", contains=("surrogate",))
raises(TypeError, t.echo_char, "ab", contains=("char",))
for s in ("", "plain", "naïve café ✓ 😀", "nul\0inside", "x" * 100_000):
    assert t.echo_string(s) == s
raises(UnicodeEncodeError, t.echo_string, "\udc80")
raises(TypeError, t.echo_string, b"bytes", contains=("string", "`echo-string`"))

# list<u8> is bytes (any bytes-like object goes in); other lists are lists.
for b in (b"", b"\0\1\2", bytes(range(256)) * 64):
    assert t.echo_bytes(b) == b
assert t.echo_bytes(bytearray(b"abc")) == b"abc"
assert t.echo_bytes(memoryview(b"xyz")) == b"xyz"
assert type(t.echo_bytes(b"q")) is bytes
raises(TypeError, t.echo_bytes, "text", contains=("list<u8>",))
nested = [[], ["a"], ["b", "ç", ""], ["😀"] * 50]
assert t.echo_nested(nested) == nested
assert t.echo_nested((("x",), ())) == [["x"], []]
assert t.total_length([b"ab", b"", bytearray(b"cde")]) == 5
e = raises(TypeError, t.echo_nested, [["ok"], ["fine", 3]], contains=("element 1", "element 1", "string"))

# Records: named fields, equality, repr, keyword construction.
p = t.Point(1, -2, "ünïcode")
assert t.echo_point(p) == p and t.echo_point(p) is not p
assert t.Point(x=1, y=-2, label="ünïcode") == p
assert repr(p) == "Point(x=1, y=-2, label='ünïcode')", repr(p)
assert p != t.Point(1, -2, "other")
raises(TypeError, t.echo_point, (1, 2, "tuple"), contains=("record `point`",))
raises(OverflowError, t.echo_point, t.Point(2**31, 0, ""), contains=("field `x`", "s32"))
match t.echo_point(p):
    case t.Point(x, y, label):
        assert (x, y, label) == (1, -2, "ünïcode")

# Tuples.
tup = (255, "tüple", -0.5, (True, "ß"))
assert t.echo_tuple(tup) == tup
assert t.echo_tuple([1, "l", 2.0, [False, "x"]]) == (1, "l", 2.0, (False, "x"))
raises(TypeError, t.echo_tuple, (1, "short"), contains=("4 items",))

# Variants: a class per case, with and without payloads.
shapes = [
    t.Shape.Nothing(),
    t.Shape.Circle(2.5),
    t.Shape.Rect((1.5, -2.0)),
    t.Shape.Named("☃ snowman"),
    t.Shape.Path([t.Point(0, 0, ""), t.Point(1, 1, "b")]),
    t.Shape.Tagged(None),
    t.Shape.Tagged(7),
]
for s in shapes:
    r = t.echo_shape(s)
    assert r == s and type(r) is type(s), (r, s)
    assert isinstance(r, t.Shape)
assert t.echo_shapes(shapes) == shapes
assert t.Shape.Circle(1.0).tag == "circle" and t.Shape.Circle.index == 1
assert repr(t.Shape.Named("n")) == "Shape.Named('n')"
assert repr(t.Shape.Nothing()) == "Shape.Nothing()"
raises(TypeError, t.Shape.Nothing, 1)
raises(TypeError, t.echo_shape, "circle", contains=("variant `shape`",))
raises(TypeError, t.echo_shape, t.Shape.Circle("big"), contains=("case `circle`", "f64"))
match t.echo_shape(t.Shape.Rect((3.0, 4.0))):
    case t.Shape.Rect((w, h)):
        assert w * h == 12.0

# Enums and flags.
assert issubclass(t.Color, enum.Enum)
for c in t.Color:
    assert t.echo_color(c) is c
assert [c.name for c in t.Color] == ["RED", "GREEN", "BLUE", "HOT_PINK"]
raises(TypeError, t.echo_color, 0, contains=("enum `color`",))
assert issubclass(t.Perms, enum.Flag)
for f in (t.Perms(0), t.Perms.READ, t.Perms.READ | t.Perms.EXEC, t.Perms.READ | t.Perms.WRITE | t.Perms.EXEC):
    assert t.echo_perms(f) == f
every = t.Many(0)
for i in range(20):
    every |= t.Many[f"B{i}"]
for m in (t.Many(0), t.Many.B0, t.Many.B19, t.Many.B3 | t.Many.B17, every):
    assert t.echo_many(m) == m, m

# Options, nested options (Some(...) marks the outer `some`).
for v in (None, "", "x"):
    assert t.echo_option(v) == v
assert t.echo_option_option(None) is None
assert t.echo_option_option(Some(None)) == Some(None)
assert t.echo_option_option(Some(5)) == Some(5)
raises(TypeError, t.echo_option_option, 5, contains=("Some",))

# Results as values are Ok/Err; a returned result raises its err.
rs = [Ok("fine"), Err(3), Ok(""), Err(0)]
assert t.echo_results(rs) == rs
assert t.echo_empty_results([Ok(), Err(), Ok()]) == [Ok(), Err(), Ok()]
assert t.check(0) == 0
e = raises(t.Error, t.check, 42)
assert e.value == t.Failure(42, "code 42 ✗"), e.value
assert isinstance(e, Exception)
assert t.check_empty(False) is None
e = raises(t.Error, t.check_empty, True)
assert e.value is None

# A record with one of everything.
ev = t.Everything(
    a_bool=True, a_u8=255, a_u16=65535, a_u32=2**32 - 1, a_u64=2**64 - 1,
    a_s8=-128, a_s16=-32768, a_s32=-2**31, a_s64=-2**63, a_f32=0.5, a_f64=-1e-300,
    a_char="ℵ", a_string="évery thing", bytes=b"\xff\0", points=[t.Point(3, 4, "p")],
    maybe=t.Point(5, 6, "m"), pair=(9, "nine"), shape=t.Shape.Named("n"),
    color=t.Color.HOT_PINK, perms=t.Perms.WRITE,
)
assert t.echo_everything(ev) == ev
ev.maybe = None
assert t.echo_everything(ev) == ev

# More than 16 flat arguments go through memory.
assert t.sum_many(*range(1, 17), "four") == sum(range(1, 17)) + 4
assert t.sum_many(*range(16), q="é") == sum(range(16)) + 2

# Argument handling.
raises(TypeError, t.echo_u8, contains=("missing", "x"))
raises(TypeError, t.echo_u8, 1, 2, contains=("takes 1 argument",))
raises(TypeError, t.echo_u8, y=1, contains=("unexpected keyword",))
raises(TypeError, t.echo_u8, 1, x=1, contains=("multiple values",))
assert "echo_u8(" in t.echo_u8.__doc__ or t.echo_u8.__text_signature__ is not None

# Hand-written C in the same cap, over the C bindings.
assert _kitchen_cap.live_via_c() == t.live_counters()
print("kitchen types: ok")
