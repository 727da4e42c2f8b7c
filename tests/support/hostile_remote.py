"""A small remote cache for tests that turns hostile on command.

    hostile_remote.py --protocol grpc|http [--mode MODE] [--poison-dir DIR]
                      [--slow-seconds N]

Serves 127.0.0.1 on a port of its own choosing and prints that port, alone
on a line, to stdout once it listens. Run it with the BuildGrid venv's
python (target/buildgrid-venv/bin/python): it needs grpcio and BuildGrid's
generated REAPI messages, nothing else.

Protocols:
  grpc  REAPI v2: Capabilities (SHA-256 only), ActionCache get/update, CAS
        FindMissingBlobs/BatchReadBlobs/BatchUpdateBlobs, ByteStream
        Read/Write; any instance name.
  http  Bazel's HTTP cache: GET/PUT of PREFIX/ac/<sha256> (a serialized
        ActionResult) and PREFIX/cas/<sha256>; any PREFIX.

Storage is in memory. Uploads are always stored as sent (a CAS blob only
if it matches its digest), so a first build populates the server
honestly. In a hostile mode every action-cache lookup that finds a result
is answered with a poisoned one:

  honest           no poison (the default)
  dotdot           output paths `../escape`, `../../escape-1`, ...
  absolute         output paths DIR/absolute-N (DIR from --poison-dir)
  digest-mismatch  every CAS read returns bytes that do not match the
                   digest (same length, last byte flipped)
  absurd-size      every output's digest claims 2^62 bytes
  truncated        CAS reads end early: gRPC advertises a batch limit that
                   sends every blob through ByteStream, whose Read stops
                   after half the blob; HTTP promises the whole length and
                   closes the connection after half
  slow             lookups and CAS reads answer after --slow-seconds
                   (default 60), or as soon as the mode changes
  other-action     the result stored under a different action key

The mode can be changed at run time: write `mode MODE` as a line to stdin;
the server answers `mode MODE` on stdout once it is in effect. It exits
when stdin closes, and on SIGTERM. Log lines go to stderr.
"""

import argparse
import hashlib
import http.server
import os
import re
import signal
import sys
import threading
import time
from concurrent import futures

import grpc
from buildgrid._protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2 as reapi,
    remote_execution_pb2_grpc as reapi_grpc,
)
from buildgrid._protos.build.bazel.semver import semver_pb2
from buildgrid._protos.google.bytestream import (
    bytestream_pb2 as bs,
    bytestream_pb2_grpc as bs_grpc,
)
from buildgrid._protos.google.rpc import status_pb2

MODES = [
    "honest",
    "dotdot",
    "absolute",
    "digest-mismatch",
    "absurd-size",
    "truncated",
    "slow",
    "other-action",
]
ABSURD = 1 << 62
BATCH = 4 << 20
# kiln subtracts 64 KiB of framing from the advertised batch limit: this
# leaves 1 byte, so every non-empty blob goes through ByteStream.
TINY_BATCH = (64 << 10) + 1
CHUNK = 64 << 10


def log(msg):
    print(f"hostile_remote: {msg}", file=sys.stderr, flush=True)


