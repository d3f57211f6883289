/* aws_keys.c — the AWS provider's start-up (prepare): the public key IVS
 * checks usher's participant tokens with, then MASTER_STAGE_ARN. The key
 * IVS_PUBLIC_KEY_ARN names must be the public half of usher's signing
 * key; without it usher finds its key among the region's (ListPublicKeys,
 * GetPublicKey) or imports it (ImportPublicKey). IVS facts used here (the
 * API model, ../shared/aws/README.md): public keys are imported as SPKI
 * PEM, 3 per region; ListPublicKeys holds no key material. */
#include "ivs/aws_op.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "config/config.h"
#include "util/log.h"

/* Pages of ListPublicKeys before it is called endless (keys are 3 a region). */
#define KEY_PAGES_MAX 10

/* Whether two PEM public keys are the same key. */
static bool same_key(const char *a, const char *b)
{
    BIO *ba = BIO_new_mem_buf(a, -1), *bb = BIO_new_mem_buf(b, -1);
    EVP_PKEY *ka = ba ? PEM_read_bio_PUBKEY(ba, NULL, NULL, NULL) : NULL;
    EVP_PKEY *kb = bb ? PEM_read_bio_PUBKEY(bb, NULL, NULL, NULL) : NULL;
    bool same = ka && kb && EVP_PKEY_eq(ka, kb) == 1;
    EVP_PKEY_free(ka), EVP_PKEY_free(kb);
    BIO_free(ba), BIO_free(bb);
    return same;
}

/* MASTER_STAGE_ARN read: it must exist and be readable. */
static void master_read(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    const char *arn = o->ap->base.cfg->master_stage_arn;
    if (r->error != AWS_OK) {
        char why[ERROR_MAX];
        snprintf(why, sizeof why, "%s", op_describe(o, r));
        snprintf(o->error, sizeof o->error,
                 "MASTER_STAGE_ARN: the stage %s %s with these credentials (%s)", arn,
                 r->error == AWS_ERR_NOT_FOUND ? "does not exist" : "cannot be read", why);
        op_end(o, o->error, NULL, NULL);
        return;
    }
    log_info("aws provider: MASTER_STAGE_ARN %s exists", arn);
    op_end(o, NULL, NULL, o->kid);
}

/* The key is settled (o->kid): the master stage next, when one is named. */
static void key_settled(struct op *o)
{
    const char *master = o->ap->base.cfg->master_stage_arn;
    if (!master[0]) {
        op_end(o, NULL, NULL, o->kid);
        return;
    }
    op_call(o, "GetStage", json_pack("{s:s}", "arn", master), master_read);
}

/* Our key imported: its ARN is the kid. */
static void key_imported(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    const char *error;
    const json_t *key = op_answered(o, r, "publicKey", &error);
    const char *arn = json_string_value(json_object_get(key, "arn"));
    if (!error && !(arn && valid_public_key_arn(arn)))
        error = "ImportPublicKey: IVS answered no public key ARN";
    if (error) {
        snprintf(o->error, sizeof o->error,
                 "IVS_PUBLIC_KEY_ARN is not set and the signing key could not be imported (%s)%s",
                 error,
                 r->error == AWS_ERR_QUOTA_EXCEEDED
                     ? ": IVS holds 3 public keys per region; delete one (DeletePublicKey) or "
                       "set IVS_PUBLIC_KEY_ARN to one whose private key usher signs with"
                     : "");
        op_end(o, o->error, NULL, NULL);
        return;
    }
    log_info("aws provider: imported the signing key's public half as %s", arn);
    snprintf(o->kid, sizeof o->kid, "%s", arn);
    key_settled(o);
}

static void next_key(struct op *o);

