/* orphans.c — see orphans.h. The candidates (ARN → when first seen
 * unrecorded, ms) live in this process: a sweep moved to another process
 * by the lease starts counting afresh, which only delays a deletion. */
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
    json_t *seen;                    /* candidates: arn → first seen unrecorded (ms) */
    json_t *listed;                  /* this sweep's stages of ours (ARNs) */
};

struct orphans *orphans_new(struct app *app)
{
    struct orphans *o = calloc(1, sizeof *o);
    if (!o || !(o->seen = json_object())) {
        free(o);
        return NULL;
    }
    o->app = app;
    return o;
}

void orphans_free(struct orphans *o)
{
    if (!o)
        return;
    json_decref(o->seen);
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

/* Deletes the candidates seen unrecorded for the grace, notes new ones and
 * forgets those no longer unrecorded. */
static void judge(struct orphans *o, const struct stats_view *v)
{
    int64_t now = clock_now_ms(), grace = o->app->cfg->orphan_grace_s * 1000;
    json_t *seen = json_object(), *arn;
    size_t i;
    json_array_foreach(o->listed, i, arn) {
        const char *a = json_string_value(arn);
        if (recorded(o, v, a))
            continue;
        json_t *first = json_object_get(o->seen, a);
        int64_t since = first ? json_integer_value(first) : now;
        if (now - since < grace) {
            json_object_set_new(seen, a, json_integer(since));
            continue;
        }
        stage_event(o->app, now, "orphan_deleted", a, "tagged as this stream's in IVS, recorded nowhere");
        char *copy = strdup(a);
        if (copy)
            o->app->provider->ops->delete_stage(o->app->provider, a, orphan_deleted, copy);
    }
    json_decref(o->seen);
    o->seen = seen;
}

static void viewed(void *arg, enum store_error err, const char *detail, const struct stats_view *v)
{
    struct orphans *o = arg;
    if (err != STORE_OK)
        log_warn("orphan sweep: %s", detail);
    else if (!v->master_arn[0])
        log_warn("orphan sweep skipped: Redis holds no master stage (lost data?)");
    else
        judge(o, v);
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
        json_array_append_new(o->listed, json_string(stages[i].arn));
    /* Redis read after the list: a stage recorded meanwhile is seen. */
    store_stats(o->app->store, viewed, o);
}

void orphans_tick(struct orphans *o)
{
    const struct config *cfg = o->app->cfg;
    int64_t now = clock_now_ms();
    if (o->sweeping || cfg->orphan_sweep_interval_s == 0 ||
        (o->last_ms && now - o->last_ms < cfg->orphan_sweep_interval_s * 1000))
        return;
    o->sweeping = true;
    o->last_ms = now;
    o->app->provider->ops->list_stages(o->app->provider, listed, o);
}
