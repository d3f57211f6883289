/* keypair.h — the ES384 (P-384) key pair that signs participant tokens.
 *
 * IVS verifies self-signed participant tokens with a public key the operator
 * imported (ImportPublicKey). usher keeps the private key in one PEM file:
 * either a configured one, or one it generates on first start in the data
 * directory (mode 0600). Several processes sharing the data directory agree
 * on one key: the first to install the file wins and the others read it. */
#ifndef USHER_TOKENS_KEYPAIR_H
#define USHER_TOKENS_KEYPAIR_H

#include <stddef.h>
#include <jansson.h>
#include <openssl/evp.h>

struct token_key;

/* Reads the private key at path, or, when no file is there and create is
 * non-zero, generates one and stores it there (mode 0600, parent folder
 * made if missing). public_key_arn, when non-empty, becomes the key id
 * (JWT "kid"); otherwise the id is "usher-" followed by the first 16 hex
 * digits of SHA-256 over the public key's DER form. Returns NULL and fills
 * err on failure. */
struct token_key *token_key_open(const char *path, int create,
                                 const char *public_key_arn,
                                 char *err, size_t errlen);
void token_key_free(struct token_key *key);
/* Makes kid the key id (JWT "kid", JWKS "kid"): the ARN IVS gave the
 * imported public key (ivs/provider.h, prepare). Before tokens are issued
 * only: not thread-safe. Returns -1 when out of memory (the old id kept). */
int token_key_set_id(struct token_key *key, const char *kid);

EVP_PKEY *token_key_pkey(const struct token_key *key);
const char *token_key_id(const struct token_key *key);
/* SubjectPublicKeyInfo PEM, as IVS ImportPublicKey takes it. */
const char *token_key_public_pem(const struct token_key *key);
/* New reference to {"keys":[{kty,crv,x,y,kid,alg,use}]}. */
json_t *token_key_jwks(const struct token_key *key);

#endif
