#!/usr/bin/env bash
# The README's first command: builds wxgate, runs the gateway locally on the embedded store
# with examples/wxgate.toml, and plays the platform against it with `wxgate send` (URL
# verification, messages and events, signed and encrypted with the apps' own keys; each
# answer is decrypted and verified as WeChat would). Then it keeps serving until Ctrl-C, so
# you can try `wxgate send` yourself. `--once` stops after the demo.
#   [ADDR=127.0.0.1:3000] [WXGATE_BIN=path/to/wxgate] scripts/demo.sh [--once]
# ADDR unset: 127.0.0.1:3000, or a free port when something else listens there (said so).
# ADDR set and taken: an error. WXGATE_BIN: use that binary instead of building one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
CONFIG="$ROOT/examples/wxgate.toml"

if [[ -n "${WXGATE_BIN:-}" ]]; then
  BIN=$WXGATE_BIN
else
  echo "== building wxgate (cargo build --bin wxgate): the first build compiles a few hundred"
  echo "   crates and takes several minutes on a 2-core machine; later builds take seconds"
  cargo build --bin wxgate
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/wxgate"
  [[ "$BIN" == /* ]] || BIN="$ROOT/$BIN"
fi

# Whether something accepts connections on HOST:PORT.
listening() {
  (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null
}

if [[ -n "${ADDR:-}" ]]; then
  if listening "$ADDR"; then
    echo "demo.sh: something already listens on $ADDR (another wxgate serve, or another program);" >&2
    echo "  stop it, or pick a free address: ADDR=127.0.0.1:3001 scripts/demo.sh" >&2
    exit 1
  fi
else
  ADDR=127.0.0.1:3000
  if listening "$ADDR"; then
    echo "demo.sh: $ADDR is taken (another wxgate serve, or another program); serving on a free port instead"
    ADDR=127.0.0.1:0
  fi
fi

# The server says where it listens on its first stdout line: the demo talks to that
# server only, never to whatever else holds a port.
SERVED=$(mktemp)
"$BIN" serve --config "$CONFIG" --addr "$ADDR" >"$SERVED" &
SERVER=$!
cleanup() {
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  rm -f "$SERVED"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
URL=
for _ in $(seq 100); do
  URL=$(sed -n '1s|^wxgate serving \(http://[^ ]*\).*|\1|p' "$SERVED")
  [[ -n "$URL" ]] && break
  if ! kill -0 "$SERVER" 2>/dev/null; then
    echo "demo.sh: wxgate serve did not start (its error is above)" >&2
    exit 1
  fi
  sleep 0.1
done
if [[ -z "$URL" ]]; then
  echo "demo.sh: wxgate serve did not say where it listens within 10 s" >&2
  exit 1
fi
cat "$SERVED"

send() {
  echo
  echo "\$ wxgate send --app $*"
  "$BIN" send --config "$CONFIG" --url "$URL" --app "$@"
}
send demo verify
send demo text "你好，wxgate"
send demo text help
send demo event subscribe
send demo event click --key V1001_TODAY
send demo location
send shop text "安全模式的公众号消息"
send blog text "plaintext mode works too"

echo
if [[ "${1:-}" == "--once" ]]; then
  echo "demo done. To run it yourself, in two terminals:"
  echo "  $BIN serve --config $CONFIG --addr ${URL#http://}"
  echo "  $BIN send --config $CONFIG --url $URL --app demo text hi"
else
  echo "wxgate keeps serving on $URL (Ctrl-C stops). Try, in another terminal:"
  echo "  $BIN send --config $CONFIG --url $URL --app demo text hi"
  echo "  $BIN send --config $CONFIG --url $URL --app demo event click --key V1001_TODAY"
  wait "$SERVER"
fi
