/* stages.h — the life of a stage: made by the provider and recorded in
 * Redis (store_stage_add) so every usher process sees it; removed from
 * Redis in one step (store_stage_remove), then its replication stopped and the
 * provider's stage deleted. Used for the master stage at start, by the
 * stage routes and by the scaler. Changes are also written to the stage
 * event stream (events.h). */
#ifndef USHER_STAGES_STAGES_H
#define USHER_STAGES_STAGES_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "scaler/policy.h"
#include "store/store.h"

struct app;

/* err: the store's refusal (STAGE_LIMIT, NO_STAGE, IS_MASTER, NOT_EMPTY,
 * NOT_LEADER), STORE_UNAVAILABLE, or STORE_FAILED when the provider failed
 * (detail: its words, e.g. the quota IVS names) or memory ran out; detail
 * says why. info: for a creation, the stage's record
 * (stages/state.h: name, arn, autoScaled, createdAt, parentStage?),
 * a new reference, NULL unless STORE_OK. */
typedef void (*stage_done_fn)(void *arg, enum store_error err, json_t *info, const char *detail);

struct stage_spec {
    const char *name;
    bool auto_scaled;                /* added by the scaler: waits for replication */
    const char *parent;              /* the stage it will replicate from, or NULL */
    const char *lease_holder;        /* the scaler's lease, or NULL */
    json_t *tags;                    /* an object of strings, or NULL; copied */
    int64_t now_ms;                  /* the caller's reading of the clock (unix ms):
                                      * createdAt, the `stages` score and the
                                      * events of this job */
    bool replicating;                /* an adopted stage whose replication already
                                      * runs: open at once (stage_adopt) */
};

void stage_create(struct app *app, const struct stage_spec *spec,
                  stage_done_fn done, void *arg);

/* Removes a stage. Without a lease holder (an operator's DELETE) the
 * master stage and a stage with viewers are refused; with one (the scaler)
 * viewers still seated lose their seats. */
void stage_remove(struct app *app, const char *arn, const char *lease_holder, int64_t now_ms,
                  stage_done_fn done, void *arg);

/* This deployment's stage ceiling (scaler/policy.h): MAX_STAGES, or lower
 * where the provider's replication quota feeds fewer stages. Stage records
 * beyond it are refused (STAGE_LIMIT), whoever asks. */
struct stage_ceiling stage_ceiling(const struct app *app);

/* Records the master stage when Redis has none (a first start, or Redis
 * lost its data; stages/recovery.h), keeping THE SAME stage whenever it is
 * known: MASTER_STAGE_ARN when set (it wins over any record; read again
 * for its endpoints), else the one this process last knew
 * (app->master_arn), else the one this stream made, found in the provider
 * by its tag (usher:role=master), else a new one, tagged so. A master
 * recorded meanwhile by another process is kept and learnt. Sets
 * app->master_arn; done as for stage_create (may be NULL). */
void stage_recover_master(struct app *app, stage_done_fn done, void *arg);

struct provider_stage;
/* Records again a stage the provider still has (provider.h list_stages)
 * after Redis lost it: as an added stage, open when its replication runs
 * (replicating_from), else waiting for the scaler to start it. */
void stage_adopt(struct app *app, const struct provider_stage *ps, int64_t now_ms,
                 stage_done_fn done, void *arg);

#endif
