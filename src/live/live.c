/* live.c — see live.h.
 *
 * One read is one store call, store_live(): the stats view and the stage
 * events after the last id seen; new events go to every subscriber, then
 * the stats if they changed. "Changed" compares the
 * /api/stats data without its timestamp, and whether Redis is up: a new
 * Redis latency alone is no change. When a read fails, the last stats are
 * sent again with health saying Redis is down.
 *
 * Subscribers that arrive wait in the list, marked `fresh`, until a read
 * has given stats; they are welcomed from a loop event, so no callback runs
 * inside live_subscribe(). A subscriber may end itself from inside a
 * callback; while callbacks run (`busy`) it is only marked gone, and freed
 * after. */
#include "live/live.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <event2/event.h>
#include <jansson.h>

#include "app.h"
#include "config/config.h"
#include "routes/routes.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/log.h"

#define STREAM_ID_MAX 48

struct live_sub {
    TAILQ_ENTRY(live_sub) link;
    struct live *live;
    const struct live_sub_ops *ops;
    void *arg;
    bool fresh;                      /* not yet sent the stats and the backlog */
    bool gone;
    bool resume;                     /* after_id holds the client's Last-Event-ID */
    char after_id[STREAM_ID_MAX];
};

struct kept_event {
    char id[STREAM_ID_MAX];
    char *json;
};

struct live {
    struct app *app;
    struct event *tick, *ping, *welcome;
    TAILQ_HEAD(, live_sub) subs;
    size_t nsubs;
    int busy;                        /* callbacks running: unsubscribing only marks */
    bool any_gone;
    bool reading;                    /* a read is in flight, sent at sent_us */
    int64_t sent_us;
    bool primed;                     /* the events before the first read are known */
    /* What the subscribers were last told. */
    json_t *data;                    /* /api/stats data, NULL until a read succeeded */
    char *key;                       /* data without timestamp, + redis up/down */
    bool stale;                      /* data is from before an idle spell */
    struct live_stats stats;         /* json owned here */
    struct kept_event events[LIVE_EVENTS_KEPT]; /* oldest first */
    size_t nevents;
    char last_id[STREAM_ID_MAX];
};

/* ---- stream ids ------------------------------------------------------------ */

/* Parses "<ms>-<seq>"; false when it is not one. */
static bool stream_id_parse(const char *s, uint64_t *ms, uint64_t *seq)
{
    int used = 0;
    if (!s || strlen(s) >= STREAM_ID_MAX || s[0] < '0' || s[0] > '9' ||
        sscanf(s, "%" SCNu64 "-%" SCNu64 "%n", ms, seq, &used) != 2 || s[used] != '\0')
        return false;
    const char *dash = strchr(s, '-');
    return dash && dash[1] >= '0' && dash[1] <= '9';
}

/* a after b */
static bool stream_id_after(const char *a, uint64_t ms, uint64_t seq)
{
    uint64_t ams = 0, aseq = 0;
    stream_id_parse(a, &ams, &aseq);
    return ams > ms || (ams == ms && aseq > seq);
}

/* ---- subscribers ------------------------------------------------------------ */

static void sub_free(struct live *l, struct live_sub *sub)
{
    TAILQ_REMOVE(&l->subs, sub, link);
    free(sub);
}

static void sweep_gone(struct live *l)
{
    if (l->busy || !l->any_gone)
        return;
    struct live_sub *sub = TAILQ_FIRST(&l->subs), *next;
    for (; sub; sub = next) {
        next = TAILQ_NEXT(sub, link);
        if (sub->gone)
            sub_free(l, sub);
    }
    l->any_gone = false;
}

/* The kept events a fresh subscriber is sent: from index *from on. */
static size_t backlog_start(const struct live *l, const struct live_sub *sub)
{
    uint64_t ms, seq;
    if (!sub->resume || !stream_id_parse(sub->after_id, &ms, &seq))
        return l->nevents > LIVE_EVENTS_FRESH ? l->nevents - LIVE_EVENTS_FRESH : 0;
    size_t i = l->nevents;
    while (i > 0 && stream_id_after(l->events[i - 1].id, ms, seq))
        i--;
    return i;
}

