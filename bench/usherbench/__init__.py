"""usherbench -- `make bench`: usher's benchmark harness (see BENCHMARKS.md).

One command, standard library only. It starts its own redis-server(s) and
usher (the release build) on free loopback ports, warms up, runs every
scenario with wrk, measures the machine's own limits in the same run
(redis-benchmark running the very script call usher makes, `openssl speed
-multi N ecdsap384`), then the join burst, the 100,000-viewer memory figures
and the 50,000-viewer sweep, prints a report and rewrites the generated
block of BENCHMARKS.md.

The modules, each importable and testable alone:
  context     settings from the environment; the run's context object
  procs       child processes, their cleanup, CPU/memory from /proc, logging
  resp        a minimal Redis client and a redis-server of our own
  usher       a usher process and its HTTP client
  probe       MONITOR probes: what usher sends to Redis; usher's seat call
  measure     wrk runs measured inside a window (CPU, commandstats)
  references  redis-benchmark and openssl speed in the same run
  burst       the open-loop join burst
  stats       percentiles and other pure arithmetic
  phases      the three phases of a run: main, burst, sweep
  report      the BENCHMARKS.md text, the targets, writing the file
  main        the command line
There is no mutable module state: everything a run changes lives in its
Ctx (context.py), passed along.
"""
