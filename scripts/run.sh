#!/bin/sh
# Starts usher on the zero-set-up default: its own redis-server (data and
# append-only file under ./data), the local stage provider, loopback only.
# Any setting can still be given in the environment or as a flag:
#   sh scripts/run.sh --api-port 3001
set -e
cd "$(dirname "$0")/.."
export REDIS_EMBEDDED="${REDIS_EMBEDDED:-true}"
export API_HOST="${API_HOST:-127.0.0.1}"
export DATA_DIR="${DATA_DIR:-./data}"
exec ./build/usher "$@"
