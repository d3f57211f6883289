/* stages.c — see stages.h.
 *
 * Creating is two asynchronous steps: the provider makes the stage, then
 * one store step records it, checking MAX_STAGES (and the scaler's lease)
 * atomically. If the record is refused, the provider's stage is deleted
 * again. Removing runs the other way round: the store first, so no viewer
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

struct stage_job {
    struct app *app;
    stage_done_fn done;
    void *arg;
    struct stage_spec spec;          /* strings owned by the job */
    enum master_choice master;
    json_t *info;
    char *arn;
    bool made;                       /* the provider made the stage for this job */
};

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static struct stage_job *job_new(struct app *app, const struct stage_spec *spec,
                                 enum master_choice master, stage_done_fn done, void *arg)
{
    struct stage_job *j = calloc(1, sizeof *j);
    if (!j)
        goto oom;
    j->app = app;
    j->done = done;
    j->arg = arg;
    j->master = master;
    j->spec.auto_scaled = spec->auto_scaled;
    j->spec.now_ms = spec->now_ms;
    j->spec.replicating = spec->replicating;
    j->spec.name = dup_or_null(spec->name);
    j->spec.parent = dup_or_null(spec->parent);
    j->spec.lease_holder = dup_or_null(spec->lease_holder);
    j->spec.tags = spec->tags ? json_deep_copy(spec->tags) : NULL;
    if ((spec->name && !j->spec.name) || (spec->parent && !j->spec.parent) ||
        (spec->lease_holder && !j->spec.lease_holder) || (spec->tags && !j->spec.tags)) {
        free((char *)j->spec.name), free((char *)j->spec.parent), free((char *)j->spec.lease_holder);
        json_decref(j->spec.tags);
        free(j);
        goto oom;
    }
    return j;
oom:
    if (done)
        done(arg, STORE_FAILED, NULL, "out of memory");
    return NULL;
}

static void job_end(struct stage_job *j, enum store_error err, const char *detail)
{
    if (j->done)
        j->done(j->arg, err, err == STORE_OK && j->info ? json_incref(j->info) : NULL, detail);
    json_decref(j->info);
    free((char *)j->spec.name);
    free((char *)j->spec.parent);
    free((char *)j->spec.lease_holder);
    json_decref(j->spec.tags);
    free(j->arn);
    free(j);
}

/* ---- create ------------------------------------------------------------ */

static void unused_stage_deleted(void *arg, const char *error)
{
    char *arn = arg;
    if (error)
        log_warn("stage %s was made but not recorded, and could not be deleted: %s", arn, error);
    free(arn);
}

static void recorded(void *arg, enum store_error err, const char *detail, const char *arn)
{
    struct stage_job *j = arg;
    if (err != STORE_OK) {
        /* Not recorded: nobody will ever seat anyone there, so give it back. */
        if (j->master == MASTER_NONE && (err == STORE_STAGE_LIMIT || err == STORE_NOT_LEADER))
            j->app->provider->ops->delete_stage(j->app->provider, j->arn, unused_stage_deleted,
                                                strdup(j->arn));
        job_end(j, err, detail);
        return;
    }
    if (j->master != MASTER_NONE) {
        snprintf(j->app->master_arn, sizeof j->app->master_arn, "%s", arn);
        log_info("master stage: %s", j->app->master_arn);
        /* Another process recorded its master first: ours is not needed. */
        if (j->made && strcmp(arn, j->arn) != 0)
            j->app->provider->ops->delete_stage(j->app->provider, j->arn, unused_stage_deleted,
                                                strdup(j->arn));
    } else {
        stage_event(j->app, j->spec.now_ms, j->spec.replicating ? "recovered"
                                            : j->spec.auto_scaled ? "scale_up" : "created",
                    j->arn, j->spec.name);
    }
    job_end(j, STORE_OK, "");
}

static void record(struct stage_job *j, const char *arn)
{
    struct app *app = j->app;
    int64_t now = j->spec.now_ms;
    char created_iso[32];
    clock_iso8601(now, created_iso, sizeof created_iso);
    j->arn = strdup(arn);
    j->info = stage_info_new(arn, j->spec.name, j->spec.auto_scaled, created_iso, j->spec.parent);
    char *info = j->info ? json_dumps(j->info, JSON_COMPACT) : NULL;
    char *tags = j->spec.tags ? json_dumps(j->spec.tags, JSON_COMPACT) : NULL;
    if (!j->arn || !info || (j->spec.tags && !tags)) {
        free(info), free(tags);
        job_end(j, STORE_FAILED, "out of memory");
        return;
    }
    /* An added stage seats nobody until the publisher's video reaches it;
     * one adopted with its replication running seats at once. */
    const struct stage_state pending = {.replication = REPL_PENDING};
    const struct stage_state running = {.replication = REPL_RUNNING};
    const bool waits = j->spec.auto_scaled && !j->spec.replicating;
    const struct stage_record r = {
        .arn = arn, .info_json = info, .created_ms = now, .max_stages = app->cfg->max_stages,
        .master = j->master, .lease_holder = j->spec.lease_holder,
        .mode = waits ? MODE_WAITING : MODE_OPEN,
        .state = !j->spec.auto_scaled ? NULL : waits ? &pending : &running, .tags_json = tags,
    };
    store_stage_add(app->store, &r, recorded, j);
    free(info), free(tags);
}

