/* keypair.c — loading (or making, once) the P-384 key that signs tokens.
 *
 * The private key lives in one PKCS#8 PEM file. On first start usher
 * generates it; since several usher processes may share a data directory
 * and start together, the new key is written to a private temporary file
 * and then link()ed into place: link() never replaces an existing file, so
 * exactly one process installs its key and every other one reads that
 * winner's file instead of keeping its own. Everything derived from the
 * key that the API hands out (key id, public PEM, JWKS) is computed here,
 * once, so serving it costs nothing. */
#include "tokens/keypair.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tokens/jwt.h"


struct token_key {
    EVP_PKEY *pkey;
    char *kid;
    char *public_pem;
    json_t *jwks;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Without this, OpenSSL would prompt on the terminal for a passphrase. */
static int refuse_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

/* Returns the key in path, or NULL with the reason in err; *missing tells
 * an absent file (which the caller may create) from an unusable one. */
static EVP_PKEY *read_private_key(const char *path, int *missing,
                                  char *err, size_t errlen)
{
    *missing = 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        *missing = errno == ENOENT;
        set_err(err, errlen, "token key %s: %s", path, strerror(errno));
        return NULL;
    }
    EVP_PKEY *pkey = PEM_read_PrivateKey(f, NULL, refuse_passphrase, NULL);
    fclose(f);
    if (!pkey)
        set_err(err, errlen, "token key %s: not an unencrypted PEM private key",
                path);
    return pkey;
}

static int check_p384(const char *path, EVP_PKEY *pkey, char *err, size_t errlen)
{
    char group[64] = "";
    size_t len;
    if (!EVP_PKEY_is_a(pkey, "EC")) {
        set_err(err, errlen, "token key %s: a %s key, but ES384 needs an "
                "EC P-384 private key", path, EVP_PKEY_get0_type_name(pkey));
        return -1;
    }
    if (!EVP_PKEY_get_group_name(pkey, group, sizeof group, &len) ||
        strcmp(group, "secp384r1") != 0) {
        set_err(err, errlen, "token key %s: EC curve %s, but ES384 needs "
                "P-384 (secp384r1)", path, *group ? group : "(unnamed)");
        return -1;
    }
    return 0;
}

/* mkdir -p for the folder that holds path, new folders private (0700). */
static int make_parent_dirs(const char *path)
{
    char *dir = strdup(path);
    if (!dir)
        return -1;
    int rc = 0;
    for (char *p = dir + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            rc = -1;
            break;
        }
        *p = '/';
    }
    free(dir);
    return rc;
}

/* The directory entry made by link() is only durable once the folder
 * itself is synced; a lost key would orphan the public key imported in IVS. */
static void sync_parent_dir(const char *path)
{
    char *dir = strdup(path);
    if (!dir)
        return;
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else
        slash[slash == dir] = '\0';    /* keep "/" for a file at the root */
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

/* Writes pkey as PKCS#8 PEM to a new 0600 file next to path; returns the
 * temporary file's name (malloc'd) or NULL. */
static char *write_temp_key(const char *path, EVP_PKEY *pkey)
{
    size_t len = strlen(path) + sizeof ".tmp.XXXXXX";
    char *tmp = malloc(len);
    if (!tmp)
        return NULL;
    snprintf(tmp, len, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);      /* O_CREAT|O_EXCL, mode 0600 */
    if (fd < 0) {
        free(tmp);
        return NULL;
    }
    FILE *f = fdopen(fd, "w");
    int ok = f && PEM_write_PKCS8PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) &&
             fflush(f) == 0 && fsync(fd) == 0;
    if (f ? fclose(f) != 0 : close(fd) != 0)
        ok = 0;
    if (!ok) {
        unlink(tmp);
        free(tmp);
        return NULL;
    }
    return tmp;
}

/* Generates a key and installs it at path unless another process got there
 * first. Returns 0 when path holds a key afterwards (ours or theirs). */
static int install_new_key(const char *path, char *err, size_t errlen)
{
    if (make_parent_dirs(path) != 0) {
        set_err(err, errlen, "token key %s: cannot create its folder: %s",
                path, strerror(errno));
        return -1;
    }
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    if (!pkey) {
        set_err(err, errlen, "token key %s: P-384 key generation failed", path);
        return -1;
    }
    char *tmp = write_temp_key(path, pkey);
    int write_errno = errno;
    EVP_PKEY_free(pkey);
    if (!tmp) {
        set_err(err, errlen, "token key %s: cannot write a new key beside it: %s",
                path, strerror(write_errno));
        return -1;
    }
    int rc = link(tmp, path);
    int link_errno = errno;
    unlink(tmp);
    free(tmp);
    if (rc != 0 && link_errno != EEXIST) {
        set_err(err, errlen, "token key %s: cannot install the new key: %s",
                path, strerror(link_errno));
        return -1;
    }
    sync_parent_dir(path);
    return 0;
}

