/* sim_http.c — the simulator's side of HTTP: a pool of keep-alive
 * connections to usher and two queues of work waiting for one.
 *
 * It is a leaf: it knows nothing of viewers or checks. A job is a client
 * (two callbacks and their argument) and an item number; when a connection
 * takes the job, the client's prepare callback says what to send, decided
 * from the item's state at that moment, and its answer callback gets the
 * result, exactly once.
 *
 * A connection carries one request at a time (no pipelining), so it is
 * either free or carrying exactly one request, and the pool size bounds
 * what is in flight. Jobs wait in two FIFO rings: `high` before `low`. The
 * simulator puts heartbeats, leaves and checkpoint reads high and joins
 * low: a late heartbeat costs a seat, while a late join only shows as
 * latency — and joins are the slow requests (usher signs a token for
 * each), so a burst of them must not starve heartbeats. Nor may they hold
 * every connection: at most low_cap of them are in flight, the rest of the
 * pool stays free for heartbeats (a join takes a connection only when no
 * heartbeat waits, and then keeps it for as long as usher takes to sign).
 *
 * The connections are plain non-blocking sockets on the event base; each
 * answer is read with Debian's http_parser. A request is one send() and
 * its answer usually one recv(): at a million viewers the simulator sends
 * ~33,000 heartbeats a second on the same two cores as usher and Redis,
 * and libevent's evhttp client, used before, spent ~22 µs of CPU per
 * request (an epoll_ctl and a timer per request and per connection
 * state); this costs a few. The read event stays registered for the
 * connection's life (an idle connection closed by usher is seen at once);
 * the write event is armed only when send() could not take a whole
 * request. Connecting is blocking (loopback, or a nearby usher) and
 * happens when a request finds its connection closed. Timeouts are one
 * timer for the pool that looks at the requests in flight every 100 ms.
 *
 * New requests are started from a deferred event, never from inside an
 * answer callback, so an answer callback never sees its own connection
 * reused under it. */
#include "sim_http.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <http_parser.h>

/* Why a request got no answer; index + 1 is http_answer.net_error. */
enum net_error { NE_TIMEOUT, NE_EOF, NE_CONNECT, NE_BUFFER, NE_CANCELLED, NE_HEADER, NE_BODY, NE_OTHER };

const char *const HTTP_NET_ERROR_NAMES[HTTP_NET_ERRORS] = {
    "timeout", "eof", "connect", "buffer", "cancelled", "header", "body", "?"};

#define READ_CHUNK 16384
#define BODY_MAX (4u << 20)      /* an answer larger than this is a broken one */
#define SCAN_MS 100              /* how often requests in flight are looked at for their timeout */

struct job { const struct http_client *client; uint32_t item; int64_t queued_us; };

struct ring { struct job *items; size_t cap, head, len; };

struct conn {
    struct http_pool *pool;
    int fd;                 /* -1 = not connected */
    struct event *rev, *wev;
    http_parser parser;
    bool busy, low, done;   /* carries a request; of the low queue; its answer is complete */
    struct job job;
    int tag;
    int64_t sent_us;
    char *out;              /* what send() has not taken yet */
    size_t out_len, out_off, out_cap;
    char *body;             /* the answer's body so far */
    size_t body_len, body_cap;
};

/* The answer of a synchronous call. */
struct sync_call { bool done; int status; json_t *doc; };

struct http_pool {
    struct event_base *base;
    const struct sim_clock *clock;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char host_header[160], api_key[256];
    int nconns, low_cap, low_inflight;
    double timeout_s;
    struct conn *conns;
    uint32_t *free_conns;
    size_t nfree;
    struct ring high, low;
    struct event *pump_ev, *scan_ev;
    bool pump_armed;
    http_parser_settings settings;
    struct http_client sync_client;
    uint64_t net_errors[HTTP_NET_ERRORS];
};

static int ring_push(struct ring *r, struct job x)
{
    if (r->len == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 1024;
        struct job *items = malloc(cap * sizeof *items);
        if (!items)
            return -1;
        /* Unwrap into the new buffer so head starts at 0 again. */
        for (size_t i = 0; i < r->len; i++)
            items[i] = r->items[(r->head + i) % r->cap];
        free(r->items);
        r->items = items, r->cap = cap, r->head = 0;
    }
    r->items[(r->head + r->len) % r->cap] = x;
    r->len++;
    return 0;
}

