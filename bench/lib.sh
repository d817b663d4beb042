# bench/lib.sh: helpers sourced by bench/run.sh. Temp dir, processes we
# start (and only those are stopped), package installation, result lines.

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
BUILD_DIR=${PRESENCE_BUILD_DIR:-$REPO_DIR/build}
PB="$BUILD_DIR/bench/presence-bench"
SKIP_RC=77
BENCH_PIDS=""
BENCH_FAILED=0

log() { printf '%s\n' "$*" >&2; }
die() { log "bench: $*"; exit 1; }

# Keep the temp dir on failure or when BENCH_KEEP=1.
cleanup() {
    rc=$?
    for pid in $BENCH_PIDS; do stop_pid "$pid"; done
    if [ -n "${TMP_DIR:-}" ] && [ -d "$TMP_DIR" ]; then
        if [ "${BENCH_KEEP:-0}" = 1 ] || { [ $rc -ne 0 ] && [ $rc -ne $SKIP_RC ]; }; then
            log "bench: logs kept in $TMP_DIR"
        else
            rm -rf "$TMP_DIR"
        fi
    fi
    exit $rc
}

bench_init() {
    TMP_DIR=$(mktemp -d /tmp/pres-bench-XXXXXX)
    chmod 755 "$TMP_DIR"   # nginx workers (nobody) read nothing here, but be safe
    trap cleanup EXIT
    trap 'exit 130' INT TERM
}

# need CMD:PACKAGE ...: install missing Debian packages as root, else skip.
need() {
    missing=""
    for pair in "$@"; do
        cmd=${pair%%:*}; pkg=${pair#*:}
        command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing="$missing $pkg"
    done
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "bench: installing$missing"
        export DEBIAN_FRONTEND=noninteractive
        # Debian's postinst may start the packages' own system services
        # (nginx on :80, redis on :6379); the benchmarks never use them:
        # they start their own instances from conf/ in the temp dir.
        apt-get install -y -q $missing >"$TMP_DIR/apt.log" 2>&1 ||
            { apt-get update -q >>"$TMP_DIR/apt.log" 2>&1 &&
              apt-get install -y -q $missing >>"$TMP_DIR/apt.log" 2>&1; } ||
            { log "bench: apt-get install$missing failed (see $TMP_DIR/apt.log)"; exit $SKIP_RC; }
    else
        log "bench: SKIP: missing$missing (run as root to install them)"
        exit $SKIP_RC
    fi
}

need_build() {
    for p in "$@"; do
        [ -x "$BUILD_DIR/$p" ] || {
            log "bench: SKIP: $BUILD_DIR/$p not built (cmake --build $BUILD_DIR)"
            exit $SKIP_RC
        }
    done
}

# start NAME CMD...: run in the background, log to $TMP_DIR/NAME.log; sets
# LAST_PID and remembers it for cleanup.
start() {
    name=$1; shift
    "$@" >"$TMP_DIR/$name.log" 2>&1 &
    LAST_PID=$!
    BENCH_PIDS="$BENCH_PIDS $LAST_PID"
}

# stop_pid PID: TERM, wait up to 10 s, then KILL. Only pids we started.
stop_pid() {
    pid=$1
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; forget "$pid"; return 0; }
    kill -TERM "$pid" 2>/dev/null
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    forget "$pid"
}

forget() {
    new=""
    for p in $BENCH_PIDS; do [ "$p" = "$1" ] || new="$new $p"; done
    BENCH_PIDS=$new
}

# env_for DIR: the environment every daemon and driver of one setup uses.
env_for() {
    export PRESENCE_DATA_DIR="$1/data" PRESENCE_RUN_DIR="$1/run"
    mkdir -p "$1"
}

# start_broker NAME: presence-broker in the current env; sets BROKER_PID.
start_broker() {
    start "$1" "$BUILD_DIR/presence-broker"
    BROKER_PID=$LAST_PID
    out=$("$PB" query wait -t 10000) || { tail -20 "$TMP_DIR/$1.log" >&2; die "broker did not come up"; }
    log "bench: broker up ($out)"
}

start_null() {
    start "$1" "$PB" null
    NULL_PID=$LAST_PID
    "$PB" query wait -t 10000 >/dev/null || die "null broker did not come up"
}

start_sweeper() {
    start "$1" "$BUILD_DIR/presence-sweeper"
    SWEEPER_PID=$LAST_PID
    sleep 0.5
    kill -0 "$SWEEPER_PID" 2>/dev/null || { cat "$TMP_DIR/$1.log" >&2; die "sweeper died"; }
}

# cpu_ticks PID: user + system CPU time of PID in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# ctx_switches PID: context switches of all the process's threads so far
# (voluntary and not; a thread that ended is not counted).
ctx_switches() {
    cat /proc/"$1"/task/*/status 2>/dev/null |
        awk '/^(non)?voluntary_ctxt_switches:/ { n += $2 } END { print n + 0 }'
}

# sum_of FN PID...: FN (cpu_ticks, ctx_switches) of each PID, summed.
sum_of() {
    local so_fn=$1 so_t=0 so_p
    shift
    for so_p in "$@"; do so_t=$((so_t + $($so_fn "$so_p"))); done
    echo "$so_t"
}

# per_req AMOUNT REQUESTS FMT: AMOUNT / REQUESTS printed with FMT ("-" when
# there were no requests).
per_req() { awk -v a="$1" -v n="$2" -v f="$3" 'BEGIN { if (n + 0) printf f, a / n; else print "-" }'; }

# per_cpu_s EVENTS TICKS: events per CPU-second of the process.
per_cpu_s() { awk -v e="$1" -v t="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN { if (t + 0 == 0) print "-"; else printf "%d", e / (t / hz) }'; }

# A free TCP port on loopback.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
        echo $((20000 + $$ % 20000))
}

wait_port() {
    i=0
    while [ $i -lt 100 ]; do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1; i=$((i + 1))
    done
    return 1
}

# kv KEY TEXT: the value of KEY=value in TEXT.
kv() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }

# ratio A B: A/B with 2 decimals ("-" when B is 0 or empty).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }

# row FIGURE PRESENCE REFERENCE [RATIO] [NOTE]: one result line, printed and kept.
row() {
    r=${4:-$(ratio "$2" "$3")}
    printf '  %-44s %14s  ref %14s  ratio %6s  %s\n' "$1" "$2" "$3" "$r" "${5:-}"
    printf '| %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$r" "${5:-}" >>"$TMP_DIR/results.md"
}

# section TITLE: a heading line in the output and the markdown table.
section() {
    printf '%s\n' "$1"
    printf '| **%s** | | | | |\n' "$1" >>"$TMP_DIR/results.md"
}

# check COND MESSAGE: a failed correctness check (lost events, errors).
check() {
    if [ "$1" != 0 ]; then
        log "bench: FAIL: $2"
        BENCH_FAILED=1
    fi
}

machine() {
    cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
    rev=$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)
    echo "nproc=$(nproc) cpu=\"$cpu\" kernel=$(uname -r) rev=$rev date=$(date -u +%Y-%m-%dT%H:%M:%SZ) load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
}
