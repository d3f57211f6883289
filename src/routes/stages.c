/* stages.c (routes) — stage management (SPEC §2 "Stages") and the stage
 * event stream. Creating and removing go through stages/stages.c, as the
 * master stage and the scaler do; reading uses the one stats.lua call. */
#include "routes/routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "config/config.h"
#include "http/fields.h"
#include "http/request.h"
#include "stages/stages.h"
#include "store/store.h"

#define EVENTS_DEFAULT 100
#define EVENTS_MAX 1000

/* ---- reading ------------------------------------------------------------- */

static void list_done(void *arg, redisReply *reply, const char *error)
{
    struct request *rq = arg;
    if (answer_store_failure(rq, reply, error))
        return;
    json_t *stages = stage_entries(reply, true);
    json_t *scaling = stage_spare(stages, rq->app->cfg->max_viewers_per_stage);
    respond_ok(rq, 200, json_pack("{s:o, s:I, s:o}", "stages", stages,
                                  "totalStages", (json_int_t)json_array_size(stages),
                                  "scaling", scaling));
}

void route_stage_list(struct request *rq)
{
    store_run(rq->app->store, SCRIPT_STATS, list_done, rq, 0, NULL);
}

/* Answers with the one stage `arn` of a stats.lua reply, or 404. */
static void answer_one_stage(struct request *rq, redisReply *reply, const char *arn, bool master_info)
{
    json_t *stages = stage_entries(reply, true), *stage;
    size_t i;
    json_array_foreach(stages, i, stage) {
        if (strcmp(json_string_value(json_object_get(stage, "stageArn")), arn) != 0)
            continue;
        json_t *data = json_pack("{s:O, s:O}", "stage", stage, "viewerCount",
                                 json_object_get(stage, "viewerCount"));
        if (master_info)
            json_object_set_new(data, "isMasterStage", json_true());
        json_decref(stages);
        respond_ok(rq, 200, data);
        return;
    }
    json_decref(stages);
    respond_error(rq, 404, "NOT_FOUND", "no such stage", NULL);
}

static void one_done(void *arg, redisReply *reply, const char *error)
{
    struct request *rq = arg;
    if (!answer_store_failure(rq, reply, error))
        answer_one_stage(rq, reply, rq->param, false);
}

static void master_done(void *arg, redisReply *reply, const char *error)
{
    struct request *rq = arg;
    if (!answer_store_failure(rq, reply, error))
        answer_one_stage(rq, reply, reply_str(reply, STATS_MASTER), true);
}

static bool param_is_arn(struct request *rq)
{
    if (valid_stage_arn(rq->param))
        return true;
    respond_invalid(rq, "the path must hold a percent-encoded stage ARN", json_pack("[s]", "stageArn"));
    return false;
}

void route_stage_get(struct request *rq)
{
    if (param_is_arn(rq))
        store_run(rq->app->store, SCRIPT_STATS, one_done, rq, 0, NULL);
}

void route_stage_master_info(struct request *rq)
{
    store_run(rq->app->store, SCRIPT_STATS, master_done, rq, 0, NULL);
}

/* ---- changing -------------------------------------------------------------- */

/* The body's "name": short printable text, the rule for user ids. */
static const char *stage_name(struct request *rq)
{
    json_t *name = json_object_get(rq->body, "name");
    if (json_is_string(name) && valid_user_id(json_string_value(name), json_string_length(name)))
        return json_string_value(name);
    respond_invalid(rq, "name must be 1-128 bytes of text without control characters",
                    json_pack("[s]", "name"));
    return NULL;
}

static json_t *stage_json(json_t *info)
{
    return json_pack("{s:O?, s:O?, s:O?, s:O?}", "stageArn", json_object_get(info, "arn"),
                     "name", json_object_get(info, "name"),
                     "autoScaled", json_object_get(info, "autoScaled"),
                     "createdAt", json_object_get(info, "createdAt"));
}

