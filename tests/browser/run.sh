#!/usr/bin/env bash
# Runs the dashboard browser test (tests/browser/dashboard.test.mjs).
#   run.sh BUILD_DIR          against the real daemons in BUILD_DIR
#   run.sh BUILD_DIR --mock   against mock-gateway.mjs (no daemons needed)
# Installs Debian's chromium if missing (as root), runs `npm ci` if
# node_modules is missing; never downloads a browser of its own.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build_dir="${1:-${PRESENCE_BUILD_DIR:-$here/../../build}}"
shift || true
chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"

if [ ! -x "$chromium" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "run.sh: installing Debian's chromium" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
            || { apt-get update -qq && apt-get install -y --no-install-recommends chromium; }
    else
        echo "run.sh: $chromium is missing and I am not root: install it with 'sudo apt-get install -y chromium'" >&2
        exit 1
    fi
fi

if ! command -v node >/dev/null 2>&1; then
    echo "run.sh: node is missing (Node.js >= 20 needed for playwright-core)" >&2
    exit 1
fi

cd "$here"
if [ ! -d node_modules/playwright-core ]; then
    # playwright-core downloads no browser; be explicit anyway.
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
fi

exec node dashboard.test.mjs --build-dir "$build_dir" --out-dir "$build_dir" "$@"
