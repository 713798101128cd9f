#!/usr/bin/env bash
# Regenerates the sample API Gateway events in events/ from events/wxgate.toml.
# The official vectors are copied verbatim; the other events are signed and encrypted with
# fixed timestamps, nonces and AES prefix, so a rerun changes nothing unless the generator
# or events/wxgate.toml did (`git status events/` stays clean).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --example gen_events -- events
