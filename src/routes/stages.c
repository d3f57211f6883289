/* stages.c (routes) — stage management (SPEC §2 "Stages") and the stage
 * event stream. Creating and removing go through stages/stages.c, as the
 * master stage and the scaler do; reading uses the one stats view. */
#include "routes/routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "config/config.h"
#include "http/fields.h"
#include "http/request.h"
#include "ivs/provider.h"
#include "stages/stages.h"
#include "util/waiters.h"

#define EVENTS_DEFAULT 100
#define EVENTS_MAX 1000

/* ---- reading ------------------------------------------------------------- */

static void list_done(void *arg, enum store_error err, const char *detail,
                      const struct stats_view *view)
{
    struct request *rq = arg;
    if (err != STORE_OK) {
        respond_store_error(rq, err, detail);
        return;
    }
    json_t *stages = stage_entries(view, true);
    json_t *scaling = stage_spare(view, rq->app->cfg->max_viewers_per_stage);
    respond_ok(rq, 200, json_pack("{s:o, s:I, s:o}", "stages", stages,
                                  "totalStages", (json_int_t)json_array_size(stages),
                                  "scaling", scaling));
}

void route_stage_list(struct request *rq)
{
    store_stats(rq->app->store, list_done, rq);
}

/* Answers with the one stage `arn` of the stats view, or 404. */
static void answer_one_stage(struct request *rq, const struct stats_view *view, const char *arn,
                             bool master_info)
{
    json_t *stages = stage_entries(view, true), *stage;
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

static void one_done(void *arg, enum store_error err, const char *detail,
                     const struct stats_view *view)
{
    struct request *rq = arg;
    if (err != STORE_OK)
        respond_store_error(rq, err, detail);
    else
        answer_one_stage(rq, view, rq->param, false);
}

static void master_done(void *arg, enum store_error err, const char *detail,
                        const struct stats_view *view)
{
    struct request *rq = arg;
    if (err != STORE_OK)
        respond_store_error(rq, err, detail);
    else
        answer_one_stage(rq, view, view->master_arn, true);
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
        store_stats(rq->app->store, one_done, rq);
}

void route_stage_master_info(struct request *rq)
{
    store_stats(rq->app->store, master_done, rq);
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

/* The API's view of a stage record. */
static json_t *stage_json(const struct stage_info *info)
{
    return json_pack("{s:o, s:o, s:o, s:o}",
                     "stageArn", info->arn ? json_string(info->arn) : json_null(),
                     "name", info->name ? json_string(info->name) : json_null(),
                     "autoScaled", info->doc ? json_boolean(info->auto_scaled) : json_null(),
                     "createdAt", info->created_at ? json_string(info->created_at) : json_null());
}

static void created(void *arg, enum store_error err, json_t *doc, const char *detail)
{
    struct request *rq = arg;
    if (err == STORE_FAILED) {       /* the provider's refusal, in its words */
        request_add_header(rq, "Retry-After", "5");
        respond_error(rq, 503, "SERVICE_UNAVAILABLE", "the stage provider could not create the stage",
                      json_pack("{s:s}", "provider", detail));
        return;
    }
    if (err != STORE_OK) {
        respond_store_error(rq, err, detail);
        return;
    }
    /* The stage is open at once: joins waiting for room try it. */
    if (rq->app->waiters)
        waiters_wake(rq->app->waiters);
    char *text = json_dumps(doc, JSON_COMPACT);
    struct stage_info info;
    stage_info_parse(text, &info);
    respond_ok(rq, 201, json_pack("{s:o}", "stage", stage_json(&info)));
    stage_info_clear(&info);
    free(text);
    json_decref(doc);
}

void route_stage_create(struct request *rq)
{
    json_t *tags = json_object_get(rq->body, "tags");
    if (tags && !json_is_null(tags) && !valid_stage_tags(tags)) {
        respond_invalid(rq, "tags, when given, must be an object of at most 50 string values "
                            "(keys 1-128, values 0-256 bytes)", json_pack("[s]", "tags"));
        return;
    }
    const char *name = stage_name(rq);
    if (!name)
        return;
    struct stage_spec spec = {.name = name, .tags = json_is_object(tags) ? tags : NULL,
                              .now_ms = rq->now_ms};
    stage_create(rq->app, &spec, created, rq);
}

static void renamed(void *arg, enum store_error err, const char *detail,
                    const struct stage_info *info)
{
    struct request *rq = arg;
    if (err != STORE_OK) {
        respond_store_error(rq, err, detail);
        return;
    }
    respond_ok(rq, 200, json_pack("{s:o}", "stage", stage_json(info)));
}

/* The provider renamed it (UpdateStage); then the record. */
static void provider_renamed(void *arg, const char *error)
{
    struct request *rq = arg;
    if (error) {
        request_add_header(rq, "Retry-After", "5");
        respond_error(rq, 503, "SERVICE_UNAVAILABLE", "the stage provider could not rename the stage",
                      json_pack("{s:s}", "provider", error));
        return;
    }
    store_stage_rename(rq->app->store, rq->param, body_str(rq, "name"), renamed, rq);
}

void route_stage_rename(struct request *rq)
{
    if (!param_is_arn(rq))
        return;
    const char *name = stage_name(rq);
    if (!name)
        return;
    struct stage_provider *p = rq->app->provider;
    p->ops->rename_stage(p, rq->param, name, provider_renamed, rq);
}

static void deleted(void *arg, enum store_error err, json_t *info, const char *detail)
{
    struct request *rq = arg;
    json_decref(info);
    if (err != STORE_OK) {
        respond_store_error(rq, err, detail);
        return;
    }
    respond_ok(rq, 200, json_pack("{s:s, s:b}", "stageArn", rq->param, "deleted", 1));
}

void route_stage_delete(struct request *rq)
{
    if (param_is_arn(rq))
        stage_remove(rq->app, rq->param, NULL, rq->now_ms, deleted, rq);
}

/* ---- events ---------------------------------------------------------------- */

json_t *stage_event_json(const struct stage_event *e)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", e->id, "type", e->type,
                     "stageArn", e->stage_arn, "detail", e->detail, "at", e->at);
}

static void events_done(void *arg, enum store_error err, const char *detail,
                        const struct stage_events *list)
{
    struct request *rq = arg;
    if (err != STORE_OK) {
        respond_store_error(rq, err, detail);
        return;
    }
    json_t *events = json_array();
    for (size_t i = 0; i < list->count; i++)
        json_array_append_new(events, stage_event_json(&list->items[i]));
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
    store_events_read(rq->app->store, limit, events_done, rq);
}
