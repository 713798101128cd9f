#!/usr/bin/env bash
# The load and fault runs (tests/load, docs/load-and-faults.md) in their long version, one
# scenario at a time, and the figures table they print. Needs what the store tests need
# (Node.js for dynalite, installed on first use).
#
#   scripts/load.sh              # the debug build of the test profile (correctness)
#   scripts/load.sh --release    # the gateway built with `cargo build --release` (figures)
#   scripts/load.sh --short      # the short version CI runs
#
# WXGATE_LOAD_CONCURRENCY sets the baseline's requests in flight (default 32).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=full
release=
for arg in "$@"; do
    case "$arg" in
        --release) release=1 ;;
        --short) mode=short ;;
        *) echo "usage: scripts/load.sh [--release] [--short]" >&2; exit 2 ;;
    esac
done

target="${CARGO_TARGET_DIR:-target}"
if [ -n "$release" ]; then
    cargo build --release --bin wxgate
    export WXGATE_LOAD_BIN="$target/release/wxgate"
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
WXGATE_LOAD="$mode" cargo test --features external-tests --test load -- \
    --nocapture --test-threads=1 >"$log" 2>&1 || status=$?

echo
echo "load and fault runs ($mode, $([ -n "$release" ] && echo release || echo debug) build)," \
    "$(nproc) cores, load average:$(uptime | sed 's/.*load average://')"
echo
echo "| scenario | msgs | callbacks | wall s | cb/s | p50 ms | p99 ms | max ms | 5xx | unanswered | extra runs (allowed) | empty answers | late sent/failed/twice | fail-open | notes |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
# With --nocapture a row may follow the test's name on its line.
grep -o "load-row: .*" "$log" | sed "s/^load-row: /| /; s/$/ |/" || true
echo
grep -E '^test result|ignored, ' "$log" | sed 's/ \.\.\. load-row:.*//' || true
if [ "$status" -ne 0 ]; then
    echo "FAILED; the whole output:" >&2
    cat "$log" >&2
fi
exit "$status"
