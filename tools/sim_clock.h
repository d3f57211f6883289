/* sim_clock.h — the run's clock and its dice (see sim_clock.c). */
#ifndef USHER_SIM_CLOCK_H
#define USHER_SIM_CLOCK_H

#include <stdint.h>

struct sim_clock {
    int64_t t0_us;   /* CLOCK_MONOTONIC at the start of the run, µs */
    uint64_t rng;    /* splitmix64 state */
};

/* Sets the run's zero to now (CLOCK_MONOTONIC). */
void clock_restart(struct sim_clock *c);
/* Time since the run's zero: µs, and ms (wraps after 49 days). */
int64_t clock_us(const struct sim_clock *c);
uint32_t clock_ms(const struct sim_clock *c);
/* Seeds the dice: the same seed gives the same sequence of draws. */
void dice_seed(struct sim_clock *c, uint64_t seed);
/* A draw in [0, 1). */
double dice(struct sim_clock *c);

#endif
