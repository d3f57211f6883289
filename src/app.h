/* app.h — the parts of one usher process, wired together by main.c and
 * handed to every route and background duty. Nothing here is global: a
 * test could run two of these in one process. */
#ifndef USHER_APP_H
#define USHER_APP_H

#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>

#include "ivs/ids.h"

struct config;
struct store;
struct signer;
struct token_key;
struct stage_provider;
struct http_server;
struct sweeper;
struct scaler;
struct waiters;
struct recovery;
struct read_batch;
struct live;
struct metrics;
struct webhooks;
struct stats_cache;
struct endpoints_cache;
struct aws_limiter;
struct route;

#define USHER_VERSION "0.1.0"

struct app {
    const struct config *cfg;
    struct event_base *base;
    struct store *store;
    struct token_key *key;
    struct signer *signer;
    struct stage_provider *provider;
    struct http_server *http;
    struct sweeper *sweeper;
    struct scaler *scaler;
    struct waiters *waiters;         /* joins waiting for a stage to open */
    struct recovery *recovery;       /* notices lost state in Redis, rebuilds it */
    struct read_batch *stats_batch;  /* GET /api/stats callers share calls */
    struct live *live;               /* the live feed: /api/stats/stream, /ws */
    struct metrics *metrics;         /* this process's counters, GET /metrics */
    struct webhooks *webhooks;       /* NULL without WEBHOOK_URLS */
    struct stats_cache *stats_cache; /* its stage entries, rendered once */
    struct endpoints_cache *endpoints; /* stages' endpoints for tokens (stages/endpoints.h) */
    struct aws_limiter *limiter;     /* IVS call pace shared in Redis (aws provider only) */
    struct route *routes;            /* the routes served (routes.h usher_routes_served) */
    size_t nroutes;
    int64_t started_ms;
    /* The master stage, as Redis has it; empty until Redis has been reached
     * (checked again every few seconds and after every reconnect, and
     * kept as the hint to rebuild with when Redis loses it:
     * stages/recovery.h). */
    char master_arn[STAGE_ARN_MAX + 1];
};

#endif
