#!/bin/bash
# bench/run.sh: the presence benchmarks, one command each (see README.md).
#   bench/run.sh [--quick] http|bus|fanout|expiry|start|cost|scale|memory|ha|changelog|many|all
# Each starts what it needs on loopback / ipc in a temp dir, stops exactly
# what it started, and prints every figure next to a reference measured in
# the same run, with the ratio. --quick is the tiny bench-smoke setup: it
# checks that everything runs and that nothing is lost, never speed.
# Exit: 0 ok, 1 a correctness check failed (lost events, HTTP errors),
# 77 skipped (tools missing and not root to install them).
set -u
. "$(dirname "$0")/lib.sh"

QUICK=0
if [ "${1:-}" = "--quick" ]; then QUICK=1; shift; fi
WHAT=${1:-}
q() { if [ $QUICK = 1 ]; then echo "$1"; else echo "$2"; fi; }

# ---------------------------------------------------------------------------
bench_http() {
    need wrk:wrk nginx:nginx-light
    need_build presence-broker presence-sweeper presence-gateway
    users=$(q 200 ${BENCH_HTTP_USERS:-10000})
    dur=$(q 2 ${BENCH_SECONDS:-10})
    conns=${BENCH_CONNECTIONS:-50}
    threads=${BENCH_WRK_THREADS:-2}
    # BENCH_HTTP_PAIRS: nginx then the gateway, that many times in turn;
    # the summary is the median of the per-pair ratios (one run on a shared
    # box moves by a third from minute to minute).
    pairs=$(q 1 "${BENCH_HTTP_PAIRS:-3}")
    log "== http: wrk -t$threads -c$conns -d${dur}s, $users users, POST /v1/heartbeat, $pairs pairs (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    env_for "$TMP_DIR/http"
    "$PB" tokens -n "$users" -x h >"$TMP_DIR/tokens.txt" || die "tokens failed"
    lua="$BENCH_DIR/wrk/heartbeat.lua"

    # Reference: nginx return 204, same wrk, same script, same tokens.
    ngx="$TMP_DIR/nginx"; mkdir -p "$ngx"
    nport=$(free_port)
    sed -e "s|@DIR@|$ngx|g" -e "s|@PORT@|$nport|g" -e "s|@WORKERS@|${BENCH_NGINX_WORKERS:-2}|g" \
        "$BENCH_DIR/conf/nginx.conf.in" >"$ngx/nginx.conf"
    nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
    start nginx "$nginx_bin" -p "$ngx" -c "$ngx/nginx.conf"
    NGINX_PID=$LAST_PID
    wait_port "$nport" || { cat "$TMP_DIR/nginx.log" "$ngx/error.log" >&2; die "nginx did not start"; }
    nworkers=$(pgrep -P "$NGINX_PID" | tr '\n' ' ')

    # Both servers stay up; only the one wrk drives uses the CPU.
    export PRESENCE_RATE_LIMIT=0 PRESENCE_HTTP_MAX_CONNECTIONS=10000
    gport=$(free_port)
    export PRESENCE_HTTP_LISTEN="127.0.0.1:$gport"
    start_broker broker
    start_sweeper sweeper
    start gateway "$BUILD_DIR/presence-gateway"
    GATEWAY_PID=$LAST_PID
    wait_port "$gport" || { cat "$TMP_DIR/gateway.log" >&2; die "gateway did not start"; }
    # Warm-up: the first heartbeat of each user is a login (reconnect).
    wrk -t1 -c10 -d1s -s "$lua" "http://127.0.0.1:$gport" -- "$TMP_DIR/tokens.txt" >/dev/null

    section "http (wrk -t$threads -c$conns -d${dur}s, $users users; ref = nginx return 204, run just before each gateway run):"
    hz=$(getconf CLK_TCK)
    RQ=""; RP=""; RC=""; RS=""; errs=0; nerrs=0
    pair=1
    while [ $pair -le "$pairs" ]; do
        # CPU per request (all threads; nginx: its workers) is steadier
        # than req/s on a shared box: it does not count the time waiting.
        # shellcheck disable=SC2086
        nt0=$(sum_of cpu_ticks $nworkers)
        # shellcheck disable=SC2086
        nc0=$(sum_of ctx_switches $nworkers)
        ref=$(wrk -t"$threads" -c"$conns" -d"${dur}s" -s "$lua" "http://127.0.0.1:$nport" -- "$TMP_DIR/tokens.txt" | grep '^WRK')
        # shellcheck disable=SC2086
        nt1=$(sum_of cpu_ticks $nworkers)
        # shellcheck disable=SC2086
        nc1=$(sum_of ctx_switches $nworkers)
        log "pair $pair nginx:   $ref"

        # BENCH_PERF=<file>: perf record -g the gateway during the last
        # measured run; BENCH_STRACE=<file>: its syscall counts instead
        # (per request: divide by the requests wrk reports; strace slows
        # the gateway).
        perf_pid=
        if [ $pair = "$pairs" ] && [ -n "${BENCH_PERF:-}" ]; then
            perf record -e cpu-clock ${BENCH_PERF_CG:--g} -o "$BENCH_PERF" -p "$GATEWAY_PID" -- sleep "$dur" >/dev/null 2>&1 &
            perf_pid=$!
        elif [ $pair = "$pairs" ] && [ -n "${BENCH_STRACE:-}" ]; then
            strace -c -f -o "$BENCH_STRACE" -p "$GATEWAY_PID" 2>/dev/null &
            perf_pid=$!
        fi
        gt0=$(cpu_ticks "$GATEWAY_PID"); gc0=$(ctx_switches "$GATEWAY_PID")
        out=$(wrk -t"$threads" -c"$conns" -d"${dur}s" -s "$lua" "http://127.0.0.1:$gport" -- "$TMP_DIR/tokens.txt" | grep '^WRK')
        gt1=$(cpu_ticks "$GATEWAY_PID"); gc1=$(ctx_switches "$GATEWAY_PID")
        log "pair $pair gateway: $out"
        if [ -n "${BENCH_STRACE:-}" ] && [ -n "$perf_pid" ]; then
            kill -INT "$perf_pid"
        fi
        [ -z "$perf_pid" ] || wait "$perf_pid"
        [ -n "$(kv req_s "$out")" ] || check 1 "wrk against the gateway printed nothing"

        gcpu=$(per_req "$(((gt1 - gt0) * 1000000 / hz))" "$(kv requests "$out")" %.1f)
        ncpu=$(per_req "$(((nt1 - nt0) * 1000000 / hz))" "$(kv requests "$ref")" %.1f)
        # Context switches per request: every wake-up of a thread (the ZMQ
        # I/O thread's per burst, a worker's per epoll round) costs one.
        gsw=$(per_req $((gc1 - gc0)) "$(kv requests "$out")" %.3f)
        nsw=$(per_req $((nc1 - nc0)) "$(kv requests "$ref")" %.3f)
        row "pair $pair: heartbeat req/s" "$(kv req_s "$out")" "$(kv req_s "$ref")" "" "goal >= 0.70"
        row "pair $pair: p50 latency (us)" "$(kv p50_us "$out")" "$(kv p50_us "$ref")"
        row "pair $pair: p99 latency (us)" "$(kv p99_us "$out")" "$(kv p99_us "$ref")" "" "goal ratio <= 1.5"
        row "pair $pair: p99.9 latency (us)" "$(kv p999_us "$out")" "$(kv p999_us "$ref")"
        row "pair $pair: CPU us per request (all threads)" "$gcpu" "$ncpu"
        row "pair $pair: context switches per request" "$gsw" "$nsw"
        RQ="$RQ $(ratio "$(kv req_s "$out")" "$(kv req_s "$ref")")"
        RP="$RP $(ratio "$(kv p99_us "$out")" "$(kv p99_us "$ref")")"
        RC="$RC $(ratio "$gcpu" "$ncpu")"
        RS="$RS $gsw"
        errs=$((errs + $(kv errors "$out") + 0)); nerrs=$((nerrs + $(kv errors "$ref") + 0))
        pair=$((pair + 1))
    done
    st=$("$PB" query stats)
    log "broker: $st"
    for p in $GATEWAY_PID $SWEEPER_PID $BROKER_PID $NGINX_PID; do stop_pid "$p"; done
    unset PRESENCE_HTTP_LISTEN PRESENCE_RATE_LIMIT PRESENCE_HTTP_MAX_CONNECTIONS

    section "http summary: median over $pairs pairs of the per-pair ratio to nginx (load average now $(cut -d' ' -f1-3 /proc/loadavg)):"
    # shellcheck disable=SC2086 # the pairs, split into median's arguments
    {
        row "median req/s ratio" "$(median $RQ)" "1" "-" "pairs:$RQ; goal >= 0.70, stretch 0.85"
        row "median p99 ratio" "$(median $RP)" "1" "-" "pairs:$RP; goal <= 1.5"
        row "median CPU per request ratio" "$(median $RC)" "1" "-" "pairs:$RC"
        row "median context switches per request" "$(median $RS)" "-" "-" "pairs:$RS"
    }
    row "errors" "$errs" "$nerrs" "-" "goal 0"
    row "bus events lost (broker stats)" "$(kv lost "$st")" "0" "-" "goal 0"
    check "$(kv lost "$st")" "broker counted lost events"
    check "$errs" "gateway answered with errors"
    check "$nerrs" "nginx answered with errors"
}

