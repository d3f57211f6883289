/* issue.c — see issue.h. A job keeps copies of what the grant reports
 * until the signer hands the token back. */
#include "tokens/issue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "ivs/ids.h"
#include "ivs/provider.h"
#include "tokens/jwt.h"
#include "tokens/keypair.h"
#include "tokens/signer.h"

struct issue_job {
    token_issued_fn fn;
    void *arg;
    struct token_grant grant;
    char participant_id[PARTICIPANT_ID_MAX + 1];
    char stage_arn[STAGE_ARN_MAX + 1];
    char *user_id;
    char events_url[STAGE_ENDPOINT_MAX + 1], whip_url[STAGE_ENDPOINT_MAX + 1];
};

static void signed_cb(void *arg, char *token, const char *error)
{
    struct issue_job *j = arg;
    j->grant.token = token;
    j->fn(j->arg, token ? &j->grant : NULL, token ? NULL : error ? error : "signing failed");
    free(token);
    free(j->user_id);
    free(j);
}

/* The token's whole seconds: iat is the order's moment, truncated; exp is
 * iat + duration. The grant's expiresAt/expiresIn come from these, never
 * from the milliseconds, so the answer promises exactly what the token
 * holds. */
static int64_t iat_of(const struct token_order *o) { return o->now_ms / 1000; }
static int64_t exp_of(const struct token_order *o) { return iat_of(o) + o->duration_s; }

static struct issue_job *job_new(const struct token_order *o, token_issued_fn fn, void *arg)
{
    struct issue_job *j = calloc(1, sizeof *j);
    if (!j || strlen(o->participant_id) > PARTICIPANT_ID_MAX || strlen(o->stage_arn) > STAGE_ARN_MAX ||
        !(j->user_id = strdup(o->user_id))) {
        free(j);
        return NULL;
    }
    j->fn = fn;
    j->arg = arg;
    strcpy(j->participant_id, o->participant_id);
    strcpy(j->stage_arn, o->stage_arn);
    if (o->whip_url && o->events_url) {
        snprintf(j->whip_url, sizeof j->whip_url, "%s", o->whip_url);
        snprintf(j->events_url, sizeof j->events_url, "%s", o->events_url);
    } else {
        stage_endpoints(o->stage_arn, j->events_url, sizeof j->events_url, j->whip_url,
                        sizeof j->whip_url);
    }
    j->grant = (struct token_grant){
        .participant_id = j->participant_id, .user_id = j->user_id, .stage_arn = j->stage_arn,
        .publisher = o->publisher, .expires_at_ms = exp_of(o) * 1000,
        .expires_in_s = (long)(exp_of(o) - iat_of(o)), .whip_url = j->whip_url,
    };
    return j;
}

void token_issue(struct signer *signer, const struct token_key *key,
                 const struct token_order *o, token_issued_fn fn, void *arg)
{
    struct issue_job *j = job_new(o, fn, arg);
    if (!j) {
        fn(arg, NULL, "the token could not be made");
        return;
    }
    json_t *role = json_pack("{s:s}", "role", o->publisher ? "publisher" : "viewer");
    struct token_claims claims = {
        .participant_id = j->participant_id, .user_id = j->user_id, .stage_arn = j->stage_arn,
        .events_url = j->events_url, .whip_url = j->whip_url, .allow_publish = o->publisher,
        .iat = iat_of(o), .exp = exp_of(o), .attributes = role,
    };
    char *input = jwt_signing_input(token_key_id(key), &claims);
    json_decref(role);
    if (!input) {
        free(j->user_id);
        free(j);
        fn(arg, NULL, "the token could not be made");
        return;
    }
    signer_sign(signer, input, signed_cb, j);
}
