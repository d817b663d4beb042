#!/usr/bin/env bash
# unit.systemd_units: the systemd units of deploy/systemd/ pass
# `systemd-analyze verify` silently and each scores <= 2.5 in
# `systemd-analyze security --offline=true`; the sysusers.d and tmpfiles.d
# entries make the users and directories the units expect.
#   check-units.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$(cd "${1:?BUILD_DIR}" && pwd)
src=$(cd "${2:?SOURCE_DIR}" && pwd)
tmp=$(mktemp -d /tmp/presence-units.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failed=0
fail() { echo "check-units: FAIL: $*" >&2; failed=1; }

# The units as cmake --install configures them, ExecStart= pointing at the
# build dir so that verify finds the programs.
for u in broker sweeper gateway; do
    sed -e "s#@CMAKE_INSTALL_FULL_BINDIR@#$build#" \
        -e "s#@CMAKE_INSTALL_FULL_SYSCONFDIR@#/etc#" \
        "$src/deploy/systemd/presence-$u.service.in" >"$tmp/presence-$u.service"
done
grep -q '@[A-Z_]*@' "$tmp"/*.service && fail "an @VAR@ left unconfigured"
out=$(cd "$tmp" && systemd-analyze verify --man=no presence-*.service 2>&1)
[ -z "$out" ] || fail "systemd-analyze verify: $out"
for u in "$tmp"/presence-*.service; do
    score=$(systemd-analyze security --offline=true "$u" 2>&1 |
        sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    echo "check-units: $(basename "$u"): exposure $score"
    systemd-analyze security --offline=true --threshold=25 "$u" >/dev/null 2>&1 ||
        fail "$(basename "$u") scores $score (> 2.5)"
done

# sysusers.d and tmpfiles.d in a scratch root.
root=$tmp/root
mkdir -p "$root/etc" "$root/usr/lib/sysusers.d" "$root/usr/lib/tmpfiles.d" \
    "$root/var/lib" "$root/run"
for f in passwd group shadow gshadow; do
    [ -r /etc/$f ] && grep -E '^(root|nogroup|nobody):' /etc/$f >"$root/etc/$f"
done
cp "$src/deploy/sysusers.conf" "$root/usr/lib/sysusers.d/presence.conf"
cp "$src/deploy/tmpfiles.conf" "$root/usr/lib/tmpfiles.d/presence.conf"
systemd-sysusers --root="$root" >/dev/null 2>&1 || fail "systemd-sysusers"
for u in presence presence-gw; do
    grep -q "^$u:" "$root/etc/passwd" || fail "sysusers made no user $u"
done
grep -q "^presence:" "$root/etc/group" || fail "sysusers made no group presence"
if [ "$(id -u)" = 0 ]; then
    systemd-tmpfiles --root="$root" --create >/dev/null 2>&1 ||
        fail "systemd-tmpfiles --create"
    for d in var/lib/presence:700 var/lib/presence-gateway:700 run/presence:750; do
        [ "$(stat -c %a "$root/${d%%:*}" 2>/dev/null)" = "${d#*:}" ] ||
            fail "tmpfiles: /${d%%:*} is not mode ${d#*:}"
    done
fi
[ $failed = 0 ] && echo "check-units: ok"
exit $failed
