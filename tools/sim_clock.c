/* sim_clock.c — the simulator's sources of time and chance.
 *
 * Every time the simulator keeps (a viewer's next action, a request's send
 * time, a phase's start) is ms or µs since one zero taken from
 * CLOCK_MONOTONIC, so a wall-clock step never moves a deadline. Every
 * random choice (fates, gaps, retry jitter) comes from one splitmix64
 * sequence seeded by --seed. Both are leaves: they know nothing of HTTP,
 * viewers or checks. */
#include "sim_clock.h"

#include <time.h>

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void clock_restart(struct sim_clock *c) { c->t0_us = mono_us(); }

int64_t clock_us(const struct sim_clock *c) { return mono_us() - c->t0_us; }

uint32_t clock_ms(const struct sim_clock *c) { return (uint32_t)(clock_us(c) / 1000); }

void dice_seed(struct sim_clock *c, uint64_t seed) { c->rng = seed * 0x2545f4914f6cdd1dull + 1; }

/* splitmix64: small, fast, and the same sequence for the same seed. */
double dice(struct sim_clock *c)
{
    uint64_t z = (c->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}
