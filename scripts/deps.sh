#!/bin/sh
# Installs what usher needs, when it is missing. As root it runs apt-get;
# otherwise it prints the line to run and fails.
#
#   sh scripts/deps.sh        build and run: compiler, libraries, redis-server
#   sh scripts/deps.sh test   also what the tests need: cmocka, Node.js,
#                             Debian's Chromium (the dashboard's browser test,
#                             driven by npm playwright-core, which downloads no
#                             browser) and the tests' npm packages
#                             (tests/package.json, when tests/node_modules is
#                             missing)
# WITH_BENCH=1 adds wrk and openssl for `make bench`.
set -e
cd "$(dirname "$0")/.."
PKGS="build-essential pkg-config libevent-dev libhiredis-dev libjansson-dev libssl-dev libcurl4-openssl-dev libhttp-parser-dev redis-server"
if [ "${1:-}" = test ]; then
  PKGS="$PKGS libcmocka-dev nodejs chromium"
  # Debian's nodejs comes without npm; other Node.js builds bring their own.
  command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"
fi
[ "${WITH_BENCH:-}" = 1 ] && PKGS="$PKGS wrk openssl"

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
if [ "${1:-}" = test ] && [ ! -d tests/node_modules ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests --no-audit --no-fund
fi
