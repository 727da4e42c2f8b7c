"""The same SQL through PyPI's duckdb on the host and through pylon's
duckdb facade (the DuckDB provider component): one line per case, compared
exactly by tests/duckdb.rs. Run as `python differential.py [rows]`."""

import datetime
import decimal
import random
import sys

import duckdb

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
REGIONS = ["Zürich", "東京", "Lagos", "São Paulo", "Reykjavík", "north", "south"]


def out(name, value):
    print(f"{name}: {value!r}")


def case(name, fn):
    try:
        out(name, fn())
    except duckdb.Error as e:
        print(f"{name}: raises {type(e).__name__}: {str(e).splitlines()[0]}")


def rows(n):
    r = random.Random(20261205)
    base = datetime.datetime(2020, 1, 1)
    for i in range(n):
        yield (
            i,
            r.choice(REGIONS),
            decimal.Decimal(r.randint(-10_000, 10_000_000)).scaleb(-2),
            r.randint(-(2**40), 2**40),
            r.random() * 1000,
            (base + datetime.timedelta(days=r.randrange(2000))).date(),
            base + datetime.timedelta(microseconds=r.randrange(2000 * 86_400_000_000)),
            None if r.random() < 0.1 else "note " + chr(0x41 + i % 26) * (i % 5) + " ✓",
            bytes([i % 256, (i * 7) % 256]),
            r.random() < 0.5,
        )


con = duckdb.connect(database=":memory:")
# One thread on the host too: floating-point sums then add in one order.
con.execute("SET threads = 1")
con.execute(
    "CREATE TABLE sales (id INTEGER PRIMARY KEY, region VARCHAR, amount DECIMAL(12,2), qty BIGINT,"
    " price DOUBLE, day DATE, ts TIMESTAMP, note VARCHAR, tag BLOB, flag BOOLEAN)"
)
app = con.appender("sales")
app.append_rows(rows(ROWS))
app.flush()
if hasattr(app, "close"):
    app.close()
con.execute("CREATE TABLE regions (name VARCHAR, country VARCHAR, weight DECIMAL(4,1))")
con.executemany(
    "INSERT INTO regions VALUES (?, ?, ?)",
    [("Zürich", "CH", decimal.Decimal("1.5")), ("東京", "JP", decimal.Decimal("2.0")), ("Lagos", "NG", None), ("north", "??", decimal.Decimal("-0.5"))],
)

Q = lambda sql, params=None: lambda: con.execute(sql, params).fetchall()

