#!/usr/bin/env bash
# it.unit_syscalls: the system-call filter of the systemd units
# (SystemCallFilter=@system-service ~@privileged, MemoryDenyWriteExecute=)
# leaves the daemons every call they make. Runs tests/it/walkthrough.sh with
# broker, sweeper and gateway under strace -f, then checks each call made
# against the filter as systemd-analyze expands it, and that no mapping asks
# for writable and executable memory. (This box may have no systemd as PID
# 1 to run the units for real; a call the filter refuses would kill or
# break a daemon only in production.)
#   check-syscalls.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$(cd "${1:?BUILD_DIR}" && pwd)
src=$(cd "${2:?SOURCE_DIR}" && pwd)
tmp=$(mktemp -d /tmp/presence-syscalls.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# A build dir whose daemons run under strace; presencectl is the real one.
mkdir "$tmp/bin" "$tmp/trace"
# strace detaches on SIGTERM and leaves its daemon running (each run left
# three behind): the wrapper forwards the signal to the daemon and waits.
for d in presence-broker presence-sweeper presence-gateway; do
    printf '#!/bin/sh\nstrace -f -qq -o "%s/%s.$$" "%s/%s" "$@" &\ns=$!\n%s\nwait $s\nwait $s\n' \
        "$tmp/trace" "$d" "$build" "$d" \
        "trap 'pkill -TERM -P \$s' TERM INT" >"$tmp/bin/$d"
    chmod +x "$tmp/bin/$d"
done
ln -s "$build/presencectl" "$tmp/bin/presencectl"
bash "$src/tests/it/walkthrough.sh" "$tmp/bin" "$src" >"$tmp/walk.log" 2>&1 || {
    cat "$tmp/walk.log" >&2
    echo "check-syscalls: FAIL: the walkthrough failed under strace" >&2
    exit 1
}

# What a unit allows: its SystemCallFilter= lines in order, an allow list
# first, then "~" lines taking groups away; groups expanded recursively as
# systemd-analyze does.
expand() {
    systemd-analyze syscall-filter "$1" | sed -e 's/#.*//' -e 's/^[[:space:]]*//' |
        grep -v '^$' | tail -n +2 | while read -r x; do
            case $x in @*) expand "$x" ;; *) echo "$x" ;; esac
        done
}
allowed() {  # allowed UNIT.in OUT
    : >"$2"
    sed -n 's/^SystemCallFilter=//p' "$1" | while read -r line; do
        case $line in
        "~"*)
            for g in ${line#\~}; do expand "$g"; done | sort -u >"$2.minus"
            comm -23 "$2" "$2.minus" >"$2.new" && mv "$2.new" "$2"
            ;;
        *)
            { cat "$2"; for g in $line; do expand "$g"; done; } | sort -u >"$2.new"
            mv "$2.new" "$2"
            ;;
        esac
    done
}

failed=0
for d in presence-broker presence-sweeper presence-gateway; do
    files=$(ls "$tmp/trace/$d".* 2>/dev/null)
    [ -n "$files" ] || { echo "check-syscalls: FAIL: no trace of $d" >&2; failed=1; continue; }
    # shellcheck disable=SC2086
    sed -n 's/^[0-9]* \([a-z_0-9]*\)(.*/\1/p' $files | sort -u >"$tmp/$d.used"
    allowed "$src/deploy/systemd/$d.service.in" "$tmp/$d.allowed"
    [ -s "$tmp/$d.allowed" ] || { echo "check-syscalls: FAIL: $d.service.in has no SystemCallFilter=" >&2; failed=1; }
    extra=$(comm -23 "$tmp/$d.used" "$tmp/$d.allowed" | tr '\n' ' ')
    echo "check-syscalls: $d: $(wc -l <"$tmp/$d.used") distinct calls${extra:+; outside the filter: $extra}"
    [ -z "$extra" ] || failed=1
    # shellcheck disable=SC2086
    if grep -hE 'PROT_WRITE\|PROT_EXEC|mprotect\(.*PROT_EXEC' $files | head -3 | grep .; then
        echo "check-syscalls: FAIL: $d maps writable+executable memory" >&2
        failed=1
    fi
done
[ $failed = 0 ] && echo "check-syscalls: ok"
exit $failed
