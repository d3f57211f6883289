#!/bin/sh
# Installs the Debian packages usher needs to build, run and test, when
# they are missing. As root it runs apt-get; otherwise it prints the line
# to run and fails.
set -e
PKGS="build-essential pkg-config libevent-dev libhiredis-dev libjansson-dev libssl-dev libcmocka-dev libhttp-parser-dev redis-server nodejs"
[ "${WITH_BENCH:-}" = 1 ] && PKGS="$PKGS wrk openssl"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "usher needs these Debian packages:$missing" >&2
  echo "install them with: sudo apt-get install -y$missing" >&2
  exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
