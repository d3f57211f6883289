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
#include "stages/endpoints.h"
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

struct stage_ceiling stage_ceiling(const struct app *app)
{
    const struct config *cfg = app->cfg;
    return stage_ceiling_of(cfg->max_stages, app->provider->ops->replication_quota,
                            cfg->replication_max, cfg->replication_chaining);
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

/* Records the stage the provider made or named (its ARN and endpoints). */
static void record(struct stage_job *j, const struct provider_stage *stage)
{
    struct app *app = j->app;
    int64_t now = j->spec.now_ms;
    char created_iso[32];
    clock_iso8601(now, created_iso, sizeof created_iso);
    const char *arn = stage->arn;
    endpoints_remember(app->endpoints, arn, stage->whip, stage->events);
    j->arn = strdup(arn);
    j->info = stage_info_new(arn, j->spec.name, j->spec.auto_scaled, created_iso, j->spec.parent);
    char *info = j->info ? json_dumps(j->info, JSON_COMPACT) : NULL;
    char *tags = j->spec.tags ? json_dumps(j->spec.tags, JSON_COMPACT) : NULL;
    char *endpoints = stage->whip[0] ? endpoints_json(stage->whip, stage->events) : NULL;
    if (!j->arn || !info || (j->spec.tags && !tags) || (stage->whip[0] && !endpoints)) {
        free(info), free(tags), free(endpoints);
        job_end(j, STORE_FAILED, "out of memory");
        return;
    }
    /* An added stage seats nobody until the publisher's video reaches it;
     * one adopted with its replication running seats at once. */
    const struct stage_state pending = {.replication = REPL_PENDING};
    const struct stage_state running = {.replication = REPL_RUNNING};
    const bool waits = j->spec.auto_scaled && !j->spec.replicating;
    const struct stage_record r = {
        .arn = arn, .info_json = info, .created_ms = now, .max_stages = stage_ceiling(app).stages,
        .master = j->master, .lease_holder = j->spec.lease_holder,
        .mode = waits ? MODE_WAITING : MODE_OPEN,
        .state = !j->spec.auto_scaled ? NULL : waits ? &pending : &running, .tags_json = tags,
        .endpoints_json = endpoints,
    };
    store_stage_add(app->store, &r, recorded, j);
    free(info), free(tags), free(endpoints);
}

static void provided(void *arg, const struct provider_stage *stage, const char *error)
{
    struct stage_job *j = arg;
    if (!stage && j->master == MASTER_FORCED) {
        /* Checked at start; its endpoints are asked for again when needed. */
        log_warn("MASTER_STAGE_ARN %s could not be read again: %s", j->app->cfg->master_stage_arn, error);
        record(j, &(struct provider_stage){.arn = j->app->cfg->master_stage_arn, .whip = "", .events = ""});
        return;
    }
    if (!stage) {
        log_error("stage provider could not create a stage: %s", error);
        stage_event(j->app, j->spec.now_ms, "provider_error", "", error);
        job_end(j, STORE_FAILED, error);
        return;
    }
    record(j, stage);
}

/* provided() for a stage the provider made for this job (not one it read). */
static void made(void *arg, const struct provider_stage *stage, const char *error)
{
    struct stage_job *j = arg;
    j->made = stage != NULL;
    provided(j, stage, error);
}

void stage_create(struct app *app, const struct stage_spec *spec,
                  stage_done_fn done, void *arg)
{
    struct stage_job *j = job_new(app, spec, MASTER_NONE, done, arg);
    if (j)
        app->provider->ops->create_stage(app->provider, spec->name, spec->tags, made, j);
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
        p->ops->stop_replication(p, r->parent, j->arn, NULL, replication_stopped, j);
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

/* The master this stream made before, found by its tag (read again for
 * its endpoints), else a new one, tagged as the master. */
static void masters_listed(void *arg, const struct provider_stage *stages, size_t n,
                           const char *error)
{
    struct stage_job *j = arg;
    struct stage_provider *p = j->app->provider;
    for (size_t i = 0; !error && i < n; i++) {
        const char *role = json_string_value(json_object_get(stages[i].tags, USHER_TAG_ROLE));
        if (role && strcmp(role, USHER_ROLE_MASTER) == 0) {
            log_info("master stage found in the provider by its tag: %s", stages[i].arn);
            p->ops->get_stage(p, stages[i].arn, provided, j);
            return;
        }
    }
    if (error) {                    /* the next state check tries again */
        log_warn("looking for the master stage in the provider: %s", error);
        job_end(j, STORE_FAILED, error);
        return;
    }
    json_t *tags = json_pack("{s:s}", USHER_TAG_ROLE, USHER_ROLE_MASTER);
    p->ops->create_stage(p, j->spec.name, tags, made, j);
    json_decref(tags);
}

void stage_recover_master(struct app *app, stage_done_fn done, void *arg)
{
    struct stage_spec spec = {.name = "master-stage", .now_ms = clock_now_ms()};
    bool forced = app->cfg->master_stage_arn[0] != '\0';
    struct stage_job *j = job_new(app, &spec, forced ? MASTER_FORCED : MASTER_UNLESS_ONE, done, arg);
    if (!j)
        return;
    struct stage_provider *p = app->provider;
    if (forced)                     /* read again for its endpoints (and that it exists) */
        p->ops->get_stage(p, app->cfg->master_stage_arn, provided, j);
    else if (app->master_arn[0])    /* its endpoints are asked for again when needed */
        record(j, &(struct provider_stage){.arn = app->master_arn, .whip = "", .events = ""});
    else
        p->ops->list_stages(p, masters_listed, j);
}

void stage_adopt(struct app *app, const struct provider_stage *ps, int64_t now_ms,
                 stage_done_fn done, void *arg)
{
    const char *parent = ps->replicating_from ? ps->replicating_from : app->master_arn;
    struct stage_spec spec = {.name = ps->name && ps->name[0] ? ps->name : "recovered-stage",
                              .auto_scaled = true, .parent = parent[0] ? parent : NULL,
                              .now_ms = now_ms, .replicating = ps->replicating_from != NULL};
    struct stage_job *j = job_new(app, &spec, MASTER_NONE, done, arg);
    if (j)
        record(j, ps);
}
