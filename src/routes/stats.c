/* stats.c — live statistics (SPEC §2 "Statistics"). /api/stats is one
 * script call, so it costs one Redis round trip whatever the number of
 * stages, and its work in Redis grows with stages, never with viewers. */
#include "routes/routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "http/request.h"
#include "store/store.h"

json_t *stage_entries(redisReply *reply, bool list_shape)
{
    json_t *stages = json_array();
    for (size_t i = 2; i + 2 < reply->elements; i += 3) {
        const char *arn = reply_str(reply, i);
        const char *info_text = reply_str(reply, i + 2);
        json_t *info = info_text ? json_loads(info_text, 0, NULL) : NULL;
        json_t *entry = list_shape
            ? json_pack("{s:s, s:O?, s:I, s:O?, s:O?}", "stageArn", arn ? arn : "",
                        "name", json_object_get(info, "name"),
                        "viewerCount", (json_int_t)reply_int(reply, i + 1),
                        "autoScaled", json_object_get(info, "autoScaled"),
                        "createdAt", json_object_get(info, "createdAt"))
            : json_pack("{s:s, s:I, s:{s:O?, s:O?, s:O?}}", "stageId", arn ? arn : "",
                        "viewerCount", (json_int_t)reply_int(reply, i + 1), "info",
                        "name", json_object_get(info, "name"),
                        "autoScaled", json_object_get(info, "autoScaled"),
                        "createdAt", json_object_get(info, "createdAt"));
        json_decref(info);
        json_array_append_new(stages, entry);
    }
    return stages;
}

static void stats_done(void *arg, redisReply *reply, const char *error)
{
    struct request *rq = arg;
    if (answer_store_failure(rq, reply, error))
        return;
    json_t *stages = stage_entries(reply, false);
    const char *status = reply_str(reply, 1);
    respond_ok(rq, 200, json_pack("{s:I, s:I, s:b, s:o}",
                                  "totalViewers", (json_int_t)reply_int(reply, 0),
                                  "activeStages", (json_int_t)json_array_size(stages),
                                  "isPublisherLive", status && strcmp(status, "live") == 0,
                                  "stages", stages));
}

void route_stats(struct request *rq)
{
    store_run(rq->app->store, SCRIPT_STATS, stats_done, rq, 0, NULL);
}

static void stages_done(void *arg, redisReply *reply, const char *error)
{
    struct request *rq = arg;
    if (answer_store_failure(rq, reply, error))
        return;
    json_t *stages = stage_entries(reply, false);
    respond_ok(rq, 200, json_pack("{s:I, s:o}", "totalStages", (json_int_t)json_array_size(stages),
                                  "stages", stages));
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