case("count", Q("SELECT count(*), count(note), count(DISTINCT region) FROM sales"))
case("group_by", Q("SELECT region, count(*), sum(amount), min(amount), max(qty), sum(qty), round(avg(price), 6) FROM sales GROUP BY region ORDER BY region"))
case("having", Q("SELECT day, count(*) c FROM sales GROUP BY day HAVING count(*) > 60 ORDER BY c DESC, day LIMIT 5"))
case("join", Q("SELECT r.country, count(*), sum(s.amount * r.weight) FROM sales s JOIN regions r ON s.region = r.name GROUP BY r.country ORDER BY r.country"))
case("left_join", Q("SELECT s.region, r.country FROM (SELECT DISTINCT region FROM sales) s LEFT JOIN regions r ON s.region = r.name ORDER BY s.region"))
case("window", Q("SELECT id, region, row_number() OVER (PARTITION BY region ORDER BY id), sum(qty) OVER (PARTITION BY region ORDER BY id ROWS BETWEEN 2 PRECEDING AND CURRENT ROW), lag(amount) OVER (ORDER BY id) FROM sales ORDER BY id LIMIT 12"))
case("rank", Q("SELECT region, amount, rank() OVER (PARTITION BY region ORDER BY amount DESC) r FROM sales QUALIFY r <= 2 ORDER BY region, r, amount"))
case("cte", Q("WITH big AS (SELECT * FROM sales WHERE amount > 90000), per AS (SELECT region, count(*) n FROM big GROUP BY region) SELECT * FROM per ORDER BY n DESC, region"))
case("recursive_cte", Q("WITH RECURSIVE f(n, a, b) AS (SELECT 0, 0::HUGEINT, 1::HUGEINT UNION ALL SELECT n + 1, b, a + b FROM f WHERE n < 150) SELECT n, a FROM f WHERE n IN (10, 90, 150)"))
case("strings", Q("SELECT upper(region), lower(region), length(region), region || '/' || coalesce(note, '∅'), substring(region, 2, 3), reverse(region), regexp_replace(region, '[aeiou]', '_', 'g') FROM sales ORDER BY id LIMIT 8"))
case("string_agg", Q("SELECT string_agg(DISTINCT region, ',' ORDER BY region) FROM sales"))
case("dates", Q("SELECT date_trunc('month', day), extract(year FROM ts), strftime(ts, '%Y-%m-%d %H:%M'), day + INTERVAL 3 DAY, date_diff('day', DATE '2020-01-01', day), ts FROM sales ORDER BY id LIMIT 6"))
case("date_group", Q("SELECT year(day), month(day), count(*) FROM sales GROUP BY ALL ORDER BY ALL LIMIT 10"))
case("decimals", Q("SELECT sum(amount), sum(amount * 3), CAST(sum(amount) / 7 AS DECIMAL(18,4)), round(avg(amount), 3), min(amount), max(amount), 123456789012345678.9012345678::DECIMAL(38,10) FROM sales"))
case("nulls", Q("SELECT count(*) FILTER (WHERE note IS NULL), count(*) FILTER (WHERE note = NULL), coalesce(NULL, NULL, 3), NULL::INTEGER + 1, NULLIF(1, 1) FROM sales"))
case("types", Q("SELECT true, 1::TINYINT, 300::SMALLINT, 2147483647::INTEGER, 9223372036854775807::BIGINT, 18446744073709551615::UBIGINT, (-170141183460469231731687303715884105728)::HUGEINT, 1.5::FLOAT, 0.1::DOUBLE, 'ü'::VARCHAR, '\\x00\\xff'::BLOB, DATE '1999-12-31', TIMESTAMP '2024-02-29 23:59:59.999999', TIME '13:14:15.5', INTERVAL 14 MONTH, INTERVAL 90 MINUTE, '123e4567-e89b-12d3-a456-426614174000'::UUID"))
case("blob_bool", Q("SELECT tag, flag FROM sales ORDER BY id LIMIT 3"))
case("params", Q("SELECT count(*), sum(qty) FROM sales WHERE region = ? AND amount > ? AND day >= ? AND ts < ?", ["Zürich", decimal.Decimal("5000.50"), datetime.date(2021, 6, 1), datetime.datetime(2024, 1, 1, 12, 0)]))
case("params_types", Q("SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?", [None, True, -7, 2**70, 2.5, "☃", b"\x00\x01", decimal.Decimal("-12.340"), datetime.time(1, 2, 3, 4)]))
case("params_excess", Q("SELECT ?", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]))
case("params_missing", Q("SELECT ?, ?, ?", [1]))
case("params_none_expected", Q("SELECT 1", [1]))
case("prepared_reuse", lambda: [con.execute("SELECT id, region FROM sales WHERE id = ?", [i]).fetchone() for i in (0, 1, 99, 10**6)])
case("executemany", lambda: (con.execute("CREATE TABLE kv (k INTEGER, v VARCHAR)"), con.executemany("INSERT INTO kv VALUES (?, ?)", [(i, f"v{i}") for i in range(500)]), con.execute("SELECT count(*), sum(k), max(v) FROM kv").fetchall())[2])
case("fetchmany", lambda: (con.execute("SELECT id FROM sales ORDER BY id LIMIT 10"), con.fetchone(), con.fetchmany(3), con.fetchall(), con.fetchone())[1:])
case("description", lambda: [(d[0], str(d[1])) for d in con.execute("SELECT id, region, amount, day, ts, note FROM sales LIMIT 1").description])
case("rowcount", lambda: (con.execute("UPDATE sales SET flag = NOT flag WHERE id < 10").rowcount, con.execute("DELETE FROM kv WHERE k >= 100").rowcount, con.execute("SELECT 1").rowcount))
case("transaction", lambda: (con.begin(), con.execute("INSERT INTO kv VALUES (-1, 'gone')"), con.rollback(), con.execute("SELECT count(*) FROM kv WHERE k = -1").fetchall())[3])
case("syntax_error", Q("SELEC 1"))
case("catalog_error", Q("SELECT * FROM no_such_table"))
case("binder_error", Q("SELECT no_such_column FROM sales"))
case("constraint_error", Q("INSERT INTO sales (id) VALUES (0)"))
case("conversion_error", Q("SELECT 'abc'::INTEGER"))
case("out_of_range", Q("SELECT 2147483647::INTEGER + 1"))
case("multi_statement", Q("CREATE TABLE m (x INTEGER); INSERT INTO m VALUES (1), (2); SELECT sum(x) FROM m"))
case("json", Q("SELECT json_extract('{\"a\": [1, 2, {\"b\": \"ü\"}]}', '$.a[2].b')::VARCHAR, json_array_length('[1,2,3]')"))

other = duckdb.connect(":memory:")
case("second_memory_connection", lambda: other.execute("SELECT count(*) FROM sales").fetchall())
cur = con.cursor()
case("cursor_shares_database", lambda: cur.execute("SELECT count(*) FROM regions").fetchall())
con.close()
case("use_after_close", lambda: con.execute("SELECT 1"))
case("cursor_after_close", lambda: cur.execute("SELECT count(*) FROM regions").fetchall())
