/* sim_http.c — the simulator's side of HTTP: a pool of keep-alive
 * connections to usher and two queues of work waiting for one.
 *
 * It is a leaf: it knows nothing of viewers or checks. A job is a client
 * (two callbacks and their argument) and an item number; when a connection
 * takes the job, the client's prepare callback says what to send, decided
 * from the item's state at that moment, and its answer callback gets the
 * result, exactly once.
 *
 * evhttp runs one request at a time per connection (no pipelining), so a
 * connection is either free or carrying exactly one request, and the pool
 * size bounds what is in flight. Jobs wait in two FIFO rings: `high`
 * before `low`. The simulator puts heartbeats, leaves and checkpoint reads
 * high and joins low: a late heartbeat costs a seat, while a late join only
 * shows as latency — and joins are the slow requests (usher signs a token
 * for each), so a burst of them must not starve heartbeats. Nor may they
 * hold every connection: at most low_cap of them are in flight, the rest of
 * the pool stays free for heartbeats (a join takes a connection only when
 * no heartbeat waits, and then keeps it for as long as usher takes to sign).
 *
 * New requests are started from a deferred event, never from inside an
 * answer callback, so evhttp never sees a request made on the connection
 * it is finishing. */
#include "sim_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

const char *const HTTP_NET_ERROR_NAMES[HTTP_NET_ERRORS] = {
    "timeout", "eof", "connect", "buffer", "cancelled", "header", "body", "?"};

struct job { const struct http_client *client; uint32_t item; int64_t queued_us; };

struct ring { struct job *items; size_t cap, head, len; };

struct conn {
    struct http_pool *pool;
    struct evhttp_connection *evcon;
    struct job job;
    int tag, net_error;
    bool low;               /* carries a job of the low queue */
    int64_t sent_us;
};

/* The answer of a synchronous call. */
struct sync_call { bool done; int status; json_t *doc; };

struct http_pool {
    struct event_base *base;
    const struct sim_clock *clock;
    char host_header[160], api_key[256];
    int nconns, low_cap, low_inflight;
    double timeout_s;
    struct conn *conns;
    uint32_t *free_conns;
    size_t nfree;
    struct ring high, low;
    struct event *pump_ev;
    bool pump_armed;
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

static void on_net_error(enum evhttp_request_error err, void *arg)
{
    struct conn *c = arg;
    c->net_error = (int)err + 1;
}

/* Hands an answer to its client, then frees the connection. */
static void on_answer(struct evhttp_request *req, void *arg)
{
    struct conn *c = arg;
    struct http_pool *p = c->pool;
    struct evbuffer *in = req ? evhttp_request_get_input_buffer(req) : NULL;
    struct http_answer a = {
        .status = req ? evhttp_request_get_response_code(req) : 0,
        .tag = c->tag, .net_error = c->net_error, .queued_us = c->job.queued_us,
        .sent_us = c->sent_us, .answered_us = clock_us(p->clock),
    };
    a.len = in ? evbuffer_get_length(in) : 0;
    a.body = a.len ? (const char *)evbuffer_pullup(in, -1) : "";
    if (a.status == 0 && a.net_error > 0 && a.net_error <= HTTP_NET_ERRORS)
        p->net_errors[a.net_error - 1]++;
    c->net_error = 0;
    if (c->low)
        p->low_inflight--;
    c->low = false;
    p->free_conns[p->nfree++] = (uint32_t)(c - p->conns);
    arm_pump(p);
    c->job.client->answer(c->job.client->arg, c->job.item, &a);
}

/* Starts one request on connection c; false when evhttp refused it. */
static bool send_request(struct http_pool *p, struct conn *c, const struct http_req *r)
{
    struct evhttp_request *req = evhttp_request_new(on_answer, c);
    if (!req)
        return false;
    evhttp_request_set_error_cb(req, on_net_error);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", p->host_header);
    if (p->api_key[0])
        evhttp_add_header(h, "X-API-Key", p->api_key);
    if (r->body[0]) {
        evhttp_add_header(h, "Content-Type", "application/json");
        evbuffer_add(evhttp_request_get_output_buffer(req), r->body, strlen(r->body));
    }
    c->net_error = 0;
    c->sent_us = clock_us(p->clock);
    /* On failure evhttp has taken the request off the connection; it is
     * lost either way, so it is answered below as "no answer". */
    return evhttp_make_request(c->evcon, req, r->get ? EVHTTP_REQ_GET : EVHTTP_REQ_POST,
                               r->path) == 0;
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
    if (!send_request(p, c, &req))
        on_answer(NULL, c);
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
    if (!send_request(p, c, &req))
        on_answer(NULL, c);
    /* evhttp's own timeout answers every request; the deadline is a second guard. */
    int64_t deadline = clock_us(p->clock) + (int64_t)((p->timeout_s + 5) * 1e6);
    while (!call.done && clock_us(p->clock) < deadline)
        event_base_loop(p->base, EVLOOP_ONCE);
    p->sync_client.arg = NULL;
    *doc = call.doc;
    return call.done ? call.status : 0;
}

/* ---- life ---------------------------------------------------------------- */

struct http_pool *http_pool_new(struct event_base *base, const struct sim_clock *clock,
                                const char *host, int port, const char *api_key,
                                int connections, int low_cap, double timeout_s)
{
    struct http_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->base = base, p->clock = clock, p->nconns = connections, p->timeout_s = timeout_s;
    p->low_cap = low_cap < 1 ? 1 : low_cap;
    snprintf(p->host_header, sizeof p->host_header, "%s:%d", host, port);
    snprintf(p->api_key, sizeof p->api_key, "%s", api_key);
    p->conns = calloc((size_t)connections, sizeof *p->conns);
    p->free_conns = calloc((size_t)connections, sizeof *p->free_conns);
    p->pump_ev = event_new(base, -1, 0, on_pump, p);
    if (!p->conns || !p->free_conns || !p->pump_ev) {
        http_pool_free(p);
        return NULL;
    }
    struct timeval tv = {(time_t)timeout_s, (suseconds_t)((timeout_s - (time_t)timeout_s) * 1e6)};
    for (int i = 0; i < connections; i++) {
        struct conn *c = &p->conns[i];
        c->pool = p;
        c->evcon = evhttp_connection_base_new(base, NULL, host, (unsigned short)port);
        if (!c->evcon) {
            http_pool_free(p);
            return NULL;
        }
        evhttp_connection_set_timeout_tv(c->evcon, &tv);
        p->free_conns[p->nfree++] = (uint32_t)i;
    }
    return p;
}

void http_pool_free(struct http_pool *p)
{
    if (!p)
        return;
    for (int i = 0; p->conns && i < p->nconns; i++)
        if (p->conns[i].evcon)
            evhttp_connection_free(p->conns[i].evcon);
    free(p->conns);
    free(p->free_conns);
    free(p->high.items);
    free(p->low.items);
    if (p->pump_ev)
        event_free(p->pump_ev);
    free(p);
}