static EVP_PKEY *load_or_create(const char *path, int create,
                                char *err, size_t errlen)
{
    int missing;
    EVP_PKEY *pkey = read_private_key(path, &missing, err, errlen);
    if (pkey || !missing || !create)
        return pkey;
    /* Whoever won the link() race, the file now holds the shared key:
     * reading it back is what makes all processes agree. */
    if (install_new_key(path, err, errlen) != 0)
        return NULL;
    return read_private_key(path, &missing, err, errlen);
}

static char *local_key_id(EVP_PKEY *pkey)
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(pkey, &der);
    if (len <= 0)
        return NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    int ok = EVP_Digest(der, (size_t)len, md, NULL, EVP_sha256(), NULL);
    OPENSSL_free(der);
    if (!ok)
        return NULL;
    char *kid = malloc(sizeof "usher-" + 16);
    if (!kid)
        return NULL;
    strcpy(kid, "usher-");
    for (int i = 0; i < 8; i++)
        sprintf(kid + 6 + 2 * i, "%02x", md[i]);
    return kid;
}

static char *public_pem(EVP_PKEY *pkey)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    if (bio && PEM_write_bio_PUBKEY(bio, pkey)) {
        char *data;
        long len = BIO_get_mem_data(bio, &data);
        pem = strndup(data, (size_t)len);
    }
    BIO_free(bio);
    return pem;
}

/* Puts base64url of the 48-byte big-endian coordinate param into out. */
static int coordinate_b64(EVP_PKEY *pkey, const char *param, char *out,
                          size_t outlen)
{
    BIGNUM *bn = NULL;
    unsigned char raw[ES384_COORD_LEN];
    int ok = EVP_PKEY_get_bn_param(pkey, param, &bn) &&
             BN_bn2binpad(bn, raw, sizeof raw) == ES384_COORD_LEN;
    BN_free(bn);
    return ok && base64url_encode(raw, sizeof raw, out, outlen) > 0 ? 0 : -1;
}

static json_t *jwks_json(EVP_PKEY *pkey, const char *kid)
{
    char x[ES384_COORD_LEN / 3 * 4 + 1], y[sizeof x];
    if (coordinate_b64(pkey, OSSL_PKEY_PARAM_EC_PUB_X, x, sizeof x) != 0 ||
        coordinate_b64(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, y, sizeof y) != 0)
        return NULL;
    return json_pack("{s:[{s:s,s:s,s:s,s:s,s:s,s:s,s:s}]}", "keys",
                     "kty", "EC", "crv", "P-384", "x", x, "y", y,
                     "kid", kid, "alg", "ES384", "use", "sig");
}

/* Fills in everything derived from key->pkey. */
static int derive_public_parts(struct token_key *key, const char *public_key_arn)
{
    key->kid = public_key_arn && *public_key_arn ? strdup(public_key_arn)
                                                 : local_key_id(key->pkey);
    key->public_pem = public_pem(key->pkey);
    key->jwks = key->kid ? jwks_json(key->pkey, key->kid) : NULL;
    return key->kid && key->public_pem && key->jwks ? 0 : -1;
}

struct token_key *token_key_open(const char *path, int create,
                                 const char *public_key_arn,
                                 char *err, size_t errlen)
{
    struct token_key *key = calloc(1, sizeof *key);
    if (!key) {
        set_err(err, errlen, "token key %s: out of memory", path);
        return NULL;
    }
    key->pkey = load_or_create(path, create, err, errlen);
    if (!key->pkey || check_p384(path, key->pkey, err, errlen) != 0)
        goto fail;
    if (derive_public_parts(key, public_key_arn) != 0) {
        set_err(err, errlen, "token key %s: cannot derive the public key", path);
        goto fail;
    }
    return key;

fail:
    /* Leave no stale errors in this thread's queue for unrelated code. */
    ERR_clear_error();
    token_key_free(key);
    return NULL;
}

int token_key_set_id(struct token_key *key, const char *kid)
{
    char *id = strdup(kid);
    json_t *jwks = id ? jwks_json(key->pkey, id) : NULL;
    if (!jwks) {
        free(id);
        return -1;
    }
    free(key->kid);
    json_decref(key->jwks);
    key->kid = id;
    key->jwks = jwks;
    return 0;
}

void token_key_free(struct token_key *key)
{
    if (!key)
        return;
    EVP_PKEY_free(key->pkey);
    free(key->kid);
    free(key->public_pem);
    json_decref(key->jwks);
    free(key);
}

EVP_PKEY *token_key_pkey(const struct token_key *key) { return key->pkey; }
const char *token_key_id(const struct token_key *key) { return key->kid; }
const char *token_key_public_pem(const struct token_key *key) { return key->public_pem; }

/* A copy, so a caller adding fields to its response cannot alter ours. */
json_t *token_key_jwks(const struct token_key *key)
{
    return json_deep_copy(key->jwks);
}