# ---------------------------------------------------------------------------
# rss_sum PID...: VmRSS of the processes, summed, in KiB.
rss_sum() { t=0; for p in "$@"; do t=$((t + $(bench_rss "$p"))); done; echo "$t"; }

bench_memory() {
    need redis-server:redis-server redis-cli:redis-tools
    need_build presence-broker presence-sweeper presence-gateway
    steps=$(q 10000 "${BENCH_MEMORY_STEPS:-100000}")
    log "== memory: whole system RSS with N live users vs redis SET presence:<user> <session> EX 120 (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    section "memory (broker + sweeper + gateway RSS; ref = redis-server holding the same presence; load average $(cut -d' ' -f1-3 /proc/loadavg)):"
    for n in $steps; do
        # presence: idle baseline, then n logins (one session each).
        env_for "$TMP_DIR/memory-$n"
        gport=$(free_port)
        export PRESENCE_HTTP_LISTEN="127.0.0.1:$gport" PRESENCE_MAX_SESSIONS_PER_USER=16
        start_broker "broker-$n"; bpid=$BROKER_PID
        start_sweeper "sweeper-$n"; spid=$SWEEPER_PID
        start "gateway-$n" "$BUILD_DIR/presence-gateway"; gpid=$LAST_PID
        wait_port "$gport" || { cat "$TMP_DIR/gateway-$n.log" >&2; die "gateway did not start"; }
        sleep 1
        idle=$(rss_sum "$bpid" "$spid" "$gpid")
        login_runs "memory-login-$n" "$n"
        # Steady state: the broker gives freed burst memory back after 2 s
        # of quiet (the sweeper holds nothing per live session). Wait
        # until the total has not moved for 3 s (at least 5 s, at most 60).
        prev=0; same=0; i=0
        while [ $i -lt 60 ] && { [ $i -lt 5 ] || [ $same -lt 3 ]; }; do
            sleep 1; now=$(rss_sum "$bpid" "$spid" "$gpid")
            if [ "$now" = "$prev" ]; then same=$((same + 1)); else same=0; fi
            prev=$now; i=$((i + 1))
        done
        st=$("$PB" query stats)
        b=$(bench_rss "$bpid"); sw=$(bench_rss "$spid"); g=$(bench_rss "$gpid")
        total=$((b + sw + g))
        log "memory $n: idle ${idle} KiB, broker $b sweeper $sw gateway $g KiB; $st"
        for p in $gpid $spid $bpid; do stop_pid "$p"; done
        unset PRESENCE_HTTP_LISTEN PRESENCE_MAX_SESSIONS_PER_USER

        # redis: the same users, one key each, with a TTL.
        rdir="$TMP_DIR/redis-$n"; mkdir -p "$rdir"
        rport=$(free_port)
        sed -e "s|@DIR@|$rdir|g" -e "s|@PORT@|$rport|g" "$BENCH_DIR/conf/redis.conf.in" >"$rdir/redis.conf"
        start "redis-$n" "$(command -v redis-server)" "$rdir/redis.conf"
        rpid=$LAST_PID
        wait_port "$rport" || die "redis did not start"
        sleep 0.5
        ridle=$(bench_rss "$rpid")
        awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) printf "SET presence:u%d s1 EX 120\r\n", i }' |
            redis-cli -h 127.0.0.1 -p "$rport" --pipe >"$rdir/pipe.log" 2>&1 || check 1 "redis-cli --pipe failed"
        keys=$(redis-cli -h 127.0.0.1 -p "$rport" dbsize)
        rss=$(bench_rss "$rpid")
        stop_pid "$rpid"

        # Per live session the broker holds (not n: a run that lost events
        # would otherwise look cheaper; the check below still fails it).
        live=$(kv sessions "$st"); [ "${live:-0}" -gt 0 ] || live=$n
        per=$(awk -v t="$total" -v i="$idle" -v n="$live" 'BEGIN { printf "%.0f", (t - i) * 1024 / n }')
        rper=$(awk -v t="$rss" -v i="$ridle" -v n="$n" 'BEGIN { printf "%.0f", (t - i) * 1024 / n }')
        row "$n users: system RSS KiB (broker+sweeper+gateway)" "$total" "$rss" "" "goal < 51200 KiB at 100k"
        row "$n users: idle RSS KiB" "$idle" "$ridle"
        row "$n users: broker / sweeper / gateway RSS KiB" "$b / $sw / $g" "-" "-"
        row "$n users: bytes per live user over idle" "$per" "$rper" "" "goal ratio <= 2"
        row "$n users: live sessions (broker) / keys (redis)" "$(kv sessions "$st")" "$keys" "-"
        [ "$(kv sessions "$st")" = "$n" ] || check 1 "broker holds $(kv sessions "$st") sessions, not $n"
        [ "$keys" = "$n" ] || check 1 "redis holds $keys keys, not $n"
    done
}

# ---------------------------------------------------------------------------
# load_run NAME ARGS...: one presence-bench load run, echoed to the log.
load_run() {
    name=$1; shift
    o=$("$PB" load "$@") || { log "$name: $o"; check 1 "$name: load driver failed"; }
    log "$name: $o"
    printf '%s' "$o"
}

