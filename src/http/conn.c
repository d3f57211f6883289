/* conn.c — see conn.h.
 *
 * A connection moves through four states:
 *   IDLE     no request begun; closed after idle_timeout_ms.
 *   READING  a request begun; its head and then its body must each arrive
 *            within read_timeout_ms, else 408 and close.
 *   BUSY     dispatched; the parser is paused so that bytes of the next
 *            pipelined request wait in the read window until this answer.
 *   STREAM   answered with a head and an open-ended body (http_conn_stream_*);
 *            what the client sends is dropped, its leaving ends the stream.
 *   TAKEN    the socket was handed over (http_conn_takeover); freed as soon
 *            as conn_parse() no longer holds it.
 *   CLOSING  the last answer is being written; then the write side is shut
 *            and what the client still sends is read and dropped for up to
 *            LINGER_MS (closing at once would reset the connection and
 *            could destroy the answer before the client read it).
 * Deadlines are checked by one timer per listener every SWEEP_MS, so no
 * request pays for a timer of its own. The same timer resumes accepting
 * after accept() failed (file descriptors used up, on_accept_error). */
#include "http/conn.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <event2/listener.h>
#include <http_parser.h>

#include "http/request.h"
#include "util/clock.h"
#include "util/log.h"

#define IN_CAP HTTP_TAKEOVER_MAX    /* the read window; a request may span many reads */
#define MAX_HEAD_BYTES (32 * 1024)  /* request line and headers */
#define MAX_HEADERS 64
#define HTTP_OUT_HIGH HTTP_STREAM_MAX_QUEUED  /* queued answer bytes that stop reading further requests */
#define LINGER_MS 2000
#define SWEEP_MS 250
#define ACCEPT_WARN_EVERY_MS 10000  /* at most one "accept() failed" line per this */
#define MEM_FREE_MAX 64             /* buffers a listener keeps for later requests */
#define MEM_KEEP_CAP (16 * 1024)    /* a buffer grown past this is freed, not kept */

struct buf {
    char *p;
    size_t len, cap;
};

struct header {
    size_t name, value;             /* offsets of NUL-terminated strings in head */
};

/* A connection's buffers, held only while it has a request in progress,
 * bytes waiting in its read window or answers waiting to be written (an
 * idle keep-alive connection holds none, and costs usher about 1 KB with
 * its two libevent events: tests/e2e/conn-memory.test.mjs). Given back to
 * the listener's free list, so a request does not pay for a malloc and
 * free of the window. */
struct conn_mem {
    struct conn_mem *next;          /* in the listener's free list */
    char in[IN_CAP];                /* the read window */
    struct buf head;                /* URL, then each header's name and value */
    struct header hdr[MAX_HEADERS];
    struct buf body;
    struct buf extra;               /* headers of the answer in the making */
    struct buf out;                 /* answers not yet taken by the socket */
};

enum conn_state { C_IDLE, C_READING, C_BUSY, C_CLOSING, C_STREAM, C_TAKEN };
enum hstate { H_NONE, H_FIELD, H_VALUE };

struct http_conn {
    TAILQ_ENTRY(http_conn) link;
    struct http_listener *l;
    evutil_socket_t fd;             /* -1 once closed while a request was in flight */
    struct event *rev, *wev;
    http_parser parser;
    enum conn_state state;
    bool in_parse;                  /* inside conn_parse(): it flushes the answers */
    bool reading;                   /* rev is added */
    bool writing;                   /* wev is added */
    bool eof;                       /* the client shut its side */
    bool close_after;               /* close once the answer in the making is written */
    bool lingering;                 /* write side shut; reads are dropped */
    int64_t deadline_ms;            /* of the state; 0 = none */
    int64_t write_deadline_ms;      /* while writing */
    struct conn_mem *m;             /* while a request is in progress or bytes wait; else NULL */
    size_t in_off, in_len;          /* the window's unparsed bytes, in m->in */
    size_t nhdr;
    size_t url_len;
    size_t path;                    /* offset in head of the path */
    size_t query;                   /* offset in head of the query, or SIZE_MAX */
    enum hstate hstate;
    size_t out_sent;                /* of m->out */
    void (*on_stream_close)(void *);    /* STREAM: called once if it ends otherwise */
    void *stream_arg;
    int fail_status;                /* set by a parser callback that refuses */
    const char *fail_code, *fail_msg;
    char peer[64];
    struct request rq;
};

TAILQ_HEAD(conn_list, http_conn);

