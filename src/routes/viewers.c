/* viewers.c — a seated viewer's life after its token: heartbeat, leave,
 * rejoin, and the read-only list and watch duration (SPEC §2 "Viewers").
 * Each change is one atomic store step, so it is exact under any
 * concurrency. */
#include "routes/routes.h"

#include <stdio.h>
#include <string.h>

#include "app.h"
#include "config/config.h"
#include "http/fields.h"
#include "http/request.h"
#include "metrics/metrics.h"
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

/* ---- heartbeat ------------------------------------------------------------ */

/* A seat that is not there (expired, or lost with Redis's data) is a 404
 * that tells the client what to do (README "Lost seats"): "rejoin" (POST
 * /api/viewer/rejoin with its participantId; its token is still good for
 * the stage) when the stage is live, "join" (POST /api/token/viewer: a new
 * seat and token) when it is not. */
static void respond_lost_seat(struct request *rq, enum store_error err)
{
    bool stage_gone = err == STORE_NO_STAGE;
    respond_error(rq, 404, "NOT_FOUND",
                  stage_gone ? "no such stage" : "this viewer holds no seat in that stage",
                  json_pack("{s:s, s:s}", "action", stage_gone ? "join" : "rejoin",
                            "reason", stage_gone ? "no_stage" : "no_seat"));
}

/* A heartbeat from a draining stage may come back moved: then the answer
 * names the new stage and carries a token for it. */
static void heartbeat_done(void *arg, enum store_error err, const char *detail,
                           const struct heartbeat *hb)
{
    struct request *rq = arg;
    if (err == STORE_NO_SEAT || err == STORE_NO_STAGE) {
        respond_lost_seat(rq, err);
        return;
    }
    if (err != STORE_OK) {
        respond_store_error(rq, err, detail);
        return;
    }
    metrics_add(rq->app->metrics, METRIC_MOVES, hb->moved);
    json_t *data = json_pack("{s:s, s:s, s:b, s:b}", "userId", body_str(rq, "userId"),
                             "stageArn", body_str(rq, "stageArn"), "heartbeatUpdated", 1,
                             "moved", hb->moved);
    if (!hb->moved) {
        respond_ok(rq, 200, data);
        return;
    }
    json_object_set_new(data, "previousStageArn", json_string(body_str(rq, "stageArn")));
    answer_with_viewer_token(rq, data, body_str(rq, "userId"), hb->stage_arn, hb->participant_id);
}

void route_viewer_heartbeat(struct request *rq)
{
    const char *arn, *user = seat_fields(rq, &arn);
    if (!user)
        return;
    store_heartbeat(rq->app->store, user, arn, rq->now_ms, rq->app->cfg->max_viewers_per_stage,
                    heartbeat_done, rq);
}

/* ---- leave ------------------------------------------------------------- */

static void leave_done(void *arg, enum store_error err, const char *detail, const char *freed)
{
    struct request *rq = arg;
    if (err != STORE_OK) {
        respond_store_error(rq, err, detail);
        return;
    }
    metrics_add(rq->app->metrics, METRIC_LEAVES, freed[0] != '\0');
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
    store_leave(rq->app->store, user, arn, clock_now_ms(), leave_done, rq);
}

/* ---- rejoin ------------------------------------------------------------ */

static void rejoin_done(void *arg, enum store_error err, const char *detail, const struct seat *seat)
{
    struct request *rq = arg;
    if (err == STORE_NO_STAGE) {
        respond_lost_seat(rq, err);
        return;
    }
    if (err != STORE_OK) {
        respond_store_error(rq, err, detail);
        return;
    }
    metrics_add(rq->app->metrics, METRIC_JOINS, seat->is_new);
    metrics_add(rq->app->metrics, METRIC_MOVES, seat->moved_from[0] != '\0');
    respond_ok(rq, 200, json_pack("{s:s, s:s, s:s, s:I, s:b}", "userId", body_str(rq, "userId"),
                                  "stageArn", seat->stage_arn, "participantId", seat->participant_id,
                                  "currentViewers", (json_int_t)seat->stage_viewers,
                                  "isNewViewer", seat->is_new));
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
    const struct seat_request q = {.user_id = user, .stage_arn = arn, .participant_id = pid,
                                   .now_ms = rq->now_ms, .rejoin = true,
                                   .capacity = rq->app->cfg->max_viewers_per_stage};
    store_seat(rq->app->store, &q, rejoin_done, rq);
}

/* ---- list ---------------------------------------------------------------- */

static void list_done(void *arg, enum store_error err, const char *detail,
                      const struct viewer_list *list)
{
    struct request *rq = arg;
    if (err != STORE_OK) {
        respond_store_error(rq, err, detail);
        return;
    }
    json_t *viewers = json_array();
    for (size_t i = 0; i < list->count; i++)
        json_array_append_new(viewers, json_string(list->user_ids[i]));
    respond_ok(rq, 200, json_pack("{s:s, s:I, s:I, s:o}", "stageArn", rq->param,
                                  "totalViewers", (json_int_t)list->total,
                                  "activeViewers", (json_int_t)list->active,
                                  "viewers", viewers));
}

void route_viewer_list(struct request *rq)
{
    if (!valid_stage_arn(rq->param)) {
        respond_invalid(rq, "the path must hold a percent-encoded stage ARN",
                        json_pack("[s]", "stageArn"));
        return;
    }
    store_viewer_list(rq->app->store, rq->param,
                      rq->now_ms - rq->app->cfg->heartbeat_timeout * 1000, LIST_MAX,
                      list_done, rq);
}

/* ---- duration ------------------------------------------------------------ */

static void duration_done(void *arg, enum store_error err, const char *detail, long long joined_ms)
{
    struct request *rq = arg;
    if (err != STORE_OK) {
        respond_store_error(rq, err, detail);
        return;
    }
    long long secs = (rq->now_ms - joined_ms) / 1000;
    if (secs < 0)
        secs = 0;
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
    store_seat_joined(rq->app->store, user, arn, duration_done, rq);
}
