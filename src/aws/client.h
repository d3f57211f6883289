/* client.h — calls to the Amazon IVS Real-Time control plane.
 *
 * aws_call(client, "CreateStage", body, done, arg) sends POST
 * {endpoint}/CreateStage with the JSON body, signed with SigV4 (service
 * name "ivs", the region's scope), on the app's event loop. Before every
 * attempt the call waits for the limiter (aws/limiter.h) and for
 * credentials (aws/credentials.h); throttling, 5xx and transport errors
 * are retried with backoff (aws/retry.h); the answer is parsed; done hears
 * the outcome once. Protocol facts: ../shared/aws/README.md, "Protocol". */
#ifndef USHER_AWS_CLIENT_H
#define USHER_AWS_CLIENT_H

#include <stdint.h>

#include <jansson.h>

#include "aws/credentials.h"
#include "aws/limiter.h"
#include "aws/retry.h"

struct event_base;
struct aws_client;

struct aws_client_settings {
    const char *region;             /* AWS_REGION, e.g. "us-east-1" */
    /* AWS_ENDPOINT_URL (scheme://host[:port][/prefix]); NULL or "" means
     * https://ivsrealtime.{region}.amazonaws.com */
    const char *endpoint_url;
    long timeout_ms;                /* per attempt; 0 = 10000 */
    struct aws_creds_settings creds;
};

/* What done hears. code and message are IVS's (x-amzn-ErrorType's code,
 * the body's message / exceptionMessage: for quota_exceeded it names the
 * quota), or usher's own words for transport and credential errors; NULL
 * on success. json is the parsed answer on success (an empty body gives
 * {}), NULL otherwise. All borrowed for the callback (json_incref to keep). */
struct aws_result {
    enum aws_error error;
    const char *operation;
    const char *code;
    const char *message;
    long status;                    /* last HTTP status, 0 if none came */
    int attempts;
    json_t *json;
};

typedef void (*aws_call_fn)(void *arg, const struct aws_result *r);

/* What is wrong with an AWS_ENDPOINT_URL value, or NULL when it is an
 * http(s)://host[:port][/path] URL without user info, query or fragment. */
const char *aws_endpoint_check(const char *url);

/* Returns NULL with the reason in err (bad endpoint, no credential source
 * could be set up, out of memory). */
struct aws_client *aws_client_new(struct event_base *base,
                                  const struct aws_client_settings *s,
                                  char *err, size_t errlen);

/* Paces calls through l (borrowed) instead of the local limiter; NULL goes
 * back to the local one. l must be freed before aws_client_free. */
void aws_client_set_limiter(struct aws_client *c, struct aws_limiter *l);

/* Calls operation (an IVS Real-Time operation name, checked against the
 * API model's list) with body (borrowed, serialised at once; NULL = {}).
 * Returns 0 and done is called exactly once, from the loop, never from
 * inside aws_call; an unknown operation ends in AWS_ERR_VALIDATION without
 * a request. Returns -1, done never called, when out of memory or the
 * client is being freed. */
int aws_call(struct aws_client *c, const char *operation, const json_t *body,
             aws_call_fn done, void *arg);

/* Counters for /health and metrics: per operation (index as in
 * aws_op_name) the calls that ended in each outcome, and the retries. */
struct aws_op_stats {
    uint64_t outcomes[AWS_ERR__COUNT];
    uint64_t retries;
};
/* The stats of operation index i (< aws_op_count()). */
const struct aws_op_stats *aws_client_op_stats(const struct aws_client *c, size_t i);

/* The last call that ended: its operation, outcome, end (unix ms; 0 when
 * none ended yet). */
struct aws_client_last {
    const char *operation;
    enum aws_error error;
    int64_t at_ms;
};
struct aws_client_last aws_client_last(const struct aws_client *c);

/* Attempts in the last 60 s (by whole seconds of the wall clock) that IVS
 * throttled, and that failed otherwise (5xx, network, timeout, or a 4xx);
 * now_ms is unix ms. */
struct aws_client_recent {
    uint64_t throttles;
    uint64_t errors;
};
struct aws_client_recent aws_client_recent(const struct aws_client *c, int64_t now_ms);

const char *aws_client_region(const struct aws_client *c);
const char *aws_client_credentials_source(const struct aws_client *c);

/* Ends every call still running (done hears AWS_ERR_TRANSPORT "client
 * closed"), then frees. NULL is fine. Not from inside a done callback. */
void aws_client_free(struct aws_client *c);

#endif
