#!/usr/bin/env bash
# run-local.sh BUILD_DIR: run broker, sweeper and gateway in the foreground
# with the embedded defaults (or PRESENCE_* from the environment, or a
# config file given as $2). Ctrl-C stops all three.
set -euo pipefail
build=${1:-build}
conf=${2:-}
args=()
[ -n "$conf" ] && args=(-c "$conf")
pids=()
stop() {
  trap - INT TERM EXIT
  [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null
  wait
}
trap stop INT TERM EXIT
"$build/presence-broker" "${args[@]}" & pids+=($!)
sleep 0.3
"$build/presence-sweeper" "${args[@]}" & pids+=($!)
"$build/presence-gateway" "${args[@]}" & pids+=($!)
echo "presence: broker, sweeper and gateway running (pids ${pids[*]});" \
  "dashboard at http://${PRESENCE_HTTP_LISTEN:-127.0.0.1:8080}/ ; Ctrl-C stops"
wait -n
echo "presence: a daemon exited; stopping the others" >&2
exit 1
