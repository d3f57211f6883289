/* stats.c — live statistics (SPEC §2 "Statistics"). /api/stats is one
 * script call, so it costs one Redis round trip whatever the number of
 * stages, and its work in Redis grows with stages, never with viewers.
 * Besides the SPEC fields it shows each stage's seating mode and
 * replication, and the spare seats the scaler keeps ahead of demand. */
#include "routes/routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "config/config.h"
#include "http/request.h"
#include "store/read_batch.h"
#include "store/store.h"
#include "util/clock.h"


json_t *stage_entries(redisReply *reply, bool list_shape)
{
    json_t *stages = json_array();
    const char *master = reply_str(reply, STATS_MASTER);
    for (size_t i = STATS_FIRST_STAGE; i + STATS_PER_STAGE <= reply->elements; i += STATS_PER_STAGE) {
        const char *arn = reply_str(reply, i + STATS_ARN);
        const char *info_text = reply_str(reply, i + STATS_INFO);
        json_t *info = info_text ? json_loads(info_text, 0, NULL) : NULL;
        bool is_master = master && arn && strcmp(arn, master) == 0;
        json_int_t count = (json_int_t)reply_int(reply, i + STATS_VIEWERS);
        json_t *entry = list_shape
            ? json_pack("{s:s, s:O?, s:I, s:O?, s:O?}", "stageArn", arn ? arn : "",
                        "name", json_object_get(info, "name"), "viewerCount", count,
                        "autoScaled", json_object_get(info, "autoScaled"),
                        "createdAt", json_object_get(info, "createdAt"))
            : json_pack("{s:s, s:I, s:{s:O?, s:O?, s:O?}}", "stageId", arn ? arn : "",
                        "viewerCount", count, "info", "name", json_object_get(info, "name"),
                        "autoScaled", json_object_get(info, "autoScaled"),
                        "createdAt", json_object_get(info, "createdAt"));
        json_object_set_new(entry, "mode", json_string(reply_str(reply, i + STATS_MODE)));
        /* The master is where the publisher's video comes from. */
        json_object_set_new(entry, "replication",
                            json_string(is_master ? "source" : reply_str(reply, i + STATS_REPLICATION)));
        json_object_set_new(entry, "isMasterStage", json_boolean(is_master));
        json_decref(info);
        json_array_append_new(stages, entry);
    }
    return stages;
}

/* Free seats in open stages; "in use" once less than one stage's worth is
 * left, which is when the scaler is adding a stage. */
json_t *stage_spare(json_t *stages, long capacity)
{
    long seats = 0;
    size_t i;
    json_t *stage;
    json_array_foreach(stages, i, stage) {
        if (strcmp(json_string_value(json_object_get(stage, "mode")), "open") == 0)
            seats += capacity - (long)json_integer_value(json_object_get(stage, "viewerCount"));
    }
    return json_pack("{s:I, s:I, s:b}", "spareSeats", (json_int_t)(seats > 0 ? seats : 0),
                     "capacityPerStage", (json_int_t)capacity, "spareInUse", seats < capacity);
}

/* The data of /api/stats as compact JSON, made once per batch. */
static char *stats_text(redisReply *reply)
{
    json_t *stages = stage_entries(reply, false);
    const char *status = reply_str(reply, STATS_PUBLISHER);
    char now[32];
    clock_iso8601(clock_now_ms(), now, sizeof now);
    /* SPEC §2 fixes these five fields exactly; more goes in the stages. */
    json_t *data = json_pack("{s:I, s:I, s:b, s:o, s:s}",
                             "totalViewers", (json_int_t)reply_int(reply, STATS_TOTAL),
                             "activeStages", (json_int_t)json_array_size(stages),
                             "isPublisherLive", status && strcmp(status, "live") == 0,
                             "stages", stages, "timestamp", now);
    char *text = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    return text;
}

/* Dashboards poll /api/stats in crowds: requests arriving together share
 * one Redis call and one JSON rendering (read_batch.h). */
static void stats_done(void *arg, redisReply *reply, const char *error, void **memo)
{
    struct request *rq = arg;
    if (answer_store_failure(rq, reply, error))
        return;
    if (!*memo)
        *memo = stats_text(reply);
    if (*memo)
        respond_ok_text(rq, 200, *memo);
    else
        respond_error(rq, 500, "INTERNAL_ERROR", "the statistics could not be rendered", NULL);
}

void route_stats(struct request *rq)
{
    read_batch_call(rq->app->stats_batch, stats_done, rq);
}

static void stages_done(void *arg, redisReply *reply, const char *error)
{
    struct request *rq = arg;
    if (answer_store_failure(rq, reply, error))
        return;
    json_t *stages = stage_entries(reply, false);
    json_t *scaling = stage_spare(stages, rq->app->cfg->max_viewers_per_stage);
    respond_ok(rq, 200, json_pack("{s:I, s:o, s:o}", "totalStages", (json_int_t)json_array_size(stages),
                                  "stages", stages, "scaling", scaling));
}

void route_stats_stages(struct request *rq)
{
    store_run(rq->app->store, SCRIPT_STATS, stages_done, rq, 0, NULL);
}

static void viewers_done(void *arg, redisReply *reply, const char *error)
{
    struct request *rq = arg;
    if (answer_store_failure(rq, reply, error))
        return;
    long long total = reply->type == REDIS_REPLY_STRING ? strtoll(reply->str, NULL, 10) : 0;
    respond_ok(rq, 200, json_pack("{s:I}", "totalViewers", (json_int_t)total));
}

void route_stats_viewers(struct request *rq)
{
    char key[128];
    store_key(rq->app->store, key, sizeof key, "total_viewers", NULL);
    const char *argv[] = {"GET", key};
    redis_command(rq->app->store->redis, viewers_done, rq, 2, argv, NULL);
}