static void provided(void *arg, const char *arn, const char *error)
{
    struct stage_job *j = arg;
    if (!arn) {
        log_error("stage provider could not create a stage: %s", error);
        job_end(j, STORE_FAILED, error);
        return;
    }
    j->made = true;
    record(j, arn);
}

void stage_create(struct app *app, const struct stage_spec *spec,
                  stage_done_fn done, void *arg)
{
    struct stage_job *j = job_new(app, spec, MASTER_NONE, done, arg);
    if (j)
        app->provider->ops->create_stage(app->provider, spec->name, spec->tags, provided, j);
}

/* ---- remove ------------------------------------------------------------ */

static void provider_deleted(void *arg, const char *error)
{
    struct stage_job *j = arg;
    if (error)
        log_warn("stage %s left Redis but the provider could not delete it: %s", j->arn, error);
    stage_event(j->app, j->spec.now_ms, "delete", j->arn, error);
    job_end(j, STORE_OK, "");
}

static void replication_stopped(void *arg, const char *error)
{
    struct stage_job *j = arg;
    if (error)
        log_warn("stopping replication into %s: %s", j->arn, error);
    j->app->provider->ops->delete_stage(j->app->provider, j->arn, provider_deleted, j);
}

static void removed(void *arg, enum store_error err, const char *detail,
                    const struct stage_removed *r)
{
    struct stage_job *j = arg;
    if (err != STORE_OK) {
        job_end(j, err, detail);
        return;
    }
    if (r->unseated > 0) {
        char what[64];
        snprintf(what, sizeof what, "%lld viewers unseated", r->unseated);
        stage_event(j->app, j->spec.now_ms, "drain_timeout", j->arn, what);
    }
    struct stage_provider *p = j->app->provider;
    if (r->parent[0])
        p->ops->stop_replication(p, r->parent, j->arn, replication_stopped, j);
    else
        p->ops->delete_stage(p, j->arn, provider_deleted, j);
}

void stage_remove(struct app *app, const char *arn, const char *lease_holder, int64_t now_ms,
                  stage_done_fn done, void *arg)
{
    struct stage_spec spec = {.lease_holder = lease_holder, .now_ms = now_ms};
    struct stage_job *j = job_new(app, &spec, MASTER_NONE, done, arg);
    if (!j)
        return;
    if (!(j->arn = strdup(arn))) {
        job_end(j, STORE_FAILED, "out of memory");
        return;
    }
    store_stage_remove(app->store, arn, lease_holder, removed, j);
}

/* ---- master, and stages recorded again ------------------------------------ */

static void master_found(void *arg, const char *arn, const char *error)
{
    struct stage_job *j = arg;
    struct stage_provider *p = j->app->provider;
    if (arn) {
        log_info("master stage found at the provider: %s", arn);
        record(j, arn);
        return;
    }
    if (error)
        log_warn("looking for the master stage at the provider: %s; making a new one", error);
    p->ops->create_stage(p, j->spec.name, NULL, provided, j);
}

void stage_recover_master(struct app *app, stage_done_fn done, void *arg)
{
    struct stage_spec spec = {.name = "master-stage", .now_ms = clock_now_ms()};
    const char *known = app->cfg->master_stage_arn[0] ? app->cfg->master_stage_arn : app->master_arn;
    struct stage_job *j = job_new(app, &spec, app->cfg->master_stage_arn[0] ? MASTER_FORCED
                                                                           : MASTER_UNLESS_ONE,
                                  done, arg);
    if (!j)
        return;
    struct stage_provider *p = app->provider;
    if (known[0])
        record(j, known);
    else if (p->ops->find_master)
        p->ops->find_master(p, master_found, j);
    else
        p->ops->create_stage(p, spec.name, NULL, provided, j);
}

void stage_adopt(struct app *app, const struct provider_stage *ps, int64_t now_ms,
                 stage_done_fn done, void *arg)
{
    const char *parent = ps->replicating_from ? ps->replicating_from : app->master_arn;
    struct stage_spec spec = {.name = ps->name[0] ? ps->name : "recovered-stage",
                              .auto_scaled = true, .parent = parent[0] ? parent : NULL,
                              .now_ms = now_ms, .replicating = ps->replicating_from != NULL};
    struct stage_job *j = job_new(app, &spec, MASTER_NONE, done, arg);
    if (j)
        record(j, ps->arn);
}
