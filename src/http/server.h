/* server.h — usher's HTTP front: HTTP/1.1 connections (conn.h), plus what
 * every request passes through before its route: CORS, authentication,
 * rate limit, body limit and JSON parsing, and after it: the envelope and
 * the access log. */
#ifndef USHER_HTTP_SERVER_H
#define USHER_HTTP_SERVER_H

#include <stddef.h>

#include "http/router.h"

struct app;
struct http_server;

/* Binds API_HOST:API_PORT. Returns NULL and fills err on failure. */
struct http_server *http_server_new(struct app *app, const struct route *routes,
                                    size_t nroutes, char *err, size_t errlen);
/* Closes the listening socket and idle connections; requests in flight
 * go on and are answered with "Connection: close". */
void http_server_stop_accepting(struct http_server *s);
/* Requests started and not yet answered. */
int http_server_inflight(const struct http_server *s);
void http_server_free(struct http_server *s);

#endif
