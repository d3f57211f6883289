/* issue.h — issuing a participant token: the claims IVS expects for a
 * viewer (subscribe) or the publisher (publish + subscribe), assembled
 * (jwt.h) and signed off the loop (signer.h). The HTTP routes only turn
 * the grant into their answer; nothing here knows HTTP or Redis.
 * Signing needs no AWS call: IVS checks the signature against the public
 * key imported with ImportPublicKey (SPEC §5). */
#ifndef USHER_TOKENS_ISSUE_H
#define USHER_TOKENS_ISSUE_H

#include <stdbool.h>
#include <stdint.h>

struct signer;
struct token_key;

struct token_order {
    const char *participant_id;      /* jti */
    const char *user_id;
    const char *stage_arn;
    bool publisher;                  /* publish + subscribe; else subscribe only */
    long duration_s;                 /* validity from now, seconds */
    int64_t now_ms;                  /* wall clock of issue (the request's reading) */
    /* The stage's endpoints as its provider gave them (stages/endpoints.h);
     * NULL: a local stage's (ivs/provider.h, stage_endpoints). */
    const char *whip_url, *events_url;
};

/* What was issued; strings are valid during the callback only. */
struct token_grant {
    const char *token;               /* the signed JWT */
    const char *participant_id, *user_id, *stage_arn;
    bool publisher;
    int64_t expires_at_ms;           /* the token's exp * 1000, exactly */
    long expires_in_s;               /* exp - iat */
    const char *whip_url;            /* the stage's WHIP endpoint (for the publisher) */
};

/* grant is NULL and error says why when the token could not be made or
 * signed. Called exactly once, on the loop, never from inside the call
 * (except when out of memory before anything started). */
typedef void (*token_issued_fn)(void *arg, const struct token_grant *grant, const char *error);

/* The order's strings are copied. key and signer must outlive the call. */
void token_issue(struct signer *signer, const struct token_key *key,
                 const struct token_order *order, token_issued_fn fn, void *arg);

#endif
