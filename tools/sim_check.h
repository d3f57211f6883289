/* sim_check.h — usher's counts against the truth; memory (see sim_check.c). */
#ifndef USHER_SIM_CHECK_H
#define USHER_SIM_CHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <hiredis/hiredis.h>

#include "sim_clock.h"
#include "sim_http.h"
#include "sim_opts.h"
#include "sim_report.h"
#include "sim_truth.h"

struct checker {
    const struct opts *o;
    const struct sim_clock *clock;
    struct http_pool *http;
    struct truth *truth;
    struct report *rep;
    struct http_client client;   /* GET /api/stats through the pool */
    redisContext *redis;
    bool pending, exact;         /* a check is waiting for its reads */
    char label[32];
    int tries;                   /* reads of an exact check that failed */
    uint32_t retry_ms;           /* when to read again; 0 = not waiting */
};

/* Wires the checker to its leaves and connects to Redis (--redis-url);
 * -1 with a message when Redis cannot be reached. */
int check_init(struct checker *k, const struct opts *o, const struct sim_clock *clock,
               struct http_pool *http, struct truth *truth, struct report *rep);
void check_free(struct checker *k);
/* Reads the seats already in Redis into truth->baseline; -1 on failure. */
int check_baseline(struct checker *k);
/* Starts a check: a range checkpoint, or (exact) an exact check. Counted
 * in the tallies T_CHECKPOINT / T_EXACT when it has read both sources. */
void check_start(struct checker *k, const char *label, bool exact);
/* Asks again for a check whose read failed, once its retry time came. */
void check_retry_due(struct checker *k, uint32_t now_ms);
/* usher's RSS (usher_pid > 0, else -1) and Redis used_memory (-1 if unread). */
void check_memory(struct checker *k, int usher_pid, struct memsample *m);

#endif
