# usher — build, run, test.
#   make          release binary build/usher
#   make run      start on the embedded default (own redis-server, local provider)
#   make test     unit tests (cmocka) + end-to-end tests, all under ASan+UBSan
#   make bench    benchmarks (bench/bench.mk, see BENCHMARKS.md)
#   make simulator  the live-event simulator (tools/tools.mk)

CC      ?= cc
PKGS    := libevent libevent_pthreads hiredis jansson openssl libcurl
CFLAGS_BASE := -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Isrc \
               $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lwslay -lpthread -lm

SRC     := $(shell find src -name '*.c' | sort)
LUA     := src/store/lua/usher.lua
DASHBOARD := web/dashboard/index.html web/dashboard/app.js web/dashboard/style.css
GEN_OBJ := build/gen/lua_library.o build/gen/dashboard_files.o
APP_SRC := $(filter-out src/main.c,$(SRC))

REL     := build/release
DBG     := build/asan
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

.PHONY: all run test unit e2e deps test-deps clean
all: build/usher

# Copied then renamed, so a running build/usher is replaced, not written into.
build/usher: $(REL)/usher
	cp $< $@.tmp && mv -f $@.tmp $@

# The Redis function library is compiled into the binary as a generated C file.
build/gen/lua_library.c: $(LUA) scripts/embed-lua.sh
	@mkdir -p $(dir $@)
	sh scripts/embed-lua.sh $(LUA) > $@

# So are the dashboard's files (web/dashboard), served at /dashboard.
build/gen/dashboard_files.c: $(DASHBOARD) scripts/embed-files.sh
	@mkdir -p $(dir $@)
	sh scripts/embed-files.sh dashboard_files $(DASHBOARD) > $@

define variant
$(1)/%.o: %.c
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS_BASE) $(2) -MMD -MP -c $$< -o $$@
$(1)/usher: $$(SRC:%.c=$(1)/%.o) $$(GEN_OBJ:%=$(1)/%)
	$$(CC) $(2) -o $$@ $$^ $$(LDLIBS)
-include $$(shell find $(1) -name '*.d' 2>/dev/null)
endef
$(eval $(call variant,$(REL),-O2 -g))
$(eval $(call variant,$(DBG),-O1 -g $(SAN)))

UNIT_TESTS := $(patsubst tests/unit/%.c,$(DBG)/tests/unit/%,$(wildcard tests/unit/test_*.c))
$(DBG)/tests/unit/%: tests/unit/%.c $(APP_SRC:%.c=$(DBG)/%.o) $(GEN_OBJ:%=$(DBG)/%)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -O1 -g $(SAN) -o $@ $^ $(LDLIBS) -lcmocka $(UNIT_LDFLAGS)
# test_aws_op makes calloc and strdup fail on purpose (out of memory for an
# operation, for a page of a list).
$(DBG)/tests/unit/test_aws_op: UNIT_LDFLAGS = -Wl,--wrap=calloc -Wl,--wrap=strdup

deps:
	@sh scripts/deps.sh

test-deps:
	@sh scripts/deps.sh test

run: deps build/usher
	sh scripts/run.sh

unit: $(UNIT_TESTS)
	@failed=0; for t in $(UNIT_TESTS); do echo "== $$t"; $$t || failed=1; done; exit $$failed

# One test file at a time: each starts its own Redis and ushers, and timing
# checks (503 within 1 s) need the cores. Node 18 (Debian 12's) has no such
# flag and runs files one at a time on a machine of two cores anyway.
E2E_SERIAL := $(shell node --help 2>/dev/null | grep -q -- --test-concurrency && echo --test-concurrency=1)
e2e: $(DBG)/usher
	USHER_BIN=$(DBG)/usher node --test $(E2E_SERIAL) tests/e2e/ tests/fake-ivs/

test: test-deps
	$(MAKE) unit
	$(MAKE) e2e

clean:
	rm -rf build

# Benchmarks and tools keep their rules beside their sources.
include bench/bench.mk
include tools/tools.mk
