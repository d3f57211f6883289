/* state.h — the stage state model: a stage's seating mode, the scaler's
 * bookkeeping for it, and its record, with their names and their JSON.
 *
 * Redis keeps the three per stage (README "Redis keys"): the mode in the
 * `stage_mode` hash (absent = open), the bookkeeping as JSON in
 * `stage_state`, the record as JSON in `stage_info`. This module is the one
 * place that names the modes and replication states and reads and writes
 * those JSON documents; the store decodes them with it and every writer
 * (stage creation, the scaler) encodes with it. A leaf: jansson only. */
#ifndef USHER_STAGES_STATE_H
#define USHER_STAGES_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

/* Open stages take new seats; a stage the scaler added waits until the
 * publisher's video reaches it; a draining stage seats nobody new and is
 * emptied. The names are what `stage_mode` and the API show. */
enum stage_mode { MODE_OPEN, MODE_WAITING, MODE_DRAINING };
/* Replication of the publisher's video into a stage (none for the master
 * and for stages never replicated). */
enum replication_state { REPL_NONE, REPL_PENDING, REPL_RUNNING, REPL_FAILED };

const char *stage_mode_name(enum stage_mode mode);
/* NULL, "" and unknown words are MODE_OPEN (no `stage_mode` field). */
enum stage_mode stage_mode_of(const char *name);
const char *replication_name(enum replication_state r);
/* NULL is REPL_NONE; an unknown word is REPL_PENDING (started, unsettled). */
enum replication_state replication_of(const char *name);

/* The scaler's bookkeeping for one stage. Zero means "not set". */
struct stage_state {
    enum replication_state replication;
    long attempts;                   /* replication starts that failed */
    int64_t retry_at_ms;             /* next replication try, wall clock ms */
    int64_t draining_since_ms;
    char error[200];                 /* the provider's last error, "" when none */
    /* The running replication's source: the publisher's participant id
     * (IVS ParticipantId, at most 64 bytes), "" when unknown, and when it
     * was started or last found running (wall clock ms). A publisher that
     * joins again gets a new id: the replications of the old one are stale
     * (reconcile.h). */
    char participant[65];
    int64_t running_since_ms;
};

/* {"replication":…,"attempts":n[,"retryAt":ms][,"drainingSince":ms][,"error":…]
 * [,"participant":…,"runningSince":ms]},
 * malloc'd (caller frees), NULL when out of memory. */
char *stage_state_json(const struct stage_state *st);
/* Fills *out from JSON; NULL, "" or bad JSON give the zero state. */
void stage_state_parse(const char *json, struct stage_state *out);

/* A stage's record (`stage_info`, and `stage:{arn}` of SPEC §3):
 * {name, arn, autoScaled, createdAt (ISO 8601)[, parentStage]}. Its tags
 * live beside it (`stage_tags`), as SPEC §3 fixes this layout. The strings
 * point into doc, which the record owns. */
struct stage_info {
    json_t *doc;
    const char *arn, *name, *created_at, *parent;   /* parent NULL when none */
    bool auto_scaled;
};

/* A new record: the JSON object (a new reference), NULL when out of memory. */
json_t *stage_info_new(const char *arn, const char *name, bool auto_scaled,
                       const char *created_at, const char *parent);
/* Fills *out from JSON text (empty fields when NULL, "" or bad); free with
 * stage_info_clear. */
void stage_info_parse(const char *json, struct stage_info *out);
void stage_info_clear(struct stage_info *info);

#endif
