#!/bin/bash
# bench/run.sh: the presence benchmarks, one command each (see README.md).
#   bench/run.sh [--quick] http|bus|fanout|expiry|scale|ha|changelog|many|all
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
    log "== http: wrk -t$threads -c$conns -d${dur}s, $users users, POST /v1/heartbeat"
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
    ref=$(wrk -t"$threads" -c"$conns" -d"${dur}s" -s "$lua" "http://127.0.0.1:$nport" -- "$TMP_DIR/tokens.txt" | grep '^WRK')
    stop_pid "$NGINX_PID"
    log "nginx:   $ref"

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
    out=$(wrk -t"$threads" -c"$conns" -d"${dur}s" -s "$lua" "http://127.0.0.1:$gport" -- "$TMP_DIR/tokens.txt" | grep '^WRK')
    log "gateway: $out"
    st=$("$PB" query stats)
    log "broker: $st"
    for p in $GATEWAY_PID $SWEEPER_PID $BROKER_PID; do stop_pid "$p"; done
    unset PRESENCE_HTTP_LISTEN PRESENCE_RATE_LIMIT PRESENCE_HTTP_MAX_CONNECTIONS

    section "http (wrk -t$threads -c$conns -d${dur}s, $users users; ref = nginx return 204):"
    row "heartbeat req/s" "$(kv req_s "$out")" "$(kv req_s "$ref")" "" "goal >= 0.70"
    row "p50 latency (us)" "$(kv p50_us "$out")" "$(kv p50_us "$ref")"
    row "p99 latency (us)" "$(kv p99_us "$out")" "$(kv p99_us "$ref")" "" "goal p99 < 5000 us"
    row "p99.9 latency (us)" "$(kv p999_us "$out")" "$(kv p999_us "$ref")"
    row "errors" "$(kv errors "$out")" "$(kv errors "$ref")" "-" "goal 0"
    row "bus events lost (broker stats)" "$(kv lost "$st")" "0" "-" "goal 0"
    check "$(kv lost "$st")" "broker counted lost events"
    check "$(kv errors "$out")" "gateway answered with errors"
    check "$(kv errors "$ref")" "nginx answered with errors"
    [ -n "$(kv req_s "$out")" ] || check 1 "wrk against the gateway printed nothing"
}

# ---------------------------------------------------------------------------
# load_run NAME ARGS...: one presence-bench load run, echoed to the log.
load_run() {
    name=$1; shift
    o=$("$PB" load "$@") || { log "$name: $o"; check 1 "$name: load driver failed"; }
    log "$name: $o"
    printf '%s' "$o"
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

bench_fanout() {
    need_build presence-broker
    users=$(q 1000 ${BENCH_USERS:-10000})
    calib=$(q 20000 ${BENCH_CALIBRATE_EVENTS:-1000000})
    log "== fanout: login/logout probe under background heartbeat load"
    env_for "$TMP_DIR/fanout-null"
    start_null null
    load_run null-warm -u "$users" -n "$users" >/dev/null
    nrate=$(kv applied_rate "$(load_run null-rated -u "$users" -n "$calib")")
    n10=$(fanout_at 10 "$nrate"); n50=$(fanout_at 50 "$nrate")
    stop_pid "$NULL_PID"

    env_for "$TMP_DIR/fanout"
    start_broker broker
    load_run broker-warm -u "$users" -n "$users" >/dev/null
    brate=$(kv applied_rate "$(load_run broker-rated -u "$users" -n "$calib")")
    b10=$(fanout_at 10 "$brate"); b50=$(fanout_at 50 "$brate")
    stop_pid "$BROKER_PID"
    log "null 10%: $n10"; log "null 50%: $n50"; log "broker 10%: $b10"; log "broker 50%: $b50"

    section "change fan-out (event publish -> change receipt; ref = null broker at the same % of its own rate):"
    row "rated load events/s" "$brate" "$nrate"
    for pct in 10 50; do
        eval "b=\$b$pct n=\$n$pct"
        row "p50 us at $pct% load" "$(kv fanout_p50_us "$b")" "$(kv fanout_p50_us "$n")"
        row "p99 us at $pct% load" "$(kv fanout_p99_us "$b")" "$(kv fanout_p99_us "$n")" "" \
            "$([ $pct = 50 ] && echo 'goal p99 < 2000 us')"
        row "p99.9 us at $pct% load" "$(kv fanout_p999_us "$b")" "$(kv fanout_p999_us "$n")"
        row "changes missing at $pct% load" "$(kv missing "$b")" "$(kv missing "$n")" "-" "goal 0"
        check "$(kv missing "$b")" "changes missing at $pct%"
        check "$(kv lost "$b")" "events lost at $pct%"
    done
}

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
    echo "usage: bench/run.sh [--quick] http|bus|fanout|expiry|scale|ha|changelog|many|all" >&2
    exit 2
}

[ -x "$PB" ] || { log "bench: SKIP: $PB not built (build the tree first)"; exit $SKIP_RC; }
case "$WHAT" in
    http|bus|fanout|expiry|scale|ha|changelog|many|all) ;;
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