/* One candidate key read: ours ends the search. */
static void candidate_read(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    const char *error;
    const json_t *key = op_answered(o, r, "publicKey", &error);
    const char *pem = json_string_value(json_object_get(key, "publicKeyMaterial"));
    if (error) {
        op_end(o, error, NULL, NULL);
        return;
    }
    const char *arn = json_string_value(json_object_get(key, "arn"));
    if (pem && same_key(pem, o->pem)) {
        if (!arn || !valid_public_key_arn(arn)) {
            op_end(o, op_refused(o, r, "our key without a public key ARN"), NULL, NULL);
            return;
        }
        snprintf(o->kid, sizeof o->kid, "%s", arn);
        log_info("aws provider: the signing key is imported already as %s", o->kid);
        key_settled(o);
        return;
    }
    next_key(o);
}

/* Reads the keys listed one by one (the list holds no material); none
 * ours: ImportPublicKey. */
static void next_key(struct op *o)
{
    const char *arn = json_string_value(json_array_get(o->found, o->next_key++));
    if (arn) {
        op_call(o, "GetPublicKey", json_pack("{s:s}", "arn", arn), candidate_read);
        return;
    }
    json_t *tags = stage_tags(o->ap->base.cfg, NULL);
    op_call(o, "ImportPublicKey",
            tags ? json_pack("{s:s, s:s, s:o}", "publicKeyMaterial", o->pem, "name", "usher", "tags",
                             tags)
                 : NULL,
            key_imported);
}

/* One page of ListPublicKeys: the ARNs kept, then the next page or the
 * keys read one by one. */
static void keys_listed(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    const char *error, *next;
    const json_t *keys = op_page(o, r, "publicKeys", PAGE_MAX, KEY_PAGES_MAX, &next, &error), *k;
    if (error) {
        op_end(o, error, NULL, NULL);
        return;
    }
    size_t i;
    json_array_foreach(keys, i, k) {
        json_t *arn = json_object_get(k, "arn");
        if (json_is_string(arn) && !op_keep(o, r, json_incref(arn)))
            return;
    }
    if (next)
        op_call(o, "ListPublicKeys",
                json_pack("{s:i, s:s}", "maxResults", PAGE_MAX, "nextToken", next), keys_listed);
    else
        next_key(o);
}

/* IVS_PUBLIC_KEY_ARN read: its material must be our public half. */
static void configured_key_read(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    const char *arn = o->ap->base.cfg->public_key_arn;
    const char *error;
    const json_t *key = op_answered(o, r, "publicKey", &error);
    const char *pem = json_string_value(json_object_get(key, "publicKeyMaterial"));
    if (error || !pem || !same_key(pem, o->pem)) {
        char why[ERROR_MAX];
        snprintf(why, sizeof why, "%s", error ? error : "");
        snprintf(o->error, sizeof o->error,
                 error ? "IVS_PUBLIC_KEY_ARN: the key %s cannot be read (%s)"
                       : "IVS_PUBLIC_KEY_ARN: the key %s is not the public half of usher's signing key%s; "
                         "import GET /api/token/public-key's publicKeyPem (ImportPublicKey) and set its ARN, "
                         "point TOKEN_PRIVATE_KEY_FILE at that key's private half, or unset "
                         "IVS_PUBLIC_KEY_ARN so usher imports its key itself",
                 arn, why);
        op_end(o, o->error, NULL, NULL);
        return;
    }
    snprintf(o->kid, sizeof o->kid, "%s", arn);
    key_settled(o);
}

void aws_prepare(struct stage_provider *p, const char *public_pem, provider_text_fn done,
                 void *arg)
{
    struct op *o = OP(OP_TEXT, done);
    if (!o)
        return;
    if (!(o->pem = strdup(public_pem)) || !(o->found = json_array())) {
        op_fail_later(o, "out of memory");
        return;
    }
    if (p->cfg->public_key_arn[0])
        op_call(o, "GetPublicKey", json_pack("{s:s}", "arn", p->cfg->public_key_arn),
                configured_key_read);
    else
        op_call(o, "ListPublicKeys", json_pack("{s:i}", "maxResults", PAGE_MAX), keys_listed);
}