# login_runs NAME N [load args...]: users 0..N-1 logged in through the bus
# (one session each), in runs of at most 100,000 logins: one publisher
# pushing 1M in one go stalls at ~0.5M applied (the rest dies with the
# driver), see RESULTS.md. Extra args (e.g. -x PREFIX) go to every run.
login_runs() {
    local lr_name=$1 lr_n=$2 lr_off=0 lr_c
    shift 2
    while [ $lr_off -lt "$lr_n" ]; do
        lr_c=$((lr_n - lr_off)); [ $lr_c -gt 100000 ] && lr_c=100000
        load_run "$lr_name-$lr_off" -t login -u "$lr_c" -o "$lr_off" -n "$lr_c" "$@" >/dev/null
        lr_off=$((lr_off + lr_c))
    done
}

redis_bench() {
    # redis_bench PORT N USERS PIPELINE -> requests per second
    redis-benchmark -h 127.0.0.1 -p "$1" -c 50 -n "$2" -r "$3" -P "$4" --csv \
        SET 'presence:__rand_int__' 1 EX 120 2>/dev/null |
        awk -F'"' 'NR > 1 && $4 != "" { print int($4); exit }'
}

bench_bus() {
    need redis-server:redis-server redis-benchmark:redis-tools
    need_build presence-broker
    users=$(q 1000 ${BENCH_USERS:-10000})
    events=$(q 50000 ${BENCH_EVENTS:-3000000})
    pubs=${BENCH_PUBLISHERS:-1}
    rated_s=$(q 1 ${BENCH_RATED_SECONDS:-3})
    log "== bus: $pubs publisher(s), $users users, $events heartbeat events"

    # Reference 1: the bare pipe (null broker: decode + seq check only).
    env_for "$TMP_DIR/null"
    start_null null
    load_run null-warm -p "$pubs" -u "$users" -n "$users" >/dev/null
    c0=$(cpu_ticks "$NULL_PID")
    ceil=$(load_run null -p "$pubs" -u "$users" -n "$events")
    null_cpu=$(per_cpu_s "$(kv applied "$ceil")" $(( $(cpu_ticks "$NULL_PID") - c0 )))
    stop_pid "$NULL_PID"

    # presence-broker, fresh database.
    env_for "$TMP_DIR/bus"
    start_broker broker
    load_run broker-warm -p "$pubs" -u "$users" -n "$users" >/dev/null
    c0=$(cpu_ticks "$BROKER_PID")
    full=$(load_run broker -p "$pubs" -u "$users" -n "$events")
    broker_cpu=$(per_cpu_s "$(kv applied "$full")" $(( $(cpu_ticks "$BROKER_PID") - c0 )))
    rate=$(kv applied_rate "$full")
    rated=$(awk -v r="$rate" 'BEGIN { printf "%d", r * 0.9 }')
    at=$(load_run broker-rated -p "$pubs" -u "$users" -r "$rated" -d "$rated_s")
    rss=$(bench_rss "$BROKER_PID")
    stop_pid "$BROKER_PID"

    # Reference 2: redis SET presence:<user> 1 EX 120, plain and -P 16.
    rdir="$TMP_DIR/redis"; mkdir -p "$rdir"
    rport=$(free_port)
    sed -e "s|@DIR@|$rdir|g" -e "s|@PORT@|$rport|g" "$BENCH_DIR/conf/redis.conf.in" >"$rdir/redis.conf"
    start redis "$(command -v redis-server)" "$rdir/redis.conf"
    REDIS_PID=$LAST_PID
    wait_port "$rport" || die "redis did not start"
    rn=$(q 20000 ${BENCH_REDIS_REQUESTS:-500000})
    r1=$(redis_bench "$rport" "$rn" "$users" 1)
    r16=$(redis_bench "$rport" $((rn * 4)) "$users" 16)
    redis_rss=$(bench_rss "$REDIS_PID")
    stop_pid "$REDIS_PID"

    section "bus ingest ($pubs publisher(s) via pres_pub_t over ipc, $users users, $events heartbeats):"
    row "broker applied events/s vs bare pipe" "$rate" "$(kv applied_rate "$ceil")" "" "null broker, same driver"
    row "broker applied events/s vs redis -P 16" "$rate" "$r16" "" "SET presence:<u> 1 EX 120"
    row "broker applied events/s vs redis -P 1" "$rate" "$r1" "" "redis-benchmark -c 50"
    row "events per broker CPU-second vs bare pipe" "$broker_cpu" "$null_cpu" "" "one-core capacity; goal >= 1000000"
    row "events lost at full speed" "$(kv lost "$full")" "$(kv lost "$ceil")" "-" "goal 0"
    row "rated load events/s (0.9 x full)" "$(kv applied_rate "$at")" "$rated" "" "sent at a fixed rate"
    row "events lost at rated load" "$(kv lost "$at")" "0" "-" "goal 0"
    row "broker RSS KiB vs redis" "$rss" "$redis_rss" "" "after the run"
    check "$(kv lost "$full")" "broker lost events at full speed"
    check "$(kv lost "$at")" "broker lost events at the rated load"
    check "$(kv lost "$ceil")" "null broker lost events"
    check "$(kv failed "$full")" "publishers failed"
    BUS_RATE=$rate
}

# ---------------------------------------------------------------------------
# The change log's cost on ingest: login + logout of every user (each
# event is a change, so each is also a log entry and a history entry),
# with changelog_keep = 0 (no log; history still written) and with the
# default log, in the same run on fresh databases.
bench_changelog() {
    need_build presence-broker
    users=$(q 2000 ${BENCH_USERS:-100000})
    log "== changelog: login + logout of $users users, log off vs on"
    for keep in 0 1000000; do
        env_for "$TMP_DIR/log$keep"
        export PRESENCE_CHANGELOG_KEEP=$keep
        start_broker "broker-log$keep"
        out=$(load_run "log$keep" -t fill -x c -u "$users")
        eval "rate_$keep=$(kv applied_rate "$out")"
        check "$(kv lost "$out")" "events lost (changelog_keep=$keep)"
        stop_pid "$BROKER_PID"
        sync
        eval "db_$keep=$(du -sk "$TMP_DIR/log$keep/data" | cut -f1)"
    done
    unset PRESENCE_CHANGELOG_KEEP
    section "change log cost (login+logout of $users users via the bus; ref = changelog_keep=0):"
    row "changes/s with the log vs without" "$rate_1000000" "$rate_0" "" "same driver, fresh DB each"
    row "DB KiB with the log vs without" "$db_1000000" "$db_0"
}

