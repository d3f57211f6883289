/* stages.c — see stages.h.
 *
 * Creating is two asynchronous steps: the provider makes the stage, then
 * one script records it, checking MAX_STAGES (and the scaler's lease)
 * atomically. If the record is refused, the provider's stage is deleted
 * again. Removing runs the other way round: the script first, so no viewer
 * is seated there any more, then replication stop and provider delete. */
#include "stages/stages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "config/config.h"
#include "ivs/provider.h"
#include "stages/events.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/log.h"

enum master_mode { NOT_MASTER, MASTER_UNLESS_ONE, MASTER_FORCED };

struct stage_job {
    struct app *app;
    stage_done_fn done;
    void *arg;
    struct stage_spec spec;          /* strings owned by the job */
    enum master_mode master;
    json_t *info;
    char *arn;
    char *parent_of_removed;
};

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static struct stage_job *job_new(struct app *app, const struct stage_spec *spec,
                                 enum master_mode master, stage_done_fn done, void *arg)
{
    struct stage_job *j = calloc(1, sizeof *j);
    if (!j)
        goto oom;
    j->app = app;
    j->done = done;
    j->arg = arg;
    j->master = master;
    j->spec.auto_scaled = spec->auto_scaled;
    j->spec.name = dup_or_null(spec->name);
    j->spec.parent = dup_or_null(spec->parent);
    j->spec.lease_holder = dup_or_null(spec->lease_holder);
    if ((spec->name && !j->spec.name) || (spec->parent && !j->spec.parent) ||
        (spec->lease_holder && !j->spec.lease_holder)) {
        free((char *)j->spec.name), free((char *)j->spec.parent), free((char *)j->spec.lease_holder);
        free(j);
        goto oom;
    }
    return j;
oom:
    if (done)
        done(arg, STAGE_FAILED, NULL, "out of memory");
    return NULL;
}

static void job_end(struct stage_job *j, enum stage_outcome outcome, const char *error)
{
    if (j->done)
        j->done(j->arg, outcome, outcome == STAGE_DONE && j->info ? json_incref(j->info) : NULL, error);
    json_decref(j->info);
    free((char *)j->spec.name);
    free((char *)j->spec.parent);
    free((char *)j->spec.lease_holder);
    free(j->arn);
    free(j->parent_of_removed);
    free(j);
}

/* Outcome for a store answer that is not a success; STAGE_DONE if it is. */
static enum stage_outcome store_outcome(redisReply *reply, const char *error)
{
    if (error)
        return STAGE_UNAVAILABLE;
    switch (store_refusal(reply)) {
    case REFUSAL_NONE: return STAGE_DONE;
    case REFUSAL_STAGE_LIMIT: return STAGE_LIMIT;
    case REFUSAL_NO_STAGE: return STAGE_NOT_FOUND;
    case REFUSAL_IS_MASTER: return STAGE_IS_MASTER;
    case REFUSAL_NOT_EMPTY: return STAGE_NOT_EMPTY;
    case REFUSAL_NOT_LEADER: return STAGE_NOT_LEADER;
    default: return STAGE_FAILED;
    }
}

/* ---- create ------------------------------------------------------------ */

static void unused_stage_deleted(void *arg, const char *error)
{
    char *arn = arg;
    if (error)
        log_warn("stage %s was made but not recorded, and could not be deleted: %s", arn, error);
    free(arn);
}

static void recorded(void *arg, redisReply *reply, const char *error)
{
    struct stage_job *j = arg;
    enum stage_outcome outcome = store_outcome(reply, error);
    if (outcome != STAGE_DONE) {
        /* Not recorded: nobody will ever seat anyone there, so give it back. */
        if (j->master == NOT_MASTER && (outcome == STAGE_LIMIT || outcome == STAGE_NOT_LEADER))
            j->app->provider->ops->delete_stage(j->app->provider, j->arn, unused_stage_deleted,
                                                strdup(j->arn));
        job_end(j, outcome, error ? error : reply->str);
        return;
    }
    if (j->master != NOT_MASTER && reply->type == REDIS_REPLY_STRING) {
        snprintf(j->app->master_arn, sizeof j->app->master_arn, "%s", reply->str);
        log_info("master stage: %s", j->app->master_arn);
    } else if (j->master == NOT_MASTER) {
        stage_event(j->app, j->spec.auto_scaled ? "scale_up" : "created", j->arn, j->spec.name);
    }
    job_end(j, STAGE_DONE, NULL);
}

