/* server.h — usher's HTTP front: HTTP/1.1 connections (conn.h), plus what
 * every request passes through before its route: CORS, authentication,
 * rate limit, body limit and JSON parsing, and after it: the envelope and
 * the access log. */
#ifndef USHER_HTTP_SERVER_H
#define USHER_HTTP_SERVER_H

#include <stddef.h>
#include <event2/util.h>

#include "http/router.h"

struct app;
struct http_server;

/* NULL when the CORS_ORIGINS value list can be served, else what is wrong
 * with it (a constant): more than 32 non-empty items. */
const char *http_origins_check(const char *list);

/* Binds API_HOST:API_PORT. Returns NULL and fills err on failure. */
struct http_server *http_server_new(struct app *app, const struct route *routes,
                                    size_t nroutes, char *err, size_t errlen);
/* Closes the listening socket and idle connections; requests in flight
 * go on and are answered with "Connection: close". */
void http_server_stop_accepting(struct http_server *s);
/* Requests started and not yet answered. */
int http_server_inflight(const struct http_server *s);
void http_server_free(struct http_server *s);

/* For routes that keep the connection, in place of respond_*(): each logs
 * the request and ends it as those do; headers added with
 * request_add_header() go out with the head.
 *
 * http_stream_begin: an open-ended answer (Server-Sent Events); then
 * http_conn_stream_write() / http_conn_stream_end() of http/conn.h, which
 * says when on_close(arg) is called (exactly once, unless the stream is
 * ended by usher) and how much may be queued (HTTP_STREAM_MAX_QUEUED).
 * Returns NULL when the client had already gone.
 *
 * http_takeover: for an Upgrade request (WebSocket): the socket, now the
 * caller's, and the bytes already read after the head (rest: room for
 * HTTP_TAKEOVER_MAX). -1 when the client had gone. rq is freed. */
struct http_conn *http_stream_begin(struct request *rq, int status, const char *type,
                                    void (*on_close)(void *), void *arg);
evutil_socket_t http_takeover(struct request *rq, char *rest, size_t *rest_len);

#endif
