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

#include "http/conn.h"

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
    const char *route;              /* the matched route's pattern, NULL before or without one */
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
/* The same with data already serialized (compact JSON) as n pieces
 * (at most HTTP_MAX_PIECES - 2), joined: for an answer shared by many
 * requests, sent from where it lies (http_conn_reply_pieces). */
void respond_ok_text(struct request *rq, int status, const struct http_piece *data, size_t n);
/* The end of a JSON object stamped with the request's moment,
 * `,"timestamp":"<ISO 8601>"}`, into out (NUL-terminated); returns its
 * length. respond_ok_text ends the envelope with it. */
#define REQUEST_TIME_END_SIZE 64
size_t request_time_end(const struct request *rq, char out[REQUEST_TIME_END_SIZE]);
/* Error envelope of SPEC §1; steals details (may be NULL). */
void respond_error(struct request *rq, int status, const char *code,
                   const char *message, json_t *details);
/* 400 VALIDATION_ERROR naming the fields in details.fields. */
void respond_invalid(struct request *rq, const char *message, json_t *fields);
/* An answer that is not JSON (a page, metrics): body of len bytes, copied,
 * with Content-Type type. */
void respond_raw(struct request *rq, int status, const char *type, const char *body, size_t len);
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
