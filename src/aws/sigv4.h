/* sigv4.h — AWS Signature Version 4, header form, as pure functions.
 *
 * usher signs its own requests instead of using libcurl's
 * CURLOPT_AWS_SIGV4 (see README, "AWS client"): libcurl 7.88 does not sort
 * the query string and so fails one case of the public test suite, and it
 * shows only the final header, not the canonical request or string to sign
 * the test vectors check. The algorithm is AWS's "Signature Version 4
 * signing process" (docs.aws.amazon.com/IAM/latest/UserGuide/
 * reference_sigv-create-signed-request.html), checked against the cases of
 * awslabs/aws-c-auth's signing test suite (../shared/vectors/sigv4). */
#ifndef USHER_AWS_SIGV4_H
#define USHER_AWS_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sigv4_header {
    const char *name;
    const char *value;
};

/* What is signed. Every header given is signed and must be sent as given;
 * Host is required. path is the absolute, already normalised path as sent
 * ("/CreateStage"); query is the text after '?', or NULL / "" for none. */
struct sigv4_request {
    const char *method;
    const char *path;
    const char *query;
    const struct sigv4_header *headers;
    size_t nheaders;
    const void *body;
    size_t body_len;
};

/* Who signs, where and when. session_token is NULL or "" for long-term
 * keys; time_s is unix seconds (UTC). content_sha256 adds and signs the
 * x-amz-content-sha256 header (S3 needs it; IVS does not). */
struct sigv4_params {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token;
    const char *region;
    const char *service;
    int64_t time_s;
    bool content_sha256;
};

#define SIGV4_MAX_ADDED 4

/* The outcome. added[] are the headers the request must carry besides its
 * own, in this order: X-Amz-Security-Token (with a session token),
 * X-Amz-Date, x-amz-content-sha256 (when asked), Authorization; their
 * values point into this struct. canonical_request, string_to_sign and
 * authorization are heap strings owned by the result. */
struct sigv4_result {
    char amz_date[17];          /* 20150830T123600Z */
    char payload_hash[65];      /* hex SHA-256 of the body */
    char signature[65];         /* hex */
    char *canonical_request;
    char *string_to_sign;
    char *authorization;        /* the Authorization header's value */
    struct sigv4_header added[SIGV4_MAX_ADDED];
    size_t nadded;
};

/* Signs req. Returns 0 and fills out (free it with sigv4_result_free), or
 * -1 with out zeroed and a reason in err when an argument is missing or
 * malformed (no Host header, a path not starting with '/', a header name
 * with characters outside HTTP's token set, out of memory). */
int sigv4_sign(const struct sigv4_request *req, const struct sigv4_params *p,
               struct sigv4_result *out, char *err, size_t errlen);
void sigv4_result_free(struct sigv4_result *r);

#endif
