# Sourced by the scripts (not run): a long command that prints nothing for minutes gets a
# progress line every so often, few enough for a CI log.
#
#   with_heartbeat EVERY LABEL COMMAND [ARGS…]
#
# Runs COMMAND (a function too), its output passing through, and while it runs prints
# "   … LABEL: still running after N s" every EVERY seconds. Returns COMMAND's status.
with_heartbeat() {
  local every=$1 label=$2
  shift 2
  local start
  start=$(date +%s)
  "$@" &
  local command=$!
  # A sleep left behind would hold the caller's output pipe (a CI log, `| tee`) open for up
  # to EVERY seconds: it gets none of the output descriptors, and the TERM below ends it.
  (
    trap 'kill $(jobs -p) 2>/dev/null; exit 0' TERM
    while :; do
      sleep "$every" </dev/null >/dev/null 2>&1 &
      wait $!
      echo "   … $label: still running after $(($(date +%s) - start)) s"
    done
  ) &
  local beat=$!
  local status=0
  wait "$command" || status=$?
  kill "$beat" 2>/dev/null || true
  wait "$beat" 2>/dev/null || true
  return "$status"
}