# ---------------------------------------------------------------------------
# get_many of 1,000 ids vs 1,000 gets (same REQ client, same ids) vs
# redis MGET of 1,000 keys (redis-benchmark -c 1), in the same run.
bench_many() {
    need redis-server:redis-server redis-benchmark:redis-tools
    need_build presence-broker
    users=$(q 2000 ${BENCH_USERS:-100000})
    rounds=$(q 5 ${BENCH_QUERIES:-50})
    log "== many: $users users (half live), $rounds rounds of 1,000 ids"
    env_for "$TMP_DIR/many"
    start_broker broker
    load_run fill -t fill -x m -u "$users" >/dev/null
    load_run live -t login -x m -u $((users / 2)) -n $((users / 2)) >/dev/null
    out=$("$PB" query many -x m -u "$users" -n "$rounds") || check 1 "query many failed"
    log "many: $out"
    stop_pid "$BROKER_PID"

    rdir="$TMP_DIR/redis"; mkdir -p "$rdir"
    rport=$(free_port)
    sed -e "s|@DIR@|$rdir|g" -e "s|@PORT@|$rport|g" "$BENCH_DIR/conf/redis.conf.in" >"$rdir/redis.conf"
    start redis "$(command -v redis-server)" "$rdir/redis.conf"
    REDIS_PID=$LAST_PID
    wait_port "$rport" || die "redis did not start"
    awk -v n="$users" 'BEGIN { for (i = 0; i < n; i++) printf "SET presence:m%d online\n", i }' |
        redis-cli -h 127.0.0.1 -p "$rport" --pipe >/dev/null
    keys=$(awk -v n="$users" 'BEGIN { srand(); for (i = 0; i < 1000; i++) printf "presence:m%d ", int(rand() * n) }')
    # shellcheck disable=SC2086
    mget=$(redis-benchmark -h 127.0.0.1 -p "$rport" -c 1 -n $((rounds * 20)) --csv MGET $keys 2>/dev/null |
        awk -F'"' 'NR > 1 && $4 != "" { print $4; exit }')
    stop_pid "$REDIS_PID"
    mget_us=$(awk -v r="$mget" 'BEGIN { if (r + 0 == 0) print "-"; else printf "%.1f", 1e6 / r }')
    section "bulk lookup of 1,000 ids ($users users; p50 of $rounds rounds, one client):"
    row "get_many(1000) us vs 1000 x get" "$(kv many_p50_us "$out")" "$(kv gets_p50_us "$out")" "" "same ids, same REQ"
    row "get_many(1000) us vs redis MGET(1000)" "$(kv many_p50_us "$out")" "$mget_us" "" "redis-benchmark -c 1"
}

bench_rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$1/status" 2>/dev/null; }

# ---------------------------------------------------------------------------
# fanout_at PCT RATED: probe latency under background load at PCT % of RATED.
fanout_at() {
    bg=$(awk -v r="$2" -v p="$1" 'BEGIN { printf "%d", r * p / 100 }')
    dur=$(q 1 ${BENCH_SECONDS:-5})
    if [ "$bg" -gt 0 ]; then
        "$PB" load -u "$users" -r "$bg" -d "$(awk -v d="$dur" 'BEGIN { print d + 0.8 }')" -W \
            >"$TMP_DIR/fanout-bg-$1.log" 2>&1 &
        bgpid=$!
        BENCH_PIDS="$BENCH_PIDS $bgpid"
        sleep 0.5
    fi
    o=$("$PB" fanout -r "$(q 200 ${BENCH_PROBE_RATE:-500})" -d "$dur") || check 1 "fanout probe failed: $o"
    [ "$bg" -gt 0 ] && { wait "$bgpid"; forget "$bgpid"; }
    printf '%s' "$o"
}

# fanout_side NAME KIND RATE: start KIND (broker, null or base = the broker
# in $BENCH_BASELINE_BUILD), warm it, probe at 10 % and 50 % of RATE (the
# same absolute heartbeat load for every side), stop it; sets F10 F50 and,
# for KIND=broker with RATE empty, measures the rate first (FRATE).
fanout_side() {
    env_for "$TMP_DIR/fanout-$1"
    # BENCH_FSYNC_DELAY_US: a slower disk for the brokers (LD_PRELOAD shim).
    pre=""
    [ -n "${BENCH_FSYNC_DELAY_US:-}" ] && pre="$BUILD_DIR/bench/presence-slowsync.so"
    case $2 in
        null) start_null "$1"; pid=$NULL_PID ;;
        base) start "$1" env ${pre:+LD_PRELOAD=$pre} "$BENCH_BASELINE_BUILD/presence-broker"; pid=$LAST_PID
              "$PB" query wait -t 10000 >/dev/null || die "baseline broker did not come up" ;;
        shm) export PRESENCE_DATA_DIR=/dev/shm/presence-bench-$$-$1
             start "$1" "$BUILD_DIR/presence-broker"; pid=$LAST_PID
             "$PB" query wait -t 10000 >/dev/null || die "tmpfs broker did not come up" ;;
        *) start "$1" env ${pre:+LD_PRELOAD=$pre} "$BUILD_DIR/presence-broker"; pid=$LAST_PID
           "$PB" query wait -t 10000 >/dev/null || die "broker did not come up" ;;
    esac
    load_run "$1-warm" -u "$users" -n "$users" >/dev/null
    FRATE=$3
    [ -n "$FRATE" ] || FRATE=$(kv applied_rate "$(load_run "$1-rated" -u "$users" -n "$calib")")
    # SIGUSR1 (our broker; a baseline only with BENCH_BASELINE_USR1=1, an
    # older build would die of it): log the figures so far and start
    # again, so the last two lines are the 10 % and the 50 % phase alone.
    usr1=0
    [ "$2" = broker ] && usr1=1
    [ "$2" = base ] && [ "${BENCH_BASELINE_USR1:-0}" = 1 ] && usr1=1
    [ $usr1 = 1 ] && kill -USR1 "$pid"
    F10=$(fanout_at 10 "$FRATE")
    [ $usr1 = 1 ] && kill -USR1 "$pid"
    # Beside the null echo's 50 % phase (the same CPU load, no broker):
    # the disk's write + fdatasync latency, the floor a durable change
    # pays on top of the echo (bench/fsync_probe.py).
    probe=""
    if [ "$2" = null ] && command -v python3 >/dev/null; then
        python3 "$BENCH_DIR/fsync_probe.py" "$TMP_DIR" 8 "$(q 1 ${BENCH_SECONDS:-5})" >"$TMP_DIR/fsync-$1.txt" 2>&1 &
        probe=$!
    fi
    F50=$(fanout_at 50 "$FRATE")
    FSYNC=""
    if [ -n "$probe" ]; then wait "$probe"; FSYNC=$(cat "$TMP_DIR/fsync-$1.txt"); log "$1 disk: $FSYNC"; fi
    s=$("$PB" query stats 2>/dev/null)
    stop_pid "$pid"
    FIG=$(sed -n 's/.*figures: //p' "$TMP_DIR/$1.log" | tail -1)
    FIG10=""
    [ $usr1 = 1 ] && FIG10=$(sed -n 's/.*figures: //p' "$TMP_DIR/$1.log" | tail -2 | head -1)
    FSTATS=$s
    [ "$2" = shm ] && rm -rf "$PRESENCE_DATA_DIR"
    log "$1 10%: $F10"; log "$1 50%: $F50"
    [ -n "$FIG10" ] && log "$1 figures, 10% phase: $FIG10"
    [ -n "$FIG" ] && log "$1 figures$([ $usr1 = 1 ] && echo ', 50% phase'): $FIG"
}

