#!/usr/bin/env python3
"""Build figures for the repository's example pylon, `//:pylon`: CPython
for wasm32-wasi with caps in every linkage mode, C and Rust providers.

Copies the example workspace (root BUILD.star, kiln.toml, caps/,
providers/, pylon/, third_party/ with the fetched sources) into a fresh
directory and measures, with an empty cache directory:

  cold       `kiln build //:pylon` from nothing (CPython and the Rust
             provider are built); the slowest actions come from --profile
  no-op      build again (median of --runs)
  edit       change the code of providers/id_mux/id_mux.c, build again
  restore    delete kiln-out/ and build again (all from the cache)
  run        `kiln run //:pylon -- -c 'print(1)'` once the compiled
             module is cached (median of --runs)

There is no ninja build of these examples to compare with; kiln against
ninja on the synthetic graph is tests/bench/build.py.

usage: tests/bench/examples.py [--kiln PATH] [--runs N] [-j N]
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default=os.path.join(REPO, "target/release/kiln"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("-j", type=int, default=os.cpu_count())
    args = ap.parse_args()
    if not os.path.exists(args.kiln):
        sys.exit(f"no kiln binary at {args.kiln}: cargo build --release")
    tmp = tempfile.mkdtemp(prefix="kiln-examples-")
    try:
        ws = os.path.join(tmp, "ws")
        copy_example(ws)
        cache = os.path.join(tmp, "cache")
        summary = os.path.join(tmp, "summary.json")
        trace = os.path.join(tmp, "trace.json")

        def build(profile=False):
            return timed_build(args.kiln, ws, "//:pylon", args.j, cache, summary, trace if profile else None)

        rows = []
        dt, ran, total = build(profile=True)
        rows.append(("cold (empty cache)", dt, ran, total))
        with open(trace) as f:
            events = json.load(f)["traceEvents"]
        slowest = sorted(events, key=lambda e: -e["dur"])[:3]

        times = []
        for _ in range(args.runs):
            dt, ran, total = build()
            times.append(dt)
        rows.append((f"no-op (median of {args.runs})", statistics.median(times), ran, total))

        src = os.path.join(ws, "providers/id_mux/id_mux.c")
        with open(src) as f:
            text = f.read()
        with open(src, "w") as f:
            f.write(text.replace("{ return getentropy(buf, len); }",
                                 "{ volatile int edited = 1; (void)edited; return getentropy(buf, len); }"))
        dt, ran, total = build()
        rows.append(("edit one provider's C file", dt, ran, total))

        shutil.rmtree(os.path.join(ws, "kiln-out"))
        dt, ran, total = build()
        rows.append(("delete kiln-out, rebuild", dt, ran, total))

        pylon = os.path.getsize(os.path.join(ws, "kiln-out/pylon.wasm"))
        run_cmd = [args.kiln, "run", "//:pylon", "--progress", "none", "--cache-dir", cache, "--", "-c", "print(1)"]
        first = subprocess.run(run_cmd, cwd=ws, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if first.returncode != 0 or first.stdout != "1\n":
            sys.exit(f"kiln run failed:\n{first.stdout}\n{first.stderr}")
        runs = []
        for _ in range(args.runs):
            t = time.perf_counter()
            subprocess.run(run_cmd, cwd=ws, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
            runs.append(time.perf_counter() - t)
        print(f"example workspace, -j{args.j}, kiln {args.kiln}")
        print(f"{'scenario':<28} {'time':>9} {'executed':>9} {'of':>4}")
        for name, dt, ran, total in rows:
            print(f"{name:<28} {dt:>8.3f}s {ran:>9} {total:>4}")
        print("slowest actions of the cold build:")
        for e in slowest:
            print(f"  {e['dur'] / 1e6:7.2f}s  {e['name']}")
        print(f"pylon.wasm: {pylon} bytes")
        print(f"kiln run //:pylon -- -c 'print(1)', compiled module cached: {statistics.median(runs):.3f}s (median of {args.runs})")
    finally:
        subprocess.run(["chmod", "-R", "u+w", tmp])
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
