#!/usr/bin/env bash
# Installs the peer WXBizMsgCrypt implementations that wxgate is cross-tested
# and benchmarked against, under .cache/peers/ (gitignored). Idempotent.
#   scripts/peers.sh node    # @wecom/crypto (+ fast-xml-parser) -> .cache/peers/node
#   scripts/peers.sh python  # wechatpy (+ cryptography)         -> .cache/peers/venv
#   scripts/peers.sh all     # both
set -euo pipefail

WECOM_CRYPTO_VERSION=1.0.1
FAST_XML_PARSER_VERSION=5.12.1
WECHATPY_VERSION=1.8.18
CRYPTOGRAPHY_VERSION=50.0.2
XMLTODICT_VERSION=1.0.4 # wechatpy's XML parser, on the benchmarked path

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_DIR="$ROOT/.cache/peers/node"
VENV_DIR="$ROOT/.cache/peers/venv"

die() {
  echo "peers.sh: error: $*" >&2
  exit 1
}

need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found in PATH; $2"
}

# Prints the installed version of an npm package in $NODE_DIR, or nothing.
node_pkg_version() {
  local manifest="$NODE_DIR/node_modules/$1/package.json"
  [[ -f "$manifest" ]] || return 0
  node -p "require(process.argv[1]).version" "$manifest" 2>/dev/null || true
}

install_node() {
  need node "install Node.js (v18+)"
  need npm "install npm"
  if [[ "$(node_pkg_version @wecom/crypto)" == "$WECOM_CRYPTO_VERSION" &&
    "$(node_pkg_version fast-xml-parser)" == "$FAST_XML_PARSER_VERSION" ]]; then
    echo "node: @wecom/crypto@$WECOM_CRYPTO_VERSION already installed in .cache/peers/node"
    return 0
  fi
  echo "node: installing @wecom/crypto@$WECOM_CRYPTO_VERSION fast-xml-parser@$FAST_XML_PARSER_VERSION into .cache/peers/node"
  mkdir -p "$NODE_DIR"
  npm install --prefix "$NODE_DIR" --no-audit --no-fund --save-exact --loglevel=error \
    "@wecom/crypto@$WECOM_CRYPTO_VERSION" "fast-xml-parser@$FAST_XML_PARSER_VERSION" >/dev/null ||
    die "npm install failed (see output above)"
  [[ "$(node_pkg_version @wecom/crypto)" == "$WECOM_CRYPTO_VERSION" ]] ||
    die "npm finished but @wecom/crypto@$WECOM_CRYPTO_VERSION is not in $NODE_DIR/node_modules"
}

venv_has_pins() {
  [[ -x "$VENV_DIR/bin/python" ]] || return 1
  "$VENV_DIR/bin/python" - "$WECHATPY_VERSION" "$CRYPTOGRAPHY_VERSION" "$XMLTODICT_VERSION" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version
want = dict(zip(("wechatpy", "cryptography", "xmltodict"), sys.argv[1:]))
sys.exit(0 if all(version(name) == v for name, v in want.items()) else 1)
EOF
}

install_python() {
  need python3 "install Python 3.8+ with the venv module"
  if venv_has_pins; then
    echo "python: wechatpy==$WECHATPY_VERSION already installed in .cache/peers/venv"
    return 0
  fi
  if [[ ! -x "$VENV_DIR/bin/python" ]]; then
    echo "python: creating venv .cache/peers/venv"
    python3 -m venv "$VENV_DIR" || die "python3 -m venv failed (is the venv module installed? e.g. apt-get install python3-venv)"
  fi
  echo "python: installing wechatpy==$WECHATPY_VERSION cryptography==$CRYPTOGRAPHY_VERSION xmltodict==$XMLTODICT_VERSION into .cache/peers/venv"
  "$VENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check \
    "wechatpy==$WECHATPY_VERSION" "cryptography==$CRYPTOGRAPHY_VERSION" "xmltodict==$XMLTODICT_VERSION" ||
    die "pip install failed (see output above)"
  venv_has_pins || die "pip finished but the pinned versions are not importable from $VENV_DIR"
}

case "${1:-}" in
  node) install_node ;;
  python) install_python ;;
  all)
    install_node
    install_python
    ;;
  *)
    echo "usage: $0 node|python|all" >&2
    exit 2
    ;;
esac
