# bench.mk — `make bench` (see BENCHMARKS.md).
