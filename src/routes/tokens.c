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
#include "store/store.h"
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

static void publisher_marked_live(void *arg, redisReply *reply, const char *error)
{
    struct request *rq = arg;
    if (answer_store_failure(rq, reply, error))
        return;
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
    char key[128], ttl[16];
    store_key(rq->app->store, key, sizeof key, "publisher:status", NULL);
    snprintf(ttl, sizeof ttl, "%d", PUBLISHER_STATUS_TTL_S);
    const char *argv[] = {"SET", key, "live", "EX", ttl};
    redis_command(rq->app->store->redis, publisher_marked_live, rq, 5, argv, NULL);
}

/* ---- viewer ------------------------------------------------------------ */

static void viewer_seated(void *arg, redisReply *reply, const char *error)
{
    struct request *rq = arg;
    if (answer_store_failure(rq, reply, error) || answer_seat_refusal(rq, reply))
        return;
    const char *moved_from = reply_str(reply, 4);
    json_t *data = json_pack("{s:I, s:b}", "currentViewers", (json_int_t)reply_int(reply, 2),
                             "isNewViewer", reply_int(reply, 3) == 1);
    if (moved_from && moved_from[0])
        json_object_set_new(data, "movedFrom", json_string(moved_from));
    issue_viewer_token(rq, data, body_str(rq, "userId"), reply_str(reply, 0), reply_str(reply, 1));
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
    char participant_id[PARTICIPANT_ID_LEN + 1], now[24], capacity[24];
    if (participant_id_new(participant_id) != 0) {
        respond_error(rq, 500, "TOKEN_GENERATION_FAILED", "no random participant id", NULL);
        return;
    }
    snprintf(now, sizeof now, "%lld", (long long)clock_now_ms());
    snprintf(capacity, sizeof capacity, "%ld", rq->app->cfg->max_viewers_per_stage);
    const char *argv[] = {user_id, wanted ? wanted : "", participant_id, now, capacity, "join"};
    store_run(rq->app->store, SCRIPT_SEAT, viewer_seated, rq, 6, argv);
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
