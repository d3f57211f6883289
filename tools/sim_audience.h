/* sim_audience.h — the virtual viewers (see sim_audience.c). */
#ifndef USHER_SIM_AUDIENCE_H
#define USHER_SIM_AUDIENCE_H

#include <stdbool.h>
#include <stdint.h>

#include "sim_clock.h"
#include "sim_http.h"
#include "sim_opts.h"
#include "sim_report.h"
#include "sim_truth.h"

#define TICK_MS 100            /* resolution of every scheduled action */
#define WHEEL_SLOTS 8192       /* 819 s per turn; later actions wait a turn */
#define PID_MAX 64             /* SPEC §5: a participant id is <= 64 of [A-Za-z0-9-] */

struct viewer;

struct audience {
    const struct opts *o;
    struct sim_clock *clock;
    struct http_pool *http;
    struct truth *truth;
    struct report *rep;
    struct http_client client;
    struct viewer *v;
    /* Participant ids, kept only for viewers whose rejoin uses the API:
     * pid_of[i] is viewer pid_of[i]'s slot i (sorted), pid[i] its id. */
    uint32_t *pid_of, npids;
    char (*pid)[PID_MAX + 1];
    uint32_t wheel[WHEEL_SLOTS];
    uint32_t wheel_tick;       /* next tick to process */
    bool active;               /* joins and fates go on (the active phase) */
    uint32_t active_end_ms, burst_end_ms, heartbeat_ms, grace_ms;
};

/* Draws every viewer's fate and schedules its join (ms from the run's
 * start); turns on the tallies the options plan. -1 when out of memory. */
int audience_init(struct audience *a, const struct opts *o, struct sim_clock *clock,
                  struct http_pool *http, struct truth *truth, struct report *rep);
void audience_free(struct audience *a);
/* Does what is due up to now_ms. */
void audience_tick(struct audience *a, uint32_t now_ms);
/* The finale: every seated viewer with nothing in flight leaves or goes silent. */
void audience_finale_scan(struct audience *a, bool leave);
/* The viewers by fate: stay, leave, vanish, leave+rejoin, vanish+rejoin. */
void audience_fates(const struct audience *a, uint64_t out[5]);

#endif
