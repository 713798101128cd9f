#!/usr/bin/env bash
# Regenerates the sample API Gateway events in events/ from events/wxgate.toml.
# The official vectors are copied verbatim; the other events get fresh random AES prefixes,
# so their ciphertext changes on every run while what they decrypt to does not.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --example gen_events -- events
