#!/usr/bin/env python3
"""Figures for the standard modules pylon gets from caps: what each cap and
provider adds to pylon.wasm, what the compression multiplexer costs or saves
against two single-library providers, and run times against the host's
CPython.

Copies the example workspace into a fresh directory, adds variants of
`//:pylon` to it, and measures:

  sizes      pylon.wasm without the compression caps and provider, with
             the provider and `_bz2`, with it and `_lzma`, with both
             (`//:pylon`); from these, what each cap and the provider (as
             composed: custom sections stripped) add
  mux        the multiplexer provider against a bzip2-only and an lzma-only
             provider built from the same source (`-DCOMPRESS_ONLY`): bytes,
             and the interfaces pylon would import
  sqlite3    pylon.wasm without the `_sqlite3` cap and the SQLite C API
             provider, and with them; the provider with and without
             Asyncify (its callbacks)
  runs       a 10 MB bz2 and lzma round trip (compress, then decompress),
             and 100,000 `INSERT`s (one `execute` each) into a database
             file in one transaction, and an SQL query calling a Python
             function 100,000 times, timed inside pylon (`kiln run`) and
             inside the host's CPython (best of --runs), and the wall time
             of the whole `kiln run` against the host interpreter's

The kiln cache is the default one (or --cache DIR): these are not cold
build figures; `kiln build` of a variant relinks and recomposes pylon.

usage: tests/bench/stdlib_caps.py [--kiln PATH] [--cache DIR] [--runs N]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from example_ws import copy_example

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

WORKLOAD = r"""
import bz2, lzma, random, sys, time
runs = int(sys.argv[1])
r = random.Random(7)
words = [bytes(r.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(r.randint(2, 9))) for _ in range(5000)]
text = b" ".join(r.choice(words) for _ in range(1_400_000))[:8_000_000]
data = text + r.randbytes(2_000_000)
assert len(data) == 10_000_000
for name, mod in (("bz2", bz2), ("lzma", lzma)):
    best = None
    for _ in range(runs):
        t = time.perf_counter()
        c = mod.compress(data)
        back = mod.decompress(c)
        dt = time.perf_counter() - t
        assert back == data
        best = dt if best is None else min(best, dt)
    print(name, best, len(c))
import os, sqlite3
rows = [(i, "row %d ✓" % i, i * 0.5) for i in range(100_000)]
best = None
for _ in range(runs):
    if os.path.exists("bench.db"):
        os.remove("bench.db")
    con = sqlite3.connect("bench.db")
    con.execute("CREATE TABLE t (i INTEGER, s TEXT, x REAL)")
    t = time.perf_counter()
    with con:
        for r in rows:
            con.execute("INSERT INTO t VALUES (?, ?, ?)", r)
    dt = time.perf_counter() - t
    assert con.execute("SELECT count(*), sum(i) FROM t").fetchone() == (100_000, 4_999_950_000)
    con.close()
    best = dt if best is None else min(best, dt)
print("sqlite3", best, 100_000)
con = sqlite3.connect(":memory:")
con.create_function("f", 1, lambda x: x + 1)
best = None
for _ in range(runs):
    t = time.perf_counter()
    total = con.execute("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 100000) "
                        "SELECT sum(f(i)) FROM c").fetchone()[0]
    dt = time.perf_counter() - t
    assert total == 5_000_150_000, total
    best = dt if best is None else min(best, dt)
print("callbacks", best, 100_000)
"""

# Variants of //:pylon: each leaves out some of its caps and the providers
# only they import.
EXAMPLE_CAPS = ["//caps/crc32c", "//caps/id_mux", "//caps/sqlite"]
EXAMPLE_PROVIDERS = ["//providers/id_mux", "//providers/sqlite"]
COMPRESS = ["//providers/compress"]
SQLITE3 = ["//providers/sqlite:capi"]


def variant(name, caps, providers):
    return f"""
compose(
    name = "{name}",
    base = "//third_party/cpython",
    caps = {sorted(EXAMPLE_CAPS + caps)!r},
    providers = {sorted(EXAMPLE_PROVIDERS + providers)!r},
    dynlink = ["//providers/crc32c"],
    strip = STRIP,
)
""".replace("'", '"')


VARIANTS = "".join([
    variant("pylon_without_compress", ["//caps/sqlite3"], SQLITE3),
    variant("pylon_without_sqlite3", ["//caps/compress:bz2", "//caps/compress:lzma"], COMPRESS),
    variant("pylon_lzma_only", ["//caps/compress:lzma", "//caps/sqlite3"], COMPRESS + SQLITE3),
    variant("pylon_bz2_only", ["//caps/compress:bz2", "//caps/sqlite3"], COMPRESS + SQLITE3),
])

SINGLE = """
provider(
    name = "bzip2_only",
    srcs = ["compress.c"],
    wit = ":wit",
    world = "pylon:compress/mux@0.1.0",
    toolchain = "cxx",
    copts = ["-O2", "-DCOMPRESS_ONLY=1"],
    deps = ["//third_party/bzip2", "//third_party/cxx:libc", "//third_party/xz:lzma"],
)

