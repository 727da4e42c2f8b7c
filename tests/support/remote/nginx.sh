#!/usr/bin/env bash
# Start a real HTTP cache server (Debian's nginx with WebDAV PUT) on loopback
# for tests. It speaks Bazel's HTTP cache protocol: GET/HEAD/PUT of
# <prefix>/ac/<sha256> and <prefix>/cas/<sha256>, stored as plain files under
# ROOTDIR.
#
#   nginx.sh setup                run apt-get install nginx if it is missing
#                                 (idempotent; never starts the system service)
#   nginx.sh serve PORT ROOTDIR   run nginx in the foreground on 127.0.0.1:PORT
#                                 serving ROOTDIR (created if missing) until killed
#   nginx.sh config PORT ROOTDIR TMPDIR  print the config that serve would use
#
# serve writes its config, pid file and temp paths to a fresh temp dir; it never
# touches /etc/nginx, /var/lib/nginx or /var/log/nginx. The PID of `serve` is
# the nginx master itself (exec). SIGTERM/SIGINT: fast shutdown; SIGQUIT:
# graceful. A detached watcher removes the temp dir (and kills leftover worker
# processes if the master was SIGKILLed) once the master is gone.
set -euo pipefail

usage() {
    echo "usage: $0 setup | serve PORT ROOTDIR | config PORT ROOTDIR TMPDIR" >&2
    exit 2
}

find_nginx() {
    if command -v nginx >/dev/null 2>&1; then
        command -v nginx
    elif [ -x /usr/sbin/nginx ]; then
        echo /usr/sbin/nginx
    else
        return 1
    fi
}

has_dav() {
    "$1" -V 2>&1 | grep -q -- '--with-http_dav_module'
}

setup() {
    local bin
    if bin="$(find_nginx)" && has_dav "$bin"; then
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "nginx.sh: nginx with the dav module is missing; run '$0 setup' as root" >&2
        exit 1
    fi
    # Keep the package's maintainer scripts from starting the system service:
    # a policy-rc.d that denies everything, only for the duration of the
    # install and only if the machine has none.
    local policy=/usr/sbin/policy-rc.d made_policy=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=1
    fi
    # In Debian 12 the `nginx` package is the server binary itself (built with
    # --with-http_dav_module); nginx-light/-core/-full only add modules.
    local rc=0
    (
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q &&
            apt-get install -y -q --no-install-recommends nginx
    ) >&2 || rc=$?
    if [ -n "$made_policy" ]; then
        rm -f "$policy"
    fi
    [ "$rc" = 0 ] || exit "$rc"
    # Make sure the system service is neither running nor enabled.
    if [ -d /run/systemd/system ]; then
        systemctl disable --now nginx >/dev/null 2>&1 || true
    else
        if [ -x /etc/init.d/nginx ]; then
            /etc/init.d/nginx stop >/dev/null 2>&1 || true
        fi
        systemctl disable nginx >/dev/null 2>&1 || true
        update-rc.d nginx disable >/dev/null 2>&1 || true
    fi
    bin="$(find_nginx)"
    has_dav "$bin" || {
        echo "nginx.sh: $bin lacks --with-http_dav_module" >&2
        exit 1
    }
}

# Print the config. $1 port, $2 root dir (absolute), $3 temp dir (absolute).
config() {
    local port="$1" root="$2" tmp="$3" user_line=""
    if [ "$(id -u)" = 0 ]; then
        # Workers run as root so they can write wherever ROOTDIR is.
        user_line="user root;"
    fi
    cat <<EOF
daemon off;
master_process on;
worker_processes 1;
$user_line
pid $tmp/nginx.pid;
error_log stderr warn;

events {
    worker_connections 512;
}

http {
    access_log off;
    # A cache miss is normal: do not log every 404 to stderr.
    log_not_found off;
    default_type application/octet-stream;
    sendfile on;
    server_tokens off;

    client_body_temp_path $tmp/client_body;
    proxy_temp_path $tmp/proxy;
    fastcgi_temp_path $tmp/fastcgi;
    uwsgi_temp_path $tmp/uwsgi;
    scgi_temp_path $tmp/scgi;
    client_max_body_size 1g;
    client_body_buffer_size 1m;

    server {
        listen 127.0.0.1:$port;
        root $root;

        location / {
            dav_methods PUT;
            create_full_put_path on;
            dav_access user:rw group:r all:r;
            # GET implies HEAD; everything else (DELETE, POST, ...) is 403.
            limit_except GET PUT {
                deny all;
            }
        }
    }
}
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
    [ $# -eq 4 ] || usage
    check_port "$2"
    config "$2" "$3" "$4"
    ;;
serve)
    [ $# -eq 3 ] || usage
    check_port "$2"
    port="$2"
    mkdir -p "$3"
    root="$(cd "$3" && pwd -P)"
    nginx_bin="$(find_nginx)" || {
        echo "nginx.sh: nginx not found; run '$0 setup' first" >&2
        exit 1
    }
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/kiln-nginx.XXXXXX")"
    tmp="$(cd "$tmp" && pwd -P)"
    config "$port" "$root" "$tmp" >"$tmp/nginx.conf"
    # Detached watcher (double fork, so it is not nginx's child; stdio on
    # /dev/null, so it holds none of the caller's pipes open; ignores
    # TERM/INT/HUP, so a process-group kill still gets cleaned up). It polls the
    # master, i.e. this shell's PID after exec. Once the master is gone (or a
    # zombie), it kills the processes still holding the listening socket
    # 127.0.0.1:PORT if they are nginx (workers outlive a SIGKILLed master and
    # keep serving) and removes the temp dir.
    master=$$
    (
        (
            trap '' TERM INT HUP
            alive() {
                local st
                st="$(awk '{print $3}' "/proc/$master/stat" 2>/dev/null)" || return 1
                [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
            }
            while alive; do sleep 0.2; done
            local_addr="$(printf '0100007F:%04X' "$port")"
            inodes="$(awk -v a="$local_addr" '$2 == a && $4 == "0A" {print $10}' /proc/net/tcp 2>/dev/null || true)"
            for inode in $inodes; do
                for fd in $(find /proc/[0-9]*/fd -maxdepth 1 -lname "socket:\[$inode\]" 2>/dev/null); do
                    pid="${fd#/proc/}"
                    pid="${pid%%/*}"
                    if [ "$pid" != "$master" ] && grep -qx nginx "/proc/$pid/comm" 2>/dev/null; then
                        kill -KILL "$pid" 2>/dev/null || true
                    fi
                done
            done
            rm -rf "$tmp"
        ) &
    ) </dev/null >/dev/null 2>&1
    exec "$nginx_bin" -p "$tmp/" -c "$tmp/nginx.conf" -e stderr
    ;;
*)
    usage
    ;;
esac
