"""What the benchmarks of the example workspace share: a copy of it, and a
timed `kiln build` that reads its action counts from `--summary-json`."""
import json
import os
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def copy_example(ws):
    """Copy the example workspace (root BUILD.star, kiln.toml, caps/,
    providers/, pylon/, settings/, third_party/ with the fetched sources)
    to the new directory `ws`."""
    os.makedirs(ws)
    for d in ["caps", "providers", "pylon", "settings", "third_party"]:
        shutil.copytree(os.path.join(REPO, d), os.path.join(ws, d))
    for f in ["kiln.toml", "BUILD.star"]:
        shutil.copy(os.path.join(REPO, f), ws)


def timed_build(kiln, ws, target, jobs, cache, summary, trace=None):
    """Build `target`; returns (seconds, actions executed, actions in all).
    Exits with kiln's stderr if the build fails."""
    cmd = [kiln, "build", target, f"-j{jobs}", "--progress", "none", "--cache-dir", cache, "--summary-json", summary]
    if trace:
        cmd += ["--profile", trace]
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=ws, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"kiln build failed:\n{r.stderr}")
    with open(summary) as f:
        s = json.load(f)["actions"]
    return dt, s["executed"], s["total"]
