/* policy.h — the scaler's decisions, as a pure function of what Redis
 * holds: given the stages and their counts, what to do now.
 *
 * The model (README "Scaling"): viewers are seated in open stages, least
 * loaded first. The scaler keeps enough open stages that
 *   - load stays under SCALE_UP_THRESHOLD of their capacity, and
 *   - at least one stage's worth of free seats is ready ahead of demand
 *     (the spare), since a stage takes 200–500 ms to create in IVS;
 * so the stages needed are max(ceil(S / (up × C)), ceil((S + C) / C)) for
 * S viewers seated or waiting for a seat (joins refused for want of room
 * count as demand until seated) and capacity C, at least 1, at most MAX_STAGES. An added
 * stage waits until the publisher's video is replicated into it before it
 * seats anyone. Scaling down drains one added stage at a time: the least
 * loaded one whose load is at most SCALE_DOWN_THRESHOLD, when the others
 * would still exceed the need by a whole stage and no stage was added or
 * drained for the cooldown. That band of one stage is the hysteresis: an
 * audience hovering at a boundary makes the scaler add one stage, and that
 * stage stays until the audience has fallen a whole stage's worth. A
 * draining stage is removed once empty or after DRAIN_TIMEOUT. Stages an
 * operator made are never drained. */
#ifndef USHER_SCALER_POLICY_H
#define USHER_SCALER_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stages/state.h"

struct stage_view {
    const char *arn;
    long viewers;
    bool master;
    bool auto_scaled;                /* added by the scaler; only these are drained */
    enum stage_mode mode;
    enum replication_state replication;
    int64_t retry_at_ms;             /* failed replication: not before this */
    int64_t draining_since_ms;
    int children;                    /* stages replicating from this one */
};

struct scale_input {
    const struct stage_view *stages;
    size_t nstages;
    long capacity;
    double up, down;                 /* thresholds, as ratios of capacity */
    long max_stages;
    bool publisher_live;
    int64_t now_ms;
    int64_t last_change_ms;          /* last stage added or drained, by any
                                      * process (Redis scaler:last_change) */
    long cooldown_ms;
    long drain_timeout_ms;
    long creating;                   /* creations under way */
    long waiting;                    /* joins refused for want of room, not yet
                                      * seated: demand beyond the seated */
    long create_budget;              /* creations allowed to start now */
};

enum action_kind { ACT_CREATE, ACT_START_REPLICATION, ACT_OPEN, ACT_DRAIN, ACT_REMOVE };

struct scale_action {
    enum action_kind kind;
    size_t stage;                    /* index into stages; unused for ACT_CREATE */
};

/* The most stages the scaler plans, the master included, and why. With
 * IVS's replication quota (replication_quota: at most 5 concurrent
 * replications per participant, and a replica keeps the publisher's id, so
 * chaining draws on the same 5; ../shared/aws/README.md "Quotas"), every
 * added stage is fed from the master: 1 + replication_max, below
 * MAX_STAGES. An operator may allow chaining (REPLICATION_CHAINING), and
 * the local provider has no quota: then MAX_STAGES alone. The scaler
 * passes `stages` as scale_input.max_stages. */
struct stage_ceiling {
    long stages;
    const char *reason;              /* for /api/stats/stages and STAGE_FULL */
};
struct stage_ceiling stage_ceiling_of(long max_stages, bool replication_quota,
                                      long replication_max, bool chaining);

/* Stages needed for `seated` viewers (see above). */
long stages_needed(long seated, long capacity, double up, long max_stages);

/* Writes up to max actions into out and returns how many. */
size_t scale_decide(const struct scale_input *in, struct scale_action *out, size_t max);

#endif
