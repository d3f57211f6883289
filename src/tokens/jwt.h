/* jwt.h — assembling IVS participant tokens (JWS compact, ES384).
 *
 * Pure functions, no I/O and no keys: the signing itself happens in
 * signer.c, off the event loop. A token is made in two steps:
 * jwt_signing_input() builds "base64url(header).base64url(claims)", the
 * signer signs it, and jwt_finish() appends ".base64url(r||s)". */
#ifndef USHER_TOKENS_JWT_H
#define USHER_TOKENS_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* One P-384 coordinate or scalar: 48 bytes, big-endian (RFC 7518 §3.4 for
 * r and s, RFC 7518 §6.2.1 for a JWK's x and y). */
#define ES384_COORD_LEN 48
#define JWT_ES384_SIG_LEN (2 * ES384_COORD_LEN)   /* r || s */
/* jti: hex characters, 80 random bits. Kept short because every seated
 * viewer's Redis record holds it, which then fits the
 * 96-byte allocation class instead of 112 (20 characters: a 91-byte
 * record, plus 4 bytes of string header and end). */
#define PARTICIPANT_ID_LEN 20

struct token_claims {
    const char *participant_id;     /* jti */
    const char *user_id;
    const char *stage_arn;          /* resource; topic = last path segment */
    const char *events_url;
    const char *whip_url;
    bool allow_publish;             /* publisher: publish + subscribe; viewer: subscribe */
    int64_t iat, exp;               /* unix seconds */
    json_t *attributes;             /* object of string -> string, may be NULL */
};

/* Writes the unpadded base64url form of in[0..len) and a NUL into out.
 * Returns the length written, or 0 when outlen is too small
 * (it needs 4*ceil(len/3)+1 bytes at most). */
size_t base64url_encode(const unsigned char *in, size_t len, char *out,
                        size_t outlen);

/* Returns malloc'd "header.claims" for the key id kid, or NULL when the
 * claims break a rule of SPEC §5 (exp - iat over 14 days, attributes
 * over 1 KB or not all strings, a missing field, a jti over 64 characters
 * or outside [A-Za-z0-9-], a user_id over 128 characters). */
char *jwt_signing_input(const char *kid, const struct token_claims *claims);

/* Returns malloc'd "signing_input.signature". */
char *jwt_finish(const char *signing_input,
                 const unsigned char sig[JWT_ES384_SIG_LEN]);

/* Fills out with PARTICIPANT_ID_LEN random hex characters and a NUL
 * (out needs PARTICIPANT_ID_LEN + 1 bytes). Returns 0, or -1 when the
 * random source fails. */
int participant_id_new(char *out);

#endif
