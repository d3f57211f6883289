/* credentials.h — where usher's AWS credentials come from, found the way
 * the AWS SDKs' default chain finds them (AWS SDKs and Tools Reference
 * Guide, "Standardized credential providers"), in this order:
 *
 *   1. static keys: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and
 *      AWS_SESSION_TOKEN), from the environment or usher's flags;
 *   2. the container credentials endpoint (ECS, EKS Pod Identity):
 *      AWS_CONTAINER_CREDENTIALS_FULL_URI, or _RELATIVE_URI under
 *      http://169.254.170.2, with AWS_CONTAINER_AUTHORIZATION_TOKEN or the
 *      contents of AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE as Authorization;
 *   3. EC2 instance metadata, IMDSv2: PUT /latest/api/token, then
 *      /latest/meta-data/iam/security-credentials/ and /…/{role}, at
 *      AWS_EC2_METADATA_SERVICE_ENDPOINT (default http://169.254.169.254),
 *      skipped when AWS_EC2_METADATA_DISABLED=true.
 *
 * The first source that is configured is the one used (a set container
 * variable means the container endpoint, even if it fails). Temporary
 * credentials are fetched again before they expire; callers asking while
 * a fetch runs wait for it. */
#ifndef USHER_AWS_CREDENTIALS_H
#define USHER_AWS_CREDENTIALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct aws_http;
struct aws_creds;

/* One set of credentials; heap strings owned by the struct. */
struct aws_credentials {
    char *access_key_id;
    char *secret_access_key;
    char *session_token;        /* NULL for long-term keys */
    int64_t expires_ms;         /* unix ms; 0 = does not expire */
};

/* Where to look. Empty strings and NULL both mean unset. The strings are
 * copied by aws_creds_new. */
struct aws_creds_settings {
    const char *access_key_id, *secret_access_key, *session_token;
    const char *container_full_uri, *container_relative_uri;
    const char *container_auth_token, *container_auth_token_file;
    const char *imds_endpoint;
    bool imds_disabled;
    long timeout_ms;            /* per credential request; 0 = 2000 */
};

/* Fills s from the process environment (the names above); the pointers
 * are getenv's. */
void aws_creds_settings_from_env(struct aws_creds_settings *s);

/* Called exactly once, on the loop, never from inside aws_creds_get: with
 * credentials (borrowed for the call; copy what is kept) or with c NULL
 * and error saying which source failed and why (never a secret). */
typedef void (*aws_creds_fn)(void *arg, const struct aws_credentials *c,
                             const char *error);

/* http is borrowed and must outlive the returned chain. NULL when out of
 * memory. */
struct aws_creds *aws_creds_new(struct event_base *base, struct aws_http *http,
                                const struct aws_creds_settings *s);
/* Asks for credentials; returns 0 and done will be called, or -1 (done
 * never called) when out of memory. */
int aws_creds_get(struct aws_creds *cc, aws_creds_fn done, void *arg);
/* Name of the source in use: "environment", "container", "imds", "none". */
const char *aws_creds_source(const struct aws_creds *cc);
/* Fails every waiting aws_creds_get with "closed", then frees. NULL is fine. */
void aws_creds_free(struct aws_creds *cc);

/* Parses the JSON of the container endpoint or IMDS: AccessKeyId,
 * SecretAccessKey, Token, Expiration (ISO-8601 UTC, e.g.
 * "2026-11-30T12:00:00Z"), and for IMDS Code, which must be "Success".
 * Returns 0 and fills out (free with aws_credentials_clear), or -1 with
 * the reason in err (naming fields, never values). */
int aws_credentials_parse(const char *json, size_t len, struct aws_credentials *out,
                          char *err, size_t errlen);
/* When to fetch again, in unix ms: 5 minutes before expiry, or half way
 * from fetched_ms to expiry when that is later (lifetimes under 10 min).
 * 0 for credentials that do not expire. */
int64_t aws_credentials_refresh_at(const struct aws_credentials *c, int64_t fetched_ms);
int aws_credentials_copy(struct aws_credentials *dst, const struct aws_credentials *src);
void aws_credentials_clear(struct aws_credentials *c);

#endif
