#!/bin/bash
# bench/soak.sh: a long run at a steady load, to show that nothing grows.
#
#   bench/soak.sh [-d SECONDS] [-r REQ_PER_S] [-u USERS] [-o CSV]
#
# Defaults: 600 s at 24,000 req/s = 50 % of the rated HTTP heartbeat load
# (47,563 req/s in bench/RESULTS.md), 10,000 users. The load: wrk POSTs
# /v1/heartbeat through the gateway (one request in 50 a login instead,
# bench/wrk/soak.lua), and a bus publisher logs the same users out at 1 %
# of that rate (the next heartbeat starts the session again), so sessions
# come and go all the time. Every second it records the RSS (KiB) and the
# open file descriptors of the broker, the sweeper and the gateway, and the
# LMDB data file's size, in a CSV.
#
# After a warm-up (the first 20 % of the run, at least 10 s) each series
# must be flat: the least-squares trend over the rest, projected over the
# whole run, stays under max(10 % of the series' mean, a small floor: 4 MiB
# of RSS, 4 fds, 4 MiB of LMDB). A leak shows as a trend. Speed is only
# reported. The sweeper must have refused no frame (bad frames 0) and sent
# about one expire per session that timed out (it answers the broker's due
# notices; the count is reported).
#
# The broker keeps two retention windows that grow until they are full:
# the change log (changelog_keep changes) and each user's history (128
# transitions). Filled at the soak's own pace they would take 30-40 min,
# and look like a leak. So before the measured run a bus publisher logs
# every user in and out 65 times (presence-bench load -t fill), which
# fills both, and sessions time out after 30 s instead of 120 s, so that
# the session tables reach their steady size within the warm-up.
#
# Exit 0 flat, 1 a trend or an error, 77 skipped (wrk missing and not
# root, or daemons not built).
set -u
. "$(dirname "$0")/lib.sh"

seconds=600
rate=24000
users=10000
csv=""
while getopts "d:r:u:o:" opt; do
    case $opt in
    d) seconds=$OPTARG ;;
    r) rate=$OPTARG ;;
    u) users=$OPTARG ;;
    o) csv=$OPTARG ;;
    *) echo "usage: bench/soak.sh [-d seconds] [-r req/s] [-u users] [-o csv]" >&2
       exit 2 ;;
    esac
done

bench_init
need wrk:wrk
need_build presence-broker presence-sweeper presence-gateway bench/presence-bench
[ -n "$csv" ] || csv="$TMP_DIR/soak.csv"

env_for "$TMP_DIR/soak"
export PRESENCE_RATE_LIMIT=0 PRESENCE_HTTP_MAX_CONNECTIONS=10000
export PRESENCE_TIMEOUT=30
# The gateway's non-2xx answers so far, from its /metrics, and its logins
# in flight (as "logins_in_flight 0 N" when N > 0).
not_2xx() {
    command -v curl >/dev/null || { echo "(no curl)"; return; }
    curl -s -m 2 "http://127.0.0.1:$gport/metrics" |
        sed -n -e 's/^presence_gateway_requests_total{route="\([^"]*\)",status="\([^"]*\)"} \([0-9]*\)$/\1 \2 \3/p' \
            -e 's/^presence_gateway_logins_in_flight \([0-9]*\)$/logins_in_flight 0 \1/p' |
        awk '$2 !~ /^2/ && $3 > 0 { printf "%s %s %s; ", $1, $2, $3 }'
}
gport=$(free_port)
export PRESENCE_HTTP_LISTEN="127.0.0.1:$gport"
"$PB" tokens -n "$users" -x h >"$TMP_DIR/tokens.txt" || die "tokens failed"
start_broker broker
start_sweeper sweeper
start gateway "$BUILD_DIR/presence-gateway"
GATEWAY_PID=$LAST_PID
wait_port "$gport" || { cat "$TMP_DIR/gateway.log" >&2; die "gateway did not start"; }

# Fill the retention windows first (see the top of this file).
fill=$(( users * 130 ))
log "soak: filling the change log and the histories ($fill bus events)"
fout=$("$PB" load -t fill -x h -u "$users" -n "$fill" -p 4) ||
    die "the fill failed: $fout"
log "fill: $fout"

# A connection does at most ~100 req/s (10 ms apart), fewer with the
# reply's own time; soak.lua caps each thread's share of the rate.
threads=2
conns=$(( (rate + 49) / 50 ))
log "soak: ${seconds}s, ~${rate} req/s ($conns connections), $users users, csv $csv"
start wrk wrk -t"$threads" -c"$conns" -d"${seconds}s" --timeout 5s \
    -s "$BENCH_DIR/wrk/soak.lua" "http://127.0.0.1:$gport" -- "$TMP_DIR/tokens.txt" "$rate" "$threads"