class State:
    """What the server holds, and how it behaves now."""

    def __init__(self, poison_dir, slow_seconds):
        self.lock = threading.Lock()
        self.cas = {}  # sha256 hex -> bytes
        self.ac = {}  # sha256 hex -> serialized ActionResult
        self.mode = "honest"
        self.changed = threading.Condition(self.lock)
        self.poison_dir = poison_dir
        self.slow_seconds = slow_seconds

    def set_mode(self, mode):
        with self.lock:
            self.mode = mode
            self.changed.notify_all()

    def current(self):
        with self.lock:
            return self.mode

    def stall(self):
        """In `slow` mode: wait until the delay passes or the mode changes."""
        deadline = time.monotonic() + self.slow_seconds
        with self.lock:
            while self.mode == "slow":
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.changed.wait(left)

    def put_blob(self, data, want=None):
        h = hashlib.sha256(data).hexdigest()
        if want is not None and want != h:
            return False
        with self.lock:
            self.cas[h] = data
        return True

    def blob(self, h):
        """The bytes served for blob `h` (None if missing), as the mode says."""
        with self.lock:
            data = self.cas.get(h)
            mode = self.mode
        if data is None:
            return None
        if mode == "digest-mismatch" and data:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        return data

    def put_action(self, h, result_bytes):
        with self.lock:
            self.ac[h] = result_bytes

    def action(self, h):
        """The ActionResult served for action `h` (None if missing)."""
        with self.lock:
            raw = self.ac.get(h)
            mode = self.mode
            others = sorted(k for k, v in self.ac.items() if k != h and v != raw)
        if raw is None:
            return None
        ar = reapi.ActionResult.FromString(raw)
        if mode == "dotdot":
            for i, f in enumerate(ar.output_files):
                f.path = "../" * (i + 1) + ("escape" if i == 0 else f"escape-{i}")
        elif mode == "absolute":
            for i, f in enumerate(ar.output_files):
                f.path = os.path.join(self.poison_dir, f"absolute-{i}")
        elif mode == "absurd-size":
            for f in ar.output_files:
                f.digest.size_bytes = ABSURD
        elif mode == "other-action" and others:
            with self.lock:
                ar = reapi.ActionResult.FromString(self.ac[others[0]])
        return ar


# --- REAPI over gRPC ---------------------------------------------------------


class Capabilities(reapi_grpc.CapabilitiesServicer):
    def __init__(self, state):
        self.state = state

    def GetCapabilities(self, request, context):
        batch = TINY_BATCH if self.state.current() == "truncated" else BATCH
        return reapi.ServerCapabilities(
            cache_capabilities=reapi.CacheCapabilities(
                digest_functions=[reapi.DigestFunction.SHA256],
                action_cache_update_capabilities=reapi.ActionCacheUpdateCapabilities(
                    update_enabled=True
                ),
                max_batch_total_size_bytes=batch,
            ),
            low_api_version=semver_pb2.SemVer(major=2),
            high_api_version=semver_pb2.SemVer(major=2, minor=2),
        )


class ActionCache(reapi_grpc.ActionCacheServicer):
    def __init__(self, state):
        self.state = state

    def GetActionResult(self, request, context):
        self.state.stall()
        ar = self.state.action(request.action_digest.hash)
        if ar is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "no such action result")
        return ar

    def UpdateActionResult(self, request, context):
        self.state.put_action(
            request.action_digest.hash, request.action_result.SerializeToString()
        )
        return request.action_result


