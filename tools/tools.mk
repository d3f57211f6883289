# tools.mk — tools built beside usher (the live-event simulator).
#   make simulator   build/simulator (see tools/README.md)
# Included by the top Makefile, so CFLAGS_BASE and LDLIBS are its own.

SIM_SRC := tools/simulator.c $(sort $(wildcard tools/sim_*.c))
SIM_HDR := $(wildcard tools/sim*.h)

.PHONY: simulator
simulator: build/simulator

build/simulator: $(SIM_SRC) $(SIM_HDR) tools/tools.mk
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -O2 -g -Itools -o $@ $(SIM_SRC) $(LDLIBS)

# The e2e suite runs the simulator (tests/e2e/simulator.test.mjs).
e2e: build/simulator
