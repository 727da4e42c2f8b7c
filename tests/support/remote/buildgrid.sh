#!/usr/bin/env bash
# Start a real REAPI v2 cache server (BuildGrid 0.4.4) on loopback for tests.
#
#   buildgrid.sh setup                 create/refresh the virtualenv (idempotent)
#   buildgrid.sh serve PORT [INSTANCE] run the server in the foreground on
#                                      127.0.0.1:PORT until killed
#   buildgrid.sh config PORT [INSTANCE] print the server config to stdout
#
# Services: CAS, ByteStream, ActionCache (allows client updates), Capabilities.
# Storage is in memory (lost when the server exits); no execution service and no
# database. INSTANCE is the REAPI instance name; default "" (the empty/default
# instance). A named instance such as "main" is served instead when given.
#
# Environment:
#   KILN_BUILDGRID_VENV  virtualenv path (default: <repo>/target/buildgrid-venv)
#   KILN_BUILDGRID_PYTHON  python used to create it (default: python3)
#   KILN_BUILDGRID_CAS_SIZE  in-memory CAS size (default: 1G)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
venv="${KILN_BUILDGRID_VENV:-$repo/target/buildgrid-venv}"
python="${KILN_BUILDGRID_PYTHON:-python3}"
cas_size="${KILN_BUILDGRID_CAS_SIZE:-1G}"
version="0.4.4"

usage() {
    echo "usage: $0 setup | serve PORT [INSTANCE] | config PORT [INSTANCE]" >&2
    exit 2
}

setup() {
    if [ -x "$venv/bin/bgd" ] &&
        "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('buildgrid') != '$version')" 2>/dev/null; then
        return 0
    fi
    if [ ! -x "$venv/bin/python" ]; then
        "$python" -m venv "$venv"
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check "buildgrid==$version"
}

# Print the YAML config. $1 = port, $2 = instance name.
config() {
    local port="$1" instance="$2"
    cat <<EOF
description: kiln test REAPI cache (in-memory CAS + ActionCache, no execution)

server:
  - !channel
    address: "127.0.0.1:$port"
    insecure-mode: true

# gRPC enables SO_REUSEPORT by default: a second server on a busy port would
# start "successfully" and share the traffic. Make a busy port an error.
grpc-server-options:
  grpc.so_reuseport: 0

authorization:
  method: none

monitoring:
  enabled: false

thread-pool-size: 20

storages:
  - !lru-storage &cas-storage
    size: $cas_size

caches:
  - !lru-action-cache &ac
    storage: *cas-storage
    max-cached-refs: 100000
    allow-updates: true
    cache-failed-actions: true

instances:
  - name: "$instance"
    services:
      - !cas
        storage: *cas-storage
      - !bytestream
        storage: *cas-storage
        # 0.4.4's streaming read path ignores read_limit when it is smaller
        # than the rest of the blob (DATA_LOSS "Blob incomplete"); the
        # non-streaming path honours it. Storage is in memory anyway.
        stream-blob: false
      - !action-cache
        cache: *ac
EOF
}

check_port() {
    case "${1:-}" in
    '' | *[!0-9]*) usage ;;
    esac
}

cmd="${1:-}"
case "$cmd" in
setup)
    setup
    ;;
config)
    check_port "${2:-}"
    config "$2" "${3:-}"
    ;;
serve)
    check_port "${2:-}"
    port="$2"
    instance="${3:-}"
    setup
    # The config is written to a temp dir, opened on fd 3, and the dir is
    # removed before exec: bgd reads the config once through /dev/fd/3, nothing
    # is left behind however the server dies, and the PID the caller holds is
    # the server itself (exec), so killing it (even SIGKILL) stops the server.
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/kiln-buildgrid.XXXXXX")"
    config "$port" "$instance" >"$tmp/buildgrid.yml"
    exec 3<"$tmp/buildgrid.yml"
    rm -rf "$tmp"
    # Logs go to stdout/stderr; move them all to stderr. Nothing is needed.
    exec "$venv/bin/bgd" server start /dev/fd/3 >&2
    ;;
*)
    usage
    ;;
esac
