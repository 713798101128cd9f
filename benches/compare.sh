#!/usr/bin/env bash
# Compares wxgate's full passive-reply round trip (criterion bench
# `callback/full_round_trip`) with the same round trip in the peer ecosystems:
# @wecom/crypto on Node and wechatpy on Python. Prints a table of ns/op.
#   benches/compare.sh              # run cargo bench, install peers, run peer benches
#   benches/compare.sh --no-cargo   # reuse the last criterion estimates.json
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

run_cargo=1
case "${1:-}" in
  "") ;;
  --no-cargo) run_cargo=0 ;;
  *)
    echo "usage: $0 [--no-cargo]" >&2
    exit 2
    ;;
esac

ESTIMATES="${CARGO_TARGET_DIR:-$ROOT/target}/criterion/callback/full_round_trip/new/estimates.json"

if ((run_cargo)); then
  echo "== cargo bench --bench callback -- --noplot callback/full_round_trip"
  cargo bench --bench callback -- --noplot callback/full_round_trip
fi

echo "== scripts/peers.sh all"
scripts/peers.sh all

echo "== benches/peers/wecom_crypto_bench.js"
node_json="$(node benches/peers/wecom_crypto_bench.js)"
echo "$node_json"
echo "== benches/peers/wechatpy_bench.py"
python_json="$(.cache/peers/venv/bin/python benches/peers/wechatpy_bench.py)"
echo "$python_json"

cpu="$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n 1)"
echo
python3 - "$ESTIMATES" "${cpu:-unknown CPU}" "$(nproc)" "$node_json" "$python_json" <<'EOF'
import json, os, sys

estimates, cpu, cores, *peer_lines = sys.argv[1:]
rows = []
base = None

def ratio(ns):
    if base is None:
        return "n/a"
    if ns == base:
        return "1.0x"
    return f"{ns / base:.1f}x slower" if ns > base else f"{base / ns:.1f}x faster"

if os.path.exists(estimates):
    with open(estimates) as f:
        base = json.load(f)["median"]["point_estimate"]
    rows.append(("wxgate (Rust, criterion median)", base, "baseline"))
else:
    print(f"note: {estimates} not found; run without --no-cargo "
          "(cargo bench --bench callback) to get the wxgate baseline\n")
for line in peer_lines:
    peer = json.loads(line)
    rows.append((peer["impl"], peer["ns_per_op"], ratio(peer["ns_per_op"])))

print(f"machine: {cores} cores, {cpu}")
print(f"{'implementation':<40} {'ns/op':>12} {'µs/op':>10}  vs wxgate")
for name, ns, vs in rows:
    print(f"{name:<40} {ns:>12,.0f} {ns / 1000:>10.1f}  {vs}")
EOF
