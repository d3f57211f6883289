/* test_keypair.c — unit tests for tokens/keypair.c and tokens/signer.c:
 * creating, reopening and rejecting key files, the key id and JWKS, and
 * a token signed by the signer pool verified independently with OpenSSL
 * (r||s turned back into DER, checked with the public PEM only). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "tokens/jwt.h"
#include "tokens/keypair.h"
#include "tokens/presign.h"
#include "tokens/signer.h"

struct fixture {
    char dir[64];
    char path[128];             /* dir/keys/sub/token-key.pem, not yet there */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/usher-keypair-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/keys/sub/token-key.pem", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static struct token_key *open_ok(const char *path, int create, const char *arn)
{
    char err[256] = "";
    struct token_key *key = token_key_open(path, create, arn, err, sizeof err);
    if (!key)
        print_error("token_key_open: %s\n", err);
    assert_non_null(key);
    return key;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void test_create_and_reopen(void **state)
{
    struct fixture *f = *state;
    struct token_key *a = open_ok(f->path, 1, NULL);

    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char parent[160];
    snprintf(parent, sizeof parent, "%s/keys/sub", f->dir);
    assert_int_equal(stat(parent, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    const char *kid = token_key_id(a);
    assert_int_equal(strlen(kid), strlen("usher-") + 16);
    assert_memory_equal(kid, "usher-", 6);
    assert_int_equal(strspn(kid + 6, "0123456789abcdef"), 16);
    assert_non_null(strstr(token_key_public_pem(a), "-----BEGIN PUBLIC KEY-----"));

    struct token_key *b = open_ok(f->path, 0, "");
    assert_string_equal(token_key_id(b), kid);
    assert_string_equal(token_key_public_pem(b), token_key_public_pem(a));
    token_key_free(a);
    token_key_free(b);
}

static void test_private_file_is_pkcs8(void **state)
{
    struct fixture *f = *state;
    token_key_free(open_ok(f->path, 1, NULL));
    FILE *fp = fopen(f->path, "r");
    assert_non_null(fp);
    char line[64] = "";
    assert_non_null(fgets(line, sizeof line, fp));
    fclose(fp);
    assert_string_equal(line, "-----BEGIN PRIVATE KEY-----\n");
}

/* The local key id is defined from the public key alone: recompute it. */
static void test_local_kid_is_sha256_of_public_der(void **state)
{
    struct fixture *f = *state;
    struct token_key *key = open_ok(f->path, 1, NULL);
    BIO *bio = BIO_new_mem_buf(token_key_public_pem(key), -1);
    EVP_PKEY *pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    assert_non_null(pub);
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(pub, &der);
    assert_true(len > 0);
    unsigned char md[SHA256_DIGEST_LENGTH];
    assert_int_equal(EVP_Digest(der, (size_t)len, md, NULL, EVP_sha256(), NULL), 1);
    char want[32];
    snprintf(want, sizeof want, "usher-%02x%02x%02x%02x%02x%02x%02x%02x",
             md[0], md[1], md[2], md[3], md[4], md[5], md[6], md[7]);
    assert_string_equal(token_key_id(key), want);
    OPENSSL_free(der);
    EVP_PKEY_free(pub);
    BIO_free(bio);
    token_key_free(key);
}

static void test_kid_from_public_key_arn(void **state)
{
    struct fixture *f = *state;
    const char *arn = "arn:aws:ivs:us-west-2:123456789012:public-key/AbC";
    struct token_key *key = open_ok(f->path, 1, arn);
    assert_string_equal(token_key_id(key), arn);
    json_t *jwks = token_key_jwks(key);
    json_t *jwk = json_array_get(json_object_get(jwks, "keys"), 0);
    assert_string_equal(json_string_value(json_object_get(jwk, "kid")), arn);
    json_decref(jwks);
    token_key_free(key);
}

static void test_missing_file_without_create(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    assert_null(token_key_open(f->path, 0, NULL, err, sizeof err));
    assert_non_null(strstr(err, f->path));
    assert_int_equal(access(f->path, F_OK), -1);
}

static void test_garbage_file_rejected(void **state)
{
    struct fixture *f = *state;
    char path[160], err[256] = "";
    snprintf(path, sizeof path, "%s/garbage.pem", f->dir);
    write_file(path, "this is not a key\n");
    assert_null(token_key_open(path, 1, NULL, err, sizeof err));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "private key"));
}

static void test_wrong_curve_rejected(void **state)
{
    struct fixture *f = *state;
    char path[160], err[256] = "";
    snprintf(path, sizeof path, "%s/p256.pem", f->dir);
    EVP_PKEY *p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(p256);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(PEM_write_PKCS8PrivateKey(fp, p256, NULL, NULL, 0, NULL, NULL), 1);
    fclose(fp);
    EVP_PKEY_free(p256);

    assert_null(token_key_open(path, 1, NULL, err, sizeof err));
    assert_non_null(strstr(err, "P-384"));
    assert_non_null(strstr(err, "prime256v1"));
}

static void test_public_key_file_rejected(void **state)
{
    struct fixture *f = *state;
    struct token_key *key = open_ok(f->path, 1, NULL);
    char path[160], err[256] = "";
    snprintf(path, sizeof path, "%s/public.pem", f->dir);
    write_file(path, token_key_public_pem(key));
    token_key_free(key);
    assert_null(token_key_open(path, 1, NULL, err, sizeof err));
    assert_non_null(strstr(err, "private key"));
}

struct racer {
    const char *path;
    char kid[64];
};

static void *race_open(void *arg)
{
    struct racer *r = arg;
    char err[256];
    struct token_key *key = token_key_open(r->path, 1, NULL, err, sizeof err);
    if (key) {
        snprintf(r->kid, sizeof r->kid, "%s", token_key_id(key));
        token_key_free(key);
    }
    return NULL;
}

/* Starting at once, every opener must end up with the one installed key. */
static void test_concurrent_create_agrees(void **state)
{
    struct fixture *f = *state;
    enum { N = 8 };
    struct racer racers[N];
    pthread_t threads[N];
    for (int i = 0; i < N; i++) {
        racers[i] = (struct racer){.path = f->path};
        assert_int_equal(pthread_create(&threads[i], NULL, race_open, &racers[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(threads[i], NULL);
    struct token_key *key = open_ok(f->path, 0, NULL);
    for (int i = 0; i < N; i++)
        assert_string_equal(racers[i].kid, token_key_id(key));
    token_key_free(key);
}

static unsigned char *b64url_decode(const char *s, size_t *outlen)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t len = strlen(s);
    unsigned char *out = malloc(len * 3 / 4 + 1);
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        const char *p = strchr(alphabet, s[i]);
        assert_true(s[i] && p);
        acc = acc << 6 | (uint32_t)(p - alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    *outlen = o;
    return out;
}

/* x and y in the JWKS must be the point in the public key: the last 96
 * bytes of its DER form (uncompressed 0x04 || x || y). */
static void test_jwks_matches_public_key(void **state)
{
    struct fixture *f = *state;
    struct token_key *key = open_ok(f->path, 1, NULL);
    json_t *jwks = token_key_jwks(key);
    assert_int_equal(json_array_size(json_object_get(jwks, "keys")), 1);
    json_t *jwk = json_array_get(json_object_get(jwks, "keys"), 0);
    assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "EC");
    assert_string_equal(json_string_value(json_object_get(jwk, "crv")), "P-384");
    assert_string_equal(json_string_value(json_object_get(jwk, "alg")), "ES384");
    assert_string_equal(json_string_value(json_object_get(jwk, "use")), "sig");
    assert_string_equal(json_string_value(json_object_get(jwk, "kid")), token_key_id(key));

    unsigned char *der = NULL;
    int len = i2d_PUBKEY(token_key_pkey(key), &der);
    assert_true(len > 97);
    assert_int_equal(der[len - 97], 0x04);
    size_t xlen, ylen;
    unsigned char *x = b64url_decode(json_string_value(json_object_get(jwk, "x")), &xlen);
    unsigned char *y = b64url_decode(json_string_value(json_object_get(jwk, "y")), &ylen);
    assert_int_equal(xlen, 48);
    assert_int_equal(ylen, 48);
    assert_memory_equal(x, der + len - 96, 48);
    assert_memory_equal(y, der + len - 48, 48);

    /* A copy: changing it leaves the next answer intact. */
    json_object_set_new(jwk, "kid", json_string("tampered"));
    json_t *again = token_key_jwks(key);
    json_t *jwk2 = json_array_get(json_object_get(again, "keys"), 0);
    assert_string_equal(json_string_value(json_object_get(jwk2, "kid")), token_key_id(key));

    json_decref(again);
    free(x);
    free(y);
    OPENSSL_free(der);
    json_decref(jwks);
    token_key_free(key);
}

/* --- signer --- */

struct result {
    struct event_base *base;
    int calls;
    char *token;
    char error[64];
    int *remaining;             /* loop stops when it reaches zero */
};

static void on_signed(void *arg, char *token, const char *error)
{
    struct result *r = arg;
    r->calls++;
    r->token = token;
    snprintf(r->error, sizeof r->error, "%s", error ? error : "");
    if (r->remaining && --*r->remaining == 0)
        event_base_loopbreak(r->base);
}

static char *make_input(const char *kid, const char *user)
{
    struct token_claims c = {
        .participant_id = "0123456789abcdef0123456789abcdef",
        .user_id = user,
        .stage_arn = "arn:aws:ivs:us-west-2:123456789012:stage/AbCdEf123456",
        .events_url = "wss://global.events.live-video.net",
        .whip_url = "https://AbCdEf123456.global-bm.whip.live-video.net",
        .allow_publish = false,
        .iat = 1760000000,
        .exp = 1760003600,
    };
    char *input = jwt_signing_input(kid, &c);
    assert_non_null(input);
    return input;
}

/* Verifies token with nothing but the public PEM: split off the raw r||s,
 * rebuild the DER ECDSA-Sig-Value, EVP_DigestVerify over "header.claims". */
static int verify_token(const char *public_pem, const char *token)
{
    const char *dot = strrchr(token, '.');
    assert_non_null(dot);
    size_t raw_len;
    unsigned char *raw = b64url_decode(dot + 1, &raw_len);
    assert_int_equal(raw_len, 96);

    ECDSA_SIG *sig = ECDSA_SIG_new();
    assert_int_equal(ECDSA_SIG_set0(sig, BN_bin2bn(raw, 48, NULL),
                                    BN_bin2bn(raw + 48, 48, NULL)), 1);
    unsigned char *der = NULL;
    int der_len = i2d_ECDSA_SIG(sig, &der);
    assert_true(der_len > 0);

    BIO *bio = BIO_new_mem_buf(public_pem, -1);
    EVP_PKEY *pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    assert_non_null(pub);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha384(), NULL, pub), 1);
    int rc = EVP_DigestVerify(ctx, der, (size_t)der_len,
                              (const unsigned char *)token, (size_t)(dot - token));

    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pub);
    BIO_free(bio);
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
    free(raw);
    return rc;
}

static void run_loop_bounded(struct event_base *base)
{
    struct timeval limit = {10, 0};
    event_base_loopexit(base, &limit);
    event_base_dispatch(base);
}

static void test_signed_token_verifies(void **state)
{
    struct fixture *f = *state;
    struct token_key *key = open_ok(f->path, 1, NULL);
    struct event_base *base = event_base_new();
    struct signer *signer = signer_new(base, key, 2, 0);
    assert_non_null(signer);

    int remaining = 1;
    struct result r = {.base = base, .remaining = &remaining};
    char *input = make_input(token_key_id(key), "alice");
    char *expected_prefix = strdup(input);
    signer_sign(signer, input, on_signed, &r);
    assert_int_equal(r.calls, 0);       /* never answered synchronously */
    run_loop_bounded(base);

    assert_int_equal(r.calls, 1);
    assert_string_equal(r.error, "");
    assert_non_null(r.token);
    size_t n = strlen(expected_prefix);
    assert_memory_equal(r.token, expected_prefix, n);
    assert_int_equal(r.token[n], '.');
    assert_int_equal(verify_token(token_key_public_pem(key), r.token), 1);

    /* A flipped signing-input byte must not verify: the check can fail. */
    r.token[3] ^= 1;
    assert_int_not_equal(verify_token(token_key_public_pem(key), r.token), 1);

    free(expected_prefix);
    free(r.token);
    signer_free(signer);
    event_base_free(base);
    token_key_free(key);
}

static void test_many_jobs_all_threads(void **state)
{
    struct fixture *f = *state;
    enum { N = 64 };
    struct token_key *key = open_ok(f->path, 1, NULL);
    struct event_base *base = event_base_new();
    struct signer *signer = signer_new(base, key, 0, 8); /* some signed from the pool */
    assert_non_null(signer);

    int remaining = N;
    struct result r[N];
    for (int i = 0; i < N; i++) {
        char user[32];
        snprintf(user, sizeof user, "user-%d", i);
        r[i] = (struct result){.base = base, .remaining = &remaining};
        signer_sign(signer, make_input(token_key_id(key), user), on_signed, &r[i]);
    }
    run_loop_bounded(base);

    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_non_null(r[i].token);
        assert_int_equal(verify_token(token_key_public_pem(key), r[i].token), 1);
        free(r[i].token);
    }
    signer_free(signer);
    event_base_free(base);
    token_key_free(key);
}