class Cas(reapi_grpc.ContentAddressableStorageServicer):
    def __init__(self, state):
        self.state = state

    def FindMissingBlobs(self, request, context):
        with self.state.lock:
            missing = [d for d in request.blob_digests if d.hash not in self.state.cas]
        return reapi.FindMissingBlobsResponse(missing_blob_digests=missing)

    def BatchUpdateBlobs(self, request, context):
        out = []
        for r in request.requests:
            ok = self.state.put_blob(r.data, r.digest.hash)
            code = 0 if ok else grpc.StatusCode.INVALID_ARGUMENT.value[0]
            out.append(
                reapi.BatchUpdateBlobsResponse.Response(
                    digest=r.digest, status=status_pb2.Status(code=code)
                )
            )
        return reapi.BatchUpdateBlobsResponse(responses=out)

    def BatchReadBlobs(self, request, context):
        self.state.stall()
        truncated = self.state.current() == "truncated"
        out = []
        for d in request.digests:
            data = self.state.blob(d.hash)
            if data is None:
                status = status_pb2.Status(code=grpc.StatusCode.NOT_FOUND.value[0])
                data = b""
            else:
                status = status_pb2.Status(code=0)
                if truncated:
                    data = data[: len(data) // 2]
            out.append(
                reapi.BatchReadBlobsResponse.Response(digest=d, data=data, status=status)
            )
        return reapi.BatchReadBlobsResponse(responses=out)


BLOB_NAME = re.compile(r"(?:^|/)blobs/([0-9a-f]{64})/(\d+)$")


class ByteStream(bs_grpc.ByteStreamServicer):
    def __init__(self, state):
        self.state = state

    def Read(self, request, context):
        self.state.stall()
        m = BLOB_NAME.search(request.resource_name)
        if not m:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad resource name")
        data = self.state.blob(m.group(1))
        if data is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "no such blob")
        if self.state.current() == "truncated":
            data = data[: len(data) // 2]
        data = data[request.read_offset :]
        if request.read_limit > 0:
            data = data[: request.read_limit]
        if not data:
            yield bs.ReadResponse(data=b"")
        for i in range(0, len(data), CHUNK):
            yield bs.ReadResponse(data=data[i : i + CHUNK])

    def Write(self, request_iterator, context):
        name = None
        chunks = []
        for r in request_iterator:
            if name is None:
                name = r.resource_name
            chunks.append(r.data)
            if r.finish_write:
                break
        data = b"".join(chunks)
        m = BLOB_NAME.search((name or "").split("/uploads/")[-1])
        if not m or not self.state.put_blob(data, m.group(1)):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the data does not match")
        return bs.WriteResponse(committed_size=len(data))


def serve_grpc(state):
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=64),
        options=[("grpc.so_reuseport", 0)],
    )
    reapi_grpc.add_CapabilitiesServicer_to_server(Capabilities(state), server)
    reapi_grpc.add_ActionCacheServicer_to_server(ActionCache(state), server)
    reapi_grpc.add_ContentAddressableStorageServicer_to_server(Cas(state), server)
    bs_grpc.add_ByteStreamServicer_to_server(ByteStream(state), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return port, lambda: server.stop(0)


# --- Bazel's HTTP cache ------------------------------------------------------

HTTP_PATH = re.compile(r"/(ac|cas)/([0-9a-f]{64})$")


def http_handler(state):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            log(fmt % args)

        def handle(self):
            # kiln hangs up on a slow or truncated answer: not an error here.
            try:
                super().handle()
            except (BrokenPipeError, ConnectionResetError):
                pass

        def reply(self, code, body=b""):
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            m = HTTP_PATH.search(self.path)
            if not m:
                return self.reply(404)
            state.stall()
            kind, h = m.groups()
            if kind == "ac":
                ar = state.action(h)
                return self.reply(404) if ar is None else self.reply(200, ar.SerializeToString())
            data = state.blob(h)
            if data is None:
                return self.reply(404)
            if state.current() == "truncated":
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.reply(200, data)

        def do_PUT(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            m = HTTP_PATH.search(self.path)
            if not m:
                return self.reply(404)
            kind, h = m.groups()
            if kind == "ac":
                state.put_action(h, body)
            elif not state.put_blob(body, h):
                return self.reply(400)
            self.reply(201)

    return Handler


def serve_http(state):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http_handler(state))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1], server.shutdown


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--protocol", choices=["grpc", "http"], required=True)
    p.add_argument("--mode", choices=MODES, default="honest")
    p.add_argument("--poison-dir", default=f"/tmp/kiln-hostile-{os.getpid()}")
    p.add_argument("--slow-seconds", type=float, default=60.0)
    a = p.parse_args()
    # SIGTERM: leave at once (handlers may be stalled in `slow` mode).
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    state = State(os.path.abspath(a.poison_dir), a.slow_seconds)
    state.set_mode(a.mode)
    port, stop = (serve_grpc if a.protocol == "grpc" else serve_http)(state)
    print(port, flush=True)
    log(f"{a.protocol} on 127.0.0.1:{port}, mode {a.mode}")
    for line in sys.stdin:
        words = line.split()
        if len(words) == 2 and words[0] == "mode" and words[1] in MODES:
            state.set_mode(words[1])
            log(f"mode {words[1]}")
            print(f"mode {words[1]}", flush=True)
        elif words:
            log(f"ignored: {line.strip()}")
            print(f"error {line.strip()}", flush=True)
    # stdin closed: stop without waiting for stalled handlers.
    state.set_mode("honest")
    stop()
    os._exit(0)


if __name__ == "__main__":
    main()
