#!/usr/bin/env python3
"""Loading and analysis speed of kiln on the shared synthetic graph.

Generates the 100x100 graph with the shared generator (../shared/bench/gen.py
beside the repository, or --gen PATH), then times, each from a cold process
and as the median of --runs runs:

  deps        kiln query 'deps(//p099:t0)'     (loads what the top target needs)
  all -j1/-jN kiln query '//...'               (all 100 BUILD files; 1 thread vs all cores)
  actions     kiln query 'actions(//...)'      (loading + analysis of 10,000 genrules)
  ninja       ninja -t targets all             (ninja parsing the same graph, for scale)

usage: tests/bench/query.py [--kiln PATH] [--gen PATH] [--runs N] [--packages N] [--targets N]
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

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def timed(cmd, cwd, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append(time.perf_counter() - t)
        if r.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed: {r.stderr.decode()}")
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default=os.path.join(REPO, "target", "release", "kiln"))
    ap.add_argument("--gen", default=os.path.join(REPO, "..", "shared", "bench", "gen.py"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--packages", type=int, default=100)
    ap.add_argument("--targets", type=int, default=100)
    a = ap.parse_args()
    if not os.path.exists(a.kiln):
        sys.exit(f"no kiln binary at {a.kiln}; run `cargo build --release` first")
    if not os.path.exists(a.gen):
        sys.exit(f"no generator at {a.gen}; pass --gen PATH to the shared bench/gen.py")
    tmp = tempfile.mkdtemp(prefix="kiln-bench-query-")
    try:
        out = subprocess.run([sys.executable, a.gen, tmp, "--packages", str(a.packages), "--targets", str(a.targets)],
                             check=True, capture_output=True, text=True).stdout
        manifest = json.loads(out)
        ws = os.path.join(tmp, "kiln")
        top = manifest["top_target"]
        cores = os.cpu_count() or 1
        rows = [
            (f"kiln query 'deps({top})'", timed([a.kiln, "query", f"deps({top})"], ws, a.runs)),
            ("kiln -j1 query '//...'", timed([a.kiln, "-j1", "query", "//..."], ws, a.runs)),
            (f"kiln -j{cores} query '//...'", timed([a.kiln, f"-j{cores}", "query", "//..."], ws, a.runs)),
            ("kiln -j1 query 'actions(//...)'", timed([a.kiln, "-j1", "query", "actions(//...)"], ws, a.runs)),
            (f"kiln -j{cores} query 'actions(//...)'", timed([a.kiln, f"-j{cores}", "query", "actions(//...)"], ws, a.runs)),
        ]
        ninja = shutil.which("ninja")
        if ninja:
            rows.append(("ninja -t targets all", timed([ninja, "-t", "targets", "all"], os.path.join(tmp, "ninja"), a.runs)))
        print(f"graph: {manifest['packages']} packages x {manifest['targets_per_package']} targets = {manifest['actions']} actions; "
              f"{cores} cores; median of {a.runs} cold runs")
        for name, t in rows:
            print(f"  {name:<40} {t * 1000:8.1f} ms")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