/* Sends a fresh subscriber the stats, first (web/dashboard/README.md), then
 * the backlog. */
static void welcome_one(struct live *l, struct live_sub *sub)
{
    sub->fresh = false;
    sub->ops->stats(sub->arg, &l->stats);
    for (size_t i = backlog_start(l, sub); sub->ops->event && i < l->nevents && !sub->gone; i++)
        sub->ops->event(sub->arg, l->events[i].id, l->events[i].json);
}

static void welcome_all(struct live *l)
{
    if (!l->data || l->stale)
        return;
    l->busy++;
    struct live_sub *sub;
    TAILQ_FOREACH(sub, &l->subs, link)
        if (sub->fresh && !sub->gone)
            welcome_one(l, sub);
    l->busy--;
    sweep_gone(l);
}

static void on_welcome(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    welcome_all(arg);
}

/* What the subscribers already welcomed are told: the stats, a kept
 * event, or a ping. */
enum news { NEWS_STATS, NEWS_EVENT, NEWS_PING };

static void tell_all(struct live *l, enum news what, const struct kept_event *k)
{
    l->busy++;
    struct live_sub *sub;
    TAILQ_FOREACH(sub, &l->subs, link) {
        if (sub->fresh || sub->gone)
            continue;
        if (what == NEWS_STATS)
            sub->ops->stats(sub->arg, &l->stats);
        else if (what == NEWS_EVENT && sub->ops->event)
            sub->ops->event(sub->arg, k->id, k->json);
        else if (what == NEWS_PING)
            sub->ops->ping(sub->arg);
    }
    l->busy--;
    sweep_gone(l);
}

static void on_ping(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    tell_all(arg, NEWS_PING, NULL);
}

/* ---- the shared read ------------------------------------------------------------ */

/* Keeps a new event (oldest first, the oldest dropped past the bound) and
 * sends it. */
static void event_arrived(struct live *l, const struct stage_event *e)
{
    json_t *doc = stage_event_json(e);
    char *json = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!json)
        return;
    if (l->nevents == LIVE_EVENTS_KEPT) {
        free(l->events[0].json);
        memmove(&l->events[0], &l->events[1], (LIVE_EVENTS_KEPT - 1) * sizeof l->events[0]);
        l->nevents--;
    }
    struct kept_event *k = &l->events[l->nevents++];
    snprintf(k->id, sizeof k->id, "%s", e->id);
    k->json = json;
    snprintf(l->last_id, sizeof l->last_id, "%s", e->id);
    if (l->primed)
        tell_all(l, NEWS_EVENT, k);
}

/* Makes the stats event's text from l->data and the health; true when it
 * differs from what was last sent. */
