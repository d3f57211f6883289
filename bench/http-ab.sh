#!/bin/sh
# http-ab.sh — the HTTP layer's cost, one binary against another, on the
# same machine in the same minute (BENCHMARKS.md, "HTTP layer (issue 11)").
#
#   sh bench/http-ab.sh BINARY [SECONDS]
#
# Starts its own redis-server and BINARY on free loopback ports, makes the
# publisher live and seats 200 viewers, then for GET /health and for
# POST /api/viewer/heartbeat (bench/heartbeat.lua): wrk -t2 -c50 for
# SECONDS (default 10) and usher's CPU over the run (utime+stime from
# /proc), printed as requests/s and CPU µs per request; then one more
# run of each under `strace -c -f`, printed as syscalls per request.
set -eu
BIN=$(realpath "$1")
SECS=${2:-10}
DIR=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d)
RPORT=$((20000 + $$ % 10000))
PORT=$((RPORT + 1))
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" >/dev/null &
RPID=$!
sleep 0.5
API_HOST=127.0.0.1 API_PORT=$PORT REDIS_URL=redis://127.0.0.1:$RPORT DATA_DIR=$TMP SKIP_AUTH=true \
  LOG_LEVEL=warn RATE_LIMIT_MAX_REQUESTS=0 AUTO_SCALE_ENABLED=false MAX_VIEWERS_PER_STAGE=10000 SIGNER_PRECOMPUTE=256 \
  "$BIN" >"$TMP/usher.log" 2>&1 &
UPID=$!
trap 'kill $UPID $RPID 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"' EXIT
URL=http://127.0.0.1:$PORT
for _ in $(seq 200); do curl -sf "$URL/health" >/dev/null && break; sleep 0.1; done
curl -sf "$URL/health" >/dev/null || { cat "$TMP/usher.log"; exit 1; }
curl -sf -X POST "$URL/api/token/publisher" -H 'Content-Type: application/json' -d '{"userId":"pub"}' >/dev/null
for i in $(seq 200); do
  curl -sf -X POST "$URL/api/token/viewer" -H 'Content-Type: application/json' -d "{\"userId\":\"v$i\"}" |
    python3 -c 'import json,sys; d=json.load(sys.stdin)["data"]; print(d["userId"]+"\t"+d["stageArn"])'
done >"$TMP/users"

cpu() { awk '{print $14 + $15}' "/proc/$UPID/stat"; }
run() {   # name, wrk args...
  name=$1; shift
  c0=$(cpu)
  out=$(BENCH_USERS="$TMP/users" BENCH_LUA_DIR="$DIR" wrk -t2 -c50 -d"${SECS}s" "$@")
  c1=$(cpu)
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  tick=$(getconf CLK_TCK)
  echo "$name: ${rps} req/s, ${reqs} requests, non-2xx ${non2xx:-0}, usher CPU $(echo "$c0 $c1 $tick $reqs" |
    awk '{printf "%.1f", ($2 - $1) / $3 * 1e6 / $4}') us/request"
}
syscalls() {   # name, wrk args...
  name=$1; shift
  strace -qq -c -f -p "$UPID" -o "$TMP/strace" &
  SPID=$!
  sleep 0.5
  out=$(BENCH_USERS="$TMP/users" BENCH_LUA_DIR="$DIR" wrk -t2 -c50 -d3s "$@")
  sleep 0.2
  kill -INT $SPID; wait $SPID 2>/dev/null || true
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  echo "$name under strace: $reqs requests; syscalls per request:"
  awk -v n="$reqs" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" {
                      printf "  %-14s %.2f\n", $NF, $4 / n; sum += $4 }
                    END {printf "  %-14s %.2f\n", "all", sum / n}' "$TMP/strace"
}
run "GET /health" "$URL/health"
run "POST /api/viewer/heartbeat" -s "$DIR/heartbeat.lua" "$URL/api/viewer/heartbeat"
syscalls "GET /health" "$URL/health"
syscalls "POST /api/viewer/heartbeat" -s "$DIR/heartbeat.lua" "$URL/api/viewer/heartbeat"
