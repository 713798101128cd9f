#!/usr/bin/env bash
# The project's test command (the README's, and what CI runs): formatting, lints, the peer
# implementations the cross-implementation test needs, Chromium for the browser test
# (installed with apt-get when missing, as root), every test, then the SAM template
# (`sam validate --lint` and an x86_64 `sam build`, tools installed into .cache/sam-venv).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy (without and with the external tests)"
cargo clippy --locked --all-targets -- -D warnings
cargo clippy --locked --all-targets --features external-tests -- -D warnings
echo "== peers (@wecom/crypto, wechatpy) into .cache/peers"
scripts/peers.sh all
echo "== chromium (Debian's package) for the browser test"
scripts/browser.sh
echo "== cargo test (all, including the tests that need Node, Python, Chromium, dynalite, moto)"
cargo test --locked --features external-tests
echo "== SAM: validate --lint, build (x86_64)"
scripts/sam-check.sh
