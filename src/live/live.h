/* live.h — the live feed of one process: what GET /api/stats/stream and
 * /ws push to their clients.
 *
 * However many clients are subscribed, the feed makes one shared read per
 * STATS_PUSH_MS: one store_live() call, the /api/stats view and the
 * stage_events entries after the last one seen. It reads only while it has
 * subscribers. Each subscriber is told the stats when they change
 * (and once when it subscribes), every new stage event, and a ping every
 * LIVE_PING_MS. The transports (routes/live.c for SSE, live/ws.c for
 * WebSocket) own their clients' connections and drop slow ones. */
#ifndef USHER_LIVE_LIVE_H
#define USHER_LIVE_LIVE_H

#include <stddef.h>

struct app;
struct live;
struct live_sub;

#define LIVE_PING_MS 15000
#define LIVE_EVENTS_KEPT 200     /* stage events kept in memory for resuming clients */
#define LIVE_EVENTS_FRESH 20     /* the latest events a client without Last-Event-ID gets */

struct live_stats {
    const char *json;            /* data of a `stats` event: the /api/stats data, plus
                                  * capacityPerStage and health (web/dashboard/README.md) */
    long long viewers;           /* totalViewers */
    long long stages;            /* activeStages */
};

/* What a subscriber is told. Each runs on the loop, never inside
 * live_subscribe(), and may call live_unsubscribe() for its own
 * subscription (no other). */
struct live_sub_ops {
    void (*stats)(void *arg, const struct live_stats *stats);
    /* id: the Redis stream id ("<ms>-<seq>"); json: stage_event_json().
     * NULL: the subscriber takes no stage events. */
    void (*event)(void *arg, const char *id, const char *json);
    void (*ping)(void *arg);
    /* The feed is going away (usher stopping): the subscription is over,
     * the subscriber ends its connection. Called at most once. */
    void (*ended)(void *arg);
};

struct live *live_new(struct app *app);
/* Ends every remaining subscription (ops->ended). Call after store_free(). */
void live_free(struct live *l);

/* Subscribes; NULL when out of memory. last_event_id: the client's
 * Last-Event-ID or NULL; with a valid one the client is sent the kept
 * events after it (all LIVE_EVENTS_KEPT when it is older than those), else
 * the latest LIVE_EVENTS_FRESH, after its first stats; those come from the
 * current shared read (at most STATS_PUSH_MS old), or the next one. */
struct live_sub *live_subscribe(struct live *l, const struct live_sub_ops *ops, void *arg,
                                const char *last_event_id);
/* Ends a subscription; its ops are not called again. */
void live_unsubscribe(struct live_sub *sub);
/* Subscriptions now. */
size_t live_subscribers(const struct live *l);

#endif