struct http_listener {
    struct event_base *base;
    struct evconnlistener *lev;
    struct event *sweep;
    struct http_limits limits;
    http_dispatch_fn dispatch;
    void *arg;
    struct conn_list conns;
    http_parser_settings settings;
    struct conn_mem *free_mem;      /* buffers given back, for the next request */
    int nfree_mem;
    int inflight;
    bool stopping;
    bool accept_paused;             /* accept() failed; resumed by the next sweep */
    int64_t accept_warned_ms;       /* when that was last logged (mono_ms), 0 = never */
    int64_t date_s;
    char date[40];                  /* "Date: ..." of date_s */
    char too_large[80];             /* the 413 message */
};

static void conn_parse(struct http_conn *c);
static int conn_flush(struct http_conn *c);
static void conn_settle(struct http_conn *c);

/* Deadlines are on the monotonic clock: a step of the wall clock neither
 * cuts connections nor keeps them. */
static int64_t mono_ms(void)
{
    return clock_mono_us() / 1000;
}

/* ---- buffers ------------------------------------------------------------ */

/* Appends n bytes unless the length would pass limit. 0, or -1. */
static int buf_add(struct buf *b, const void *data, size_t n, size_t limit)
{
    if (n > limit || b->len > limit - n)
        return -1;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        while (cap < b->len + n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    if (n && data)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

static int buf_str(struct buf *b, const char *s)
{
    return buf_add(b, s, strlen(s), SIZE_MAX / 2);
}

/* ---- a connection's buffers --------------------------------------------- */

/* Empties b, and frees its storage once it grew past MEM_KEEP_CAP (a large
 * body or answer), so the free list keeps only small buffers. */
static void buf_trim(struct buf *b)
{
    b->len = 0;
    if (b->cap > MEM_KEEP_CAP) {
        free(b->p);
        b->p = NULL;
        b->cap = 0;
    }
}

static void mem_free(struct conn_mem *m)
{
    free(m->head.p);
    free(m->body.p);
    free(m->extra.p);
    free(m->out.p);
    free(m);
}

/* Takes c's buffers (if it holds any) and gives them to the listener's
 * free list, or frees them when the list holds MEM_FREE_MAX already. */
static void conn_mem_put(struct http_conn *c)
{
    struct conn_mem *m = c->m;
    struct http_listener *l = c->l;
    if (!m)
        return;
    c->m = NULL;
    c->in_off = c->in_len = c->out_sent = 0;
    if (l->nfree_mem >= MEM_FREE_MAX) {
        mem_free(m);
        return;
    }
    buf_trim(&m->head);
    buf_trim(&m->body);
    buf_trim(&m->extra);
    buf_trim(&m->out);
    m->next = l->free_mem;
    l->free_mem = m;
    l->nfree_mem++;
}

/* Gives c buffers, from the free list or new. 0, or -1 (out of memory). */
static int conn_mem_get(struct http_conn *c)
{
    struct http_listener *l = c->l;
    struct conn_mem *m = l->free_mem;
    if (c->m)
        return 0;
    if (m) {
        l->free_mem = m->next;
        l->nfree_mem--;
    } else if (!(m = calloc(1, sizeof *m))) {
        return -1;
    }
    c->m = m;
    return 0;
}

/* Gives c's buffers back when it has nothing in them: no request in
 * progress (idle, or lingering after its last answer), no unparsed byte,
 * no answer unsent. */
static void conn_mem_put_if_idle(struct http_conn *c)
{
    if (c->m && (c->state == C_IDLE || c->lingering) && c->in_off == c->in_len &&
        !c->writing && c->out_sent == c->m->out.len)
        conn_mem_put(c);
}

/* ---- closing -------------------------------------------------------------- */

static void conn_free(struct http_conn *c)
{
    TAILQ_REMOVE(&c->l->conns, c, link);
    conn_mem_put(c);
    free(c);
}

/* Closes the socket. A request in flight keeps the memory until its answer
 * (http_conn_reply), which is then dropped. */
static void conn_close(struct http_conn *c)
{
    if (c->state == C_STREAM && c->on_stream_close) {
        void (*cb)(void *) = c->on_stream_close;
        c->on_stream_close = NULL;
        cb(c->stream_arg);
    }
    if (c->fd >= 0) {
        event_free(c->rev);
        event_free(c->wev);
        evutil_closesocket(c->fd);
        c->fd = -1;
    }
    if (c->state != C_BUSY)
        conn_free(c);
}

static void read_on(struct http_conn *c, bool on)
{
    if (on != c->reading && c->fd >= 0) {
        if (on)
            event_add(c->rev, NULL);
        else
            event_del(c->rev);
        c->reading = on;
    }
}

/* The answer is out: shut our side, then drop what the client still sends. */
static void begin_linger(struct http_conn *c)
{
    if (c->eof) {
        conn_close(c);
        return;
    }
    shutdown(c->fd, SHUT_WR);
    c->lingering = true;
    c->deadline_ms = mono_ms() + LINGER_MS;
    read_on(c, true);
    conn_mem_put_if_idle(c);
}

static void drain_discard(struct http_conn *c)
{
    char sink[4096];
    ssize_t n = recv(c->fd, sink, sizeof sink, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        conn_close(c);
}

/* ---- refusing -------------------------------------------------------------- */

/* From a parser callback: remembers the refusal; returns what makes
 * http_parser stop. */
static int fail(struct http_conn *c, int status, const char *code, const char *msg)
{
    if (!c->fail_status) {
        c->fail_status = status;
        c->fail_code = code;
        c->fail_msg = msg;
    }
    return -1;
}

static void begin_request_slot(struct http_conn *c)
{
    memset(&c->rq, 0, sizeof c->rq);
    c->rq.conn = c;
    c->rq.method = "-";
    c->rq.path = "-";
    c->rq.start_us = clock_mono_us();
    c->rq.now_ms = clock_now_ms();  /* read again once the request is whole (dispatch) */
    snprintf(c->rq.client_ip, sizeof c->rq.client_ip, "%s", c->peer);
}

/* Answers a request that cannot be framed without doubt, and closes. */
static void refuse(struct http_conn *c, int status, const char *code, const char *msg)
{
    if (c->state != C_READING)
        begin_request_slot(c);
    c->m->extra.len = 0;
    c->close_after = true;
    c->state = C_BUSY;
    c->l->inflight++;
    respond_error(&c->rq, status, code, msg, NULL);
}

static void refuse_parse_error(struct http_conn *c, enum http_errno e)
{
    if (c->fail_status) {
        refuse(c, c->fail_status, c->fail_code, c->fail_msg);
        return;
    }
    switch (e) {
    case HPE_HEADER_OVERFLOW:
        refuse(c, 431, "HEADERS_TOO_LARGE", "the request line and headers are too large");
        return;
    case HPE_INVALID_METHOD:
        refuse(c, 501, "NOT_IMPLEMENTED", "this method is not implemented");
        return;
    case HPE_UNEXPECTED_CONTENT_LENGTH:
        refuse(c, 400, "VALIDATION_ERROR",
               "the body's length is given twice (Content-Length repeated, or with Transfer-Encoding)");
        return;
    case HPE_INVALID_CONTENT_LENGTH:
        refuse(c, 400, "VALIDATION_ERROR", "the Content-Length is not a number of bytes");
        return;
    default:
        refuse(c, 400, "VALIDATION_ERROR", http_errno_description(e));
        return;
    }
}

/* ---- parser callbacks -------------------------------------------------------- */

static int on_message_begin(http_parser *p)
{
    struct http_conn *c = p->data;
    c->state = C_READING;
    c->deadline_ms = mono_ms() + c->l->limits.read_timeout_ms;
    c->m->head.len = c->m->body.len = c->m->extra.len = 0;
    c->nhdr = c->url_len = 0;
    c->hstate = H_NONE;
    c->query = SIZE_MAX;
    begin_request_slot(c);
    return 0;
}

static int head_add(struct http_conn *c, const char *at, size_t len)
{
    if (buf_add(&c->m->head, at, len, MAX_HEAD_BYTES) != 0)
        return fail(c, 431, "HEADERS_TOO_LARGE", "the request line and headers are too large");
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    c->rq.method = http_method_str((enum http_method)p->method);
    c->url_len += len;
    return head_add(c, at, len);
}

/* Ends the string in the making (URL, name or value) with a NUL. */
static int head_end(struct http_conn *c)
{
    return head_add(c, "", 1);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    if (c->hstate != H_FIELD) {
        if (c->nhdr == MAX_HEADERS)
            return fail(c, 431, "HEADERS_TOO_LARGE", "the request has too many headers");
        if (head_end(c) != 0)
            return -1;
        c->m->hdr[c->nhdr++].name = c->m->head.len;
        c->hstate = H_FIELD;
    }
    return head_add(c, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    if (c->hstate != H_VALUE) {
        if (head_end(c) != 0)
            return -1;
        c->m->hdr[c->nhdr - 1].value = c->m->head.len;
        c->hstate = H_VALUE;
    }
    return head_add(c, at, len);
}

/* Appends field f of u (or dflt when absent) and a NUL to head, whose
 * room was reserved, so the source stays in place. */
static void url_part(struct http_conn *c, const struct http_parser_url *u, int f, const char *dflt)
{
    const char *src = dflt;
    size_t len = dflt ? strlen(dflt) : 0;
    if (u->field_set & (1 << f)) {
        src = c->m->head.p + u->field_data[f].off;
        len = u->field_data[f].len;
    }
    memcpy(c->m->head.p + c->m->head.len, src, len);
    c->m->head.len += len;
    c->m->head.p[c->m->head.len++] = '\0';
}

/* Copies the URL's path and query after the headers (NUL-terminated). */
static int split_url(struct http_conn *c)
{
    const char *url = c->m->head.p;
    for (size_t i = 0; i < c->url_len; i++)
        if ((unsigned char)url[i] < 0x20 || url[i] == 0x7f)
            return fail(c, 400, "VALIDATION_ERROR", "the request target holds a control character");
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, c->url_len, 0, &u) != 0)
        return fail(c, 400, "VALIDATION_ERROR", "the request target is not a valid URL");
    size_t need = c->url_len + 4, len = c->m->head.len;
    if (buf_add(&c->m->head, NULL, need, MAX_HEAD_BYTES * 2) != 0)
        return fail(c, 431, "HEADERS_TOO_LARGE", "the request line is too large");
    c->m->head.len = len;                          /* room reserved, now fill it */
    c->path = c->m->head.len;
    url_part(c, &u, UF_PATH, "/");
    if (u.field_set & (1 << UF_QUERY)) {
        c->query = c->m->head.len;
        url_part(c, &u, UF_QUERY, NULL);
    }
    return 0;
}

static bool wants_body(const http_parser *p)
{
    return (p->flags & F_CHUNKED) || (p->content_length > 0 && p->content_length != ULLONG_MAX);
}

/* Expect: 100-continue is answered at once (or refused as too large). */
static int expect_continue(struct http_conn *c)
{
    const char *expect = http_conn_header(c, "Expect");
    if (!expect)
        return 0;
    if (strcasecmp(expect, "100-continue") != 0)
        return fail(c, 417, "EXPECTATION_FAILED", "only Expect: 100-continue is understood");
    /* After any answers still queued, so the order holds. */
    if (wants_body(&c->parser) && c->parser.http_minor >= 1)
        buf_str(&c->m->out, "HTTP/1.1 100 Continue\r\n\r\n");
    return 0;
}

/* How many of c's headers are named name. */
static size_t header_count(const struct http_conn *c, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < c->nhdr; i++)
        n += strcasecmp(c->m->head.p + c->m->hdr[i].name, name) == 0;
    return n;
}

static int on_headers_complete(http_parser *p)
{
    struct http_conn *c = p->data;
    if (head_end(c) != 0 || split_url(c) != 0)
        return -1;
    /* RFC 9112 §3.2: none in HTTP/1.1, or more than one, is a 400. */
    size_t hosts = header_count(c, "Host");
    if ((p->http_major == 1 && p->http_minor >= 1 && hosts == 0) || hosts > 1)
        return fail(c, 400, "VALIDATION_ERROR", "an HTTP/1.1 request must have one Host header");
    if (!(p->flags & F_CHUNKED) && p->content_length != ULLONG_MAX &&
        p->content_length > (uint64_t)c->l->limits.max_body_bytes)
        return fail(c, 413, "PAYLOAD_TOO_LARGE", c->l->too_large);
    if (expect_continue(c) != 0)
        return -1;
    c->deadline_ms = mono_ms() + c->l->limits.read_timeout_ms;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    if (buf_add(&c->m->body, at, len, (size_t)c->l->limits.max_body_bytes) != 0)
        return fail(c, 413, "PAYLOAD_TOO_LARGE", c->l->too_large);
    return 0;
}

/* A chunk announced larger than the body may still grow is refused at once,
 * as a Content-Length over the limit is, not after its bytes arrive or the
 * read deadline passes. http_parser holds the chunk's size in content_length. */
static int on_chunk_header(http_parser *p)
{
    struct http_conn *c = p->data;
    if (p->content_length > (uint64_t)c->l->limits.max_body_bytes - c->m->body.len)
        return fail(c, 413, "PAYLOAD_TOO_LARGE", c->l->too_large);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct http_conn *c = p->data;
    /* After an Upgrade request the bytes are another protocol's. */
    if (!http_should_keep_alive(p) || p->upgrade || c->l->stopping)
        c->close_after = true;
    http_parser_pause(p, 1);
    return 0;
}

/* ---- the request in flight ------------------------------------------------ */

static void dispatch(struct http_conn *c)
{
    c->state = C_BUSY;
    c->deadline_ms = 0;
    c->rq.path = c->m->head.p + c->path;
    c->rq.now_ms = clock_now_ms();  /* the request's moment: request.h */
    c->l->inflight++;
    c->l->dispatch(c->l->arg, &c->rq);
}

const char *http_conn_header(const struct http_conn *c, const char *name)
{
    for (size_t i = 0; i < c->nhdr; i++)
        if (strcasecmp(c->m->head.p + c->m->hdr[i].name, name) == 0)
            return c->m->head.p + c->m->hdr[i].value;
    return NULL;
}

const char *http_conn_query(const struct http_conn *c)
{
    return c->query == SIZE_MAX ? NULL : c->m->head.p + c->query;
}

const char *http_conn_body(const struct http_conn *c, size_t *len)
{
    *len = c->m->body.len;
    return c->m->body.p;
}

void http_conn_add_header(struct http_conn *c, const char *name, const char *value)
{
    buf_str(&c->m->extra, name);
    buf_str(&c->m->extra, ": ");
    buf_str(&c->m->extra, value);
    buf_str(&c->m->extra, "\r\n");
}

/* The Date header for an answer whose moment is now_ms (the request's
 * reading, so Date and the body's timestamp agree). */
static const char *date_header(struct http_listener *l, int64_t now_ms)
{
    int64_t now_s = now_ms / 1000;
    if (now_s != l->date_s) {
        time_t t = (time_t)now_s;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(l->date, sizeof l->date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        l->date_s = now_s;
    }
    return l->date;
}

/* An HTTP/1.0 request is answered in HTTP/1.0 (one whose version was not
 * read is answered in 1.1). */
static bool is_http10(const struct http_conn *c)
{
    return c->parser.http_major == 1 && c->parser.http_minor == 0;
}

/* The status line and headers of an answer, into c->m->out. */
static void write_head(struct http_conn *c, int status, const char *type, size_t len)
{
    char line[160];
    const char *reason = http_status_str((enum http_status)status);
    snprintf(line, sizeof line, "HTTP/1.%d %d %s\r\n", is_http10(c) ? 0 : 1, status,
             reason && reason[0] != '<' ? reason : "Unknown");
    buf_str(&c->m->out, line);
    buf_str(&c->m->out, date_header(c->l, c->rq.now_ms));
    if (type) {
        snprintf(line, sizeof line, "Content-Type: %s\r\n", type);
        buf_str(&c->m->out, line);
    }
    if (status != 204 && len != SIZE_MAX) {
        snprintf(line, sizeof line, "Content-Length: %zu\r\n", len);
        buf_str(&c->m->out, line);
    }
    if (c->close_after)
        buf_str(&c->m->out, "Connection: close\r\n");
    else if (is_http10(c))
        buf_str(&c->m->out, "Connection: keep-alive\r\n");
    buf_add(&c->m->out, c->m->extra.p, c->m->extra.len, SIZE_MAX / 2);
    buf_str(&c->m->out, "\r\n");
}

/* Sends what c->m->out holds unsent and then the pieces, in one sendmsg(),
 * when the socket is not known to be full. Returns how many bytes of the
 * pieces went out (those of c->m->out are marked sent); an error sends
 * nothing here and is found by the next conn_flush(). */
static size_t send_pieces(struct http_conn *c, const struct http_piece *pieces, size_t n)
{
    struct iovec iov[HTTP_MAX_PIECES + 1];
    size_t queued = c->m->out.len - c->out_sent, k = 0;
    iov[k++] = (struct iovec){c->m->out.p + c->out_sent, queued};
    for (size_t i = 0; i < n && i < HTTP_MAX_PIECES; i++)
        iov[k++] = (struct iovec){(void *)pieces[i].data, pieces[i].len};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = k};
    ssize_t sent;
    do
        sent = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    if (sent <= 0)
        return 0;
    if ((size_t)sent < queued) {
        c->out_sent += (size_t)sent;
        return 0;
    }
    c->m->out.len = c->out_sent = 0;
    return (size_t)sent - queued;
}

void http_conn_reply(struct http_conn *c, int status, const char *type,
                     const char *body, size_t len)
{
    struct http_piece piece = {body, len};
    http_conn_reply_pieces(c, status, type, &piece, 1);
}

void http_conn_reply_pieces(struct http_conn *c, int status, const char *type,
                            const struct http_piece *pieces, size_t n)
{
    c->l->inflight--;
    if (c->fd < 0) {
        conn_free(c);
        return;
    }
    if (c->l->stopping)
        c->close_after = true;
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += pieces[i].len;
    write_head(c, status, type, len);
    if (status != 204 && c->parser.method != HTTP_HEAD) {
        /* From inside conn_parse() the answers go together when it ends. */
        size_t sent = c->in_parse || c->writing ? 0 : send_pieces(c, pieces, n);
        for (size_t i = 0; i < n; i++) {
            size_t skip = sent < pieces[i].len ? sent : pieces[i].len;
            buf_add(&c->m->out, (const char *)pieces[i].data + skip, pieces[i].len - skip, SIZE_MAX / 2);
            sent -= skip;
        }
    }
    c->state = c->close_after ? C_CLOSING : C_IDLE;
    c->deadline_ms = c->close_after ? 0 : mono_ms() + c->l->limits.idle_timeout_ms;
    if (!c->in_parse)
        conn_parse(c);
}

/* ---- streams and takeovers ------------------------------------------------- */

struct http_conn *http_conn_stream_begin(struct http_conn *c, int status, const char *type,
                                         void (*on_close)(void *), void *arg)
{
    c->l->inflight--;
    if (c->fd < 0) {
        conn_free(c);
        return NULL;
    }
    c->close_after = true;
    write_head(c, status, type, SIZE_MAX);
    c->state = C_STREAM;
    c->deadline_ms = 0;
    c->on_stream_close = on_close;
    c->stream_arg = arg;
    /* Sent from the loop, so that on_close never runs inside this call. */
    if (!c->in_parse && !c->writing) {
        event_add(c->wev, NULL);
        c->writing = true;
        c->write_deadline_ms = mono_ms() + c->l->limits.idle_timeout_ms;
    }
    return c;
}

int http_conn_stream_write(struct http_conn *c, const char *data, size_t len)
{
    if (c->state != C_STREAM || c->m->out.len - c->out_sent + len > HTTP_OUT_HIGH)
        return -1;
    if (buf_add(&c->m->out, data, len, SIZE_MAX / 2) != 0)
        return -1;
    if (c->in_parse || c->writing)
        return 0;
    return conn_flush(c);
}

void http_conn_stream_end(struct http_conn *c)
{
    c->on_stream_close = NULL;
    c->state = C_CLOSING;
    if (!c->in_parse && !c->writing)
        conn_settle(c);
}

void http_conn_stream_abort(struct http_conn *c)
{
    if (c->in_parse) {
        http_conn_stream_end(c);
        return;
    }
    c->on_stream_close = NULL;
    conn_close(c);
}

evutil_socket_t http_conn_takeover(struct http_conn *c, char *rest, size_t *rest_len)
{
    evutil_socket_t fd = c->fd;
    c->l->inflight--;
    *rest_len = 0;
    if (fd >= 0) {
        *rest_len = c->in_len - c->in_off;
        memcpy(rest, c->m->in + c->in_off, *rest_len);
        event_free(c->rev);
        event_free(c->wev);
        c->fd = -1;
    }
    c->state = C_TAKEN;
    if (!c->in_parse)
        conn_free(c);
    return fd;
}

/* ---- reading and writing ---------------------------------------------------- */

/* Sends what is queued. 0, or -1 when the connection is gone (c freed). */
static int conn_flush(struct http_conn *c)
{
    bool sent_any = false;
    while (c->out_sent < c->m->out.len) {
        ssize_t n = send(c->fd, c->m->out.p + c->out_sent, c->m->out.len - c->out_sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_sent += (size_t)n;
            sent_any = true;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (sent_any || !c->writing)
                c->write_deadline_ms = mono_ms() + c->l->limits.idle_timeout_ms;
            if (!c->writing)
                event_add(c->wev, NULL);
            c->writing = true;
            return 0;
        } else {
            conn_close(c);
            return -1;
        }
    }
    c->m->out.len = c->out_sent = 0;
    if (c->writing)
        event_del(c->wev);
    c->writing = false;
    return 0;
}

static bool window_full(const struct http_conn *c)
{
    return c->in_len - c->in_off == IN_CAP;
}

/* After parsing or an answer: send, then read on, linger or close. */
static void conn_settle(struct http_conn *c)
{
    if (conn_flush(c) != 0 || c->state == C_STREAM)
        return;
    if (c->state == C_CLOSING) {
        if (c->writing)
            read_on(c, false);
        else if (!c->lingering)
            begin_linger(c);
        return;
    }
    if (c->eof && c->state != C_BUSY && c->in_off == c->in_len && !c->writing) {
        conn_close(c);
        return;
    }
    read_on(c, !c->eof && !window_full(c));
    conn_mem_put_if_idle(c);
}

static void conn_parse(struct http_conn *c)
{
    c->in_parse = true;
    while ((c->state == C_IDLE || c->state == C_READING) && c->in_off < c->in_len &&
           c->m->out.len - c->out_sent < HTTP_OUT_HIGH) {
        size_t n = http_parser_execute(&c->parser, &c->l->settings, c->m->in + c->in_off,
                                       c->in_len - c->in_off);
        c->in_off += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            dispatch(c);
        } else if (e != HPE_OK) {
            refuse_parse_error(c, e);
        }
    }
    c->in_parse = false;
    if (c->state == C_TAKEN) {
        conn_free(c);
        return;
    }
    if (c->in_off == c->in_len)
        c->in_off = c->in_len = 0;
    conn_settle(c);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct http_conn *c = arg;
    if (c->lingering || c->state == C_STREAM) {
        drain_discard(c);
        return;
    }
    if (conn_mem_get(c) != 0) {
        conn_close(c);
        return;
    }
    if (c->in_off > 0) {
        memmove(c->m->in, c->m->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    if (c->in_len == IN_CAP) {
        read_on(c, false);
        return;
    }
    ssize_t n = recv(fd, c->m->in + c->in_len, IN_CAP - c->in_len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        conn_mem_put_if_idle(c);
        return;
    }
    if (n < 0) {
        conn_close(c);
        return;
    }
    if (n == 0)
        c->eof = true;
    c->in_len += (size_t)n;
    conn_parse(c);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct http_conn *c = arg;
    if (conn_flush(c) == 0)
        conn_parse(c);
}

/* ---- timeouts ----------------------------------------------------------------- */

static void on_deadline(struct http_conn *c)
{
    if (c->state == C_READING)
        refuse(c, 408, "REQUEST_TIMEOUT", "the request did not arrive in time");
    else
        conn_close(c);
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct http_listener *l = arg;
    int64_t now = mono_ms();
    if (l->accept_paused && l->lev) {
        l->accept_paused = false;
        evconnlistener_enable(l->lev);
    }
    struct http_conn *next;
    for (struct http_conn *c = TAILQ_FIRST(&l->conns); c; c = next) {
        next = TAILQ_NEXT(c, link);
        if (c->fd < 0)
            continue;
        if (c->writing && now > c->write_deadline_ms)
            conn_close(c);
        else if (c->deadline_ms && now > c->deadline_ms)
            on_deadline(c);
    }
}

/* ---- the listener --------------------------------------------------------------- */

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)lev;
    struct http_listener *l = arg;
    struct http_conn *c = calloc(1, sizeof *c);
    if (!c) {
        evutil_closesocket(fd);
        return;
    }
    c->l = l;
    c->fd = fd;
    TAILQ_INSERT_TAIL(&l->conns, c, link);
    c->rev = event_new(l->base, fd, EV_READ | EV_PERSIST, on_readable, c);
    c->wev = event_new(l->base, fd, EV_WRITE | EV_PERSIST, on_writable, c);
    if (!c->rev || !c->wev) {
        if (c->rev)
            event_free(c->rev);
        if (c->wev)
            event_free(c->wev);
        c->rev = c->wev = NULL;
        evutil_closesocket(fd);
        conn_free(c);
        return;
    }
    if (getnameinfo(sa, (socklen_t)salen, c->peer, sizeof c->peer, NULL, 0, NI_NUMERICHOST) != 0)
        c->peer[0] = '\0';
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->state = C_IDLE;
    c->deadline_ms = mono_ms() + l->limits.idle_timeout_ms;
    read_on(c, true);
}

