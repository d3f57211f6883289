/* presign.h — ES384 signing with nonces computed ahead.
 *
 * The costly part of an ECDSA signature is k·G for the random nonce k, and
 * it does not depend on the message. Signer threads with nothing to do
 * compute (k⁻¹, r) pairs into this pool (OpenSSL's ECDSA_sign_setup); a
 * signature then only needs s = k⁻¹(e + r·d) (ECDSA_do_sign_ex), a few
 * microseconds, so a burst of joins is answered from the pool while the
 * idle time before it paid for the expensive part. Each pair is taken out
 * of the pool under its lock and freed after one use: no nonce is ever used
 * twice. With the pool empty, signing falls back to the ordinary way.
 * Thread-safe. */
#ifndef USHER_TOKENS_PRESIGN_H
#define USHER_TOKENS_PRESIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/evp.h>

#include "tokens/jwt.h"

struct presign;

/* capacity 0 disables computing ahead. NULL on failure. */
struct presign *presign_new(EVP_PKEY *pkey, size_t capacity);
void presign_free(struct presign *p);

/* Computes one pair into the pool. False when the pool is full or the
 * computation failed: the caller then has nothing useful to do. */
bool presign_fill_one(struct presign *p);

/* Signs SHA-384(input) into raw r||s. Returns 0, or -1 on failure. */
int presign_sign(struct presign *p, const char *input,
                 unsigned char raw[JWT_ES384_SIG_LEN]);

/* Pairs ready now (for logs and benchmarks). */
size_t presign_ready(struct presign *p);

#endif
