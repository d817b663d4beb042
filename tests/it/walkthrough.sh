#!/usr/bin/env bash
# it.walkthrough: the README's first steps, run as a newcomer would. Starts
# deploy/run-local.sh on a temp data and run dir and a loopback port the
# gateway picks, runs the shell block under "## First steps" in README.md as
# it stands (only the port is changed; build/ is a link to the build dir), checks
# what it printed, then checks that watch sees a change and that the
# dashboard and /metrics answer. Stops exactly what it started.
#   walkthrough.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$(cd "${1:?BUILD_DIR}" && pwd)
src=$(cd "${2:?SOURCE_DIR}" && pwd)

tmp=$(mktemp -d /tmp/presence-walk.XXXXXX)
runner=""     # pid of run-local.sh
daemons=""    # the pids it reported
watcher=""    # pid of the background presencectl watch
fail() {
    echo "walkthrough: FAIL: $*" >&2
    [ -f "$tmp/run.log" ] && sed 's/^/  run-local: /' "$tmp/run.log" >&2
    exit 1
}
# poll_until DEADLINE_S CMD...: run CMD every 0.1 s until it succeeds.
poll_until() {
    local end=$((SECONDS + $1))
    shift
    until "$@"; do
        [ $SECONDS -lt $end ] || return 1
        sleep 0.1
    done
}
alive() { kill -0 "$1" 2>/dev/null; }
cleanup() {
    [ -n "$watcher" ] && kill "$watcher" 2>/dev/null
    if [ -n "$runner" ] && alive "$runner"; then
        kill -TERM "$runner"   # its trap stops the three daemons, then exits
        poll_until 10 eval '! alive "$runner"' || kill -KILL "$runner"
    fi
    for p in $daemons; do
        if alive "$p"; then
            echo "walkthrough: daemon $p outlived run-local.sh" >&2
            kill -KILL "$p"
        fi
    done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

export PRESENCE_DATA_DIR=$tmp/data PRESENCE_RUN_DIR=$tmp/run
cd "$tmp" || exit 1
ln -s "$build" build

# The gateway binds a port the kernel picks (http_listen port 0) and logs
# it: no probed port another process could take before the bind (under
# load the probe-then-bind race lost the port).
healthy() {
    local h
    h=$(curl -s -m 2 "http://127.0.0.1:$port/healthz")
    [[ $h == *'"broker":"ok"'* ]]
}
bound() {  # sets port from the gateway's "listening on ... (port N" line
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:0 (port \([0-9]*\).*/\1/p;T;q' \
        "$tmp/run.log")
    [ -n "$port" ] && [ "$port" != 0 ]
}
port=""
export PRESENCE_HTTP_LISTEN=127.0.0.1:0
bash "$src/deploy/run-local.sh" build >"$tmp/run.log" 2>&1 &
runner=$!
poll_until 30 eval '{ bound && healthy; } || ! alive "$runner"'
daemons=$(sed -n 's/.*running (pids \([0-9 ]*\)).*/\1/p' "$tmp/run.log")
alive "$runner" || fail "run-local.sh exited"
bound || fail "the gateway logged no bound port after 30 s"
healthy || fail "gateway not healthy on port $port after 30 s"
export PRESENCE_HTTP_LISTEN=127.0.0.1:$port
echo "walkthrough: running on port $port (pids $daemons)"

# The README block, verbatim but for the port.
awk '/^## First steps/ {f = 1} f && /^```sh/ {b = 1; next}
     b && /^```/ {exit} b' "$src/README.md" |
    sed "s/127\.0\.0\.1:8080/127.0.0.1:$port/g" >"$tmp/steps.sh"
[ -s "$tmp/steps.sh" ] || fail "no sh block under '## First steps' in README.md"
bash "$tmp/steps.sh" >"$tmp/steps.out" 2>&1
sed 's/^/  steps: /' "$tmp/steps.out"
out=$(cat "$tmp/steps.out")
expect() {  # expect WHAT PATTERN: the block's output matches PATTERN
    grep -Eq -- "$2" <<<"$out" || fail "README steps: no $1 (/$2/)"
}
expect "login answer" '^\{"user":"alice","session":"[^"]+","heartbeat_s":30,"timeout_s":120\}$'
expect "204 from the heartbeat" '^204$'
expect "online state from get" '^state +online$'
expect "stats" '^users +online 1'
expect "alice in the admin list" '"user":"alice"'
expect "metrics" '^# (HELP|TYPE) presence_'
if grep -Eq 'command not found|No such file|Usage:|usage:|error' <<<"$out"; then
    fail "README steps printed an error"
fi

# watch: a change made after it started is printed (bob, whose one
# session flips between away and online).
T=$(build/presencectl token bob) || fail "presencectl token"
build/presencectl --json watch --count 1 >"$tmp/watch.out" 2>&1 &
watcher=$!
state=away
beat() {
    curl -s -o /dev/null -H "Authorization: Bearer $T" \
        -d "{\"session\":\"walk\",\"state\":\"$state\"}" \
        "http://127.0.0.1:$port/v1/heartbeat"
    [ $state = away ] && state=online || state=away
}
poll_until 15 eval 'beat; grep -q "\"user\":\"bob\"" "$tmp/watch.out"' ||
    fail "watch printed no change of bob: $(cat "$tmp/watch.out")"
poll_until 5 eval '! alive "$watcher"' || fail "watch --count 1 did not exit"
watcher=""

# The dashboard and the metrics, as an operator opens them.
code=$(curl -s -o "$tmp/index.html" -w '%{http_code}' "http://127.0.0.1:$port/")
[ "$code" = 200 ] || fail "GET / answered $code"
grep -qi '<html' "$tmp/index.html" || fail "GET / is not the dashboard page"
metrics=$(curl -s "http://127.0.0.1:$port/metrics")
grep -q '^presence_gateway_requests_total' <<<"$metrics" ||
    fail "/metrics has no presence_gateway_requests_total"
echo "walkthrough: every README step worked"
