#!/usr/bin/env python3
"""kiln against ninja on the shared synthetic graph, in one run.

Generates the graph with the shared generator (../shared/bench/gen.py beside
the repository, or --gen PATH) into a fresh directory, then for each tool:

  clean      build from nothing (kiln: empty cache directory, no kiln-out/)
  no-op      build again (median of --runs)
  edit       append to p000/s0.txt (the manifest says how many actions must re-run)
  touch      set a new mtime on every source, contents unchanged
  restore    delete the outputs (kiln-out/ or out/) and build again

and prints wall times, the number of actions each tool ran, and kiln/ninja
ratios. kiln's counts come from --summary-json, ninja's from its status line.

usage: tests/bench/build.py [--kiln PATH] [--gen PATH] [--runs N] [--packages N] [--targets N] [-j N]
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


def run(cmd, cwd, env=None):
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return dt, r


class Kiln:
    name = "kiln"

    def __init__(self, exe, ws, cache, jobs):
        self.exe, self.ws, self.cache, self.jobs = exe, ws, cache, jobs
        self.summary = os.path.join(os.path.dirname(cache), "summary.json")

    def build(self):
        dt, _ = run([self.exe, "build", f"-j{self.jobs}", "--progress", "none", "--cache-dir", self.cache,
                     "--summary-json", self.summary], self.ws)
        with open(self.summary) as f:
            s = json.load(f)["actions"]
        return dt, s["executed"]

    def delete_outputs(self):
        shutil.rmtree(os.path.join(self.ws, "kiln-out"), ignore_errors=True)


class Ninja:
    name = "ninja"

    def __init__(self, exe, ws, jobs):
        self.exe, self.ws, self.jobs = exe, ws, jobs

    def build(self):
        env = dict(os.environ, NINJA_STATUS="[%f/%t] ")
        dt, r = run([self.exe, f"-j{self.jobs}"], self.ws, env)
        ran = 0
        for line in r.stdout.splitlines():
            if line.startswith("[") and "/" in line:
                ran = int(line[1:line.index("/")])
        return dt, ran

    def delete_outputs(self):
        shutil.rmtree(os.path.join(self.ws, "out"), ignore_errors=True)


def edit(ws, rel):
    with open(os.path.join(ws, rel), "a") as f:
        f.write("edited\n")


def touch_all(ws, manifest):
    now = time.time() + 5
    for k in range(manifest["packages"]):
        for i in range(manifest["targets_per_package"]):
            os.utime(os.path.join(ws, f"p{k:03d}", f"s{i}.txt"), (now, now))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default=os.path.join(REPO, "target", "release", "kiln"))
    ap.add_argument("--ninja", default=shutil.which("ninja"))
    ap.add_argument("--gen", default=os.path.join(REPO, "..", "shared", "bench", "gen.py"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--packages", type=int, default=100)
    ap.add_argument("--targets", type=int, default=100)
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    for what, path in (("kiln binary", a.kiln), ("generator", a.gen), ("ninja", a.ninja)):
        if not path or not os.path.exists(path):
            sys.exit(f"no {what} at {path}; see the usage in {__file__}")
    tmp = tempfile.mkdtemp(prefix="kiln-bench-build-")
    try:
        out = subprocess.run([sys.executable, a.gen, os.path.join(tmp, "g"), "--packages", str(a.packages),
                              "--targets", str(a.targets)], check=True, capture_output=True, text=True).stdout
        m = json.loads(out)
        tools = [
            Ninja(a.ninja, os.path.join(tmp, "g", "ninja"), a.jobs),
            Kiln(a.kiln, os.path.join(tmp, "g", "kiln"), os.path.join(tmp, "kiln-cache", "cache"), a.jobs),
        ]
        results = {t.name: {} for t in tools}
        for t in tools:
            r = results[t.name]
            r["clean"] = t.build()
            noops = [t.build() for _ in range(a.runs)]
            r["no-op"] = (statistics.median(x[0] for x in noops), max(x[1] for x in noops))
            edit(t.ws, m["edit_deep_source"])
            r["edit"] = t.build()
            touch_all(t.ws, m)
            r["touch"] = t.build()
            t.delete_outputs()
            r["restore"] = t.build()
        print(f"graph: {m['packages']} x {m['targets_per_package']} = {m['actions']} actions; "
              f"editing {m['edit_deep_source']} must re-run {m['edit_deep_expected_actions']}; -j{a.jobs}; "
              f"no-op is the median of {a.runs}")
        print(f"{'scenario':<10} {'ninja s':>9} {'ran':>6} {'kiln s':>9} {'ran':>6} {'kiln/ninja':>11}")
        for sc in ("clean", "no-op", "edit", "touch", "restore"):
            (nt, nr), (kt, kr) = results["ninja"][sc], results["kiln"][sc]
            print(f"{sc:<10} {nt:>9.3f} {nr:>6} {kt:>9.3f} {kr:>6} {kt / nt:>10.2f}x")
        ok = results["kiln"]["edit"][1] == m["edit_deep_expected_actions"] and results["kiln"]["touch"][1] == 0 \
            and results["kiln"]["restore"][1] == 0 and results["kiln"]["no-op"][1] == 0
        print("kiln action counts:", "as expected" if ok else "NOT as expected")
        if not ok:
            sys.exit(1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