bench_fanout() {
    need_build presence-broker
    users=$(q 1000 ${BENCH_USERS:-10000})
    calib=$(q 20000 ${BENCH_CALIBRATE_EVENTS:-1000000})
    reps=$(q 1 ${BENCH_REPEAT:-3})
    log "== fanout: login/logout probe under background heartbeat load ($reps rounds; fsync delay ${BENCH_FSYNC_DELAY_US:-0} us; load average $(cut -d' ' -f1-3 /proc/loadavg))"
    section "change fan-out (event publish -> change receipt; ref = null echo broker: same sockets, no state, no disk, same absolute load; fsync +${BENCH_FSYNC_DELAY_US:-0} us; load average $(cut -d' ' -f1-3 /proc/loadavg)):"
    # BENCH_SCHED_PRIORITY (default 1; 0 = skip): each round also runs both
    # sides under SCHED_FIFO at that priority, where this shell may.
    rt=${BENCH_SCHED_PRIORITY:-1}
    [ "$rt" = 0 ] && rt=""
    if [ -n "$rt" ] && ! chrt -f "$rt" true 2>/dev/null; then
        log "fanout: SCHED_FIFO $rt is refused here: the sched_priority pairs are skipped"
        rt=""
    fi
    rnd=1
    while [ $rnd -le "$reps" ]; do
        fanout_side "broker-$rnd" broker ""
        brate=$FRATE; b10=$F10; b50=$F50; bfig=$FIG
        fanout_side "null-$rnd" null "$brate"
        n10=$F10; n50=$F50
        row "round $rnd: rated load events/s (broker)" "$brate" "-" "-"
        for pct in 10 50; do
            eval "b=\$b$pct n=\$n$pct"
            row "round $rnd: p50 us at $pct% load" "$(kv fanout_p50_us "$b")" "$(kv fanout_p50_us "$n")"
            row "round $rnd: p99 us at $pct% load" "$(kv fanout_p99_us "$b")" "$(kv fanout_p99_us "$n")" "" \
                "$([ $pct = 50 ] && echo 'goal ratio <= 1.5')"
            eval "R99_$pct=\"\${R99_$pct:-} $(ratio "$(kv fanout_p99_us "$b")" "$(kv fanout_p99_us "$n")")\""
            eval "R50_$pct=\"\${R50_$pct:-} $(ratio "$(kv fanout_p50_us "$b")" "$(kv fanout_p50_us "$n")")\""
            row "round $rnd: p99.9 us at $pct% load" "$(kv fanout_p999_us "$b")" "$(kv fanout_p999_us "$n")"
            row "round $rnd: changes missing at $pct% load" "$(kv missing "$b")" "$(kv missing "$n")" "-" "goal 0"
            check "$(kv missing "$b")" "changes missing at $pct%"
            check "$(kv lost "$b")" "events lost at $pct%"
        done
        if [ -n "$FSYNC" ]; then
            row "round $rnd: disk write+fdatasync p99 us (null's 50% phase)" "$(kv fsync_p99_us "$FSYNC")" "-" "-" \
                "8 pages + 1; p50 $(kv fsync_p50_us "$FSYNC"), max $(kv fsync_max_us "$FSYNC"); broker p99 - null p99 = $(awk -v a="$(kv fanout_p99_us "$b50")" -v b="$(kv fanout_p99_us "$n50")" 'BEGIN { printf "%.0f", a - b }') us"
        fi
        if [ "${BENCH_FANOUT_TMPFS:-1}" = 1 ] && [ -d /dev/shm ]; then
            # The same broker with its data on tmpfs: fsync costs ~nothing,
            # so this is the software path alone; the rest is the disk.
            fanout_side "shm-$rnd" shm "$brate"
            row "round $rnd: p99 us at 50% load, data on tmpfs" "$(kv fanout_p99_us "$F50")" "$(kv fanout_p99_us "$n50")" "" "the software path without the disk"
            eval "T99_50=\"\${T99_50:-} $(ratio "$(kv fanout_p99_us "$F50")" "$(kv fanout_p99_us "$n50")")\""
            check "$(kv missing "$F50")" "changes missing on tmpfs"
        fi
        [ -n "$bfig" ] && printf '  round %s broker %s\n' "$rnd" "$bfig" && printf '| round %s broker batches | %s | | | |\n' "$rnd" "$bfig" >>"$TMP_DIR/results.md"
        if [ -n "$rt" ]; then
            # Both sides again under SCHED_FIFO (sched_priority: the broker's
            # key; the null echo reads the same), compared alike.
            export PRESENCE_SCHED_PRIORITY=$rt
            fanout_side "rt-broker-$rnd" broker "$brate"
            r10=$F10; r50=$F50
            fanout_side "rt-null-$rnd" null "$brate"
            unset PRESENCE_SCHED_PRIORITY
            for pct in 10 50; do
                eval "b=\$r$pct n=\$F$pct d=\$n$pct"
                row "round $rnd: p99 us at $pct% load, both at sched_priority $rt" "$(kv fanout_p99_us "$b")" "$(kv fanout_p99_us "$n")" "" \
                    "$([ $pct = 50 ] && echo 'goal ratio <= 1.5; ')p50 $(kv fanout_p50_us "$b") / $(kv fanout_p50_us "$n"); broker at $rt / null at 0: $(ratio "$(kv fanout_p99_us "$b")" "$(kv fanout_p99_us "$d")")"
                eval "S99_$pct=\"\${S99_$pct:-} $(ratio "$(kv fanout_p99_us "$b")" "$(kv fanout_p99_us "$n")")\""
                eval "X99_$pct=\"\${X99_$pct:-} $(ratio "$(kv fanout_p99_us "$b")" "$(kv fanout_p99_us "$d")")\""
                check "$(kv missing "$b")" "changes missing at $pct%, sched_priority $rt"
            done
        fi
        if [ -n "${BENCH_BASELINE_BUILD:-}" ]; then
            # The same rounds with another build's broker (e.g. before a change).
            fanout_side "base-$rnd" base "$brate"
            for pct in 10 50; do
                eval "o=\$F$pct n=\$n$pct"
                row "round $rnd: baseline p50 us at $pct% load" "$(kv fanout_p50_us "$o")" "$(kv fanout_p50_us "$n")"
                row "round $rnd: baseline p99 us at $pct% load" "$(kv fanout_p99_us "$o")" "$(kv fanout_p99_us "$n")"
                eval "B99_$pct=\"\${B99_$pct:-} $(ratio "$(kv fanout_p99_us "$o")" "$(kv fanout_p99_us "$n")")\""
                eval "B50_$pct=\"\${B50_$pct:-} $(ratio "$(kv fanout_p50_us "$o")" "$(kv fanout_p50_us "$n")")\""
            done
            ba=$(kv applied "$FSTATS"); bc=$(kv commits "$FSTATS"); bsy=$(kv syncs "$FSTATS")
            row "round $rnd: baseline events per commit / per fsync" "$(ratio "$ba" "$bc") / $(ratio "$ba" "$bsy")" "-" "-" "$ba events, $bc commits, $bsy fsyncs"
        fi
        rnd=$((rnd + 1))
    done
    section "fan-out summary: median over $reps rounds of the per-round ratio to the null echo (load average now $(cut -d' ' -f1-3 /proc/loadavg)):"
    for pct in 10 50; do
        eval "a=\$R50_$pct b=\$R99_$pct c=\${B50_$pct:-} d=\${B99_$pct:-}"
        row "median p50 ratio at $pct% load" "$(median $a)" "1" "-" "rounds:$a"
        row "median p99 ratio at $pct% load" "$(median $b)" "1" "-" "rounds:$b$([ $pct = 50 ] && echo '; goal <= 1.5')"
        [ -n "$c" ] && row "baseline median p50 ratio at $pct% load" "$(median $c)" "1" "-" "rounds:$c"
        [ -n "$d" ] && row "baseline median p99 ratio at $pct% load" "$(median $d)" "1" "-" "rounds:$d"
    done
    [ -n "${T99_50:-}" ] && row "median p99 ratio at 50% load, data on tmpfs" "$(median $T99_50)" "1" "-" "rounds:$T99_50"
    # shellcheck disable=SC2086 # the rounds, split into median's arguments
    for pct in 10 50; do
        eval "a=\${S99_$pct:-} b=\${X99_$pct:-}"
        [ -n "$a" ] && row "median p99 ratio at $pct% load, both at sched_priority $rt" "$(median $a)" "1" "-" "rounds:$a$([ $pct = 50 ] && echo '; goal <= 1.5')"
        [ -n "$b" ] && row "median p99 ratio at $pct% load, broker at $rt, null at 0" "$(median $b)" "1" "-" "rounds:$b"
    done
    return 0
}

