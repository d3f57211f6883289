#!/bin/sh
# Build usher and start it on the zero-set-up default: its own redis-server
# (files under ./data), the local stage provider, loopback only.
# Installs missing Debian packages first when run as root.
set -e
cd "$(dirname "$0")"
sh scripts/deps.sh
make -s build/usher
exec sh scripts/run.sh "$@"
