/* sim_truth.h — what the simulator believes usher has seated (see sim_truth.c). */
#ifndef USHER_SIM_TRUTH_H
#define USHER_SIM_TRUTH_H

#include <stdbool.h>
#include <stdint.h>

#define MAX_STAGES_SEEN 255    /* stage numbers fit a byte; 255 = no seat */
#define ARN_MAX 256
#define NO_SEAT 255

/* The counts are written by the audience as its viewers change state;
 * after a change it calls truth_changed. */
struct truth {
    int64_t seated;      /* join answered 200, no leave decided yet */
    int64_t joining;     /* join queued, in flight or waiting to retry */
    int64_t join_sent;   /* of those, sent (or maybe seated already) */
    int64_t leaving;     /* leave queued, in flight or waiting to retry */
    int64_t leave_sent;  /* of those, sent and not answered */
    int64_t vanished;    /* silent, inside their expiry grace */
    int64_t peak;        /* most seated at once */
    int64_t baseline;    /* seats in Redis before the run, not ours */
    int64_t wmin, wmax;  /* the range seen since truth_watch */
    uint32_t viewers;
    uint8_t *seat;       /* per viewer: stage number while seated, else NO_SEAT */
    char user_prefix[128];
    char stages[MAX_STAGES_SEEN][ARN_MAX];
    int nstages;
};

/* For viewers user_prefix0 .. user_prefix<viewers-1>; -1 when out of memory. */
int truth_init(struct truth *t, uint32_t viewers, const char *user_prefix);
void truth_free(struct truth *t);
/* The range usher's count (less the baseline) may lie in right now. */
void truth_range(const struct truth *t, int64_t *min, int64_t *max);
/* Starts a window: wmin/wmax = the range now, widened by every truth_changed. */
void truth_watch(struct truth *t);
void truth_changed(struct truth *t);
/* Marks viewer idx seated in stage (NO_SEAT: not seated); keeps `peak`. */
void truth_seat(struct truth *t, uint32_t idx, int stage);
/* The stage number of arn, added when new; -1 when arn is not a plain
 * string under ARN_MAX or the table is full. */
int truth_stage(struct truth *t, const char *arn);
/* The viewer number of a user id of this run; false for anyone else's. */
bool truth_user(const struct truth *t, const char *user, uint32_t *idx);

#endif