# median X...: the median of the numbers given ("-" if none).
median() { printf '%s\n' "$@" | grep -v '^-*$' | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# ---------------------------------------------------------------------------
# ha: the cost of sync replication (leader + standby through etcd) on bus
# ingest and change fan-out, against one broker in the same run; then the
# fail-over time after kill -9 of the leader (docs/ha.md).
# (direct: a broker's own query endpoint, not the leader found in etcd)
ha_stats() { env -u PRESENCE_ETCD_ENDPOINTS "$BUILD_DIR/presencectl" --json stats 2>/dev/null; }

bench_ha() {
    need etcd:etcd-server
    need_build presence-broker presencectl
    users=$(q 1000 ${BENCH_USERS:-10000})
    events=$(q 50000 ${BENCH_EVENTS:-1000000})
    log "== ha: one broker vs leader + standby (replication=${BENCH_REPLICATION:-sync})"
    # Reference: one broker, no etcd.
    env_for "$TMP_DIR/ha-single"
    start_broker single
    load_run single-warm -u "$users" -n "$users" >/dev/null
    one=$(load_run single -u "$users" -n "$events")
    orate=$(kv applied_rate "$one")
    o10=$(fanout_at 10 "$orate"); o50=$(fanout_at 50 "$orate")
    stop_pid "$BROKER_PID"

    # etcd, one member, free ports.
    ecli=$(free_port); epeer=$(free_port)
    start etcd etcd --data-dir "$TMP_DIR/etcd" \
        --listen-client-urls "http://127.0.0.1:$ecli" --advertise-client-urls "http://127.0.0.1:$ecli" \
        --listen-peer-urls "http://127.0.0.1:$epeer" --initial-advertise-peer-urls "http://127.0.0.1:$epeer" \
        --initial-cluster "default=http://127.0.0.1:$epeer"
    wait_port "$ecli" || die "etcd did not start"
    export PRESENCE_ETCD_ENDPOINTS="http://127.0.0.1:$ecli" PRESENCE_ETCD_PREFIX=/bench
    export PRESENCE_REPLICATION=${BENCH_REPLICATION:-sync}
    env_for "$TMP_DIR/ha-b"; mkdir -p "$TMP_DIR/ha-b/data" "$TMP_DIR/ha-b/run"
    env_for "$TMP_DIR/ha-a"
    PRESENCE_NODE_NAME=a start leader "$BUILD_DIR/presence-broker"; APID=$LAST_PID
    i=0; until ha_stats | grep -q '"role":"leader"'; do
        i=$((i + 1)); [ $i -gt 200 ] && die "no leader"; sleep 0.05; done
    PRESENCE_NODE_NAME=b PRESENCE_DATA_DIR="$TMP_DIR/ha-b/data" PRESENCE_RUN_DIR="$TMP_DIR/ha-b/run" \
        start standby "$BUILD_DIR/presence-broker"; BPID=$LAST_PID
    i=0; until PRESENCE_RUN_DIR="$TMP_DIR/ha-b/run" ha_stats | grep -q '"role":"standby"'; do
        i=$((i + 1)); [ $i -gt 200 ] && die "no standby"; sleep 0.05; done
    sleep 0.5
    # The drivers talk to the leader's own endpoints (no etcd lookup).
    ( unset PRESENCE_ETCD_ENDPOINTS
      load_run ha-warm -u "$users" -n "$users" >/dev/null
      rep=$(load_run ha -u "$users" -n "$events")
      rrate=$(kv applied_rate "$rep")
      r10=$(fanout_at 10 "$rrate"); r50=$(fanout_at 50 "$rrate")
      printf 'rep="%s" r10="%s" r50="%s"\n' "$rep" "$r10" "$r50" >"$TMP_DIR/ha-results"
    )
    . "$TMP_DIR/ha-results"
    lag=$(ha_stats | sed -n 's/.*"lag":\([0-9]*\).*/\1/p')
    # Fail-over: kill -9 the leader; time until the standby says leader.
    t0=$(date +%s%N)
    kill -9 "$APID"; wait "$APID" 2>/dev/null; forget "$APID"
    until PRESENCE_RUN_DIR="$TMP_DIR/ha-b/run" ha_stats | grep -q '"role":"leader"'; do
        [ $(( ($(date +%s%N) - t0) / 1000000 )) -gt 20000 ] && { check 1 "no fail-over in 20 s"; break; }
        sleep 0.02
    done
    fo_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    stop_pid "$BPID"
    unset PRESENCE_ETCD_ENDPOINTS PRESENCE_ETCD_PREFIX PRESENCE_REPLICATION

    section "fail-over (leader + standby, replication=${BENCH_REPLICATION:-sync}, failover_ttl 3; ref = one broker, same run):"
    row "ingest applied events/s" "$(kv applied_rate "$rep")" "$orate"
    for pct in 10 50; do
        eval "hr=\$r$pct ho=\$o$pct"  # (row() uses r)
        row "fan-out p50 us at $pct% load" "$(kv fanout_p50_us "$hr")" "$(kv fanout_p50_us "$ho")"
        row "fan-out p99 us at $pct% load" "$(kv fanout_p99_us "$hr")" "$(kv fanout_p99_us "$ho")"
        check "$(kv missing "$hr")" "changes missing at $pct% (ha)"
    done
    row "events lost" "$(kv lost "$rep")" "$(kv lost "$one")" "-" "goal 0"
    row "standby lag after the run (changes)" "$lag" "0" "-"
    row "fail-over ms (kill -9 -> standby leads)" "$fo_ms" "3000" "" "ref = failover_ttl"
    check "$(kv lost "$rep")" "events lost with a standby"
}

# ---------------------------------------------------------------------------
bench_expiry() {
    need_build presence-broker presence-sweeper
    n=$(q 2000 ${BENCH_SESSIONS:-100000})
    t=$(q 2 ${BENCH_TIMEOUT:-10})
    log "== expiry: $n sessions logged in at once, timeout ${t}s"
    env_for "$TMP_DIR/expiry"
    export PRESENCE_TIMEOUT=$t
    start_broker broker
    start_sweeper sweeper
    o=$("$PB" expiry -n "$n") || check 1 "expiry probe failed"
    log "expiry: $o"
    stop_pid "$SWEEPER_PID"; stop_pid "$BROKER_PID"
    unset PRESENCE_TIMEOUT
    old_max=$((t * 1000 + 60000))
    section "expiry ($n sessions, deadlines within $(kv deadline_spread_ms "$o") ms; ref = replaced design: timeout + up to 60 s):"
    row "sessions offline" "$(kv offline "$o")" "$n" "" "goal all"
    row "within 1 s of their deadline" "$(kv within_1s "$o")" "$n" "" "goal all"
    row "lateness p50 ms" "$(kv late_p50_ms "$o")" "30000" "" "ref: sweep every 60 s, mean 30 s"
    row "lateness p99 ms" "$(kv late_p99_ms "$o")" "59400" ""
    row "lateness max ms" "$(kv late_max_ms "$o")" "60000" "" "goal <= 1000"
    row "login burst s" "$(kv burst_s "$o")" "-" "-" "$n logins"
    check "$(kv missing "$o")" "sessions not expired"
    check "$(kv early "$o")" "sessions expired before their deadline"
    check "$(kv lost "$o")" "events lost"
    [ "$(kv offline "$o")" = "$n" ] || check 1 "not every session went offline"
}

# ---------------------------------------------------------------------------
# A sweeper started under a large live set: N sessions kept alive by steady
# heartbeats, then P probe sessions logged in last, and the sweeper started
# about a second before the probes' deadlines: how soon is it ready, how
# late do the due sessions end, and what does it hold? It keeps nothing per
# session (it answers the broker's due notices), so the reference is the
# same with no live sessions, same run: the figures should match.
bench_start() {
    need_build presence-broker presence-sweeper
    n=$(q 20000 ${BENCH_SESSIONS:-1000000})
    np=$(q 1000 ${BENCH_PROBE:-10000})
    t=$(q 8 ${BENCH_TIMEOUT:-30})
    log "== start: sweeper start with $n live sessions, $np due just after (timeout ${t}s; load average $(cut -d' ' -f1-3 /proc/loadavg))"
    section "start ($n live sessions kept alive, $np due a second after the sweeper starts; ref = no live sessions, same run; load average $(cut -d' ' -f1-3 /proc/loadavg)):"
    for mode in live empty; do
        env_for "$TMP_DIR/start-$mode"
        export PRESENCE_TIMEOUT=$t
        start_broker "start-broker-$mode"
        hb=
        if [ $mode = live ]; then
            login_runs start-login "$n" -x bg
            # Each live session beats every t/3 s from now to the end.
            "$PB" load -t heartbeat -x bg -u "$n" -r $((n * 3 / t)) -d $((3 * t + 30)) -W \
                >"$TMP_DIR/start-hb.log" 2>&1 &
            hb=$!
            BENCH_PIDS="$BENCH_PIDS $hb"
        fi
        "$PB" expiry -n "$np" >"$TMP_DIR/start-probe-$mode.out" 2>"$TMP_DIR/start-probe-$mode.err" &
        probe=$!
        sleep $((t - 1))
        t0=$(date +%s%N)
        start_sweeper "start-sweeper-$mode"
        i=0
        until grep -q '^.*ready:' "$TMP_DIR/start-sweeper-$mode.log" || [ $i -ge 400 ]; do sleep 0.05; i=$((i + 1)); done
        ready_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
        grep -q 'ready:' "$TMP_DIR/start-sweeper-$mode.log" || check 1 "the sweeper was not ready ($mode)"
        wait $probe || check 1 "start probe ($mode) failed: $(cat "$TMP_DIR/start-probe-$mode.err")"
        rss=$(bench_rss "$SWEEPER_PID")
        o=$(cat "$TMP_DIR/start-probe-$mode.out")
        log "start $mode: ready within ${ready_ms} ms (polled every 50 ms, 0.5 s at least), sweeper RSS ${rss} KiB; $o"
        [ -n "$hb" ] && { kill "$hb" 2>/dev/null; wait "$hb" 2>/dev/null || true; }
        stop_pid "$SWEEPER_PID"; stop_pid "$BROKER_PID"
        unset PRESENCE_TIMEOUT
        eval "${mode}_ready=$ready_ms ${mode}_rss=$rss"
        eval "${mode}_within=$(kv within_1s "$o") ${mode}_max=$(kv late_max_ms "$o") ${mode}_p99=$(kv late_p99_ms "$o")"
        check "$(kv missing "$o")" "sessions not expired ($mode)"
    done
    row "sweeper ready ms (from its start; at least 500, polled)" "$live_ready" "$empty_ready" "$(ratio "$live_ready" "$empty_ready")"
    row "sweeper RSS KiB" "$live_rss" "$empty_rss" "$(ratio "$live_rss" "$empty_rss")" "goal ratio ~1: nothing per live session"
    row "due sessions ended within 1 s" "$live_within" "$empty_within" "" "of $np"
    row "their lateness p99 / max ms" "$live_p99 / $live_max" "$empty_p99 / $empty_max" "$(ratio "$live_max" "$empty_max")"
}

# ---------------------------------------------------------------------------
# What expiry costs per live session: N sessions kept beating (each every
# t/3 s) for K timeout periods while P silent ones expire. Counted: the
# sweeper's expires (its summary line at stop), deadline notices it read,
# and the CPU seconds of broker and sweeper. Reference: the same load on
# the build in BENCH_REF_BUILD_DIR (e.g. the design before the deadline
# wheel, whose sweeper sent an expire per live session per period), in the
# same invocation; without it, this build alone.
bench_cost() {
    need_build presence-broker presence-sweeper
    n=$(q 20000 ${BENCH_SESSIONS:-100000})
    np=$(q 1000 ${BENCH_PROBE:-10000})
    t=$(q 4 ${BENCH_TIMEOUT:-10})
    k=3
    ref=${BENCH_REF_BUILD_DIR:-}
    log "== cost: $n live sessions beating for $k periods of ${t}s, $np expiring; ref build ${ref:-none} (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    section "sweeper cost ($n live sessions beating for $k x ${t}s, $np expiring; ref = ${ref:-none}, same load, same run; load average $(cut -d' ' -f1-3 /proc/loadavg)):"
    builds="this"
    [ -n "$ref" ] && [ -x "$ref/presence-broker" ] && [ -x "$ref/presence-sweeper" ] && builds="this ref"
    own=$BUILD_DIR
    for b in $builds; do
        [ $b = ref ] && BUILD_DIR=$ref
        env_for "$TMP_DIR/cost-$b"
        export PRESENCE_TIMEOUT=$t
        start_broker "cost-broker-$b"
        start_sweeper "cost-sweeper-$b"
        login_runs "cost-login-$b" "$n" -x live
        bc0=$(cpu_ticks "$BROKER_PID"); sc0=$(cpu_ticks "$SWEEPER_PID")
        "$PB" load -t heartbeat -x live -u "$n" -r $((n * 3 / t)) -d $((k * t)) \
            >"$TMP_DIR/cost-hb-$b.log" 2>&1 &
        hb=$!
        BENCH_PIDS="$BENCH_PIDS $hb"
        "$PB" expiry -n "$np" >"$TMP_DIR/cost-probe-$b.out" 2>"$TMP_DIR/cost-probe-$b.err" ||
            check 1 "cost probe ($b) failed: $(cat "$TMP_DIR/cost-probe-$b.err")"
        wait "$hb" || check 1 "heartbeats ($b) failed: $(tail -3 "$TMP_DIR/cost-hb-$b.log")"
        bc=$(( $(cpu_ticks "$BROKER_PID") - bc0 )); sc=$(( $(cpu_ticks "$SWEEPER_PID") - sc0 ))
        live=$("$PB" query stats 2>/dev/null | sed -n 's/.*sessions[ =:]*\([0-9][0-9]*\).*/\1/p' | head -1)
        stop_pid "$SWEEPER_PID"
        sum=$(grep 'expires sent' "$TMP_DIR/cost-sweeper-$b.log" | tail -1)
        stop_pid "$BROKER_PID"
        unset PRESENCE_TIMEOUT
        o=$(cat "$TMP_DIR/cost-probe-$b.out")
        log "cost $b: sweeper: $sum; live at the end: ${live:-?}; CPU ticks broker $bc sweeper $sc; probe: $o"
        exp=$(printf '%s' "$sum" | sed -n 's/.*expires sent \([0-9]*\).*/\1/p')
        eval "${b}_exp=${exp:-0} ${b}_bc=$bc ${b}_sc=$sc"
        eval "${b}_within=$(kv within_1s "$o") ${b}_max=$(kv late_max_ms "$o")"
        check "$(kv missing "$o")" "sessions not expired ($b)"
        # A count, not a speed: this build's sweeper answers due sessions
        # only (a repeat notice, 1 s later, may add a few), never live ones.
        [ $b = this ] && [ "${exp:-0}" -gt $((2 * np + 100)) ] &&
            check 1 "the sweeper sent $exp expires for $np expiring sessions"
        BUILD_DIR=$own
    done
    ref_exp=${ref_exp:--}; ref_bc=${ref_bc:--}; ref_sc=${ref_sc:--}; ref_within=${ref_within:--}; ref_max=${ref_max:--}
    row "expires sent by the sweeper" "$this_exp" "$ref_exp" "$(ratio "$this_exp" "$ref_exp")" "goal ~$np: one per expiring session, none per live one"
    row "broker CPU ticks (1/100 s) over the run" "$this_bc" "$ref_bc" "$(ratio "$this_bc" "$ref_bc")"
    row "sweeper CPU ticks over the run" "$this_sc" "$ref_sc" "$(ratio "$this_sc" "$ref_sc")"
    row "expiring sessions ended within 1 s / max late ms" "$this_within / $this_max" "$ref_within / $ref_max" "" "of $np"
}

# ---------------------------------------------------------------------------
bench_scale() {
    need_build presence-broker
    steps=$(q "1000 5000" "${BENCH_SCALE_STEPS:-10000 100000 1000000}")
    live=$(q 500 ${BENCH_USERS:-10000})
    hb=$(q 20000 ${BENCH_EVENTS:-1000000})
    nq=$(q 50 ${BENCH_QUERIES:-500})
    log "== scale: users in LMDB: $steps ($live live sessions, $hb heartbeats per step)"
    env_for "$TMP_DIR/scale"
    start_broker broker
    load_run live -x live -u "$live" -n "$live" >/dev/null
    prev=0
    section "scale (users filled through the bus: login + logout each; ref = the first step):"
    for n in $steps; do
        add=$((n - prev))
        f=$(load_run "fill-$n" -t fill -x s -o "$prev" -u "$add")
        h=$(load_run "hb-$n" -x live -u "$live" -n "$hb")
        ql=$("$PB" query lat -x s -u "$n" -n "$nq") || check 1 "queries failed at $n"
        rss=$(bench_rss "$BROKER_PID")
        sync
        db_kib=$(du -sk "$PRESENCE_DATA_DIR" | cut -f1)
        stop_pid "$BROKER_PID"
        t0=$(date +%s%N)
        start scale-broker-$n "$BUILD_DIR/presence-broker"
        BROKER_PID=$LAST_PID
        w=$("$PB" query wait -t 60000) || die "broker did not restart"
        cold_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
        fill=$(awk -v r="$(kv applied_rate "$f")" 'BEGIN { printf "%d", r / 2 }')
        bpu=$(awk -v k="$db_kib" -v n="$n" -v l="$live" 'BEGIN { printf "%d", k * 1024 / (n + l) }')
        if [ $prev = 0 ]; then
            r_fill=$fill r_hb=$(kv applied_rate "$h") r_get=$(kv get_p50_us "$ql")
            r_list=$(kv list_p50_us "$ql") r_stats=$(kv stats_p50_us "$ql") r_rss=$rss
            r_bpu=$bpu r_cold=$cold_ms
        fi
        section " $n users:"
        row "  fill users/s (login+logout)" "$fill" "$r_fill"
        row "  heartbeat ingest events/s" "$(kv applied_rate "$h")" "$r_hb" "" "goal flat"
        row "  get p50/p99 us" "$(kv get_p50_us "$ql")/$(kv get_p99_us "$ql")" "$r_get" "$(ratio "$(kv get_p50_us "$ql")" "$r_get")"
        row "  list (100) p50/p99 us" "$(kv list_p50_us "$ql")/$(kv list_p99_us "$ql")" "$r_list" "$(ratio "$(kv list_p50_us "$ql")" "$r_list")"
        row "  stats p50/p99 us" "$(kv stats_p50_us "$ql")/$(kv stats_p99_us "$ql")" "$r_stats" "$(ratio "$(kv stats_p50_us "$ql")" "$r_stats")" "goal O(1)"
        row "  broker RSS KiB" "$rss" "$r_rss"
        row "  DB bytes per user" "$bpu" "$r_bpu"
        row "  cold start ms (exec -> first answer)" "$cold_ms" "$r_cold" "" "goal < 1000 at 10M"
        check "$(kv lost "$f")" "events lost filling $n"
        check "$(kv lost "$h")" "events lost in heartbeats at $n"
        prev=$n
    done
    stop_pid "$BROKER_PID"
}

# ---------------------------------------------------------------------------
usage() {
    echo "usage: bench/run.sh [--quick] http|bus|fanout|expiry|start|cost|scale|memory|ha|changelog|many|all" >&2
    exit 2
}

[ -x "$PB" ] || { log "bench: SKIP: $PB not built (build the tree first)"; exit $SKIP_RC; }
case "$WHAT" in
    http|bus|fanout|expiry|start|cost|scale|memory|ha|changelog|many|all) ;;
    snapshot) WHAT=start ;;  # its name while the sweeper loaded snapshots
    *) usage ;;
