/* tokens.c — participant tokens (SPEC §2 "Tokens", §5).
 *
 * A token request first changes state in Redis (the publisher goes live;
 * a viewer takes a seat), then has the token signed off the loop, and
 * answers with the data it prepared plus the token. Signing needs no AWS
 * call: IVS checks the signature against the imported public key. */
#include "routes/routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "config/config.h"
#include "http/fields.h"
#include "http/request.h"
#include "ivs/provider.h"
#include "tokens/jwt.h"
#include "tokens/keypair.h"
#include "tokens/signer.h"
#include "util/clock.h"

/* A token in the making: the answer's data waits here for the signature. */
struct token_job {
    struct request *rq;
    json_t *data;
};

static void token_signed(void *arg, char *token, const char *error)
{
    struct token_job *job = arg;
    (void)error;
    if (token) {
        json_object_set_new(job->data, "token", json_string(token));
        respond_ok(job->rq, 200, job->data);
    } else {
        json_decref(job->data);
        respond_error(job->rq, 500, "TOKEN_GENERATION_FAILED", "the token could not be signed", NULL);
    }
    free(token);
    free(job);
}

/* Fills data's token fields and signs; answers rq in every case. */
static void issue_token(struct request *rq, json_t *data, const char *user_id,
                        const char *stage_arn, const char *participant_id, bool publisher)
{
    const struct config *cfg = rq->app->cfg;
    long duration = publisher ? cfg->publisher_token_duration : cfg->viewer_token_duration;
    int64_t now_ms = clock_now_ms();
    char events_url[128], whip_url[160], expires_at[32];
    stage_endpoints(stage_arn, events_url, sizeof events_url, whip_url, sizeof whip_url);
    clock_iso8601(now_ms + duration * 1000, expires_at, sizeof expires_at);

    json_t *role = json_pack("{s:s}", "role", publisher ? "publisher" : "viewer");
    struct token_claims claims = {
        .participant_id = participant_id, .user_id = user_id, .stage_arn = stage_arn,
        .events_url = events_url, .whip_url = whip_url, .allow_publish = publisher,
        .iat = now_ms / 1000, .exp = now_ms / 1000 + duration, .attributes = role,
    };
    char *input = jwt_signing_input(token_key_id(rq->app->key), &claims);
    json_decref(role);

    json_object_set_new(data, "participantId", json_string(participant_id));
    json_object_set_new(data, "userId", json_string(user_id));
    json_object_set_new(data, "stageArn", json_string(stage_arn));
    json_object_set_new(data, "capabilities",
                        publisher ? json_pack("{s:b, s:b}", "allow_publish", 1, "allow_subscribe", 1)
                                  : json_pack("{s:b}", "allow_subscribe", 1));
    json_object_set_new(data, "expiresAt", json_string(expires_at));
    json_object_set_new(data, "expiresIn", json_integer(duration));
    if (publisher)
        json_object_set_new(data, "whipEndpoint", json_string(whip_url));

    struct token_job *job = input ? malloc(sizeof *job) : NULL;
    if (!job) {
        free(input);
        json_decref(data);
        respond_error(rq, 500, "TOKEN_GENERATION_FAILED", "the token could not be made", NULL);
        return;
    }
    job->rq = rq;
    job->data = data;
    signer_sign(rq->app->signer, input, token_signed, job);
}

/* ---- publisher --------------------------------------------------------- */

static void publisher_marked_live(void *arg, enum store_error err, const char *detail)
{
    struct request *rq = arg;
    if (err != STORE_OK) {
        respond_store_error(rq, err, detail);
        return;
    }
    char participant_id[PARTICIPANT_ID_LEN + 1];
    if (participant_id_new(participant_id) != 0) {
        respond_error(rq, 500, "TOKEN_GENERATION_FAILED", "no random participant id", NULL);
        return;
    }
    issue_token(rq, json_object(), body_str(rq, "userId"), rq->app->master_arn,
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

static void viewer_seated(void *arg, enum store_error err, const char *detail, const struct seat *seat)
{
    struct request *rq = arg;
    if (err != STORE_OK) {
        respond_store_error(rq, err, detail);
        return;
    }
    json_t *data = json_pack("{s:I, s:b}", "currentViewers", (json_int_t)seat->stage_viewers,
                             "isNewViewer", seat->is_new);
    if (seat->moved_from[0])
        json_object_set_new(data, "movedFrom", json_string(seat->moved_from));
    issue_viewer_token(rq, data, body_str(rq, "userId"), seat->stage_arn, seat->participant_id);
}

void issue_viewer_token(struct request *rq, json_t *data, const char *user_id,
                        const char *stage_arn, const char *participant_id)
{
    issue_token(rq, data, user_id, stage_arn, participant_id, false);
}

void route_viewer_token(struct request *rq)
{
    json_t *bad = json_array();
    const char *user_id = field_string(rq->body, "userId", true, check_user_id, bad);
    const char *wanted = field_string(rq->body, "stageArn", false, check_stage_arn, bad);
    if (json_array_size(bad)) {
        respond_invalid(rq, "userId must be 1-128 bytes of UTF-8 without control characters; "
                            "stageArn, when given, a stage ARN", bad);
        return;
    }
    json_decref(bad);
    char participant_id[PARTICIPANT_ID_LEN + 1];
    if (participant_id_new(participant_id) != 0) {
        respond_error(rq, 500, "TOKEN_GENERATION_FAILED", "no random participant id", NULL);
        return;
    }
    const struct seat_request q = {.user_id = user_id, .stage_arn = wanted,
                                   .participant_id = participant_id, .now_ms = clock_now_ms(),
                                   .capacity = rq->app->cfg->max_viewers_per_stage};
    store_seat(rq->app->store, &q, viewer_seated, rq);
}

/* ---- public key ---------------------------------------------------------- */

void route_public_key(struct request *rq)
{
    const struct token_key *key = rq->app->key;
    json_t *data = json_pack("{s:s, s:o}", "publicKeyPem", token_key_public_pem(key),
                             "jwks", token_key_jwks(key));
    if (rq->app->cfg->public_key_arn[0])
        json_object_set_new(data, "publicKeyArn", json_string(rq->app->cfg->public_key_arn));
    json_object_set_new(data, "keyId", json_string(token_key_id(key)));
    respond_ok(rq, 200, data);
}
