#!/usr/bin/env bash
# Chromium for tests/open_browser.rs (the Open Platform authorization pages in a headless
# browser): Debian's package, installed with apt-get when missing and running as root (CI).
# Otherwise this only says what to install: without chromium that test is skipped, or fails
# when CI is set.
set -euo pipefail

if command -v chromium >/dev/null; then
    echo "chromium: $(command -v chromium)"
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
    echo "chromium: $(command -v chromium)"
else
    echo "chromium is missing: install it (sudo apt-get install chromium) or tests/open_browser.rs" \
        "is skipped (it fails when CI is set)" >&2
fi
