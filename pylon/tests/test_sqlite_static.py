"""static linkage: SQLite connections and prepared statements are resource
handles of the provider plugged into pylon."""
import pylon_sqlite

db = pylon_sqlite.connect(":memory:")
assert db.execute("create table t (a integer, b text, c real, d blob, e)").fetchall() == []
rows = [
    (1, "one", 1.5, b"\x00\x01", None),
    (2, "two", -2.25, b"", None),
    (3, "trois \u00e9", 1e300, bytes(range(256)), None),
]
for row in rows:
    # qmark parameters, bound to a prepared statement
    assert db.execute("insert into t values (?, ?, ?, ?, ?)", row).fetchall() == []
cur = db.execute("select a, b, c, d, e from t where a >= ? order by a", (2,))
assert cur.fetchone() == rows[1], "fetchone"
assert cur.fetchall() == [rows[2]], "fetchall after fetchone"
assert cur.fetchone() is None
assert db.execute("select count(*), sum(a) from t").fetchall() == [(3, 6)]
assert db.execute("select ?", (2**62,)).fetchone() == (2**62,)

try:
    db.execute("selec 1")
    raise AssertionError("a syntax error must raise")
except pylon_sqlite.Error as e:
    assert "syntax error" in str(e), e

db.close()
try:
    db.execute("select 1")
    raise AssertionError("a statement on a closed connection must raise")
except pylon_sqlite.Error as e:
    assert "closed" in str(e), e
print("sqlite: ok")