provider(
    name = "lzma_only",
    srcs = ["compress.c"],
    wit = ":wit",
    world = "pylon:compress/mux@0.1.0",
    toolchain = "cxx",
    copts = ["-O2", "-DCOMPRESS_ONLY=2"],
    deps = ["//third_party/bzip2", "//third_party/cxx:libc", "//third_party/xz:lzma"],
)
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default=os.path.join(REPO, "target/release/kiln"))
    ap.add_argument("--cache", help="the kiln cache directory (default: kiln's own)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if not os.path.exists(args.kiln):
        sys.exit(f"no kiln binary at {args.kiln}: cargo build --release")
    cache = ["--cache-dir", args.cache] if args.cache else []
    tmp = tempfile.mkdtemp(prefix="kiln-stdlib-caps-bench-")
    try:
        ws = os.path.join(tmp, "ws")
        copy_example(ws)
        with open(os.path.join(ws, "BUILD.star"), "a") as f:
            f.write(VARIANTS)
        with open(os.path.join(ws, "providers/compress/BUILD.star"), "a") as f:
            f.write(SINGLE)

        def kiln(*a, capture=True):
            r = subprocess.run([args.kiln, a[0], "--progress", "none"] + cache + list(a[1:]), cwd=ws,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if r.returncode != 0:
                sys.exit(f"kiln {' '.join(a)} failed:\n{r.stdout}\n{r.stderr}")
            return r.stdout

        kiln("build", "//:pylon", "//:pylon_without_compress", "//:pylon_bz2_only", "//:pylon_lzma_only",
              "//:pylon_without_sqlite3", "//providers/compress:all", "//providers/sqlite:capi")
        size = lambda p: os.path.getsize(os.path.join(ws, "kiln-out", p))
        base, full = size("pylon_without_compress.wasm"), size("pylon.wasm")
        bz2_only, lzma_only = size("pylon_bz2_only.wasm"), size("pylon_lzma_only.wasm")
        cap_bz2, cap_lzma = full - lzma_only, full - bz2_only
        composed = full - base - cap_bz2 - cap_lzma
        no_sqlite3 = size("pylon_without_sqlite3.wasm")
        capi = size("providers/sqlite/capi.wasm")
        capi_core = size("providers/sqlite/capi.core.wasm")
        capi_async = size("providers/sqlite/capi.asyncify.wasm")
        mux, one_bz2, one_lzma = (size("providers/compress/%s.wasm" % n) for n in ("compress", "bzip2_only", "lzma_only"))

        with open(os.path.join(ws, "workload.py"), "w") as f:
            f.write(WORKLOAD)
        t = time.perf_counter()
        guest_out = kiln("run", "//:pylon", "--", "workload.py", str(args.runs))
        guest_wall = time.perf_counter() - t
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "workload.py", str(args.runs)], cwd=ws, stdout=subprocess.PIPE, text=True,
                           check=True)
        host_wall = time.perf_counter() - t
        guest = {l.split()[0]: l.split()[1:] for l in guest_out.splitlines() if l}
        host = {l.split()[0]: l.split()[1:] for l in r.stdout.splitlines() if l}

        print(f"kiln {args.kiln}")
        print(f"{'pylon.wasm':<52} {'bytes':>10} {'added':>9}")
        print(f"{'without the compression caps and provider':<52} {base:>10,}")
        print(f"{'with the provider and _bz2':<52} {bz2_only:>10,} {bz2_only - base:>+9,}")
        print(f"{'with the provider and _lzma':<52} {lzma_only:>10,} {lzma_only - base:>+9,}")
        print(f"{'with the provider, _bz2 and _lzma (//:pylon)':<52} {full:>10,} {full - base:>+9,}")
        print(f"{'  of which the _bz2 cap':<52} {'':>10} {cap_bz2:>+9,}")
        print(f"{'  of which the _lzma cap':<52} {'':>10} {cap_lzma:>+9,}")
        print(f"{'  of which the provider (composed)':<52} {'':>10} {composed:>+9,}")
        print(f"{'without the _sqlite3 cap and the SQLite C API provider':<52} {no_sqlite3:>10,}")
        print(f"{'  what they add to //:pylon':<52} {'':>10} {full - no_sqlite3:>+9,}")
        core_cap = size("pylon.core.wasm") - size("pylon_without_sqlite3.core.wasm")
        print(f"{'  of which the _sqlite3 cap (pylon core module)':<52} {'':>10} {core_cap:>+9,}")
        print(f"{'SQLite C API provider component (as built)':<52} {capi:>10,}")
        print(f"{'  its core module before / after Asyncify':<52} {capi_core:>10,} {capi_async - capi_core:>+9,}")
        print()
        print(f"{'provider component (as built, with custom sections)':<52} {'bytes':>10} {'imports':>9}")
        print(f"{'multiplexer (bzip2 + lzma, one interface)':<52} {mux:>10,} {1:>9}")
        print(f"{'bzip2 only':<52} {one_bz2:>10,}")
        print(f"{'lzma only':<52} {one_lzma:>10,}")
        print(f"{'two single-library providers':<52} {one_bz2 + one_lzma:>10,} {2:>9}")
        print(f"{'multiplexer saves':<52} {one_bz2 + one_lzma - mux:>10,} {1:>9}")
        print()
        print(f"{'10 MB round trip (best of ' + str(args.runs) + ')':<40} {'pylon':>9} {'host':>9} {'ratio':>6} {'bytes':>10}")
        for name in ("bz2", "lzma", "sqlite3", "callbacks"):
            g, h = float(guest[name][0]), float(host[name][0])
            assert guest[name][1] == host[name][1], (name, guest[name], host[name])
            label = {"sqlite3": "sqlite3: 100,000 INSERTs, one transaction",
                     "callbacks": "sqlite3: 100,000 calls of a Python function"}.get(name, name)
            print(f"{label:<40} {g:>8.3f}s {h:>8.3f}s {g / h:>6.2f} {int(guest[name][1]):>10,}")
        print(f"{'whole run (kiln run / host python)':<40} {guest_wall:>8.3f}s {host_wall:>8.3f}s {guest_wall / host_wall:>6.2f}")
    finally:
        subprocess.run(["chmod", "-R", "u+w", tmp])
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
