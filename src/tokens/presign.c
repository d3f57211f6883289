/* presign.c — see presign.h.
 *
 * ECDSA_sign_setup and ECDSA_do_sign_ex belong to OpenSSL's EC_KEY API,
 * which OpenSSL 3 marks deprecated in favour of EVP, but EVP has no way to
 * supply precomputed nonces. They are still built and supported in 3.x;
 * this file is the only one that uses them, so the deprecation warnings
 * are silenced here alone. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#include "tokens/presign.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/sha.h>

struct nonce {
    BIGNUM *kinv;                   /* k⁻¹ mod n */
    BIGNUM *r;                      /* (k·G).x mod n */
};

struct presign {
    EC_KEY *key;                    /* read-only after creation */
    pthread_mutex_t lock;
    struct nonce *pool;             /* a stack of ready pairs */
    size_t count, capacity;
};

static void nonce_clear(struct nonce *n)
{
    BN_clear_free(n->kinv);
    BN_clear_free(n->r);
    n->kinv = n->r = NULL;
}

struct presign *presign_new(EVP_PKEY *pkey, size_t capacity)
{
    struct presign *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->key = EVP_PKEY_get1_EC_KEY(pkey);
    p->pool = capacity ? calloc(capacity, sizeof *p->pool) : NULL;
    if (!p->key || (capacity && !p->pool)) {
        EC_KEY_free(p->key);
        free(p->pool);
        free(p);
        return NULL;
    }
    p->capacity = capacity;
    pthread_mutex_init(&p->lock, NULL);
    return p;
}

void presign_free(struct presign *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->count; i++)
        nonce_clear(&p->pool[i]);
    free(p->pool);
    EC_KEY_free(p->key);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static bool pool_full(struct presign *p)
{
    pthread_mutex_lock(&p->lock);
    bool full = p->count >= p->capacity;
    pthread_mutex_unlock(&p->lock);
    return full;
}

bool presign_fill_one(struct presign *p)
{
    if (pool_full(p))
        return false;
    struct nonce n = {0};
    if (ECDSA_sign_setup(p->key, NULL, &n.kinv, &n.r) != 1) {
        ERR_clear_error();
        return false;
    }
    pthread_mutex_lock(&p->lock);
    bool kept = p->count < p->capacity;
    if (kept)
        p->pool[p->count++] = n;
    pthread_mutex_unlock(&p->lock);
    if (!kept)
        nonce_clear(&n);
    return kept;
}

/* Takes one pair out of the pool; false when it is empty. */
static bool take(struct presign *p, struct nonce *out)
{
    pthread_mutex_lock(&p->lock);
    bool got = p->count > 0;
    if (got) {
        *out = p->pool[--p->count];
        p->pool[p->count] = (struct nonce){0};
    }
    pthread_mutex_unlock(&p->lock);
    return got;
}

int presign_sign(struct presign *p, const char *input,
                 unsigned char raw[JWT_ES384_SIG_LEN])
{
    unsigned char digest[SHA384_DIGEST_LENGTH];
    SHA384((const unsigned char *)input, strlen(input), digest);
    struct nonce n = {0};
    ECDSA_SIG *sig = NULL;
    if (take(p, &n)) {
        sig = ECDSA_do_sign_ex(digest, sizeof digest, n.kinv, n.r, p->key);
        nonce_clear(&n);
    }
    /* No pair ready, or the rare pair that gives s = 0: sign afresh. */
    if (!sig)
        sig = ECDSA_do_sign(digest, sizeof digest, p->key);
    if (!sig) {
        ERR_clear_error();
        return -1;
    }
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(sig, &r, &s);
    int ok = BN_bn2binpad(r, raw, ES384_COORD_LEN) == ES384_COORD_LEN &&
             BN_bn2binpad(s, raw + ES384_COORD_LEN, ES384_COORD_LEN) == ES384_COORD_LEN;
    ECDSA_SIG_free(sig);
    return ok ? 0 : -1;
}

size_t presign_ready(struct presign *p)
{
    pthread_mutex_lock(&p->lock);
    size_t n = p->count;
    pthread_mutex_unlock(&p->lock);
    return n;
}