static void record(struct stage_job *j, const char *arn)
{
    struct app *app = j->app;
    int64_t now = clock_now_ms();
    char created_iso[32], created_ms[24], ttl[16], max[16];
    clock_iso8601(now, created_iso, sizeof created_iso);
    snprintf(created_ms, sizeof created_ms, "%lld", (long long)now);
    snprintf(ttl, sizeof ttl, "%d", STAGE_KEY_TTL_S);
    snprintf(max, sizeof max, "%ld", app->cfg->max_stages);
    j->arn = strdup(arn);
    j->info = json_pack("{s:s, s:s, s:b, s:s}", "name", j->spec.name, "arn", arn,
                        "autoScaled", j->spec.auto_scaled, "createdAt", created_iso);
    if (j->spec.parent)
        json_object_set_new(j->info, "parentStage", json_string(j->spec.parent));
    char *info = json_dumps(j->info, JSON_COMPACT);
    if (!j->arn || !info) {
        free(info);
        job_end(j, STAGE_FAILED, "out of memory");
        return;
    }
    const char *mode = j->master == NOT_MASTER ? "0" : j->master == MASTER_FORCED ? "2" : "1";
    /* An added stage seats nobody until the publisher's video reaches it. */
    const char *argv[] = {arn, info, created_ms, ttl, max, mode,
                          j->spec.lease_holder ? j->spec.lease_holder : "",
                          j->spec.auto_scaled ? "waiting" : "open",
                          j->spec.auto_scaled ? "{\"replication\":\"pending\",\"attempts\":0}" : ""};
    store_run(app->store, SCRIPT_STAGE_ADD, recorded, j, 9, argv);
    free(info);
}

static void provided(void *arg, const char *arn, const char *error)
{
    struct stage_job *j = arg;
    if (!arn) {
        log_error("stage provider could not create a stage: %s", error);
        job_end(j, STAGE_FAILED, error);
        return;
    }
    record(j, arn);
}

void stage_create(struct app *app, const struct stage_spec *spec,
                  stage_done_fn done, void *arg)
{
    struct stage_job *j = job_new(app, spec, NOT_MASTER, done, arg);
    if (j)
        app->provider->ops->create_stage(app->provider, spec->name, provided, j);
}

/* ---- remove ------------------------------------------------------------ */

static void provider_deleted(void *arg, const char *error)
{
    struct stage_job *j = arg;
    if (error)
        log_warn("stage %s left Redis but the provider could not delete it: %s", j->arn, error);
    stage_event(j->app, "delete", j->arn, error);
    job_end(j, STAGE_DONE, NULL);
}

static void replication_stopped(void *arg, const char *error)
{
    struct stage_job *j = arg;
    if (error)
        log_warn("stopping replication into %s: %s", j->arn, error);
    j->app->provider->ops->delete_stage(j->app->provider, j->arn, provider_deleted, j);
}

static void removed(void *arg, redisReply *reply, const char *error)
{
    struct stage_job *j = arg;
    enum stage_outcome outcome = store_outcome(reply, error);
    if (outcome != STAGE_DONE) {
        job_end(j, outcome, error ? error : reply->str);
        return;
    }
    long long unseated = reply_int(reply, 0);
    const char *parent = reply_str(reply, 1);
    if (unseated > 0) {
        char detail[64];
        snprintf(detail, sizeof detail, "%lld viewers unseated", unseated);
        stage_event(j->app, "drain_timeout", j->arn, detail);
    }
    struct stage_provider *p = j->app->provider;
    if (parent && parent[0])
        p->ops->stop_replication(p, parent, j->arn, replication_stopped, j);
    else
        p->ops->delete_stage(p, j->arn, provider_deleted, j);
}

void stage_remove(struct app *app, const char *arn, const char *lease_holder,
                  stage_done_fn done, void *arg)
{
    struct stage_spec spec = {.lease_holder = lease_holder};
    struct stage_job *j = job_new(app, &spec, NOT_MASTER, done, arg);
    if (!j)
        return;
    if (!(j->arn = strdup(arn))) {
        job_end(j, STAGE_FAILED, "out of memory");
        return;
    }
    const char *argv[] = {arn, lease_holder ? lease_holder : ""};
    store_run(app->store, SCRIPT_STAGE_REMOVE, removed, j, 2, argv);
}

/* ---- master ------------------------------------------------------------ */

static void master_looked_up(void *arg, redisReply *reply, const char *error)
{
    struct app *app = arg;
    if (error || !reply || reply->type == REDIS_REPLY_ERROR)
        return;                     /* the next reconnect tries again */
    if (reply->type == REDIS_REPLY_STRING) {
        snprintf(app->master_arn, sizeof app->master_arn, "%s", reply->str);
        return;
    }
    struct stage_spec spec = {.name = "master-stage"};
    struct stage_job *j = job_new(app, &spec, MASTER_UNLESS_ONE, NULL, NULL);
    if (j)
        app->provider->ops->create_stage(app->provider, spec.name, provided, j);
}

void stage_ensure_master(struct app *app)
{
    struct stage_spec spec = {.name = "master-stage"};
    if (app->cfg->master_stage_arn[0]) {
        struct stage_job *j = job_new(app, &spec, MASTER_FORCED, NULL, NULL);
        if (j)
            record(j, app->cfg->master_stage_arn);
        return;
    }
    char key[128];
    store_key(app->store, key, sizeof key, "master_stage", NULL);
    const char *argv[] = {"GET", key};
    redis_command(app->store->redis, master_looked_up, app, 2, argv, NULL);
}