/* accept() failed for a reason libevent does not retry by itself: EMFILE /
 * ENFILE (file descriptors used up, e.g. by a flood of connections) or
 * ENOBUFS / ENOMEM. The listening socket stays readable, so without this
 * libevent would call accept() again at once, forever: a busy loop that
 * starves every other event, and a log line per turn. Accepting pauses
 * until the next sweep (SWEEP_MS) instead; meanwhile new connections wait
 * in the kernel's backlog and idle ones reaching their deadline free
 * descriptors. Logged at most once per ACCEPT_WARN_EVERY_MS. */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    struct http_listener *l = arg;
    int err = EVUTIL_SOCKET_ERROR();
    int64_t now = mono_ms();
    evconnlistener_disable(lev);
    l->accept_paused = true;
    if (l->accept_warned_ms == 0 || now - l->accept_warned_ms >= ACCEPT_WARN_EVERY_MS) {
        l->accept_warned_ms = now;
        log_warn("accept() failed: %s; not accepting connections for %d ms (raise the "
                 "open files limit, ulimit -n, or lower HTTP_IDLE_TIMEOUT_MS)",
                 evutil_socket_error_to_string(err), SWEEP_MS);
    }
}

static struct evconnlistener *listen_on(struct http_listener *l, const char *host, int port)
{
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                    .ai_flags = EVUTIL_AI_PASSIVE}, *res = NULL;
    if (evutil_getaddrinfo(host, service, &hints, &res) != 0)
        return NULL;
    struct evconnlistener *lev = NULL;
    for (struct evutil_addrinfo *ai = res; ai && !lev; ai = ai->ai_next)
        lev = evconnlistener_new_bind(l->base, on_accept, l,
                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                      1024, ai->ai_addr, (int)ai->ai_addrlen);
    evutil_freeaddrinfo(res);
    if (lev) {
        /* Answers larger than one segment would otherwise wait on Nagle and
         * the client's delayed ACK, about 40 ms. Accepted sockets inherit
         * the option from the listener on Linux. */
        int one = 1;
        setsockopt(evconnlistener_get_fd(lev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        evconnlistener_set_error_cb(lev, on_accept_error);
    }
    return lev;
}

static void init_settings(http_parser_settings *s)
{
    http_parser_settings_init(s);
    s->on_message_begin = on_message_begin;
    s->on_url = on_url;
    s->on_header_field = on_header_field;
    s->on_header_value = on_header_value;
    s->on_headers_complete = on_headers_complete;
    s->on_body = on_body;
    s->on_chunk_header = on_chunk_header;
    s->on_message_complete = on_message_complete;
}

struct http_listener *http_listener_new(struct event_base *base, const char *host, int port,
                                        const struct http_limits *limits,
                                        http_dispatch_fn dispatch, void *arg,
                                        char *err, size_t errlen)
{
    struct http_listener *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->base = base;
    l->limits = *limits;
    snprintf(l->too_large, sizeof l->too_large, "the body is over the limit of %ld bytes",
             limits->max_body_bytes);
    l->dispatch = dispatch;
    l->arg = arg;
    TAILQ_INIT(&l->conns);
    init_settings(&l->settings);
    http_parser_set_max_header_size(MAX_HEAD_BYTES);
    l->sweep = event_new(base, -1, EV_PERSIST, on_sweep, l);
    struct timeval every = {0, SWEEP_MS * 1000};
    if (!l->sweep || event_add(l->sweep, &every) != 0) {
        snprintf(err, errlen, "out of memory");
        http_listener_free(l);
        return NULL;
    }
    l->lev = listen_on(l, host, port);
    if (!l->lev) {
        snprintf(err, errlen, "cannot listen on %s:%d (in use, or not allowed)", host, port);
        http_listener_free(l);
        return NULL;
    }
    return l;
}

void http_listener_stop_accepting(struct http_listener *l)
{
    if (l->lev)
        evconnlistener_free(l->lev);
    l->lev = NULL;
    l->stopping = true;
    struct http_conn *next;
    for (struct http_conn *c = TAILQ_FIRST(&l->conns); c; c = next) {
        next = TAILQ_NEXT(c, link);
        if (c->fd >= 0 && ((c->state == C_IDLE && c->in_off == c->in_len && !c->writing) ||
                           c->state == C_STREAM))
            conn_close(c);
    }
}

int http_listener_inflight(const struct http_listener *l) { return l->inflight; }

void http_listener_free(struct http_listener *l)
{
    if (!l)
        return;
    if (l->lev)
        evconnlistener_free(l->lev);
    if (l->sweep)
        event_free(l->sweep);
    while (!TAILQ_EMPTY(&l->conns)) {
        struct http_conn *c = TAILQ_FIRST(&l->conns);
        c->state = C_IDLE;
        conn_close(c);
    }
    while (l->free_mem) {
        struct conn_mem *m = l->free_mem;
        l->free_mem = m->next;
        mem_free(m);
    }
    free(l);
}
