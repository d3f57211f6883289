/* sim_http.c — the simulator's side of HTTP: a pool of keep-alive
 * connections to usher and two queues of work waiting for one.
 *
 * evhttp runs one request at a time per connection (no pipelining), so a
 * connection is either free or carrying exactly one request, and the pool
 * size bounds what is in flight. Work waits in two FIFO rings of viewer
 * indexes: `high` for heartbeats, leaves and checkpoint reads, `low` for
 * joins. Heartbeats go first because a late heartbeat costs a seat, while a
 * late join only shows as latency — and joins are the slow requests (usher
 * signs a token for each), so a burst of them must not starve heartbeats.
 *
 * What a queued viewer asks is decided when a connection takes it
 * (audience_request), from the viewer's state at that moment. New requests
 * are started from a deferred event, never from inside an answer callback,
 * so evhttp never sees a request made on the connection it is finishing. */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

static int ring_push(struct ring *r, uint32_t x)
{
    if (r->len == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 1024;
        uint32_t *items = malloc(cap * sizeof *items);
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

static bool ring_pop(struct ring *r, uint32_t *x)
{
    if (r->len == 0)
        return false;
    *x = r->items[r->head];
    r->head = (r->head + 1) % r->cap;
    r->len--;
    return true;
}

static void arm_pump(struct sim *s)
{
    if (!s->pump_armed) {
        s->pump_armed = true;
        event_active(s->pump_ev, EV_TIMEOUT, 1);
    }
}

static void on_pump(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct sim *s = arg;
    s->pump_armed = false;
    http_pump(s);
}

static void on_net_error(enum evhttp_request_error err, void *arg)
{
    struct conn *c = arg;
    c->net_error = (int)err + 1;
}

/* Hands an answer to whoever asked, then frees the connection. */
static void on_answer(struct evhttp_request *req, void *arg)
{
    struct conn *c = arg;
    struct sim *s = c->sim;
    int status = req ? evhttp_request_get_response_code(req) : 0;
    struct evbuffer *in = req ? evhttp_request_get_input_buffer(req) : NULL;
    size_t len = in ? evbuffer_get_length(in) : 0;
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    if (status == 0 && c->net_error > 0 && c->net_error <= 8)
        s->c.net_errors[c->net_error - 1]++;
    count_status(s, c->kind, status);

    if (c->kind == K_SETUP) {
        if (s->sync) {
            s->sync->status = status;
            s->sync->doc = len ? json_loadb(body, len, 0, NULL) : NULL;
            s->sync->done = true;
        }
    } else if (c->kind == K_STATS) {
        check_on_stats(s, status, body, len);
    } else {
        audience_answer(s, c, status, body, len);
    }
    c->net_error = 0;
    ring_push(&s->free_conns, (uint32_t)(c - s->conns));
    arm_pump(s);
}

/* Starts one request on connection c; false when evhttp refused it. */
static bool send_request(struct sim *s, struct conn *c, enum evhttp_cmd_type method,
                         const char *path, const char *body)
{
    struct evhttp_request *req = evhttp_request_new(on_answer, c);
    if (!req)
        return false;
    evhttp_request_set_error_cb(req, on_net_error);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", s->host_header);
    if (s->o.api_key[0])
        evhttp_add_header(h, "X-API-Key", s->o.api_key);
    if (body) {
        evhttp_add_header(h, "Content-Type", "application/json");
        evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
    }
    c->net_error = 0;
    c->sent_us = sim_now_us(s);
    /* On failure evhttp has taken the request off the connection; it is
     * lost either way, so it is answered below as "no answer". */
    return evhttp_make_request(c->evcon, req, method, path) == 0;
}

/* Takes one queued item onto connection c; false when the item needed no request. */
static bool start_item(struct sim *s, struct conn *c, uint32_t item)
{
    char path[64], body[1024];
    int kind;
    enum evhttp_cmd_type method = EVHTTP_REQ_POST;
    if (item == STATS_ITEM) {
        kind = K_STATS;
        method = EVHTTP_REQ_GET;
        snprintf(path, sizeof path, "/api/stats");
        body[0] = '\0';
    } else {
        kind = audience_request(s, item, path, sizeof path, body, sizeof body);
        if (kind < 0)
            return false;
    }
    c->item = item;
    c->kind = (uint8_t)kind;
    if (!send_request(s, c, method, path, body[0] ? body : NULL))
        on_answer(NULL, c);
    return true;
}

void http_pump(struct sim *s)
{
    uint32_t ci, item;
    while (s->free_conns.len > 0 && (s->high.len > 0 || s->low.len > 0)) {
        if (!ring_pop(&s->high, &item))
            ring_pop(&s->low, &item);
        ring_pop(&s->free_conns, &ci);
        if (!start_item(s, &s->conns[ci], item))
            ring_push(&s->free_conns, ci);
    }
}

void http_enqueue(struct sim *s, uint32_t item, bool high)
{
    if (ring_push(high ? &s->high : &s->low, item) != 0) {
        fprintf(stderr, "simulator: out of memory queueing a request\n");
        exit(2);
    }
    arm_pump(s);
}

size_t http_queued(const struct sim *s) { return s->high.len + s->low.len; }

size_t http_inflight(const struct sim *s)
{
    return (size_t)s->o.connections - s->free_conns.len;
}

int http_sync(struct sim *s, const char *method, const char *path, const char *body,
              json_t **doc)
{
    uint32_t ci;
    struct sync_call call = {0};
    *doc = NULL;
    if (!ring_pop(&s->free_conns, &ci))
        return 0;
    struct conn *c = &s->conns[ci];
    c->kind = K_SETUP;
    c->item = 0;
    enum evhttp_cmd_type cmd = strcmp(method, "GET") == 0 ? EVHTTP_REQ_GET : EVHTTP_REQ_POST;
    s->sync = &call;
    if (!send_request(s, c, cmd, path, body))
        on_answer(NULL, c);
    /* evhttp's own timeout answers every request; the deadline is a second guard. */
    int64_t deadline = sim_now_us(s) + (int64_t)((s->o.request_timeout + 5) * 1e6);
    while (!call.done && sim_now_us(s) < deadline)
        event_base_loop(s->base, EVLOOP_ONCE);
    s->sync = NULL;
    *doc = call.doc;
    return call.done ? call.status : 0;
}

int http_init(struct sim *s)
{
    snprintf(s->host_header, sizeof s->host_header, "%s:%d", s->o.host, s->o.port);
    s->conns = calloc((size_t)s->o.connections, sizeof *s->conns);
    s->pump_ev = event_new(s->base, -1, 0, on_pump, s);
    if (!s->conns || !s->pump_ev)
        return -1;
    struct timeval tv = {(time_t)s->o.request_timeout,
                         (suseconds_t)((s->o.request_timeout - (time_t)s->o.request_timeout) * 1e6)};
    for (int i = 0; i < s->o.connections; i++) {
        struct conn *c = &s->conns[i];
        c->sim = s;
        c->evcon = evhttp_connection_base_new(s->base, NULL, s->o.host, (unsigned short)s->o.port);
        if (!c->evcon)
            return -1;
        evhttp_connection_set_timeout_tv(c->evcon, &tv);
        if (ring_push(&s->free_conns, (uint32_t)i) != 0)
            return -1;
    }
    return 0;
}

void http_free(struct sim *s)
{
    for (int i = 0; s->conns && i < s->o.connections; i++)
        if (s->conns[i].evcon)
            evhttp_connection_free(s->conns[i].evcon);
    free(s->conns);
    free(s->free_conns.items);
    free(s->high.items);
    free(s->low.items);
    if (s->pump_ev)
        event_free(s->pump_ev);
}
