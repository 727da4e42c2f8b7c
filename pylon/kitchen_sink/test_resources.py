"""Resources through a generated cap: constructors, methods, static
functions, borrowed and owned handles; the provider's count of live
counters returns to zero after close(), `with`, `del` and gc.collect()."""
import gc

from _kitchen_cap import types as t


def live():
    return t.live_counters()


assert live() == 0

c = t.Counter(5)
assert live() == 1
assert c.get() == 5 and c.add(n=10) == 15 and c.add(-20) == -5
assert c.close_() == "counter at -5", "WIT's own `close` is close_()"
assert not c.closed
assert repr(c).startswith("<_kitchen_cap.types.Counter handle ")
c.close()
assert c.closed and live() == 0
c.close()  # closing twice is harmless
try:
    c.get()
    raise AssertionError("a closed handle must raise")
except ValueError as e:
    assert "closed" in str(e), e

# `with` drops the handle on exit.
with t.Counter(1) as a:
    assert live() == 1 and a.get() == 1
assert live() == 0 and a.closed

# Collection drops it too.
b = t.Counter(2)
assert live() == 1
del b
assert live() == 0
cycle = [t.Counter(3)]
cycle.append(cycle)
del cycle
gc.collect()
assert live() == 0

# Borrowed handles stay usable; owned ones move into the call.
x, y = t.Counter(2), t.Counter(40)
assert x.sum_with(y) == 42 and x.sum_with(other=x) == 4
assert not y.closed
z = t.Counter.merge(x, y)
assert x.closed and y.closed, "owned arguments are consumed"
assert z.get() == 42 and live() == 1
try:
    t.Counter.merge(z, z)
    raise AssertionError("one handle passed by value twice must raise")
except ValueError as e:
    assert "already" in str(e), e
assert not z.closed, "a failed call consumes nothing"
try:
    t.Counter.merge(z, "not a counter")
    raise AssertionError("a wrong type must raise")
except TypeError as e:
    assert "Counter" in str(e) and "`b`" in str(e), e
assert not z.closed
z.close()
assert live() == 0

# A static function returning a result.
ok = t.Counter.try_new(7)
assert ok.get() == 7
try:
    t.Counter.try_new(-1)
    raise AssertionError("a negative start must raise")
except t.Error as e:
    assert e.value.code == 22 and "négatif" in e.value.message, e.value
ok.close()
assert live() == 0

try:
    t.Counter()
    raise AssertionError("the constructor needs its argument")
except TypeError as e:
    assert "start" in str(e), e

# 100,000 handles created and dropped in every way.
for i in range(25_000):
    t.Counter(i).close()
    with t.Counter(i):
        pass
    t.Counter(i)
    k = t.Counter(i)
    k = None
gc.collect()
assert live() == 0, live()
many = [t.Counter(i) for i in range(1000)]
assert live() == 1000
del many
assert live() == 0
print("kitchen resources: ok")
