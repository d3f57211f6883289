#!/bin/sh
# Run every test: cmocka unit tests and end-to-end tests against a real
# redis-server and the real binary, all built with ASan+UBSan.
# Installs missing Debian packages first when run as root.
set -e
cd "$(dirname "$0")"
sh scripts/deps.sh test
make test