WRK_PID=$LAST_PID
logout_rate=$(( rate / 100 > 0 ? rate / 100 : 1 ))
start logouts "$PB" load -t logout -x h -u "$users" -r "$logout_rate" -d "$seconds" -W
LOGOUT_PID=$LAST_PID

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
echo "t,broker_rss_kib,sweeper_rss_kib,gateway_rss_kib,broker_fds,sweeper_fds,gateway_fds,lmdb_bytes" >"$csv"
t0=$(date +%s)
t=0
while [ "$t" -lt "$seconds" ] && kill -0 "$WRK_PID" 2>/dev/null; do
    for p in $BROKER_PID $SWEEPER_PID $GATEWAY_PID; do
        kill -0 "$p" 2>/dev/null || die "a daemon died (pid $p); logs in $TMP_DIR"
    done
    lmdb=$(stat -c %s "$PRESENCE_DATA_DIR/data.mdb" 2>/dev/null || echo 0)
    echo "$t,$(rss $BROKER_PID),$(rss $SWEEPER_PID),$(rss $GATEWAY_PID),$(fds $BROKER_PID),$(fds $SWEEPER_PID),$(fds $GATEWAY_PID),$lmdb" >>"$csv"
    # Every 10 s: the gateway's answers that were not 2xx so far, by route
    # and status (when errors come, and which).
    [ $((t % 10)) = 0 ] && echo "$t $(not_2xx)" >>"$TMP_DIR/not2xx.log"
    # Sample on the second (the sampling clock, not a wait for anything).
    t=$(( $(date +%s) - t0 ))
    next=$(( t0 + t + 1 ))
    while [ "$(date +%s)" -lt "$next" ]; do sleep 0.05; done
    t=$(( $(date +%s) - t0 ))
done
wait "$WRK_PID"; forget "$WRK_PID"
log "gateway answers not 2xx (route status count): $(not_2xx)"
# Every login is answered within bus_timeout_ms (2 s): none may still be
# in flight once the load has stopped (a suspended connection never
# resumed would hang its client).
inflight=?
for i in 1 2 3 4 5 6; do
    inflight=$(curl -s -m 2 "http://127.0.0.1:$gport/metrics" 2>/dev/null |
        sed -n 's/^presence_gateway_logins_in_flight \([0-9]*\)$/\1/p')
    [ "$inflight" = 0 ] && break
    sleep 0.5
done
log "gateway logins in flight after the load: ${inflight:-?}"
out=$(grep '^WRK' "$TMP_DIR/wrk.log")
stop_pid "$LOGOUT_PID"
st=$("$PB" query stats)
for p in $GATEWAY_PID $SWEEPER_PID $BROKER_PID; do stop_pid "$p"; done
log "wrk: $out"
log "broker: $st"
# The sweeper's last words: "notices N, expires sent E, ignored I, bad
# frames B". A bad frame on the notices stream is a bug, not load.
summary=$(grep 'expires sent' "$TMP_DIR/sweeper.log" | tail -1)
expires=$(printf '%s' "$summary" | sed -n 's/.*expires sent \([0-9]*\),.*/\1/p')
badframes=$(printf '%s' "$summary" | sed -n 's/.*bad frames \([0-9]*\).*/\1/p')

# Flatness: least-squares slope after the warm-up, projected over the run.
warm=$(( seconds / 5 > 10 ? seconds / 5 : 10 ))
verdict=$(awk -F, -v warm="$warm" -v run="$seconds" '
    NR == 1 { for (i = 2; i <= NF; i++) name[i] = $i; n = NF; next }
    $1 >= warm {
        k++
        for (i = 2; i <= n; i++) {
            sx[i] += $1; sy[i] += $i; sxx[i] += $1 * $1; sxy[i] += $1 * $i
            if (k == 1 || $i < lo[i]) lo[i] = $i
            if (k == 1 || $i > hi[i]) hi[i] = $i
        }
    }
    END {
        if (k < 5) { print "FAIL too few samples after the warm-up"; exit }
        bad = 0
        for (i = 2; i <= n; i++) {
            d = k * sxx[i] - sx[i] * sx[i]
            slope = d ? (k * sxy[i] - sx[i] * sy[i]) / d : 0
            mean = sy[i] / k
            floor = name[i] ~ /fds/ ? 4 : (name[i] ~ /lmdb/ ? 4194304 : 4096)
            limit = mean * 0.10 > floor ? mean * 0.10 : floor
            growth = slope * run
            ok = growth < limit
            if (!ok) bad++
            printf "%s %-16s mean %.0f min %.0f max %.0f trend %+.3f/s -> %+.0f over %d s (limit %.0f)\n",
                ok ? "flat " : "TREND", name[i], mean, lo[i], hi[i], slope, growth, run, limit
        }
        print bad ? "FAIL" : "OK"
    }' "$csv")
printf '%s\n' "$verdict" >&2

section "soak (${seconds}s at ~${rate} req/s target, $users users; csv $csv):"
row "heartbeat+login req/s" "$(kv req_s "$out")" "$rate" "" "target 50 % of rated"
row "p99 latency (us)" "$(kv p99_us "$out")" "-"
row "errors" "$(kv errors "$out")" "0" "-"
row "bus events lost (broker stats)" "$(kv lost "$st")" "0" "-"
check "$(kv lost "$st")" "broker counted lost events"
row "sweeper expires sent" "${expires:-?}" "-" "-" "one per session that timed out, about"
row "sweeper bad frames" "${badframes:-?}" "0" "-"
row "wrk timeouts (answers that took over 5 s)" "$(kv timeouts "$out")" "0" "-"
row "logins in flight after the load" "${inflight:-?}" "0" "-"
command -v curl >/dev/null && check "${inflight:-1}" "logins never answered"
check "${badframes:-1}" "the sweeper refused frames (or printed no summary)"
case "$verdict" in
*FAIL*) BENCH_FAILED=1; log "soak: a series has a trend (see above)" ;;
esac
[ "$BENCH_FAILED" = 0 ] || exit 1
exit 0