static bool ring_pop(struct ring *r, struct job *x)
{
    if (r->len == 0)
        return false;
    *x = r->items[r->head];
    r->head = (r->head + 1) % r->cap;
    r->len--;
    return true;
}

static void arm_pump(struct http_pool *p)
{
    if (!p->pump_armed) {
        p->pump_armed = true;
        event_active(p->pump_ev, EV_TIMEOUT, 1);
    }
}

static void on_pump(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct http_pool *p = arg;
    p->pump_armed = false;
    http_pump(p);
}

/* Grows *buf (of *cap bytes) to hold need bytes; -1 when out of memory. */
static int reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 1024;
    while (n < need)
        n *= 2;
    char *b = realloc(*buf, n);
    if (!b)
        return -1;
    *buf = b, *cap = n;
    return 0;
}

/* ---- connections ---------------------------------------------------------- */

static void close_conn(struct conn *c)
{
    if (c->fd < 0)
        return;
    event_del(c->rev);
    event_del(c->wev);
    event_free(c->rev);
    event_free(c->wev);
    c->rev = c->wev = NULL;
    close(c->fd);
    c->fd = -1;
}

static void on_readable(evutil_socket_t fd, short what, void *arg);
static void on_writable(evutil_socket_t fd, short what, void *arg);

/* Connects c (blocking), then makes its socket non-blocking with its read
 * event registered; -1 when usher cannot be reached. */
static int open_conn(struct http_pool *p, struct conn *c)
{
    int fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    if (connect(fd, (struct sockaddr *)&p->addr, p->addrlen) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        close(fd);
        return -1;
    }
    c->rev = event_new(p->base, fd, EV_READ | EV_PERSIST, on_readable, c);
    c->wev = event_new(p->base, fd, EV_WRITE, on_writable, c);
    if (!c->rev || !c->wev || event_add(c->rev, NULL) != 0) {
        if (c->rev)
            event_free(c->rev);
        if (c->wev)
            event_free(c->wev);
        c->rev = c->wev = NULL;
        close(fd);
        return -1;
    }
    c->fd = fd;
    return 0;
}

/* Hands the answer (status 0 with net_error when none came) to its client
 * and frees the connection; a connection without a request is left alone. */
static void finish(struct conn *c, int status, int net_error)
{
    struct http_pool *p = c->pool;
    if (!c->busy)
        return;
    struct http_answer a = {
        .status = status, .tag = c->tag, .net_error = net_error, .body = c->body ? c->body : "",
        .len = status ? c->body_len : 0, .queued_us = c->job.queued_us, .sent_us = c->sent_us,
        .answered_us = clock_us(p->clock),
    };
    if (status == 0 && net_error > 0 && net_error <= HTTP_NET_ERRORS)
        p->net_errors[net_error - 1]++;
    c->busy = false;
    if (c->low)
        p->low_inflight--;
    c->low = false;
    struct job job = c->job;
    p->free_conns[p->nfree++] = (uint32_t)(c - p->conns);
    arm_pump(p);
    job.client->answer(job.client->arg, job.item, &a);
}

/* The connection broke (or its request timed out): closed, and its request
 * answered with no answer. */
static void fail(struct conn *c, enum net_error why)
{
    close_conn(c);
    finish(c, 0, (int)why + 1);
}

static int on_body(http_parser *hp, const char *at, size_t len)
{
    struct conn *c = hp->data;
    if (c->body_len + len + 1 > BODY_MAX || reserve(&c->body, &c->body_cap, c->body_len + len + 1) != 0)
        return -1;
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
    c->body[c->body_len] = 0;
    return 0;
}

static int on_message_complete(http_parser *hp)
{
    struct conn *c = hp->data;
    c->done = true;
    http_parser_pause(hp, 1);   /* one answer per request; anything after it is an error */
    return 0;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct conn *c = arg;
    char buf[READ_CHUNK];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0 || !c->busy) {      /* closed, broken, or bytes nobody asked for */
        fail(c, n < 0 ? NE_OTHER : NE_EOF);
        return;
    }
    size_t used = http_parser_execute(&c->parser, &c->pool->settings, buf, (size_t)n);
    if (c->done) {
        bool keep = http_should_keep_alive(&c->parser) && used == (size_t)n;
        int status = (int)c->parser.status_code;
        if (!keep)
            close_conn(c);
        finish(c, status, 0);
        return;
    }
    if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK)
        fail(c, HTTP_PARSER_ERRNO(&c->parser) == HPE_CB_body ? NE_BODY : NE_HEADER);
}

