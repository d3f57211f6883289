/* request.h — one HTTP request on its way through usher, and the ways to
 * answer it.
 *
 * A handler gets a struct request, may go asynchronous (Redis, the signer),
 * and ends by calling exactly one of respond_ok() / respond_error(), which
 * write the SPEC §1 envelope, the CORS headers and the access-log line, and
 * free the request. If the client hangs up meanwhile, `req` becomes NULL
 * and the answer is dropped quietly; the state change it reports has
 * happened all the same, as it would behind any load balancer. */
#ifndef USHER_HTTP_REQUEST_H
#define USHER_HTTP_REQUEST_H

#include <stdbool.h>
#include <stdint.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

struct app;
struct http_conn;
struct http_server;

struct request {
    struct http_conn *conn;         /* its connection (src/http/conn.h) */
    struct http_server *server;
    struct app *app;
    const char *method;             /* "GET", ... for logs */
    const char *path;               /* not decoded, without the query */
    struct evkeyvalq query;
    json_t *body;                   /* parsed JSON object for POST/PUT, else NULL */
    const char *param;              /* the :param of the matched route, decoded */
    char *param_buf;
    char client_ip[64];
    int64_t start_us;
    /* The request's one reading of the wall clock (unix ms), taken when it
     * arrives: every time its answer reports (the envelope's timestamp,
     * token iat/exp, seat and stage times, durations) derives from it, so
     * the same moment never shows as two. A join that waits for a stage
     * reads it again when it is seated (routes/tokens.c). */
    int64_t now_ms;
};

/* 2xx with {"success":true,"data":data,...}; steals the reference to data. */
void respond_ok(struct request *rq, int status, json_t *data);
/* The same with data already serialized (compact JSON), for an answer
 * shared by many requests. */
void respond_ok_text(struct request *rq, int status, const char *data_json);
/* Error envelope of SPEC §1; steals details (may be NULL). */
void respond_error(struct request *rq, int status, const char *code,
                   const char *message, json_t *details);
/* 400 VALIDATION_ERROR naming the fields in details.fields. */
void respond_invalid(struct request *rq, const char *message, json_t *fields);
/* 503 SERVICE_UNAVAILABLE with Retry-After, for Redis trouble. */
void respond_unavailable(struct request *rq, const char *why);

/* Query-string value, or NULL. */
const char *request_query(struct request *rq, const char *name);
/* Request header value (name case-insensitive), or NULL. */
const char *request_header(struct request *rq, const char *name);
/* Adds a header to the answer still to be given (e.g. Retry-After); name
 * and value without CR or LF. */
void request_add_header(struct request *rq, const char *name, const char *value);

#endif