esac
bench_init
echo "machine: $(machine)"
echo "build: $BUILD_DIR  quick=$QUICK"
# run_one NAME: one benchmark in a subshell that stops what it started
# even when it dies; 0 ok, 1 failed check, 77 skipped.
run_one() {
    (
        trap 'for p in $BENCH_PIDS; do stop_pid "$p"; done' EXIT
        "bench_$1"
        exit $BENCH_FAILED
    )
}
if [ "$WHAT" = all ]; then
    skipped=0
    for b in bus fanout expiry scale http changelog many; do
        run_one "$b"; rc=$?
        if [ $rc = $SKIP_RC ]; then log "bench: $b skipped"; skipped=1
        elif [ $rc != 0 ]; then BENCH_FAILED=1; fi
    done
else
    run_one "$WHAT"; rc=$?
    [ $rc = $SKIP_RC ] && exit $SKIP_RC
    [ $rc = 0 ] || BENCH_FAILED=1
fi
if [ "${BENCH_MARKDOWN:-}" ] && [ -f "$TMP_DIR/results.md" ]; then
    { echo; echo "| figure | presence | reference | ratio | note |"; echo "|---|---|---|---|---|"; cat "$TMP_DIR/results.md"; } >>"$BENCH_MARKDOWN"
fi
[ $BENCH_FAILED = 0 ] || { log "bench: some checks FAILED"; exit 1; }
echo "bench: $WHAT done, every check passed"
