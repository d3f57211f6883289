# bench.mk — `make bench` (see BENCHMARKS.md): starts its own redis-server
# and usher (the release build, build/usher) on free loopback ports, runs
# every scenario with wrk plus the in-run references (redis-benchmark,
# openssl speed), and rewrites the generated block of BENCHMARKS.md.
# Not part of `make test` (its unit tests are, below). Settings: BENCH_SECONDS
# (10 s per scenario) and the others listed at the top of bench/bench.py;
# `python3 bench/bench.py --only health,stats` runs a few scenarios.
BENCH_PYTHON ?= python3

.PHONY: bench bench-deps
bench: bench-deps build/usher
	$(BENCH_PYTHON) bench/bench.py

# `make bench BENCH_BEFORE=<commit>`: the same run measures that commit's
# release build first ("before", beside this one in every table). It is
# built in its own git worktree under build/ (kept for the next run).
ifdef BENCH_BEFORE
BENCH_BEFORE_DIR := build/before-$(BENCH_BEFORE)
export BENCH_BEFORE_BIN := $(abspath $(BENCH_BEFORE_DIR))/build/usher
bench: $(BENCH_BEFORE_DIR)/build/usher
$(BENCH_BEFORE_DIR)/build/usher:
	test -d $(BENCH_BEFORE_DIR) || git worktree add -f --detach $(BENCH_BEFORE_DIR) $(BENCH_BEFORE)
	$(MAKE) -C $(BENCH_BEFORE_DIR) build/usher
endif

# wrk, redis-benchmark and openssl: installed by scripts/deps.sh when
# missing (as root; otherwise it prints the apt-get line to run).
bench-deps:
	@for t in wrk redis-server redis-benchmark openssl; do \
	  command -v $$t >/dev/null 2>&1 || { WITH_BENCH=1 sh scripts/deps.sh; exit $$?; }; \
	done

# The harness's own unit tests (report, parsers, percentiles, and
# seat_cost.py against today's library on a redis-server of its own): part
# of `make unit`; standard library only, well under a second.
.PHONY: bench-unit
unit: bench-unit
bench-unit:
	$(BENCH_PYTHON) -m unittest discover -s bench -t bench
