"""DuckDB in pylon: exceptions thrown inside DuckDB come back as the right
`duckdb.Error` and leave the connection usable; values round-trip exactly;
handles are released."""

import datetime
import decimal
import gc
import uuid

import duckdb


def raises(exc, fn, *args, contains=""):
    try:
        fn(*args)
    except exc as e:
        assert contains in str(e), (exc, str(e))
        return e
    raise AssertionError(f"{fn} did not raise {exc.__name__}")


con = duckdb.connect()

# C++ exceptions thrown deep inside DuckDB (parser, binder, catalog,
# casts, constraints) are caught at the provider's boundary.
for _ in range(200):
    raises(duckdb.ParserException, con.execute, "SELEC 1", contains="syntax error")
    raises(duckdb.BinderException, con.execute, "SELECT x FROM (SELECT 1 AS y)", contains="x")
    raises(duckdb.ConversionException, con.execute, "SELECT 'no'::INTEGER")
assert issubclass(duckdb.ParserException, duckdb.ProgrammingError)
assert issubclass(duckdb.ProgrammingError, duckdb.DatabaseError)
assert issubclass(duckdb.DatabaseError, duckdb.Error)
assert con.execute("SELECT 42").fetchall() == [(42,)]

# Values, both ways.
values = [
    None,
    True,
    -(2**63),
    2**63 - 1,
    2**100,
    -(2**127),
    0.1,
    float("inf"),
    "",
    "naïve ☃ \U0001F600",
    b"\x00\xff" * 1000,
    decimal.Decimal("-1234567890123456789.0123456789"),
    decimal.Decimal("0.001"),
    datetime.date(1, 1, 1),
    datetime.date(9999, 12, 31),
    datetime.datetime(1969, 12, 31, 23, 59, 59, 999999),
    datetime.time(23, 59, 59, 999999),
    datetime.timedelta(days=-3, microseconds=7),
]
for v in values:
    (got,) = con.execute("SELECT ?", [v]).fetchone()
    assert got == v and type(got) is type(v), (v, got)
assert con.execute("SELECT ?::UUID", [uuid.UUID(int=7)]).fetchone() == (uuid.UUID(int=7),)
assert con.execute("SELECT [1, 2, 3]").fetchone() == ("[1, 2, 3]",)

# Results larger than one batch, read in pieces.
con.execute("SELECT range AS i, range::VARCHAR AS s FROM range(10000)")
assert con.fetchone() == (0, "0")
assert len(con.fetchmany(4999)) == 4999
rest = con.fetchall()
assert len(rest) == 5000 and rest[-1] == (9999, "9999")
assert con.fetchone() is None

# The appender.
con.execute("CREATE TABLE t (i BIGINT, d DECIMAL(9,2), s VARCHAR, day DATE)")
app = con.appender("t")
for i in range(5000):
    app.append_row(i, decimal.Decimal(i).scaleb(-2), f"row {i}", datetime.date(2024, 1, 1))
app.flush()
app.append_rows([(5000 + i, None, None, None) for i in range(5000)])
app.close()
raises(duckdb.InvalidInputException, app.append_row, 1, 2, 3, 4, contains="closed")
assert con.execute("SELECT count(*), sum(i), sum(d), count(s) FROM t").fetchone() == (10000, 49995000, decimal.Decimal("124975.00"), 5000)
with con.appender("t") as app2:
    app2.append_row(-1, decimal.Decimal("1.5"), "x", None)
assert con.execute("SELECT d FROM t WHERE i = -1").fetchall() == [(decimal.Decimal("1.50"),)]
raises(duckdb.CatalogException, con.appender, "no_such_table")
bad = con.appender("t")
bad.append_rows([(1, 2)])
raises(duckdb.InvalidInputException, bad.flush)

# Connections and their handles.
for _ in range(300):
    c = duckdb.connect()
    c.execute("CREATE TABLE x AS SELECT 1 AS a")
    c.close()
gc.collect()
con.close()
raises(duckdb.ConnectionException, con.execute, "SELECT 1", contains="already closed")
print("duckdb ok")
