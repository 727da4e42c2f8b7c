#!/usr/bin/env python3
"""Generated caps against the hand-written C caps they replaced, in one run.

Builds `//:pylon` twice from copies of the example workspace: once as it
is (caps whose CPython modules are generated from WIT), once with caps/
as of BASE (default c8e6602, the last commit with hand-written C caps;
read with `git archive`, so a clone with history is needed). Both copies
share one kiln cache (the default one, or --cache-dir), so CPython is
built at most once. Then, inside each pylon (`kiln run`), times the same
Python through the seed's APIs:

  crc32c 1 MiB     crc32c.crc32c() of 1 MiB (dynlink: one invoke)
  crc32c 16 B      crc32c.crc32c() of 16 bytes (per-call overhead)
  sqlite inserts   10,000 INSERTs with 5 parameters, then one SELECT of them
  id_mux           10,000 id_mux.generate("ulid") (mux)

and prints per-call times, the ratio generated / hand-written, the lines
of hand-written C in caps/ before and after, and the size of each
generated module (C lines, C bytes, object bytes).

usage: tests/bench/caps.py [--kiln PATH] [--base COMMIT] [--cache-dir DIR]
"""
import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

SCRIPT = r"""
import json, time
import crc32c, id_mux, pylon_sqlite

def best(fn, n, rounds=5):
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn(n)
        out.append((time.perf_counter() - t) / n)
    return min(out)

big = bytes(range(256)) * 4096
small = b"0123456789abcdef"
assert crc32c.crc32c(b"123456789") == 0xE3069283

def crc_big(n):
    for _ in range(n):
        crc32c.crc32c(big)

def crc_small(n):
    f = crc32c.crc32c
    for _ in range(n):
        f(small)

def ids(n):
    g = id_mux.generate
    for _ in range(n):
        g("ulid")

def inserts(n):
    db = pylon_sqlite.connect(":memory:")
    db.execute("create table t (a integer, b text, c real, d blob, e)")
    for i in range(n):
        db.execute("insert into t values (?, ?, ?, ?, ?)", (i, "row %d" % i, i * 0.5, b"\x00\x01", None))
    assert len(db.execute("select a, b, c, d, e from t").fetchall()) == n
    db.close()

print(json.dumps({
    "crc32c 1 MiB": best(crc_big, 20),
    "crc32c 16 B": best(crc_small, 20000),
    "sqlite insert (of 10,000)": best(inserts, 10000, rounds=3),
    "id_mux ulid": best(ids, 10000),
}))
"""


def c_lines(root):
    n = 0
    for d, _, files in os.walk(root):
        for f in files:
            if f.endswith((".c", ".h")):
                with open(os.path.join(d, f), errors="replace") as fh:
                    n += sum(1 for _ in fh)
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default=os.path.join(REPO, "target/release/kiln"))
    ap.add_argument("--base", default="c8e6602")
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args()
    args.kiln = os.path.abspath(args.kiln)
    if not os.path.exists(args.kiln):
        sys.exit(f"no kiln binary at {args.kiln}: cargo build --release")
    tmp = tempfile.mkdtemp(prefix="kiln-caps-")
    try:
        spaces = {}
        for name in ["generated", "hand-written"]:
            ws = os.path.join(tmp, name)
            os.makedirs(ws)
            for d in ["caps", "providers", "pylon", "settings", "third_party"]:
                shutil.copytree(os.path.join(REPO, d), os.path.join(ws, d),
                                ignore=shutil.ignore_patterns("target"))
            for f in ["kiln.toml", "BUILD.star"]:
                shutil.copy(os.path.join(REPO, f), ws)
            spaces[name] = ws
        old = spaces["hand-written"]
        shutil.rmtree(os.path.join(old, "caps"))
        tar = subprocess.run(["git", "archive", args.base, "caps"], cwd=REPO, stdout=subprocess.PIPE, check=True)
        tarfile.open(fileobj=io.BytesIO(tar.stdout)).extractall(old)

        common = ["--progress", "none"] + (["--cache-dir", args.cache_dir] if args.cache_dir else [])
        results = {}
        for name, ws in spaces.items():
            r = subprocess.run([args.kiln, "build", "//:pylon"] + common, cwd=ws,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if r.returncode != 0:
                sys.exit(f"kiln build ({name}) failed:\n{r.stderr}")
            r = subprocess.run([args.kiln, "run", "//:pylon"] + common + ["--", "-c", SCRIPT], cwd=ws,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if r.returncode != 0:
                sys.exit(f"kiln run ({name}) failed:\n{r.stdout}\n{r.stderr}")
            results[name] = json.loads(r.stdout.strip().splitlines()[-1])

        print("per call, best of several rounds, inside pylon (kiln run //:pylon):")
        print(f"{'':28} {'hand-written':>14} {'generated':>14} {'ratio':>7}")
        for k in results["generated"]:
            h, g = results["hand-written"][k], results["generated"][k]
            print(f"{k:28} {h * 1e6:12.2f}us {g * 1e6:12.2f}us {g / h:7.2f}")

        print()
        print(f"hand-written C in caps/: {c_lines(os.path.join(old, 'caps'))} lines at {args.base}, "
              f"{c_lines(os.path.join(REPO, 'caps'))} lines now")
        print("generated modules (kiln-out/caps/<cap>/<cap>_gen/):")
        gen = spaces["generated"]
        for cap in ["crc32c", "id_mux", "sqlite"]:
            d = os.path.join(gen, "kiln-out/caps", cap)
            for f in sorted(os.listdir(os.path.join(d, cap + "_gen"))):
                path = os.path.join(d, cap + "_gen", f)
                with open(path) as fh:
                    lines = sum(1 for _ in fh)
                obj = os.path.join(d, cap + "_objs", f[:-2] + ".o")
                print(f"  {cap:8} {f:34} {lines:6} lines {os.path.getsize(path):8} bytes of C, "
                      f"{os.path.getsize(obj):7} bytes of object")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
