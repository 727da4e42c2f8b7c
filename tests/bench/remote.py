#!/usr/bin/env python3
"""Remote cache figures: kiln with real servers (BuildGrid over gRPC, nginx
over HTTP, both started here), against ninja in the same run.

On the shared synthetic graph (../shared/bench/gen.py, 100 x 100 genrules)
and, with --pylon, on the example //:pylon, for each protocol:

  cold          kiln build, empty local cache, uploading to an empty server
  warm remote   delete kiln-out/, empty local cache: everything from the server
  local no-op   build again with that local cache

plus ninja's clean build of the same graph for scale, and the bytes each
build moved (from `kiln cache stats`). Servers need .ci/setup.

With --exec, remote *execution* figures instead, on the same graph: a clean
local build, clean builds on buildbox-casd (a fresh server with an empty
cache for each, running as many actions at a time as kiln sends) with -j 2,
8 and 32, one with -j 32 and --remote-download-outputs=toplevel requesting
only the last package (whose closure is nearly the whole graph), and
ninja's clean build. For each executor build, from its --profile and the
server's ExecutedActionMetadata, per action (median, p90):

  round trip   kiln's span minus the server's (queued -> worker completed):
               upload, FindMissingBlobs, Execute and its stream, download,
               kiln's own bookkeeping: the protocol's cost
  server       the server's span minus queue and command: casd's input
               staging, the bubblewrap sandbox, output capture
  queue        waiting for a worker (casd runs --jobs at once)
  kiln CPU     kiln's own CPU time (user + system) per action, whatever
               waited for what: the client's cost of the protocol

and the bytes moved (from `kiln cache stats`).

usage: tests/bench/remote.py [--kiln PATH] [--gen PATH] [-j N] [--pylon] [--exec] [--packages N] [--targets N]
"""
import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(cmd, env=None):
    port = free_port()
    p = subprocess.Popen(cmd(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    t = time.time()
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p, port
        except OSError:
            if time.time() - t > 60:
                sys.exit(f"{cmd(port)} did not start")
            time.sleep(0.1)


def kiln_build(a, ws, cache, url, targets):
    summary = cache + ".json"
    t = time.perf_counter()
    r = subprocess.run([a.kiln, "build", f"-j{a.j}", "--progress", "none", "--cache-dir", cache,
                        "--remote-cache", url, "--summary-json", summary] + targets,
                       cwd=ws, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0 or "WARNING" in r.stderr:
        sys.exit(f"kiln build failed or warned:\n{r.stderr}")
    with open(summary) as f:
        s = json.load(f)["actions"]
    stats = subprocess.run([a.kiln, "cache", "stats", "--cache-dir", cache], capture_output=True, text=True).stdout
    counters = dict(line.split(": ", 1) for line in stats.splitlines() if line.startswith("remote "))
    return dt, s, counters


def scenarios(a, tmp, name, make_ws, url, targets):
    rows = []
    ws1, ws2 = make_ws(os.path.join(tmp, name, "ws1")), make_ws(os.path.join(tmp, name, "ws2"))
    dt, s, c = kiln_build(a, ws1, os.path.join(tmp, name, "cache1"), url, targets)
    rows.append(("cold, uploading", dt, s, "up " + c.get("remote bytes up", "?")))
    dt, s, c = kiln_build(a, ws2, os.path.join(tmp, name, "cache2"), url, targets)
    rows.append(("warm remote, empty local", dt, s, "down " + c.get("remote bytes down", "?")))
    dt, s, _ = kiln_build(a, ws2, os.path.join(tmp, name, "cache2"), url, targets)
    rows.append(("local no-op", dt, s, ""))
    return rows


def exec_figures(a, tmp, gen, ninja_clean):
    n = a.packages * a.targets
    print(f"{a.packages}x{a.targets} graph ({n} actions); ninja -j{a.j} clean build: {ninja_clean:.2f}s")
    print("per action: median, p90 (ms)")
    print(f"{'build':<38} {'time':>8} {'per action':>10} {'kiln CPU':>9} {'remote':>6} {'round trip':>12} {'server':>12} "
          f"{'queue':>12} {'command':>10}  bytes")

    def pct(v):
        if not v:
            return ""
        v = sorted(v)
        return f"{v[len(v) // 2]:.1f}, {v[len(v) * 9 // 10]:.1f}"

    def run(label, extra):
        ws = os.path.join(tmp, label.replace(" ", "_").replace("/", "_"))
        shutil.copytree(os.path.join(gen, "kiln"), ws)
        cache, profile, summary = ws + ".cache", ws + ".profile.json", ws + ".summary.json"
        t = time.perf_counter()
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        r = subprocess.run([a.kiln, "build", "--progress", "none", "--cache-dir", cache,
                            "--profile", profile, "--summary-json", summary] + extra,
                           cwd=ws, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        dt = time.perf_counter() - t
        ru2 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (ru2.ru_utime - ru.ru_utime) + (ru2.ru_stime - ru.ru_stime)
        if r.returncode != 0 or "WARNING" in r.stderr:
            sys.exit(f"kiln build {extra} failed or warned:\n{r.stderr}")
        with open(summary) as f:
            s = json.load(f)["actions"]
        trip, server, queue, command = [], [], [], []
        with open(profile) as f:
            for e in json.load(f)["traceEvents"]:
                args = e.get("args") or {}
                if e.get("cat") == "remote_executed" and args.get("server_ms") is not None:
                    span, srv = e["dur"] / 1000, args["server_ms"]
                    q, x = args.get("queue_ms") or 0, args.get("exec_ms") or 0
                    trip.append(span - srv)
                    server.append(srv - q - x)
                    queue.append(q)
                    command.append(x)
        stats = subprocess.run([a.kiln, "cache", "stats", "--cache-dir", cache], capture_output=True, text=True).stdout
        c = dict(line.split(": ", 1) for line in stats.splitlines() if line.startswith("remote "))
        traffic = f"up {c.get('remote bytes up', '0')}, down {c.get('remote bytes down', '0')}" if trip else ""
        print(f"{label:<38} {dt:>7.2f}s {dt / s['total'] * 1000:>7.1f} ms {cpu / s['total'] * 1000:>6.2f} ms "
              f"{s['remote_executed']:>6} {pct(trip):>12} "
              f"{pct(server):>12} {pct(queue):>12} {pct(command):>10}  {traffic}", flush=True)
        shutil.rmtree(ws, ignore_errors=True)

    run(f"local -j{a.j}", [f"-j{a.j}"])
    last = f"//p{a.packages - 1:03d}:all"
    for j, extra, what in ((2, [], ""), (8, [], ""), (32, [], ""),
                           (32, ["--remote-download-outputs", "toplevel", last], f" toplevel {last}")):
        env = dict(os.environ, KILN_BUILDBOX_JOBS=str(j))
        p, port = start(lambda port: [os.path.join(REPO, "tests/support/remote/buildbox.sh"), "serve", str(port)], env)
        try:
            run(f"executor -j{j}{what}", ["--remote-executor", f"grpc://127.0.0.1:{port}", f"-j{j}"] + extra)
        finally:
            p.terminate()
            p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default=os.path.join(REPO, "target/release/kiln"))
    ap.add_argument("--gen", default=os.path.join(REPO, "..", "shared", "bench", "gen.py"))
    ap.add_argument("--ninja", default=shutil.which("ninja"))
    ap.add_argument("-j", type=int, default=os.cpu_count())
    ap.add_argument("--packages", type=int, default=100)
    ap.add_argument("--targets", type=int, default=100)
    ap.add_argument("--pylon", action="store_true", help="also the example //:pylon (builds CPython twice)")
    ap.add_argument("--exec", action="store_true", help="remote execution figures (buildbox-casd) instead")
    a = ap.parse_args()
    for what, path in (("kiln binary", a.kiln), ("generator", a.gen), ("ninja", a.ninja)):
        if not path or not os.path.exists(path):
            sys.exit(f"no {what} at {path}; see the usage in {__file__}")
    tmp = tempfile.mkdtemp(prefix="kiln-bench-remote-")
    servers = []
    try:
        gen = os.path.join(tmp, "gen")
        subprocess.run([sys.executable, a.gen, gen, "--packages", str(a.packages), "--targets", str(a.targets)],
                       check=True, capture_output=True)
        t = time.perf_counter()
        subprocess.run([a.ninja, f"-j{a.j}"], cwd=os.path.join(gen, "ninja"), check=True, capture_output=True)
        ninja_clean = time.perf_counter() - t

        if a.exec:
            exec_figures(a, tmp, gen, ninja_clean)
            return

        def graph_ws(dest):
            shutil.copytree(os.path.join(gen, "kiln"), dest)
            return dest

        def pylon_ws(dest):
            os.makedirs(dest)
            for d in ["caps", "providers", "pylon", "settings", "third_party"]:
                shutil.copytree(os.path.join(REPO, d), os.path.join(dest, d))
            for f in ["kiln.toml", "BUILD.star"]:
                shutil.copy(os.path.join(REPO, f), dest)
            return dest

        bg = start(lambda port: [os.path.join(REPO, "tests/support/remote/buildgrid.sh"), "serve", str(port)])
        servers.append(bg[0])
        ng_root = os.path.join(tmp, "nginx-root")
        os.makedirs(ng_root)
        ng = start(lambda port: [os.path.join(REPO, "tests/support/remote/nginx.sh"), "serve", str(port), ng_root])
        servers.append(ng[0])
        grpc, http = f"grpc://127.0.0.1:{bg[1]}", f"http://127.0.0.1:{ng[1]}/cache"

        runs = [
            ("graph, gRPC (BuildGrid)", graph_ws, grpc, []),
            ("graph, HTTP (nginx)", graph_ws, http, []),
        ]
        if a.pylon:
            runs.append(("//:pylon, gRPC (BuildGrid)", pylon_ws, grpc, ["//:pylon"]))
        print(f"{a.packages}x{a.targets} graph; -j{a.j}; ninja clean build of the graph: {ninja_clean:.2f}s")
        print(f"{'what':<28} {'scenario':<26} {'time':>9} {'executed':>9} {'remote':>7} {'local':>6}  bytes")
        for i, (label, make, url, targets) in enumerate(runs):
            for sc, dt, s, traffic in scenarios(a, tmp, f"r{i}", make, url, targets):
                print(f"{label:<28} {sc:<26} {dt:>8.2f}s {s['executed']:>9} {s['remote_hits']:>7} "
                      f"{s['local_hits']:>6}  {traffic}")
    finally:
        for p in servers:
            p.kill()
            p.wait()
        subprocess.run(["chmod", "-R", "u+w", tmp])
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
