#!/usr/bin/env python3
"""bench.py -- `make bench`: usher's benchmark harness (see BENCHMARKS.md).

The harness is the package bench/usherbench/ (its __init__ lists the
modules); this file is its command line. `--only health,stats` runs a few
scenarios and prints their figures without touching BENCHMARKS.md.

How each figure is taken:
  req/s, p50/p99/max, non-2xx   wrk (bench/*.lua print one JSON line)
  usher CPU us/request          utime+stime of /proc/<usher>/stat (all
                                threads) over the timed run / requests
  Redis round trips/request     INFO commandstats deltas over the timed run:
                                commands that no usher function calls
                                (FCALL, PING, ...) / requests. Redis 7
                                also counts the commands a function runs
                                (redis.call) in commandstats; those are
                                shown apart, as "in-script commands".
                                A MONITOR probe before each run records
                                exactly what usher sends per request.
  usher RSS                     VmRSS of /proc/<usher>/status
  references                    redis-benchmark -c 50 with the FCALL
                                argv usher itself sent (caught by MONITOR)
                                of its library src/store/lua/usher.lua;
                                openssl speed -multi <nproc> ecdsap384

Settings (environment): BENCH_SECONDS (10), BENCH_WARMUP (2),
BENCH_CONNECTIONS (50), BENCH_WRK_THREADS (nproc), BENCH_REF_SECONDS (5),
BENCH_OPENSSL_SECONDS (5), BENCH_BURST (10000), BENCH_SWEEP_VIEWERS
(50000), BENCH_BIG_VIEWERS (100000), BENCH_BIG_STAGES (100),
BENCH_PROFILE (auto: profile usher with perf after the heartbeat, stats and
join runs when `perf record` works here; 0 = never, 1 = always),
BENCH_KEEP (0; 1 = keep the temporary directory with all logs),
BENCH_MD (BENCHMARKS.md; "" = do not write it), BENCH_QUIET_WAIT (120: how
long to wait for other processes to go quiet first), USHER_BIN (build/usher),
BENCH_HB_CONNECTIONS (1000: the second heartbeat run's connections),
BENCH_MILLION (1000000: viewers seated for the million figures; 0 = skip),
BENCH_BEFORE_BIN (an older usher binary: the same scenarios run on it first,
in the same invocation, and the tables show it beside; `make bench
BENCH_BEFORE=<commit>` builds one), BENCH_BEFORE_LUA_SRC (its Lua sources;
default <its checkout>/src/store/lua), BENCH_BEFORE_ONLY (the scenarios it
runs; default health,stats,heartbeat,heartbeat1000,join,big,burst).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from usherbench.main import main  # noqa: E402

if __name__ == "__main__":
    main(sys.argv[1:])
