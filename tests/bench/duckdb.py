#!/usr/bin/env python3
"""Build and run figures for `//:pylon_duckdb`: DuckDB v2.0.0 built from
its amalgamation with the `cxx` toolchain, one action per translation
unit, and queried from pylon through the DuckDB provider component.

Copies the example workspace into a fresh directory and measures:

  cold       `kiln build //:pylon_duckdb` with an empty cache directory
             (CPython, the Rust provider, the C++ runtime and DuckDB are
             all built); its action count and slowest actions (--profile).
             With --cache DIR the build starts from that cache instead.
  no-op      build again (median of --runs)
  edit       change the provider's glue (providers/duckdb/duckdb_glue.cpp)
  sizes      pylon_duckdb.wasm and the DuckDB provider
  queries    a GROUP BY over 1,000,000 generated rows and a 100,000-row
             appender load, timed inside pylon (`kiln run`) and inside the
             host's CPython with PyPI's duckdb 2.0.0 (one thread on both
             sides; best of --runs), and their ratio

There is no ninja build of DuckDB to compare with: one would be a second
cold build of the same 380 compile commands (about 25 minutes here); kiln
against ninja on the synthetic graph is tests/bench/build.py.

usage: tests/bench/duckdb.py [--kiln PATH] [--cache DIR] [--runs N] [-j N]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from example_ws import copy_example, timed_build

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

QUERIES = r"""
import sys, time, datetime, decimal
import duckdb
runs = int(sys.argv[1])
con = duckdb.connect()
con.execute("SET threads = 1")
con.execute("CREATE TABLE g AS SELECT range AS id, range % 1000 AS k, (range * 7919) % 100003 AS v, "
            "(range % 97)::DECIMAL(10,2) AS d FROM range(1000000)")
best = None
for _ in range(runs):
    t = time.perf_counter()
    rows = con.execute("SELECT k, count(*), sum(v), avg(v), sum(d), max(id) FROM g GROUP BY k ORDER BY k").fetchall()
    dt = time.perf_counter() - t
    best = dt if best is None else min(best, dt)
assert len(rows) == 1000, len(rows)
print("groupby", best)
data = [(i, f"name {i}", decimal.Decimal(i % 10000).scaleb(-2), datetime.date(2020, 1, 1) + datetime.timedelta(days=i % 1000), i * 0.5)
        for i in range(100000)]
best = None
for n in range(runs):
    con.execute(f"CREATE TABLE a{n} (i BIGINT, s VARCHAR, d DECIMAL(9,2), day DATE, f DOUBLE)")
    t = time.perf_counter()
    app = con.appender(f"a{n}")
    app.append_rows(data)
    app.flush()
    if hasattr(app, "close"):
        app.close()
    dt = time.perf_counter() - t
    assert con.execute(f"SELECT count(*) FROM a{n}").fetchone() == (100000,)
    best = dt if best is None else min(best, dt)
print("appender", best)
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default=os.path.join(REPO, "target/release/kiln"))
    ap.add_argument("--cache", help="start from this cache directory instead of an empty one")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("-j", type=int, default=os.cpu_count())
    args = ap.parse_args()
    if not os.path.exists(args.kiln):
        sys.exit(f"no kiln binary at {args.kiln}: cargo build --release")
    host_python = os.path.join(REPO, "target/test-venv/bin/python")
    if not os.path.exists(host_python):
        sys.exit("no test virtualenv with duckdb: run .ci/setup")
    tmp = tempfile.mkdtemp(prefix="kiln-duckdb-bench-")
    try:
        ws = os.path.join(tmp, "ws")
        copy_example(ws)
        cache = args.cache or os.path.join(tmp, "cache")
        summary = os.path.join(tmp, "summary.json")
        trace = os.path.join(tmp, "trace.json")

        def build(profile=False):
            return timed_build(args.kiln, ws, "//:pylon_duckdb", args.j, cache, summary, trace if profile else None)

        rows = []
        dt, ran, total = build(profile=True)
        rows.append(("cold" if not args.cache else "first build (given cache)", dt, ran, total))
        with open(trace) as f:
            events = [e for e in json.load(f)["traceEvents"] if e.get("args", {}).get("cache") == "executed"]
        slowest = sorted(events, key=lambda e: -e["dur"])[:5]
        compiles = [e for e in events if e["name"].endswith("CcCompile")]
        busy = sum(e["dur"] for e in events) / 1e6

        times = []
        for _ in range(args.runs):
            dt, ran, total = build()
            times.append(dt)
        rows.append((f"no-op (median of {args.runs})", statistics.median(times), ran, total))

        glue = os.path.join(ws, "providers/duckdb/duckdb_glue.cpp")
        with open(glue) as f:
            text = f.read()
        with open(glue, "w") as f:
            f.write(text.replace("the appender is closed", "this appender is closed"))
        dt, ran, total = build()
        rows.append(("edit the provider's glue", dt, ran, total))

        pylon = os.path.getsize(os.path.join(ws, "kiln-out/pylon_duckdb.wasm"))
        provider = os.path.getsize(os.path.join(ws, "kiln-out/providers/duckdb/duckdb.wasm"))

        with open(os.path.join(ws, "queries.py"), "w") as f:
            f.write(QUERIES)
        run_cmd = [args.kiln, "run", "//:pylon_duckdb", "--progress", "none", "--cache-dir", cache, "--",
                   "queries.py", str(args.runs)]
        r = subprocess.run(run_cmd, cwd=ws, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            sys.exit(f"kiln run failed:\n{r.stdout}\n{r.stderr}")
        guest = dict(line.split() for line in r.stdout.split("\n") if line)
        r = subprocess.run([host_python, "queries.py", str(args.runs)], cwd=ws, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            sys.exit(f"host run failed:\n{r.stderr}")
        host = dict(line.split() for line in r.stdout.split("\n") if line)

        print(f"//:pylon_duckdb, -j{args.j}, kiln {args.kiln}")
        print(f"{'scenario':<28} {'time':>9} {'executed':>9} {'of':>5}")
        for name, dt, ran, total in rows:
            print(f"{name:<28} {dt:>8.3f}s {ran:>9} {total:>5}")
        if compiles:
            print(f"cold build: {len(compiles)} CcCompile actions, {busy:.0f}s of action time in all")
        print("slowest actions of the first build:")
        for e in slowest:
            print(f"  {e['dur'] / 1e6:7.1f}s  {e['name']}")
        print(f"pylon_duckdb.wasm: {pylon} bytes; DuckDB provider: {provider} bytes")
        print(f"{'query (one thread, best of ' + str(args.runs) + ')':<44} {'pylon':>8} {'host':>8} {'ratio':>6}")
        for key, label in [("groupby", "GROUP BY over 1,000,000 rows"), ("appender", "appender load of 100,000 rows")]:
            g, h = float(guest[key]), float(host[key])
            print(f"{label:<44} {g:>7.3f}s {h:>7.3f}s {g / h:>6.2f}")
    finally:
        subprocess.run(["chmod", "-R", "u+w", tmp])
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
