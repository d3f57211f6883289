/* live.c — GET /api/stats/stream: the live feed (live/live.h) as
 * Server-Sent Events, in the form web/dashboard/README.md fixes: `stats`
 * events (no id: never replayed), `stage` events with the Redis stream id
 * as `id:` (a client resumes with Last-Event-ID), and a `: ping` comment
 * every 15 s.
 *
 * A client that does not read is dropped, not buffered: once the bytes
 * queued for it would pass HTTP_STREAM_MAX_QUEUED (http/conn.h), its
 * connection is closed, and what was queued is freed. An EventSource that
 * reconnects resumes from its Last-Event-ID. */
#include "routes/routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "http/conn.h"
#include "http/request.h"
#include "http/server.h"
#include "live/live.h"
#include "util/log.h"

struct sse_client {
    struct http_conn *conn;
    struct live_sub *sub;
    bool writing;                   /* inside http_conn_stream_write */
    bool closed;                    /* the connection ended during that write */
};

/* The client went (on_close of http_conn_stream_begin). */
static void sse_closed(void *arg)
{
    struct sse_client *c = arg;
    if (c->writing) {
        c->closed = true;
        return;
    }
    live_unsubscribe(c->sub);
    free(c);
}

static void sse_send(struct sse_client *c, const char *text, int len)
{
    if (len < 0)
        return;
    c->writing = true;
    int rc = http_conn_stream_write(c->conn, text, (size_t)len);
    c->writing = false;
    if (c->closed) {
        sse_closed(c);
        return;
    }
    if (rc != 0) {
        log_info("stats stream: a client more than %d bytes behind is dropped",
                 HTTP_STREAM_MAX_QUEUED);
        http_conn_stream_abort(c->conn);
        live_unsubscribe(c->sub);
        free(c);
    }
}

/* One event of the given type (id NULL: none), sent or the client dropped. */
static void sse_event(struct sse_client *c, const char *type, const char *id, const char *json)
{
    size_t cap = strlen(json) + (id ? strlen(id) : 0) + 64;
    char *text = malloc(cap);
    if (!text)
        return;
    int len = id ? snprintf(text, cap, "event: %s\nid: %s\ndata: %s\n\n", type, id, json)
                 : snprintf(text, cap, "event: %s\ndata: %s\n\n", type, json);
    sse_send(c, text, len);
    free(text);
}

static void sse_stats(void *arg, const struct live_stats *stats)
{
    sse_event(arg, "stats", NULL, stats->json);
}

static void sse_stage(void *arg, const char *id, const char *json)
{
    sse_event(arg, "stage", id, json);
}

static void sse_ping(void *arg)
{
    static const char ping[] = ": ping\n\n";
    sse_send(arg, ping, (int)sizeof ping - 1);
}

/* usher stopping: the feed ends before the connection does. */
static void sse_ended(void *arg)
{
    struct sse_client *c = arg;
    http_conn_stream_end(c->conn);
    free(c);
}

static const struct live_sub_ops sse_ops = {sse_stats, sse_stage, sse_ping, sse_ended};

void route_stats_stream(struct request *rq)
{
    struct app *app = rq->app;
    if (!store_ready(app->store)) {
        respond_unavailable(rq, store_last_error(app->store));
        return;
    }
    char last_id[64] = "";
    const char *given = request_header(rq, "Last-Event-ID");
    if (given)
        snprintf(last_id, sizeof last_id, "%s", given);
    struct sse_client *c = calloc(1, sizeof *c);
    if (!c) {
        respond_error(rq, 500, "INTERNAL_ERROR", "out of memory", NULL);
        return;
    }
    request_add_header(rq, "Cache-Control", "no-store");
    request_add_header(rq, "X-Accel-Buffering", "no");   /* nginx: pass events at once */
    c->conn = http_stream_begin(rq, 200, "text/event-stream; charset=utf-8", sse_closed, c);
    if (!c->conn) {
        free(c);
        return;
    }
    c->sub = live_subscribe(app->live, &sse_ops, c, last_id[0] ? last_id : NULL);
    if (!c->sub) {
        http_conn_stream_end(c->conn);
        free(c);
    }
}