static bool stats_compose(struct live *l, bool redis_up, double latency_ms)
{
    json_t *copy = json_deep_copy(l->data);
    json_object_del(copy, "timestamp");
    json_object_set_new(copy, "redisUp", json_boolean(redis_up));
    char *key = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(copy);
    bool changed = !key || !l->key || strcmp(key, l->key) != 0 || l->stale;
    free(l->key);
    l->key = key;
    if (!changed)
        return false;
    json_t *event = json_deep_copy(l->data);
    json_object_set_new(event, "capacityPerStage", json_integer(l->app->cfg->max_viewers_per_stage));
    json_object_set_new(event, "health", health_services(l->app, redis_up, latency_ms));
    free((char *)l->stats.json);
    l->stats.json = json_dumps(event, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(event);
    return l->stats.json != NULL;
}

/* The stats part of a read (view NULL when it failed): the stats event is
 * told when it changed. */
static void stats_arrived(struct live *l, const struct stats_view *view, double latency_ms)
{
    if (view) {
        char now[32];
        clock_iso8601(clock_now_ms(), now, sizeof now);
        json_decref(l->data);
        l->data = stats_data(view, now);
        l->stats.viewers = view->total_viewers;
        l->stats.stages = (long long)view->count;
    }
    bool changed = l->data && stats_compose(l, view != NULL, latency_ms);
    if (l->data)
        l->stale = false;
    if (changed)
        tell_all(l, NEWS_STATS, NULL);
}

static void read_back(void *arg, enum store_error err, const char *detail,
                      const struct live_read *r)
{
    struct live *l = arg;
    l->reading = false;
    double latency_ms = (double)(clock_mono_us() - l->sent_us) / 1000.0;
    if (err != STORE_OK)
        log_debug("live: not read: %s", detail);
    for (size_t i = 0; err == STORE_OK && i < r->events.count; i++)
        event_arrived(l, &r->events.items[i]);
    if (err == STORE_OK)
        l->primed = true;            /* the first read's events were the backlog */
    stats_arrived(l, err == STORE_OK ? &r->stats : NULL, latency_ms);
    welcome_all(l);
}

static void read_start(struct live *l)
{
    if (l->reading)
        return;
    l->reading = true;
    l->sent_us = clock_mono_us();
    store_live(l->app->store, l->primed ? l->last_id : "", LIVE_EVENTS_KEPT, read_back, l);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    read_start(arg);
}

/* ---- life ------------------------------------------------------------ */

static void timers_on(struct live *l)
{
    struct timeval every = {l->app->cfg->stats_push_ms / 1000, (l->app->cfg->stats_push_ms % 1000) * 1000};
    struct timeval ping = {LIVE_PING_MS / 1000, (LIVE_PING_MS % 1000) * 1000};
    event_add(l->tick, &every);
    event_add(l->ping, &ping);
}

struct live_sub *live_subscribe(struct live *l, const struct live_sub_ops *ops, void *arg,
                                const char *last_event_id)
{
    struct live_sub *sub = calloc(1, sizeof *sub);
    if (!sub)
        return NULL;
    *sub = (struct live_sub){.live = l, .ops = ops, .arg = arg, .fresh = true};
    uint64_t ms, seq;
    if (stream_id_parse(last_event_id, &ms, &seq)) {
        sub->resume = true;
        snprintf(sub->after_id, sizeof sub->after_id, "%s", last_event_id);
    }
    TAILQ_INSERT_TAIL(&l->subs, sub, link);
    if (l->nsubs++ == 0) {
        timers_on(l);
        read_start(l);              /* the data kept from before is stale */
    } else {
        event_active(l->welcome, EV_TIMEOUT, 0);
    }
    return sub;
}

void live_unsubscribe(struct live_sub *sub)
{
    struct live *l = sub->live;
    if (--l->nsubs == 0) {
        /* Idle: no reads. What is kept is stale by the next subscriber. */
        event_del(l->tick);
        event_del(l->ping);
        l->stale = true;
    }
    if (l->busy) {
        sub->gone = true;
        l->any_gone = true;
        return;
    }
    sub_free(l, sub);
}

size_t live_subscribers(const struct live *l) { return l->nsubs; }

struct live *live_new(struct app *app)
{
    struct live *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->app = app;
    TAILQ_INIT(&l->subs);
    l->tick = event_new(app->base, -1, EV_PERSIST, on_tick, l);
    l->ping = event_new(app->base, -1, EV_PERSIST, on_ping, l);
    l->welcome = event_new(app->base, -1, 0, on_welcome, l);
    if (!l->tick || !l->ping || !l->welcome) {
        live_free(l);
        return NULL;
    }
    return l;
}

void live_free(struct live *l)
{
    if (!l)
        return;
    struct live_sub *sub;
    while ((sub = TAILQ_FIRST(&l->subs))) {
        bool gone = sub->gone;
        void (*ended)(void *) = sub->ops->ended;
        void *arg = sub->arg;
        sub_free(l, sub);
        if (!gone)
            ended(arg);
    }
    if (l->tick)
        event_free(l->tick);
    if (l->ping)
        event_free(l->ping);
    if (l->welcome)
        event_free(l->welcome);
    for (size_t i = 0; i < l->nevents; i++)
        free(l->events[i].json);
    json_decref(l->data);
    free(l->key);
    free((char *)l->stats.json);
    free(l);
}
