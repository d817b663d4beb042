#!/usr/bin/env bash
# setup.sh: from a fresh Debian 12 to a running system or a passing suite.
#
#   bash deploy/setup.sh run    install what is missing, build, run broker +
#                               sweeper + gateway with embedded defaults
#                               (./data, ./run, http://127.0.0.1:8080)
#   bash deploy/setup.sh test   install what is missing, build, run the whole
#                               suite, then again built with ASan+UBSan, then
#                               the fuzz targets (clang libFuzzer)
#   bash deploy/setup.sh package  install what is missing, build Release in
#                               build-release and make the .deb there
#                               (docs/packaging.md)
#
# Needs root (or sudo) only to install Debian packages. `run` installs the
# build dependencies and curl (the README's first steps use it), nothing
# that only the tests need; `test` installs everything.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
jobs=$(nproc)

# Build: compiler, cmake, pkg-config, the libraries' -dev packages, scdoc
# for the man pages. Run: curl for the README's first steps.
build_pkgs="build-essential cmake pkg-config libzmq3-dev libczmq-dev
  libmsgpack-dev liblmdb-dev libjwt-dev libjansson-dev libmicrohttpd-dev
  libssl-dev libsodium-dev scdoc libcurl4-openssl-dev"
run_pkgs="curl"
# Tests only: etcd (the ha tests), clang + libFuzzer runtime, chromium
# (node and npm below) for the browser tests, wrk, nginx and redis for the
# benchmark smoke runs, systemd-analyze and strace for the unit checks,
# clang-format.
test_pkgs="curl lmdb-utils python3 clang
  libclang-rt-14-dev chromium wrk nginx-light redis-server
  redis-tools procps clang-format systemd strace
  etcd-server etcd-client"
# Packaging: cpack's DEB generator runs file and dpkg-shlibdeps.
package_pkgs="file dpkg-dev"

install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
      missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "setup: installing ${missing[*]}"
  local sudo=
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends "${missing[@]}"
}

build() {  # build DIR [cmake args...]
  local dir=$1
  shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_COMPILE_WARNING_AS_ERROR=ON "$@"
  cmake --build "$dir" -j "$jobs"
}

case "$mode" in
run)
  # shellcheck disable=SC2086
  install $build_pkgs $run_pkgs
  build build
  exec bash deploy/run-local.sh build
  ;;
test)
  # shellcheck disable=SC2086
  install $build_pkgs $test_pkgs
  # Node for the browser test: Debian's nodejs + npm, unless a node (which
  # may bring its own npm, e.g. nodesource's) is already there.
  command -v node >/dev/null || install nodejs
  command -v npm >/dev/null || install npm
  # One format, enforced: the tree must match .clang-format exactly.
  find common broker sweeper gateway ctl bench tests -name '*.[ch]' -print0 |
    xargs -0 clang-format --dry-run -Werror
  build build
  (cd build && ctest --output-on-failure -j 2 --timeout 600)
  # The same suite under AddressSanitizer + UBSan (the browser test and the
  # benchmark smoke runs exercise the same daemons and stay in pass one;
  # the soak checks that RSS stays flat, which ASan's quarantine of freed
  # memory defeats by design, and LeakSanitizer covers leaks at exit).
  build build-asan -DPRES_SANITIZE=ON
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --output-on-failure -j 2 --timeout 900 -LE 'browser|bench-smoke|soak')
  # Coverage-guided fuzzing of every parser, a bounded run each.
  CC=clang cmake -S . -B build-fuzz -DPRES_FUZZ=ON
  cmake --build build-fuzz -j "$jobs" --target fuzz_all
  (cd build-fuzz && ctest --output-on-failure -L fuzz-run)
  ;;
package)
  # shellcheck disable=SC2086
  install $build_pkgs $package_pkgs
  cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX=/usr
  cmake --build build-release -j "$jobs"
  (cd build-release && cpack -G DEB)
  ;;
*)
  sed -n '2,16p' "$0"
  exit 2
  ;;
esac