static void answer_stage_outcome(struct request *rq, enum stage_outcome outcome, const char *error)
{
    switch (outcome) {
    case STAGE_LIMIT:
        respond_error(rq, 503, "STAGE_LIMIT_REACHED", "MAX_STAGES stages exist already", NULL);
        return;
    case STAGE_NOT_FOUND:
        respond_error(rq, 404, "NOT_FOUND", "no such stage", NULL);
        return;
    case STAGE_IS_MASTER:
        respond_error(rq, 403, "FORBIDDEN", "the master stage cannot be deleted", NULL);
        return;
    case STAGE_NOT_EMPTY:
        respond_error(rq, 400, "VALIDATION_ERROR", "viewers are still seated in this stage",
                      json_pack("{s:[s]}", "fields", "stageArn"));
        return;
    case STAGE_UNAVAILABLE:
        respond_unavailable(rq, error);
        return;
    default:
        respond_error(rq, 500, "INTERNAL_ERROR", "the stage could not be changed", NULL);
        return;
    }
}

static void created(void *arg, enum stage_outcome outcome, json_t *info, const char *error)
{
    struct request *rq = arg;
    if (outcome != STAGE_DONE) {
        answer_stage_outcome(rq, outcome, error);
        return;
    }
    respond_ok(rq, 201, json_pack("{s:o}", "stage", stage_json(info)));
    json_decref(info);
}

void route_stage_create(struct request *rq)
{
    json_t *tags = json_object_get(rq->body, "tags");
    if (tags && !json_is_object(tags) && !json_is_null(tags)) {
        respond_invalid(rq, "tags, when given, must be an object", json_pack("[s]", "tags"));
        return;
    }
    const char *name = stage_name(rq);
    if (!name)
        return;
    struct stage_spec spec = {.name = name};
    stage_create(rq->app, &spec, created, rq);
}

static void renamed(void *arg, redisReply *reply, const char *error)
{
    struct request *rq = arg;
    if (answer_store_failure(rq, reply, error))
        return;
    if (store_refusal(reply) == REFUSAL_NO_STAGE) {
        respond_error(rq, 404, "NOT_FOUND", "no such stage", NULL);
        return;
    }
    json_t *info = json_loads(reply->str, 0, NULL);
    respond_ok(rq, 200, json_pack("{s:o}", "stage", stage_json(info)));
    json_decref(info);
}

void route_stage_rename(struct request *rq)
{
    if (!param_is_arn(rq))
        return;
    const char *name = stage_name(rq);
    if (!name)
        return;
    char ttl[16];
    snprintf(ttl, sizeof ttl, "%d", STAGE_KEY_TTL_S);
    const char *argv[] = {rq->param, name, ttl};
    store_run(rq->app->store, SCRIPT_STAGE_RENAME, renamed, rq, 3, argv);
}

static void deleted(void *arg, enum stage_outcome outcome, json_t *info, const char *error)
{
    struct request *rq = arg;
    json_decref(info);
    if (outcome != STAGE_DONE) {
        answer_stage_outcome(rq, outcome, error);
        return;
    }
    respond_ok(rq, 200, json_pack("{s:s, s:b}", "stageArn", rq->param, "deleted", 1));
}

void route_stage_delete(struct request *rq)
{
    if (param_is_arn(rq))
        stage_remove(rq->app, rq->param, NULL, deleted, rq);
}

/* ---- events ---------------------------------------------------------------- */

static void events_done(void *arg, redisReply *reply, const char *error)
{
    struct request *rq = arg;
    if (answer_store_failure(rq, reply, error))
        return;
    json_t *events = json_array();
    for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++) {
        redisReply *entry = reply->element[i];
        if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2)
            continue;
        json_t *event = json_pack("{s:s}", "id", entry->element[0]->str);
        redisReply *fields = entry->element[1];
        for (size_t k = 0; k + 1 < fields->elements; k += 2)
            json_object_set_new(event, fields->element[k]->str, json_string(fields->element[k + 1]->str));
        json_array_append_new(events, event);
    }
    respond_ok(rq, 200, json_pack("{s:o}", "events", events));
}

void route_stage_events(struct request *rq)
{
    const char *limit_text = request_query(rq, "limit");
    char *end = NULL;
    long limit = limit_text ? strtol(limit_text, &end, 10) : EVENTS_DEFAULT;
    if (limit_text && (*end || limit < 1 || limit > EVENTS_MAX)) {
        respond_invalid(rq, "limit must be a number from 1 to 1000", json_pack("[s]", "limit"));
        return;
    }
    char key[128], count[16];
    store_key(rq->app->store, key, sizeof key, "stage_events", NULL);
    snprintf(count, sizeof count, "%ld", limit);
    const char *argv[] = {"XREVRANGE", key, "+", "-", "COUNT", count};
    redis_command(rq->app->store->redis, events_done, rq, 6, argv, NULL);
}
