/* stages.c (routes) — stage management (SPEC §2 "Stages"). Creating goes
 * through stages/stages.c, like the master stage and the scaler do. */
#include "routes/routes.h"

#include <string.h>

#include "app.h"
#include "http/fields.h"
#include "http/request.h"
#include "stages/stages.h"
#include "store/store.h"

static void list_done(void *arg, redisReply *reply, const char *error)
{
    struct request *rq = arg;
    if (answer_store_failure(rq, reply, error))
        return;
    json_t *stages = stage_entries(reply, true);
    respond_ok(rq, 200, json_pack("{s:o, s:I}", "stages", stages,
                                  "totalStages", (json_int_t)json_array_size(stages)));
}

void route_stage_list(struct request *rq)
{
    store_run(rq->app->store, SCRIPT_STATS, list_done, rq, 0, NULL);
}

static void created(void *arg, enum stage_outcome outcome, json_t *info, const char *error)
{
    struct request *rq = arg;
    switch (outcome) {
    case STAGE_CREATED: {
        json_t *stage = json_pack("{s:O, s:O, s:O, s:O}", "stageArn", json_object_get(info, "arn"),
                                  "name", json_object_get(info, "name"),
                                  "autoScaled", json_object_get(info, "autoScaled"),
                                  "createdAt", json_object_get(info, "createdAt"));
        json_decref(info);
        respond_ok(rq, 201, json_pack("{s:o}", "stage", stage));
        return;
    }
    case STAGE_LIMIT:
        respond_error(rq, 503, "STAGE_LIMIT_REACHED", "MAX_STAGES stages exist already", NULL);
        return;
    case STAGE_UNAVAILABLE:
        respond_unavailable(rq, error);
        return;
    case STAGE_FAILED:
        respond_error(rq, 500, "INTERNAL_ERROR", "the stage could not be created", NULL);
        return;
    }
}

void route_stage_create(struct request *rq)
{
    json_t *name = json_object_get(rq->body, "name");
    json_t *tags = json_object_get(rq->body, "tags");
    json_t *bad = json_array();
    /* A stage name follows the rule for user ids: short printable text. */
    if (!json_is_string(name) || !valid_user_id(json_string_value(name), json_string_length(name)))
        json_array_append_new(bad, json_string("name"));
    if (tags && !json_is_object(tags) && !json_is_null(tags))
        json_array_append_new(bad, json_string("tags"));
    if (json_array_size(bad)) {
        respond_invalid(rq, "name must be 1-128 bytes of text; tags, when given, an object", bad);
        return;
    }
    json_decref(bad);
    stage_create(rq->app, json_string_value(name), false, created, rq);
}
