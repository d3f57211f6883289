/* orphans.c — see orphans.h. When each candidate was first seen
 * unrecorded is kept in Redis (store_orphan_seen), so every process that
 * holds the lease in turn, and a restarted one, counts the grace from the
 * same moment. */
#include "stages/orphans.h"

#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "app.h"
#include "config/config.h"
#include "ivs/provider.h"
#include "stages/events.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/log.h"

struct orphans {
    struct app *app;
    bool sweeping;
    int64_t last_ms;                 /* last sweep's start, 0 = never */
    json_t *listed;                  /* this sweep's stages of ours (ARNs) */
};

struct orphans *orphans_new(struct app *app)
{
    struct orphans *o = calloc(1, sizeof *o);
    if (o)
        o->app = app;
    return o;
}

void orphans_free(struct orphans *o)
{
    if (!o)
        return;
    json_decref(o->listed);
    free(o);
}

static void sweep_end(struct orphans *o)
{
    json_decref(o->listed);
    o->listed = NULL;
    o->sweeping = false;
}

static void orphan_deleted(void *arg, const char *error)
{
    char *arn = arg;
    if (error)
        log_warn("orphan stage %s could not be deleted: %s", arn, error);
    free(arn);
}

/* Whether arn is a live stage of the view, or a master. */
static bool recorded(const struct orphans *o, const struct stats_view *v, const char *arn)
{
    if (strcmp(arn, v->master_arn) == 0 || strcmp(arn, o->app->cfg->master_stage_arn) == 0)
        return true;
    for (size_t i = 0; i < v->count; i++)
        if (strcmp(v->stages[i].arn, arn) == 0)
            return true;
    return false;
}

/* The candidates with how long they have been seen unrecorded (ms), by
 * any process: those past the grace are deleted. */
static void aged(void *arg, enum store_error err, const char *detail, const char *text)
{
    struct orphans *o = arg;
    json_t *ages = err == STORE_OK ? json_loads(text, 0, NULL) : NULL;
    if (err != STORE_OK || !o->app->provider) {
        if (err != STORE_OK)
            log_warn("orphan sweep: %s", detail);
        sweep_end(o);
        return;
    }
    int64_t now = clock_now_ms(), grace = o->app->cfg->orphan_grace_s * 1000;
    const char *arn;
    json_t *age;
    json_object_foreach(ages, arn, age) {
        if (json_integer_value(age) < grace)
            continue;
        stage_event(o->app, now, "orphan_deleted", arn, "tagged as this stream's in IVS, recorded nowhere");
        char *copy = strdup(arn);
        if (copy)
            o->app->provider->ops->delete_stage(o->app->provider, arn, orphan_deleted, copy);
    }
    json_decref(ages);
    sweep_end(o);
}

/* The stages listed that no record names go to Redis, which says since
 * when they have been seen so (store_orphan_seen). */
static void judge(struct orphans *o, const struct stats_view *v)
{
    json_t *candidates = json_array(), *arn;
    size_t i;
    json_array_foreach(o->listed, i, arn)
        if (candidates && !recorded(o, v, json_string_value(arn)) &&
            json_array_append(candidates, arn) < 0)
            json_decref(candidates), candidates = NULL;
    char *text = candidates ? json_dumps(candidates, JSON_COMPACT) : NULL;
    json_decref(candidates);
    if (!text) {
        log_warn("orphan sweep: out of memory");
        sweep_end(o);
        return;
    }
    store_orphan_seen(o->app->store, text, aged, o);
    free(text);
}

static void viewed(void *arg, enum store_error err, const char *detail, const struct stats_view *v)
{
    struct orphans *o = arg;
    if (err != STORE_OK)
        log_warn("orphan sweep: %s", detail);
    else if (!v->master_arn[0])
        log_warn("orphan sweep skipped: Redis holds no master stage (lost data?)");
    else if (o->app->store) {
        judge(o, v);                 /* the sweep ends when Redis answers */
        return;
    }
    sweep_end(o);
}

static void listed(void *arg, const struct provider_stage *stages, size_t n, const char *error)
{
    struct orphans *o = arg;
    if (error || !(o->listed = json_array())) {
        log_warn("orphan sweep: %s", error ? error : "out of memory");
        sweep_end(o);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(o->listed, json_string(stages[i].arn)) < 0) {
            log_warn("orphan sweep: out of memory");    /* a stage left out is judged by no one */
            sweep_end(o);
            return;
        }
    /* Redis read after the list: a stage recorded meanwhile is seen. */
    store_stats(o->app->store, viewed, o);
}

void orphans_tick(struct orphans *o)
{
    const struct config *cfg = o->app->cfg;
    int64_t now = clock_now_ms();
    if (o->sweeping || !clock_due(&o->last_ms, now, cfg->orphan_sweep_interval_s * 1000))
        return;
    o->sweeping = true;
    o->app->provider->ops->list_stages(o->app->provider, listed, o);
}
