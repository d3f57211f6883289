/* stats.c — live statistics (SPEC §2 "Statistics"). /api/stats is one
 * store call (store_stats), so it costs one Redis round trip whatever the number of
 * stages, and its work in Redis grows with stages, never with viewers.
 * Besides the SPEC fields it shows each stage's seating mode and
 * replication, and the spare seats the scaler keeps ahead of demand. */
#include "routes/routes.h"

#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "config/config.h"
#include "http/request.h"
#include "routes/stats_cache.h"
#include "stages/stages.h"
#include "store/read_batch.h"


/* JSON for a string that may be missing from a stage's record. */
static json_t *text_or_null(const char *s) { return s ? json_string(s) : json_null(); }

json_t *stage_entry(const struct stage_entry *e, bool list_shape)
{
    json_t *auto_scaled = e->info.doc ? json_boolean(e->info.auto_scaled) : json_null();
    json_t *entry = list_shape
        ? json_pack("{s:s, s:o, s:I, s:o, s:o}", "stageArn", e->arn,
                    "name", text_or_null(e->info.name), "viewerCount", (json_int_t)e->viewers,
                    "autoScaled", auto_scaled, "createdAt", text_or_null(e->info.created_at))
        : json_pack("{s:s, s:I, s:{s:o, s:o, s:o}}", "stageId", e->arn,
                    "viewerCount", (json_int_t)e->viewers, "info",
                    "name", text_or_null(e->info.name), "autoScaled", auto_scaled,
                    "createdAt", text_or_null(e->info.created_at));
    json_object_set_new(entry, "mode", json_string(stage_mode_name(e->mode)));
    /* The master is where the publisher's video comes from. */
    json_object_set_new(entry, "replication",
                        json_string(e->master ? "source" : replication_name(e->state.replication)));
    json_object_set_new(entry, "isMasterStage", json_boolean(e->master));
    return entry;
}

json_t *stage_entries(const struct stats_view *view, bool list_shape)
{
    json_t *stages = json_array();
    for (size_t i = 0; i < view->count; i++)
        json_array_append_new(stages, stage_entry(&view->stages[i], list_shape));
    return stages;
}

/* Free seats in open stages; "in use" once less than one stage's worth is
 * left, which is when the scaler is adding a stage. */
json_t *stage_spare(const struct stats_view *view, long capacity)
{
    long seats = 0;
    for (size_t i = 0; i < view->count; i++)
        if (view->stages[i].mode == MODE_OPEN)
            seats += capacity - (long)view->stages[i].viewers;
    return json_pack("{s:I, s:I, s:b}", "spareSeats", (json_int_t)(seats > 0 ? seats : 0),
                     "capacityPerStage", (json_int_t)capacity, "spareInUse", seats < capacity);
}

json_t *stats_data(const struct stats_view *view, const char *timestamp)
{
    json_t *stages = stage_entries(view, false);
    /* SPEC §2 fixes these five fields exactly; more goes in the stages. */
    json_t *data = json_pack("{s:I, s:I, s:b, s:o}",
                             "totalViewers", (json_int_t)view->total_viewers,
                             "activeStages", (json_int_t)json_array_size(stages),
                             "isPublisherLive", view->publisher_live, "stages", stages);
    if (timestamp)
        json_object_set_new(data, "timestamp", json_string(timestamp));
    return data;
}

/* Dashboards poll /api/stats in crowds: requests arriving together share
 * one Redis call and one JSON rendering (read_batch.h), which formats only
 * the counts into each stage's cached entry (stats_cache.h). Each answer is
 * that rendering, sent from where it lies, with the request's own moment
 * as data.timestamp (the same as the envelope's) after it. */
static void stats_done(void *arg, enum store_error err, const char *detail,
                       const struct stats_view *view, void **memo)
{
    struct request *rq = arg;
    if (err != STORE_OK) {
        respond_store_error(rq, err, detail);
        return;
    }
    if (!*memo)
        *memo = (void *)stats_cache_render(rq->app->stats_cache, view);
    const struct stats_text *text = *memo;
    if (!text) {
        respond_error(rq, 500, "INTERNAL_ERROR", "the statistics could not be rendered", NULL);
        return;
    }
    char when[REQUEST_TIME_END_SIZE];
    size_t when_len = request_time_end(rq, when);
    /* The rendering ends with the data object's '}': the time goes before it. */
    struct http_piece data[] = {{text->s, text->len - 1}, {when, when_len}};
    respond_ok_text(rq, 200, data, 2);
}

void route_stats(struct request *rq)
{
    read_batch_call(rq->app->stats_batch, stats_done, rq);
}

/* /api/stats/stages waiting for the reconciliation notes. */
struct stages_answer {
    struct request *rq;
    json_t *data;
};

/* Each stage's last reconciliation (reconcile/reconcile.h) beside it. */
static void notes_read(void *arg, enum store_error err, const char *detail, const char *text)
{
    struct stages_answer *a = arg;
    struct request *rq = a->rq;
    json_t *data = a->data;
    free(a);
    if (err != STORE_OK) {
        json_decref(data);
        respond_store_error(rq, err, detail);
        return;
    }
    json_t *notes = json_loads(text, 0, NULL), *entry;
    size_t i;
    json_array_foreach(json_object_get(data, "stages"), i, entry) {
        json_t *note = json_object_get(notes, json_string_value(json_object_get(entry, "stageId")));
        json_object_set(entry, "reconcile", note ? note : json_null());
    }
    json_decref(notes);
    respond_ok(rq, 200, data);
}

static void stages_done(void *arg, enum store_error err, const char *detail,
                        const struct stats_view *view)
{
    struct request *rq = arg;
    if (err != STORE_OK) {
        respond_store_error(rq, err, detail);
        return;
    }
    json_t *stages = stage_entries(view, false);
    json_t *scaling = stage_spare(view, rq->app->cfg->max_viewers_per_stage);
    struct stage_ceiling ceiling = stage_ceiling(rq->app);
    json_object_set_new(scaling, "stageCeiling", json_integer(ceiling.stages));
    json_object_set_new(scaling, "ceilingReason", json_string(ceiling.reason));
    json_t *data = json_pack("{s:I, s:o, s:o}", "totalStages", (json_int_t)json_array_size(stages),
                             "stages", stages, "scaling", scaling);
    struct stages_answer *a = malloc(sizeof *a);
    if (!a) {
        json_decref(data);
        respond_error(rq, 500, "INTERNAL_ERROR", "the request could not be completed", NULL);
        return;
    }
    *a = (struct stages_answer){rq, data};
    store_reconcile_notes(rq->app->store, notes_read, a);
}

void route_stats_stages(struct request *rq)
{
    store_stats(rq->app->store, stages_done, rq);
}

static void viewers_done(void *arg, enum store_error err, const char *detail, long long total)
{
    struct request *rq = arg;
    if (err != STORE_OK) {
        respond_store_error(rq, err, detail);
        return;
    }
    respond_ok(rq, 200, json_pack("{s:I}", "totalViewers", (json_int_t)total));
}

void route_stats_viewers(struct request *rq)
{
    store_total_viewers(rq->app->store, viewers_done, rq);
}
