/* conn.h — HTTP/1.1 connections: accepting, reading and framing requests
 * (http_parser from Debian's libhttp-parser does the parsing), and writing
 * answers, on raw non-blocking sockets driven by libevent.
 *
 * What it costs per request on a keep-alive connection: one recv() and one
 * send(); the read event stays registered for the connection's life and a
 * write event is armed only when the socket would block. Buffers belong to
 * the connection and are reused by each of its requests.
 *
 * What a client cannot do: grow usher's memory past a fixed bound per
 * connection (the read window, the request head, the body limit, and at
 * most HTTP_OUT_HIGH bytes of answers queued before its next pipelined
 * request is read), or hold a connection with a request half sent past
 * the read timeout. Requests on one connection are answered in order, one
 * at a time (pipelining). A request that cannot be framed without doubt is
 * refused (through request.h's respond_error, so in the SPEC §1 envelope)
 * and its connection closed. */
#ifndef USHER_HTTP_CONN_H
#define USHER_HTTP_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <event2/event.h>

struct request;
struct http_conn;
struct http_listener;

struct http_limits {
    long max_body_bytes;            /* larger bodies: 413 and close */
    long read_timeout_ms;           /* a request's head, and its body, each within this */
    long idle_timeout_ms;           /* a keep-alive connection without a request; a stalled write */
};

/* Called once per complete request, with rq->conn, method, path,
 * client_ip and start_us set and every other field zero. The request is
 * then "in flight" until one answer is given (http_conn_reply). */
typedef void (*http_dispatch_fn)(void *arg, struct request *rq);

/* Listens on host:port (TCP_NODELAY). Returns NULL and fills err. */
struct http_listener *http_listener_new(struct event_base *base, const char *host, int port,
                                        const struct http_limits *limits,
                                        http_dispatch_fn dispatch, void *arg,
                                        char *err, size_t errlen);
/* Closes the listening socket and idle connections; requests in flight
 * are answered, each with "Connection: close". */
void http_listener_stop_accepting(struct http_listener *l);
/* Requests dispatched and not yet answered. */
int http_listener_inflight(const struct http_listener *l);
/* Closes every connection. Call once no request is in flight (a request
 * still in flight is dropped, its answer must not follow). */
void http_listener_free(struct http_listener *l);

/* The request's header `name` (case-insensitive; the first if repeated),
 * or NULL. Valid until the answer. */
const char *http_conn_header(const struct http_conn *c, const char *name);
/* The raw query string (after '?', not decoded), or NULL. */
const char *http_conn_query(const struct http_conn *c);
/* The body as received (chunked already decoded); len 0 when none. */
const char *http_conn_body(const struct http_conn *c, size_t *len);
/* Adds "name: value" to the answer being made. Neither may hold CR or LF
 * (callers pass constants and numbers). */
void http_conn_add_header(struct http_conn *c, const char *name, const char *value);
/* Answers the request in flight: status, Content-Type (NULL for none),
 * body of len bytes (copied; not sent for HEAD or 204). Ends the request;
 * if the client has gone, the answer is dropped. */
void http_conn_reply(struct http_conn *c, int status, const char *type,
                     const char *body, size_t len);

/* len bytes at data: one piece of a body given in pieces. */
struct http_piece {
    const void *data;
    size_t len;
};
#define HTTP_MAX_PIECES 8
/* http_conn_reply with the body given as n (<= HTTP_MAX_PIECES) pieces,
 * joined. Nothing is copied that the socket takes at once: when no earlier
 * answer waits to be written, the head and the pieces go out in one
 * sendmsg() from where they lie, and only what the socket did not take is
 * copied into the connection's buffer. So a large answer many requests
 * share (the /api/stats rendering) costs no copy of its own per request. */
void http_conn_reply_pieces(struct http_conn *c, int status, const char *type,
                            const struct http_piece *pieces, size_t n);

/* Streams (Server-Sent Events and the like). Answers the request in flight
 * with status, Content-Type and no length: the body is what
 * http_conn_stream_write() queues until http_conn_stream_end() or the
 * client leaves, and then the connection closes. The request no longer
 * counts as in flight; a stop closes streams. on_close(arg) is called
 * exactly once, from the event loop, when the stream ends any other way
 * than by http_conn_stream_end() (client gone, a write stalled for
 * idle_timeout_ms, usher stopping). Returns the stream, or NULL when the
 * client had already gone (on_close is then not called). */
struct http_conn *http_conn_stream_begin(struct http_conn *c, int status, const char *type,
                                         void (*on_close)(void *), void *arg);
/* Queues len bytes (copied). 0; -1 when they would take the bytes queued
 * and not yet taken by the client past HTTP_STREAM_MAX_QUEUED (nothing is
 * queued: the reader is slow, skip or end), or when the stream has ended
 * (on_close may have run inside this call). */
#define HTTP_STREAM_MAX_QUEUED (64 * 1024)
int http_conn_stream_write(struct http_conn *c, const char *data, size_t len);
/* Ends the stream once what is queued is sent; on_close is not called. */
void http_conn_stream_end(struct http_conn *c);
/* Ends the stream now, dropping what is queued (a reader fallen too far
 * behind); on_close is not called. */
void http_conn_stream_abort(struct http_conn *c);

/* Hands the socket of the request in flight over (an Upgrade: websocket
 * request, whose 101 the taker writes). Copies the bytes already read
 * after the request's head to rest (room for HTTP_TAKEOVER_MAX bytes) and
 * their count to *rest_len. Returns the socket, which the caller now owns
 * and closes, or -1 when the client has gone. The request and connection
 * are freed: the caller must not use them again. */
#define HTTP_TAKEOVER_MAX 8192
evutil_socket_t http_conn_takeover(struct http_conn *c, char *rest, size_t *rest_len);

#endif
