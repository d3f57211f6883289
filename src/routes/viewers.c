/* viewers.c — a seated viewer's life after its token: heartbeat, leave,
 * rejoin, and the read-only list and watch duration (SPEC §2 "Viewers").
 * Each change is one script (store/lua), so it is exact under any
 * concurrency. */
#include "routes/routes.h"

#include <stdio.h>
#include <string.h>

#include "app.h"
#include "config/config.h"
#include "http/fields.h"
#include "http/request.h"
#include "store/store.h"
#include "util/clock.h"

#define LIST_MAX 1000

/* Reads userId and stageArn (both required); NULL user when answered. */
static const char *seat_fields(struct request *rq, const char **arn)
{
    json_t *bad = json_array();
    const char *user = field_string(rq->body, "userId", true, check_user_id, bad);
    *arn = field_string(rq->body, "stageArn", true, check_stage_arn, bad);
    if (json_array_size(bad)) {
        respond_invalid(rq, "userId (1-128 bytes of UTF-8, no control characters) and "
                            "stageArn (a stage ARN) are required", bad);
        return NULL;
    }
    json_decref(bad);
    return user;
}

static void now_text(char *out, size_t len)
{
    snprintf(out, len, "%lld", (long long)clock_now_ms());
}

/* ---- heartbeat ------------------------------------------------------------ */

/* A heartbeat from a draining stage may come back moved (heartbeat.lua):
 * then the answer names the new stage and carries a token for it. */
static void heartbeat_done(void *arg, redisReply *reply, const char *error)
{
    struct request *rq = arg;
    if (answer_store_failure(rq, reply, error))
        return;
    long long outcome = reply_int(reply, 0);
    if (outcome == 0) {
        respond_error(rq, 404, "NOT_FOUND", "this viewer holds no seat in that stage", NULL);
        return;
    }
    json_t *data = json_pack("{s:s, s:s, s:b, s:b}", "userId", body_str(rq, "userId"),
                             "stageArn", body_str(rq, "stageArn"), "heartbeatUpdated", 1,
                             "moved", outcome == 2);
    if (outcome != 2) {
        respond_ok(rq, 200, data);
        return;
    }
    json_object_set_new(data, "previousStageArn", json_string(body_str(rq, "stageArn")));
    issue_viewer_token(rq, data, body_str(rq, "userId"), reply_str(reply, 1), reply_str(reply, 2));
}

void route_viewer_heartbeat(struct request *rq)
{
    const char *arn, *user = seat_fields(rq, &arn);
    if (!user)
        return;
    char now[24], capacity[24];
    now_text(now, sizeof now);
    snprintf(capacity, sizeof capacity, "%ld", rq->app->cfg->max_viewers_per_stage);
    const char *argv[] = {user, arn, now, capacity};
    store_run(rq->app->store, SCRIPT_HEARTBEAT, heartbeat_done, rq, 4, argv);
}

/* ---- leave ------------------------------------------------------------- */

static void leave_done(void *arg, redisReply *reply, const char *error)
{
    struct request *rq = arg;
    if (answer_store_failure(rq, reply, error))
        return;
    const char *freed = reply->type == REDIS_REPLY_STRING ? reply->str : "";
    json_t *data = json_pack("{s:s, s:s, s:b, s:b}", "userId", body_str(rq, "userId"),
                             "stageArn", body_str(rq, "stageArn"), "viewerLeft", 1,
                             "wasSeated", freed[0] != '\0');
    /* A viewer moved off a draining stage may name the stage it left. */
    if (freed[0] && strcmp(freed, body_str(rq, "stageArn")) != 0)
        json_object_set_new(data, "seatStageArn", json_string(freed));
    respond_ok(rq, 200, data);
}

void route_viewer_leave(struct request *rq)
{
    const char *arn, *user = seat_fields(rq, &arn);
    if (!user)
        return;
    const char *argv[] = {user, arn};
    store_run(rq->app->store, SCRIPT_LEAVE, leave_done, rq, 2, argv);
}

/* ---- rejoin ------------------------------------------------------------ */

static void rejoin_done(void *arg, redisReply *reply, const char *error)
{
    struct request *rq = arg;
    if (answer_store_failure(rq, reply, error) || answer_seat_refusal(rq, reply))
        return;
    respond_ok(rq, 200, json_pack("{s:s, s:s, s:s, s:I, s:b}", "userId", body_str(rq, "userId"),
                                  "stageArn", reply_str(reply, 0), "participantId", reply_str(reply, 1),
                                  "currentViewers", (json_int_t)reply_int(reply, 2),
                                  "isNewViewer", reply_int(reply, 3) == 1));
}

