#!/usr/bin/env bash
# The README's first command: builds wxgate, runs the gateway locally on the embedded store
# with examples/wxgate.toml, and plays the platform against it with `wxgate send` (URL
# verification, messages and events, signed and encrypted with the apps' own keys; each
# answer is decrypted and verified as WeChat would). Then it keeps serving until Ctrl-C, so
# you can try `wxgate send` yourself. `--once` stops after the demo.
#   ADDR=127.0.0.1:3000 scripts/demo.sh [--once]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ADDR="${ADDR:-127.0.0.1:3000}"
CONFIG=examples/wxgate.toml

cargo build --quiet --bin wxgate
BIN=target/debug/wxgate

"$BIN" serve --config "$CONFIG" --addr "$ADDR" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null' EXIT
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/${ADDR%:*}/${ADDR#*:}") 2>/dev/null && break
  sleep 0.1
done

send() {
  echo
  echo "\$ wxgate send --app $*"
  "$BIN" send --config "$CONFIG" --url "http://$ADDR" --app "$@"
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
  echo "demo done."
else
  echo "wxgate keeps serving on http://$ADDR — try: $BIN send --config $CONFIG --app demo text hi   (Ctrl-C stops)"
  wait $SERVER
fi
