#!/usr/bin/env bash
# check-package.sh: build the .deb and try it the way an operator would, on
# a THROW-AWAY Debian 12 machine or chroot, as root (it installs packages,
# creates system users, installs and purges presence). Run from the top of
# the checkout. What it does and what it showed: docs/packaging.md
# ("Checked on a fresh Debian 12").
set -e
t0=$(date +%s)
apt-get update -qq
bash deploy/setup.sh package > /tmp/pkg.log 2>&1 || { tail -60 /tmp/pkg.log; exit 1; }
echo "== setup.sh package (deps + Release build + cpack) took $(( $(date +%s) - t0 )) s"
grep -E "CPack|presencectl.1|scdoc" /tmp/pkg.log | tail -5
deb=$(ls build-release/presence_*_amd64.deb)
echo "== $deb"
dpkg-deb -I "$deb" | grep -E "Package|Version|Depends|Architecture"
dpkg-deb -c "$deb" | awk '{print $1, $6}'
t1=$(date +%s)
apt-get install -y -q "./$deb" 2>&1 | tail -4
echo "== apt-get install took $(( $(date +%s) - t1 )) s"
presencectl --help | head -6
apt-get install -y -q --no-install-recommends man-db >/dev/null 2>&1
echo "== man presencectl"
MANPAGER=cat MANWIDTH=80 man presencectl | head -12
MANPAGER=cat man -w presence.conf presence-broker presence-gateway presence-sweeper
echo "== users, dirs, key"
getent passwd presence presence-gw
ls -ld /var/lib/presence /var/lib/presence-gateway /run/presence /etc/presence/presence.conf
ls -l /var/lib/presence-gateway/jwt.secret
echo "== the daemons as the units run them (no systemd here): broker as presence, gateway as presence-gw + group presence, sweeper as nobody + group presence"
C=/etc/presence/presence.conf
export PRESENCE_HTTP_LISTEN=127.0.0.1:18080
setpriv --reuid=presence --regid=presence --init-groups sh -c 'umask 0007; exec presence-broker -c /etc/presence/presence.conf' > /tmp/broker.log 2>&1 &
for i in $(seq 50); do [ -S /run/presence/query ] && break; sleep 0.1; done
ls -l /run/presence
setpriv --reuid=nobody --regid=nogroup --groups=presence presence-sweeper -c $C > /tmp/sweeper.log 2>&1 &
setpriv --reuid=presence-gw --regid=presence-gw --groups=presence env PRESENCE_DATA_DIR=/var/lib/presence-gateway presence-gateway -c $C > /tmp/gateway.log 2>&1 &
apt-get install -y -q --no-install-recommends curl >/dev/null 2>&1
ok=no
for i in $(seq 100); do h=$(curl -s http://127.0.0.1:18080/healthz || true); case $h in *'"broker":"ok"'*) ok=yes; break;; esac; sleep 0.2; done
echo "healthz: $h"
T=$(presencectl -c $C token alice)
L=$(curl -s -H "Authorization: Bearer $T" -d '{"device":"laptop"}' http://127.0.0.1:18080/v1/login); echo "$L"
S=$(echo "$L" | sed 's/.*"session":"\([^"]*\)".*/\1/')
curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $T" -d "{\"session\":\"$S\"}" http://127.0.0.1:18080/v1/heartbeat
presencectl -c $C get alice
echo "== account changes: gateway admin API (presence-gw) and presencectl account (root) on the admin endpoint"
A=$(presencectl -c $C token ops --admin)
curl -s -X PUT -H "Authorization: Bearer $A" -d '{"status":"suspended","reason":"pkg test"}' http://127.0.0.1:18080/v1/users/alice/account; echo
curl -s -o /dev/null -w 'heartbeat while suspended: %{http_code}\n' -H "Authorization: Bearer $T" -d "{\"session\":\"$S\"}" http://127.0.0.1:18080/v1/heartbeat
presencectl -c $C account alice active --reason "pkg test"
presencectl -c $C get alice | grep account
curl -s -o /dev/null -w 'logout %{http_code}\n' -H "Authorization: Bearer $T" -d "{\"session\":\"$S\"}" http://127.0.0.1:18080/v1/logout
ls -l /var/lib/presence /var/lib/presence-gateway
echo "== the gateway's user cannot read the broker's LMDB:"
if setpriv --reuid=presence-gw --regid=presence-gw --groups=presence ls /var/lib/presence 2>&1; then echo "FAIL: gateway user reads the LMDB dir"; exit 1; else echo "refused (ok)"; fi
cat /tmp/gateway.log | tail -3
kill %1 %2 %3; wait || true
echo "== systemd-analyze in the installed system"
apt-get install -y -q --no-install-recommends systemd >/dev/null 2>&1
out=$(systemd-analyze verify /usr/lib/systemd/system/presence-*.service 2>&1); echo "verify output: [${out}]"
for u in broker sweeper gateway; do systemd-analyze security --offline=true /usr/lib/systemd/system/presence-$u.service 2>&1 | tail -1; done
echo "== purge"
apt-get purge -y -q presence 2>&1 | tail -2
ls -d /var/lib/presence /var/lib/presence-gateway /etc/presence 2>&1 | head -3
echo "== total $(( $(date +%s) - t0 )) s"
