/* tokens.c — participant token routes (SPEC §2 "Tokens").
 *
 * A token request first changes state in Redis (the publisher goes live;
 * a viewer takes a seat), then has the token issued (tokens/issue.h), and
 * answers with the data it prepared plus the token's fields. A join that
 * finds no room while a stage is being added wakes the scaler and waits
 * for the stage (JOIN_WAIT_MS, README "Scaling") without holding a thread;
 * a client that hangs up meanwhile is still seated, and its seat expires
 * like any other without heartbeats. */
#include "routes/routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "config/config.h"
#include "http/fields.h"
#include "http/request.h"
#include "ivs/ids.h"
#include "metrics/metrics.h"
#include "scaler/scaler.h"
#include "stages/endpoints.h"
#include "stages/events.h"
#include "stages/recovery.h"
#include "stages/stages.h"
#include "tokens/issue.h"
#include "tokens/jwt.h"
#include "tokens/keypair.h"
#include "util/clock.h"
#include "util/waiters.h"

/* A waiting join tries its seat again this often, besides when this
 * process's scaler opens a stage (for stages other processes open). */
#define JOIN_RETRY_MS 200

/* The answer's data waits here for the endpoints and the token. */
struct token_answer {
    struct request *rq;
    json_t *data;
    struct token_order order;        /* strings: the request's, or below */
    char user_id[USER_ID_MAX + 1];
    char stage_arn[STAGE_ARN_MAX + 1];
    char participant_id[PARTICIPANT_ID_MAX + 1];
};

static void token_issued(void *arg, const struct token_grant *g, const char *error)
{
    struct token_answer *a = arg;
    (void)error;
    if (!g) {
        json_decref(a->data);
        respond_error(a->rq, 500, "TOKEN_GENERATION_FAILED", "the token could not be signed", NULL);
        free(a);
        return;
    }
    char expires_at[32];
    clock_iso8601(g->expires_at_ms, expires_at, sizeof expires_at);
    json_t *data = a->data;
    json_object_set_new(data, "participantId", json_string(g->participant_id));
    json_object_set_new(data, "userId", json_string(g->user_id));
    json_object_set_new(data, "stageArn", json_string(g->stage_arn));
    json_object_set_new(data, "capabilities",
                        g->publisher ? json_pack("{s:b, s:b}", "allow_publish", 1, "allow_subscribe", 1)
                                     : json_pack("{s:b}", "allow_subscribe", 1));
    json_object_set_new(data, "expiresAt", json_string(expires_at));
    json_object_set_new(data, "expiresIn", json_integer(g->expires_in_s));
    if (g->publisher)
        json_object_set_new(data, "whipEndpoint", json_string(g->whip_url));
    json_object_set_new(data, "token", json_string(g->token));
    respond_ok(a->rq, 200, data);
    free(a);
}

static void issue(struct token_answer *a, const struct endpoints *ep)
{
    a->order.whip_url = ep->whip;
    a->order.events_url = ep->events;
    token_issue(a->rq->app->signer, a->rq->app->key, &a->order, token_issued, a);
}

static void endpoints_found(void *arg, const struct endpoints *ep, const char *error)
{
    struct token_answer *a = arg;
    if (ep) {
        issue(a, ep);
        return;
    }
    json_decref(a->data);
    if (strncmp(error, "unavailable", 11) == 0)
        respond_unavailable(a->rq, error);
    else
        respond_error(a->rq, 500, "TOKEN_GENERATION_FAILED", "the stage's endpoints are not known", NULL);
    free(a);
}

/* Has a token issued (tokens/issue.h) with the stage's endpoints
 * (stages/endpoints.h) and answers rq with data plus the token's fields,
 * in every case. */
static void answer_with_token(struct request *rq, json_t *data, const char *user_id,
                              const char *stage_arn, const char *participant_id, bool publisher)
{
    const struct config *cfg = rq->app->cfg;
    struct token_answer *a = malloc(sizeof *a);
    if (!a || strlen(user_id) > USER_ID_MAX || strlen(stage_arn) > STAGE_ARN_MAX ||
        strlen(participant_id) > PARTICIPANT_ID_MAX) {
        free(a);
        json_decref(data);
        respond_error(rq, 500, "TOKEN_GENERATION_FAILED", "the token could not be made", NULL);
        return;
    }
    *a = (struct token_answer){.rq = rq, .data = data};
    strcpy(a->user_id, user_id);
    strcpy(a->stage_arn, stage_arn);
    strcpy(a->participant_id, participant_id);
    a->order = (struct token_order){
        .participant_id = a->participant_id, .user_id = a->user_id, .stage_arn = a->stage_arn,
        .publisher = publisher, .now_ms = rq->now_ms,
        .duration_s = publisher ? cfg->publisher_token_duration : cfg->viewer_token_duration,
    };
    const struct endpoints *ep = endpoints_cached(rq->app->endpoints, stage_arn);
    if (ep)
        issue(a, ep);
    else
        endpoints_fetch(rq->app, stage_arn, endpoints_found, a);
}

/* ---- publisher --------------------------------------------------------- */

static void publisher_marked_live(void *arg, enum store_error err, const char *detail,
                                  const char *previous)
{
    struct request *rq = arg;
    if (err != STORE_OK) {
        respond_store_error(rq, err, detail);
        return;
    }
    recovery_publisher_seen(rq->app->recovery, true);
    stage_event_publisher(rq->app, true, previous);
    char participant_id[PARTICIPANT_ID_LEN + 1];
    if (participant_id_new(participant_id) != 0) {
        respond_error(rq, 500, "TOKEN_GENERATION_FAILED", "no random participant id", NULL);
        return;
    }
    answer_with_token(rq, json_object(), body_str(rq, "userId"), rq->app->master_arn,
                      participant_id, true);
}

