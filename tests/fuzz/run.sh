#!/usr/bin/env bash
# Fuzz kiln's parsers and decoders: build kiln-fuzz (fuzz/) in release
# mode, run each target for a bounded time, print a table of executions
# and crashes, and exit non-zero if any target crashed. Crashing inputs
# are saved under fuzz/crashes/<target>/ (see fuzz/src/lib.rs for what to
# do with them). `cargo test` runs a short smoke of every target.
#
# Usage: tests/fuzz/run.sh [--seconds N] [--seed S] [TARGET...]
#   --seconds N  time per target (default 60)
#   --seed S     seed of the mutations (default 1)
#   TARGET...    targets to run (default: all; `kiln-fuzz --list`)
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }

seconds=60
seed=1
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds=${2:?--seconds needs a value}; shift 2 ;;
        --seconds=*) seconds=${1#*=}; shift ;;
        --seed) seed=${2:?--seed needs a value}; shift 2 ;;
        --seed=*) seed=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done

cargo build --release --locked -p kiln-fuzz
bin=target/release/kiln-fuzz
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <("$bin" --list | awk '{print $1}')
fi

rows=()
total_execs=0
total_crashes=0
status=0
for t in "${targets[@]}"; do
    # One line on stdout: `target executions crashes`; details of each
    # crash go to stderr as they are found.
    line=$("$bin" "$t" --seconds "$seconds" --seed "$seed") || status=1
    read -r name execs crashes <<<"$line"
    rows+=("$(printf '%-14s | %12s | %7s' "${name:-$t}" "${execs:-?}" "${crashes:-?}")")
    total_execs=$((total_execs + ${execs:-0}))
    total_crashes=$((total_crashes + ${crashes:-0}))
done

printf '%-14s | %12s | %7s\n' target executions crashes
printf '%s\n' "---------------+--------------+--------"
printf '%s\n' "${rows[@]}"
printf '%s\n' "---------------+--------------+--------"
printf '%-14s | %12s | %7s\n' total "$total_execs" "$total_crashes"
if [ "$status" -ne 0 ] || [ "$total_crashes" -ne 0 ]; then
    echo "run.sh: crashes found; inputs are in fuzz/crashes/<target>/" >&2
    exit 1
fi
