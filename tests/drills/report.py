#!/usr/bin/env python3
"""Run kiln's fault drills and fuzz targets and print one table.

Usage: tests/drills/report.py [--fuzz-seconds N] [--seed S]

The drills are the tests of tests/drills.rs (through `cargo test`, which
builds the debug kiln they drive); each writes a line of figures to a
report file. The fuzz targets run from a release build of `kiln-fuzz`
(fuzz/) for N seconds each (default 30). Exit status 1 when a drill lost
data or produced a wrong output, or a fuzz target crashed.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def drills():
    with tempfile.TemporaryDirectory(prefix="kiln-drills-") as d:
        report = os.path.join(d, "report.jsonl")
        env = dict(os.environ, KILN_DRILL_REPORT=report)
        r = subprocess.run(
            ["cargo", "test", "--locked", "-p", "kiln-engine", "--test", "drills",
             "--", "--test-threads=1"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            sys.stderr.write(r.stdout[-4000:])
        rows = []
        if os.path.exists(report):
            with open(report) as f:
                rows = [json.loads(line) for line in f if line.strip()]
        return rows, r.returncode


def fuzz(seconds, seed):
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "kiln-fuzz"],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    binary = os.path.join(ROOT, "target", "release", "kiln-fuzz")
    listed = subprocess.run([binary, "--list"], cwd=ROOT, check=True,
                            stdout=subprocess.PIPE, text=True).stdout
    rows = []
    for line in listed.splitlines():
        target = line.split()[0]
        r = subprocess.run([binary, target, "--seconds", str(seconds), "--seed", str(seed), "--json"],
                           cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fuzz-seconds", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rows, status = drills()
    targets = fuzz(a.fuzz_seconds, a.seed)
    print("| drill | runs | survived | outputs wrong | data lost |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['drill']} | {r['runs']} | {r['survived']} | {r['outputs_wrong']} | {r['data_lost']} |")
    total = [sum(r[k] for r in rows) for k in ("runs", "survived", "outputs_wrong", "data_lost")]
    print(f"| **all** | {total[0]} | {total[1]} | {total[2]} | {total[3]} |")
    print()
    print(f"| fuzz target ({a.fuzz_seconds} s each, seed {a.seed}) | executions | crashes |")
    print("|---|---|---|")
    for t in targets:
        print(f"| {t['target']} | {t['executions']:,} | {t['crashes']} |")
    print(f"| **all** | {sum(t['executions'] for t in targets):,} | {sum(t['crashes'] for t in targets)} |")
    bad = status != 0 or total[2] or total[3] or total[0] != total[1] or any(t["crashes"] for t in targets)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