void route_publisher_token(struct request *rq)
{
    json_t *bad = json_array();
    field_string(rq->body, "userId", true, check_user_id, bad);
    if (json_array_size(bad)) {
        respond_invalid(rq, "userId must be 1-128 bytes of UTF-8 without control characters", bad);
        return;
    }
    json_decref(bad);
    if (!rq->app->master_arn[0]) {
        respond_unavailable(rq, "the master stage is not known yet");
        return;
    }
    store_publisher_set(rq->app->store, true, publisher_marked_live, rq);
}

/* ---- viewer ------------------------------------------------------------ */

/* A join between its tries: a join that finds no room while a stage is
 * being opened waits for it (JOIN_WAIT_MS) on the loop (util/waiters.h). */
struct join {
    struct request *rq;
    char participant_id[PARTICIPANT_ID_LEN + 1];
    int64_t deadline_us;             /* monotonic: waiting ends then */
    bool woke;                       /* the scaler was woken for this join */
};

static void join_try(struct join *j);

static void join_retry(void *arg)
{
    struct join *j = arg;
    /* The answer's moment is when the seat is taken. */
    j->rq->now_ms = clock_now_ms();
    join_try(j);
}

/* No room: the scaler is woken at once (on the first refusal; the demand
 * it sizes for is in Redis from then on), and the join waits while its
 * time lasts. True when it waits. */
static bool join_wait(struct join *j)
{
    struct app *app = j->rq->app;
    if (!j->woke)
        scaler_wake(app->scaler);
    j->woke = true;
    int64_t left_ms = (j->deadline_us - clock_mono_us()) / 1000;
    if (left_ms <= 0 || !app->waiters)
        return false;
    return waiters_add(app->waiters, left_ms < JOIN_RETRY_MS ? left_ms : JOIN_RETRY_MS,
                       join_retry, j) == 0;
}

static void viewer_seated(void *arg, enum store_error err, const char *detail, const struct seat *seat)
{
    struct join *j = arg;
    struct request *rq = j->rq;
    if (err == STORE_NO_ROOM_YET && join_wait(j))
        return;
    free(j);
    if (err != STORE_OK) {
        respond_store_error(rq, err, detail);
        return;
    }
    metrics_add(rq->app->metrics, METRIC_JOINS, seat->is_new);
    metrics_add(rq->app->metrics, METRIC_MOVES, seat->moved_from[0] != '\0');
    json_t *data = json_pack("{s:I, s:b}", "currentViewers", (json_int_t)seat->stage_viewers,
                             "isNewViewer", seat->is_new);
    if (seat->moved_from[0])
        json_object_set_new(data, "movedFrom", json_string(seat->moved_from));
    answer_with_viewer_token(rq, data, body_str(rq, "userId"), seat->stage_arn, seat->participant_id);
}

static void join_try(struct join *j)
{
    const struct config *cfg = j->rq->app->cfg;
    const struct seat_request q = {
        .user_id = body_str(j->rq, "userId"), .stage_arn = body_str(j->rq, "stageArn"),
        .participant_id = j->participant_id, .now_ms = j->rq->now_ms,
        .capacity = cfg->max_viewers_per_stage,
        .max_stages = cfg->auto_scale_enabled ? stage_ceiling(j->rq->app).stages : 0,
    };
    store_seat(j->rq->app->store, &q, viewer_seated, j);
}

void answer_with_viewer_token(struct request *rq, json_t *data, const char *user_id,
                              const char *stage_arn, const char *participant_id)
{
    answer_with_token(rq, data, user_id, stage_arn, participant_id, false);
}

void route_viewer_token(struct request *rq)
{
    json_t *bad = json_array();
    field_string(rq->body, "userId", true, check_user_id, bad);
    field_string(rq->body, "stageArn", false, check_stage_arn, bad);
    if (json_array_size(bad)) {
        respond_invalid(rq, "userId must be 1-128 bytes of UTF-8 without control characters; "
                            "stageArn, when given, a stage ARN", bad);
        return;
    }
    json_decref(bad);
    struct join *j = malloc(sizeof *j);
    if (!j || participant_id_new(j->participant_id) != 0) {
        free(j);
        respond_error(rq, 500, "TOKEN_GENERATION_FAILED", "no random participant id", NULL);
        return;
    }
    j->rq = rq;
    j->woke = false;
    j->deadline_us = clock_mono_us() + rq->app->cfg->join_wait_ms * 1000;
    join_try(j);
}

/* ---- public key ---------------------------------------------------------- */

void route_public_key(struct request *rq)
{
    const struct token_key *key = rq->app->key;
    json_t *data = json_pack("{s:s, s:o}", "publicKeyPem", token_key_public_pem(key),
                             "jwks", token_key_jwks(key));
    /* An ARN: IVS_PUBLIC_KEY_ARN, or the key the AWS provider imported. */
    if (strncmp(token_key_id(key), "arn:", 4) == 0)
        json_object_set_new(data, "publicKeyArn", json_string(token_key_id(key)));
    json_object_set_new(data, "keyId", json_string(token_key_id(key)));
    respond_ok(rq, 200, data);
}
