#!/usr/bin/env bash
# run-local.sh BUILD_DIR [CONFIG]: run broker, sweeper and gateway in the
# foreground with the embedded defaults (or PRESENCE_* from the environment,
# or a config file given as $2). Ctrl-C (or SIGTERM to this script) stops
# all three; if one of them exits, the others are stopped too.
set -euo pipefail
build=${1:-build}
conf=${2:-}
args=()
[ -n "$conf" ] && args=(-c "$conf")
# The effective config (file, then PRESENCE_* environment): the broker's
# query socket and the gateway's address.
effective=$("$build/presence-broker" "${args[@]}" -t)
query=$(sed -n 's|^query_endpoint = ipc://||p' <<<"$effective")
listen=$(sed -n 's|^http_listen = ||p' <<<"$effective")
pids=()
stop() {
  trap - INT TERM EXIT
  [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null
  wait
}
trap stop EXIT
trap 'stop; exit 0' INT TERM
"$build/presence-broker" "${args[@]}" & pids+=($!)
# The sweeper and the gateway catch up with a late broker by themselves;
# waiting for its query socket (ipc only) just keeps the first log lines
# in order. At most 5 s.
for _ in $(seq 50); do
  [ -z "$query" ] || [ -S "$query" ] && break
  kill -0 "${pids[0]}" 2>/dev/null || break
  sleep 0.1
done
"$build/presence-sweeper" "${args[@]}" & pids+=($!)
"$build/presence-gateway" "${args[@]}" & pids+=($!)
echo "presence: broker, sweeper and gateway running (pids ${pids[*]});" \
  "dashboard at http://$listen/ ; Ctrl-C stops"
wait -n || true
echo "presence: a daemon exited; stopping the others" >&2
exit 1
