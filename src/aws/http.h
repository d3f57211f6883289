/* http.h — an HTTP(S) client on the app's event loop: libcurl's multi
 * interface, its sockets and timer watched by libevent, so a request never
 * blocks the loop. Used for the IVS control plane and for the credential
 * endpoints (container, EC2 instance metadata). */
#ifndef USHER_AWS_HTTP_H
#define USHER_AWS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct aws_http;

/* Largest response body kept; a longer one ends the request with an error.
 * IVS answers are a few KiB (ListStages pages of 100 stages stay far below). */
#define AWS_HTTP_MAX_BODY (1024 * 1024)

/* One request. headers: "Name: value" strings, NULL-terminated, or NULL.
 * body is copied; a GET sends none. timeout_ms bounds the whole exchange
 * (connect included); it must be > 0. */
struct aws_http_request {
    const char *method;          /* GET, POST, PUT */
    const char *url;
    const char *const *headers;
    const void *body;
    size_t body_len;
    long timeout_ms;
};

/* What came back. error is NULL when an HTTP answer arrived (any status),
 * else what went wrong (timed_out tells a timeout apart). error_type is the
 * x-amzn-ErrorType header, request_id x-amzn-RequestId (NULL if absent).
 * Everything is borrowed for the callback's duration; body is
 * NUL-terminated. */
struct aws_http_response {
    long status;
    const char *error;
    bool timed_out;
    const char *error_type;
    const char *request_id;
    const char *body;
    size_t body_len;
};

/* Called exactly once per request, on the loop, never from inside
 * aws_http_send: with the answer, a transport error, or "client closed"
 * from aws_http_free. */
typedef void (*aws_http_done_fn)(void *arg, const struct aws_http_response *res);

/* Returns NULL when libcurl cannot be set up. */
struct aws_http *aws_http_new(struct event_base *base);

/* Starts a request and returns 0; done will be called. Setup failures (bad
 * URL, no libcurl handle) are reported through done like any other error.
 * Returns -1, and done is never called, only when not even the request's
 * own record could be allocated. */
int aws_http_send(struct aws_http *h, const struct aws_http_request *req,
                   aws_http_done_fn done, void *arg);

/* Ends every request still running, calling its done with "client
 * closed", then frees h. NULL is fine. Not from inside a done callback. */
void aws_http_free(struct aws_http *h);

#endif