void route_viewer_rejoin(struct request *rq)
{
    const char *arn, *user = seat_fields(rq, &arn);
    if (!user)
        return;
    json_t *bad = json_array();
    const char *pid = field_string(rq->body, "participantId", true, check_participant_id, bad);
    if (!pid) {
        respond_invalid(rq, "participantId must be 1-64 of [A-Za-z0-9-]", bad);
        return;
    }
    json_decref(bad);
    char now[24], capacity[24];
    now_text(now, sizeof now);
    snprintf(capacity, sizeof capacity, "%ld", rq->app->cfg->max_viewers_per_stage);
    const char *argv[] = {user, arn, pid, now, capacity, "rejoin"};
    store_run(rq->app->store, SCRIPT_SEAT, rejoin_done, rq, 6, argv);
}

/* ---- list ---------------------------------------------------------------- */

static void list_done(void *arg, redisReply *reply, const char *error)
{
    struct request *rq = arg;
    if (answer_store_failure(rq, reply, error))
        return;
    if (reply_int(reply, 0) != 1) {
        respond_error(rq, 404, "NOT_FOUND", "no such stage", NULL);
        return;
    }
    json_t *viewers = json_array();
    for (size_t i = 3; i < reply->elements; i++)
        json_array_append_new(viewers, json_string(reply_str(reply, i)));
    respond_ok(rq, 200, json_pack("{s:s, s:I, s:I, s:o}", "stageArn", rq->param,
                                  "totalViewers", (json_int_t)reply_int(reply, 1),
                                  "activeViewers", (json_int_t)reply_int(reply, 2),
                                  "viewers", viewers));
}

void route_viewer_list(struct request *rq)
{
    if (!valid_stage_arn(rq->param)) {
        respond_invalid(rq, "the path must hold a percent-encoded stage ARN",
                        json_pack("[s]", "stageArn"));
        return;
    }
    char cutoff[24], max[16];
    snprintf(cutoff, sizeof cutoff, "%lld",
             (long long)(clock_now_ms() - rq->app->cfg->heartbeat_timeout * 1000));
    snprintf(max, sizeof max, "%d", LIST_MAX);
    const char *argv[] = {rq->param, cutoff, max};
    store_run(rq->app->store, SCRIPT_VIEWER_LIST, list_done, rq, 3, argv);
}

/* ---- duration ------------------------------------------------------------ */

static void duration_done(void *arg, redisReply *reply, const char *error)
{
    struct request *rq = arg;
    if (answer_store_failure(rq, reply, error))
        return;
    json_t *record = reply->type == REDIS_REPLY_STRING ? json_loads(reply->str, 0, NULL) : NULL;
    json_t *joined = json_object_get(record, "joinedAt");
    if (!json_is_number(joined)) {
        json_decref(record);
        respond_error(rq, 404, "NOT_FOUND", "this viewer holds no seat in that stage", NULL);
        return;
    }
    long long secs = (clock_now_ms() - (long long)json_number_value(joined)) / 1000;
    if (secs < 0)
        secs = 0;
    json_decref(record);
    char formatted[32];
    snprintf(formatted, sizeof formatted, "%02lld:%02lld:%02lld", secs / 3600, secs / 60 % 60, secs % 60);
    respond_ok(rq, 200, json_pack("{s:s, s:s, s:I, s:s}", "userId", request_query(rq, "userId"),
                                  "stageArn", request_query(rq, "stageArn"),
                                  "watchDurationSeconds", (json_int_t)secs,
                                  "watchDurationFormatted", formatted));
}

void route_viewer_duration(struct request *rq)
{
    const char *user = request_query(rq, "userId");
    const char *arn = request_query(rq, "stageArn");
    json_t *bad = json_array();
    if (!user || !valid_user_id(user, strlen(user)))
        json_array_append_new(bad, json_string("userId"));
    if (!arn || !valid_stage_arn(arn))
        json_array_append_new(bad, json_string("stageArn"));
    if (json_array_size(bad)) {
        respond_invalid(rq, "query parameters userId and stageArn are required", bad);
        return;
    }
    json_decref(bad);
    char key[STAGE_ARN_MAX + 128];
    store_key(rq->app->store, key, sizeof key, "viewer:heartbeat:", arn);
    const char *argv[] = {"HGET", key, user};
    redis_command(rq->app->store->redis, duration_done, rq, 3, argv, NULL);
}
