"""Smoke-test the SQLite provider component (pylon:sqlite/provider@0.1.0)
under wasmtime (PyPI's wasmtime, component model, WASI preview 2).

usage: sqlite_smoke.py COMPONENT
Opens `:memory:`, creates a table, inserts rows through a prepared statement
with bound parameters, selects them back, closes the connection and checks
that later calls fail with an error string rather than a trap. Prints what it
does; exits 1 on the first mismatch.

How wasmtime-py maps the WIT types used here: a resource comes back as a
`component.ResourceAny` and is passed back as the `self` argument of
`[method]...` exports; `result<T, string>` with T not a string is returned
untagged (the ok value itself, or a `str` for the error); the `value` variant
is untagged too (None, int, float, str, bytes).
"""
import sys

import wasmtime
from wasmtime import component

IFACE = "pylon:sqlite/database@0.1.0"


class Mismatch(Exception):
    pass


def expect(what, got, want):
    if got != want:
        raise Mismatch(f"{what}: got {got!r}, want {want!r}")
    print(f"ok   {what}: {got!r:.100}")


class Provider:
    def __init__(self, path):
        engine = wasmtime.Engine()
        self.store = wasmtime.Store(engine)
        self.store.set_wasi(wasmtime.WasiConfig())
        comp = component.Component.from_file(engine, path)
        linker = component.Linker(engine)
        linker.add_wasip2()
        self.inst = linker.instantiate(self.store, comp)
        self.iface = self.inst.get_export_index(self.store, IFACE)
        if self.iface is None:
            raise Mismatch(f"component does not export {IFACE}")

    def call(self, name, *args):
        """Call `name` in the interface; return ("ok", v) or ("err", msg)."""
        idx = self.inst.get_export_index(self.store, name, self.iface)
        if idx is None:
            raise Mismatch(f"no export {name} in {IFACE}")
        f = self.inst.get_func(self.store, idx)
        result_ty = f.type(self.store).result
        value = f(self.store, *args)
        if getattr(value, "tag", None) in ("ok", "err"):
            return value.tag, value.payload
        if isinstance(result_ty, component.ResultType):
            # Untagged: the ok type is not a string (else wasmtime-py would
            # have tagged it), so a str is the err case.
            if isinstance(value, str):
                return "err", value
            return "ok", value
        return "ok", value

    def ok(self, name, *args):
        tag, value = self.call(name, *args)
        if tag != "ok":
            raise Mismatch(f"{name}: unexpected error {value!r}")
        return value

    def err(self, name, *args):
        tag, value = self.call(name, *args)
        if tag != "err" or not isinstance(value, str):
            raise Mismatch(f"{name}: expected an error string, got {tag} {value!r}")
        return value


def main():
    p = Provider(sys.argv[1])
    conn = p.ok("[static]connection.open", ":memory:")
    print(f"open(':memory:') -> {type(conn).__name__}")

    create = p.ok("[method]connection.prepare", conn,
                  "create table t(a integer, b text, c real, d blob)")
    expect("create: query([])", p.ok("[method]statement.query", create, []), [])

    insert = p.ok("[method]connection.prepare", conn,
                  "insert into t(a, b, c, d) values (?, ?, ?, ?)")
    rows = [
        [1, "one", 1.5, b"\x00\x01\xff"],
        [-(2 ** 63), "h\u00e9llo \u2603", -0.25, b""],
        [None, None, None, None],
        [2 ** 63 - 1, "", 1e300, bytes(range(256))],
    ]
    for row in rows:
        expect(f"insert {row!r:.60}", p.ok("[method]statement.query", insert, row), [])

    select = p.ok("[method]connection.prepare", conn,
                  "select a, b, c, d from t order by rowid")
    expect("select: column-count", p.ok("[method]statement.column-count", select), 4)
    got = p.ok("[method]statement.query", select, [])
    for row in got:
        print(f"     row {row!r:.100}")
    expect("select: rows", got, rows)

    where = p.ok("[method]connection.prepare", conn,
                 "select b, typeof(c), length(d) from t where a = ?")
    expect("select where a = 1", p.ok("[method]statement.query", where, [1]),
           [["one", "real", 3]])
    # The same statement again with another parameter (statement reuse).
    expect("select where a = min", p.ok("[method]statement.query", where, [-(2 ** 63)]),
           [["h\u00e9llo \u2603", "real", 0]])

    print(f"     syntax error -> {p.err('[method]connection.prepare', conn, 'selec 1')!r}")
    print(f"     wrong param count -> {p.err('[method]statement.query', where, [])!r}")
    print(f"     two statements -> {p.err('[method]connection.prepare', conn, 'select 1; select 2')!r}")
    print(f"     runtime error -> {p.err('[method]statement.query', p.ok('[method]connection.prepare', conn, 'select abs(?)'), [-(2 ** 63)])!r}")

    expect("close", p.call("[method]connection.close", conn), ("ok", None))
    expect("prepare after close", p.err("[method]connection.prepare", conn, "select 1"),
           "connection is closed")
    expect("query after close", p.err("[method]statement.query", select, []),
           "connection is closed")
    expect("column-count after close", p.err("[method]statement.column-count", select),
           "connection is closed")
    expect("close twice", p.call("[method]connection.close", conn), ("ok", None))

    for r in (create, insert, select, where, conn):
        r.drop(p.store)
    print("PASS")


if __name__ == "__main__":
    try:
        main()
    except Mismatch as e:
        print(f"FAIL {e}")
        sys.exit(1)
