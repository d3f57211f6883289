/* jwt.c — the text of IVS participant tokens, without the signature math.
 *
 * A participant token is a JWS compact string: base64url(header) "."
 * base64url(claims) "." base64url(r||s). This file builds the first two
 * parts from a struct token_claims (enforcing the limits of SPEC §5, so a
 * token IVS would refuse is never signed) and glues the signature on once
 * the signer (signer.c) has computed it on a worker thread. Nothing here
 * touches keys or does I/O besides reading the random source for jti. */
#include "tokens/jwt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "ivs/ids.h"

#define MAX_TOKEN_SECONDS (14 * 24 * 3600)
#define MAX_ATTRIBUTES_BYTES 1024

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t base64url_encode(const unsigned char *in, size_t len, char *out,
                        size_t outlen)
{
    size_t need = len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
    if (outlen < need + 1)
        return 0;

    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
        out[o++] = b64url_alphabet[v >> 6 & 63];
        out[o++] = b64url_alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
        if (i + 1 < len)
            out[o++] = b64url_alphabet[v >> 6 & 63];
    }
    out[o] = '\0';
    return o;
}

/* Returns a malloc'd base64url encoding of a NUL-terminated string. */
static char *base64url_string(const char *s)
{
    size_t len = strlen(s);
    size_t cap = (len + 2) / 3 * 4 + 1;
    char *out = malloc(cap);
    if (out)
        base64url_encode((const unsigned char *)s, len, out, cap);
    return out;
}

static bool is_set(const char *s) { return s && *s; }

static bool jti_ok(const char *jti)
{
    size_t len = strlen(jti);
    return len <= PARTICIPANT_ID_MAX &&
           strspn(jti, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                       "0123456789-") == len;
}

/* The limit is in characters, so count UTF-8 lead bytes, not bytes. */
static bool user_id_ok(const char *user_id)
{
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)user_id; *p; p++)
        chars += (*p & 0xC0) != 0x80;
    return chars <= USER_ID_MAX;
}

/* IVS caps attributes at 1 KB of JSON and only takes string values;
 * checking here turns a token IVS would reject into an error we report. */
static bool attributes_ok(json_t *attributes)
{
    if (!attributes)
        return true;
    if (!json_is_object(attributes))
        return false;
    const char *name;
    json_t *value;
    json_object_foreach(attributes, name, value) {
        if (!json_is_string(value))
            return false;
    }
    size_t size = json_dumpb(attributes, NULL, 0, JSON_COMPACT);
    return size > 0 && size <= MAX_ATTRIBUTES_BYTES;
}

/* IVS names the stage in "topic" by its id, the ARN's last path segment
 * ("arn:aws:ivs:...:stage/AbC123" -> "AbC123"). */
static const char *stage_topic(const char *stage_arn)
{
    const char *slash = strrchr(stage_arn, '/');
    return slash ? slash + 1 : stage_arn;
}

/* Unsigned difference: any int64 pair with exp > iat fits, no overflow. */
static bool lifetime_ok(int64_t iat, int64_t exp)
{
    return exp > iat && (uint64_t)exp - (uint64_t)iat <= MAX_TOKEN_SECONDS;
}

static bool claims_ok(const char *kid, const struct token_claims *c)
{
    return is_set(kid) && is_set(c->participant_id) && jti_ok(c->participant_id) &&
           is_set(c->user_id) && user_id_ok(c->user_id) &&
           is_set(c->stage_arn) && is_set(stage_topic(c->stage_arn)) &&
           is_set(c->events_url) && is_set(c->whip_url) &&
           lifetime_ok(c->iat, c->exp) && attributes_ok(c->attributes);
}

static json_t *capabilities_json(bool allow_publish)
{
    if (allow_publish)
        return json_pack("{s:b,s:b}", "allow_publish", 1, "allow_subscribe", 1);
    return json_pack("{s:b}", "allow_subscribe", 1);
}

static json_t *claims_json(const struct token_claims *c)
{
    json_t *attributes = c->attributes ? json_incref(c->attributes) : json_object();
    /* "o" steals the references, and json_pack releases them on failure. */
    return json_pack("{s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:s}",
                     "exp", (json_int_t)c->exp,
                     "iat", (json_int_t)c->iat,
                     "jti", c->participant_id,
                     "user_id", c->user_id,
                     "resource", c->stage_arn,
                     "topic", stage_topic(c->stage_arn),
                     "events_url", c->events_url,
                     "whip_url", c->whip_url,
                     "capabilities", capabilities_json(c->allow_publish),
                     "attributes", attributes,
                     "version", "1.0");
}

/* Serializes json compactly and returns its base64url form (malloc'd);
 * consumes the reference to json. */
static char *encode_json(json_t *json)
{
    if (!json)
        return NULL;
    char *text = json_dumps(json, JSON_COMPACT);
    json_decref(json);
    if (!text)
        return NULL;
    char *encoded = base64url_string(text);
    free(text);
    return encoded;
}

static char *join_dot(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *out = malloc(la + 1 + lb + 1);
    if (!out)
        return NULL;
    memcpy(out, a, la);
    out[la] = '.';
    memcpy(out + la + 1, b, lb + 1);
    return out;
}

char *jwt_signing_input(const char *kid, const struct token_claims *claims)
{
    if (!claims || !claims_ok(kid, claims))
        return NULL;

    /* jansson keeps insertion order, so the header comes out byte for
     * byte as {"alg":"ES384","typ":"JWT","kid":...}. */
    char *header = encode_json(
        json_pack("{s:s,s:s,s:s}", "alg", "ES384", "typ", "JWT", "kid", kid));
    char *body = encode_json(claims_json(claims));
    char *input = header && body ? join_dot(header, body) : NULL;
    free(header);
    free(body);
    return input;
}

char *jwt_finish(const char *signing_input,
                 const unsigned char sig[JWT_ES384_SIG_LEN])
{
    char encoded[JWT_ES384_SIG_LEN / 3 * 4 + 1];
    base64url_encode(sig, JWT_ES384_SIG_LEN, encoded, sizeof encoded);
    return join_dot(signing_input, encoded);
}

int participant_id_new(char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[PARTICIPANT_ID_LEN / 2];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return -1;
    for (size_t i = 0; i < sizeof raw; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[PARTICIPANT_ID_LEN] = '\0';
    return 0;
}