/* Sends what is left of c's request; arms the write event when the socket is full. */
static void flush_out(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            event_add(c->wev, NULL);
            return;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fail(c, NE_EOF);
            return;
        }
        c->out_off += (size_t)n;
    }
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    flush_out(arg);
}

/* The pool's timer: requests in flight longer than the timeout get no answer. */
static void on_scan(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct http_pool *p = arg;
    int64_t limit = clock_us(p->clock) - (int64_t)(p->timeout_s * 1e6);
    for (int i = 0; i < p->nconns; i++)
        if (p->conns[i].busy && p->conns[i].sent_us < limit)
            fail(&p->conns[i], NE_TIMEOUT);
}

/* Writes req as HTTP/1.1 into c's output buffer; -1 when out of memory. */
static int format_request(struct http_pool *p, struct conn *c, const struct http_req *r)
{
    size_t blen = strlen(r->body);
    size_t need = strlen(r->path) + strlen(p->host_header) + strlen(p->api_key) + blen + 200;
    if (reserve(&c->out, &c->out_cap, need) != 0)
        return -1;
    int n = snprintf(c->out, c->out_cap, "%s %s HTTP/1.1\r\nHost: %s\r\n", r->get ? "GET" : "POST", r->path,
                     p->host_header);
    if (p->api_key[0])
        n += snprintf(c->out + n, c->out_cap - (size_t)n, "X-API-Key: %s\r\n", p->api_key);
    if (!r->get)
        n += snprintf(c->out + n, c->out_cap - (size_t)n,
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
    n += snprintf(c->out + n, c->out_cap - (size_t)n, "\r\n%s", r->body);
    c->out_len = (size_t)n, c->out_off = 0;
    return 0;
}

/* Starts one request on connection c (connecting first when needed); a
 * request that cannot even be sent is answered at once with no answer. */
static void send_request(struct http_pool *p, struct conn *c, const struct http_req *r)
{
    c->busy = true;
    c->done = false;
    c->body_len = 0;
    c->sent_us = clock_us(p->clock);
    if (format_request(p, c, r) != 0) {
        finish(c, 0, NE_BUFFER + 1);
        return;
    }
    if (c->fd < 0 && open_conn(p, c) != 0) {
        finish(c, 0, NE_CONNECT + 1);
        return;
    }
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    flush_out(c);
}

/* Takes one job onto connection c; false when the job needed no request. */
static bool start_job(struct http_pool *p, struct conn *c, struct job job, bool low)
{
    struct http_req req = {0};
    if (!job.client->prepare(job.client->arg, job.item, &req))
        return false;
    c->job = job;
    c->tag = req.tag;
    c->low = low;
    p->low_inflight += low;
    send_request(p, c, &req);
    return true;
}

/* A low job may start only when no high one waits and fewer than low_cap
 * low ones are in flight: joins are slow (usher signs each), and a pool
 * filled with them would leave heartbeats waiting for a connection. */
void http_pump(struct http_pool *p)
{
    struct job job;
    while (p->nfree > 0) {
        bool low = false;
        if (!ring_pop(&p->high, &job)) {
            if (p->low_inflight >= p->low_cap || !ring_pop(&p->low, &job))
                return;
            low = true;
        }
        uint32_t ci = p->free_conns[--p->nfree];
        if (!start_job(p, &p->conns[ci], job, low))
            p->free_conns[p->nfree++] = ci;
    }
}

void http_enqueue(struct http_pool *p, const struct http_client *client, uint32_t item, bool high)
{
    struct job job = {client, item, clock_us(p->clock)};
    if (ring_push(high ? &p->high : &p->low, job) != 0) {
        fprintf(stderr, "simulator: out of memory queueing a request\n");
        exit(2);
    }
    arm_pump(p);
}

size_t http_queued(const struct http_pool *p) { return p->high.len + p->low.len; }

size_t http_inflight(const struct http_pool *p) { return (size_t)p->nconns - p->nfree; }

const uint64_t *http_net_errors(const struct http_pool *p) { return p->net_errors; }

/* ---- synchronous calls (setup) ---------------------------------------- */

static bool sync_prepare(void *arg, uint32_t item, struct http_req *req)
{
    (void)arg, (void)item, (void)req;
    return true;   /* http_sync fills the request itself */
}

static void sync_answer(void *arg, uint32_t item, const struct http_answer *a)
{
    (void)item;
    struct sync_call *call = arg;
    if (!call)
        return;   /* answered after http_sync gave up on it */
    call->status = a->status;
    call->doc = a->len ? json_loadb(a->body, a->len, 0, NULL) : NULL;
    call->done = true;
}

int http_sync(struct http_pool *p, const char *method, const char *path, const char *body,
              json_t **doc)
{
    struct sync_call call = {0};
    struct http_req req = {.get = strcmp(method, "GET") == 0};
    *doc = NULL;
    if (p->nfree == 0 || strlen(path) >= sizeof req.path ||
        (body && strlen(body) >= sizeof req.body))
        return 0;
    snprintf(req.path, sizeof req.path, "%s", path);
    snprintf(req.body, sizeof req.body, "%s", body ? body : "");
    p->sync_client = (struct http_client){sync_prepare, sync_answer, &call};
    struct conn *c = &p->conns[p->free_conns[--p->nfree]];
    c->job = (struct job){&p->sync_client, 0, clock_us(p->clock)};
    c->tag = 0;
    c->low = false;
    send_request(p, c, &req);
    /* The pool's timeout answers every request; the deadline is a second guard. */
    int64_t deadline = clock_us(p->clock) + (int64_t)((p->timeout_s + 5) * 1e6);
    while (!call.done && clock_us(p->clock) < deadline)
        event_base_loop(p->base, EVLOOP_ONCE);
    p->sync_client.arg = NULL;
    *doc = call.doc;
    return call.done ? call.status : 0;
}

/* ---- life ---------------------------------------------------------------- */

/* Resolves host:port into p->addr; -1 when it cannot. */
static int resolve(struct http_pool *p, const char *host, int port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    if (getaddrinfo(host, service, &hints, &res) != 0 || !res)
        return -1;
    memcpy(&p->addr, res->ai_addr, res->ai_addrlen);
    p->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

struct http_pool *http_pool_new(struct event_base *base, const struct sim_clock *clock,
                                const char *host, int port, const char *api_key,
                                int connections, int low_cap, double timeout_s)
{
    struct http_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->base = base, p->clock = clock, p->nconns = connections, p->timeout_s = timeout_s;
    p->low_cap = low_cap < 1 ? 1 : low_cap;
    p->settings.on_body = on_body;
    p->settings.on_message_complete = on_message_complete;
    snprintf(p->host_header, sizeof p->host_header, "%s:%d", host, port);
    snprintf(p->api_key, sizeof p->api_key, "%s", api_key);
    p->conns = calloc((size_t)connections, sizeof *p->conns);
    p->free_conns = calloc((size_t)connections, sizeof *p->free_conns);
    p->pump_ev = event_new(base, -1, 0, on_pump, p);
    p->scan_ev = event_new(base, -1, EV_PERSIST, on_scan, p);
    struct timeval scan = {0, SCAN_MS * 1000};
    if (!p->conns || !p->free_conns || !p->pump_ev || !p->scan_ev || event_add(p->scan_ev, &scan) != 0 ||
        resolve(p, host, port) != 0) {
        http_pool_free(p);
        return NULL;
    }
    for (int i = 0; i < connections; i++) {
        struct conn *c = &p->conns[i];
        c->pool = p;
        c->fd = -1;
        p->free_conns[p->nfree++] = (uint32_t)i;
    }
    return p;
}

void http_pool_free(struct http_pool *p)
{
    if (!p)
        return;
    for (int i = 0; p->conns && i < p->nconns; i++) {
        if (p->conns[i].fd >= 0)
            close_conn(&p->conns[i]);
        free(p->conns[i].out);
        free(p->conns[i].body);
    }
    free(p->conns);
    free(p->free_conns);
    free(p->high.items);
    free(p->low.items);
    if (p->pump_ev)
        event_free(p->pump_ev);
    if (p->scan_ev)
        event_free(p->scan_ev);
    free(p);
}
