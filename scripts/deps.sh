#!/bin/sh
# Installs the Debian packages usher needs to build, run and test, when
# they are missing. As root it runs apt-get; otherwise it prints the line
# to run and fails. Then installs the tests' npm packages (tests/package.json)
# when tests/node_modules is missing.
#
# chromium: the dashboard's browser test (tests/e2e/dashboard-page.test.mjs)
# drives Debian's Chromium with npm playwright-core, which downloads no
# browser; `make e2e` runs that test, so it is always installed.
set -e
cd "$(dirname "$0")/.."
PKGS="build-essential pkg-config libevent-dev libhiredis-dev libjansson-dev libssl-dev libcmocka-dev redis-server nodejs chromium"
[ "${WITH_BENCH:-}" = 1 ] && PKGS="$PKGS wrk openssl"

npm_deps() {
  [ -d tests/node_modules ] && return 0
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests --no-audit --no-fund
}

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "usher needs these Debian packages:$missing" >&2
    echo "install them with: sudo apt-get install -y$missing" >&2
    exit 1
  fi
  echo "installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
npm_deps