/* Builds the token "input.b64url(raw)" so verify_token can check a bare
 * presign signature. */
static char *token_of(const char *input, const unsigned char raw[96])
{
    return jwt_finish(input, raw);
}

/* Nonces computed ahead: the pool fills to its capacity and no further,
 * every signature verifies, those beyond the pool fall back to ordinary
 * signing, and no two signatures share r (no nonce is used twice). */
static void test_presign_pool(void **state)
{
    struct fixture *f = *state;
    enum { CAPACITY = 16, N = 24 };
    struct token_key *key = open_ok(f->path, 1, NULL);
    struct presign *p = presign_new(token_key_pkey(key), CAPACITY);
    assert_non_null(p);
    int filled = 0;
    while (presign_fill_one(p) && filled < 100)
        filled++;
    assert_int_equal(filled, CAPACITY);
    assert_int_equal(presign_ready(p), CAPACITY);

    unsigned char r_seen[N][48];
    for (int i = 0; i < N; i++) {
        char *input = make_input(token_key_id(key), "carol");
        unsigned char raw[96];
        assert_int_equal(presign_sign(p, input, raw), 0);
        char *token = token_of(input, raw);
        assert_int_equal(verify_token(token_key_public_pem(key), token), 1);
        memcpy(r_seen[i], raw, 48);
        for (int k = 0; k < i; k++)
            assert_memory_not_equal(r_seen[k], r_seen[i], 48);
        free(token);
        free(input);
    }
    assert_int_equal(presign_ready(p), 0);
    presign_free(p);
    token_key_free(key);
}

static void test_free_fails_pending_jobs_once(void **state)
{
    struct fixture *f = *state;
    enum { N = 200 };
    struct token_key *key = open_ok(f->path, 1, NULL);
    struct event_base *base = event_base_new();
    struct signer *signer = signer_new(base, key, 1, 4);
    assert_non_null(signer);

    static struct result r[N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++)
        signer_sign(signer, make_input(token_key_id(key), "bob"), on_signed, &r[i]);
    /* Some jobs may be signed by now, but none delivered: the loop never ran. */
    signer_free(signer);

    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_null(r[i].token);
        assert_string_equal(r[i].error, "signer stopped");
    }
    event_base_free(base);
    token_key_free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_private_file_is_pkcs8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_kid_is_sha256_of_public_der, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kid_from_public_key_arn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file_without_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_file_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_curve_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_public_key_file_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_create_agrees, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jwks_matches_public_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signed_token_verifies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_jobs_all_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_presign_pool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_fails_pending_jobs_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
