/* service.c — / and the health check (SPEC §2 "Service"). Health asks
 * Redis for a PING and reports how long it took; when Redis is down it
 * answers 503 "degraded" within the Redis deadline, never later. */
#include "routes/routes.h"

#include <stdlib.h>

#include "app.h"
#include "config/config.h"
#include "http/request.h"
#include "ivs/provider.h"
#include "util/clock.h"

struct health_check {
    struct request *rq;
    int64_t sent_us;
};

static void health_answer(struct request *rq, bool redis_up, double latency_ms)
{
    const struct app *app = rq->app;
    json_t *redis = json_pack("{s:s}", "status", redis_up ? "up" : "down");
    if (redis_up)
        json_object_set_new(redis, "latencyMs", json_real(latency_ms));
    else
        json_object_set_new(redis, "error", json_string(store_last_error(app->store)));
    /* The provider's own report (for aws: last call, recent throttles,
     * errors and quota refusals) beside its name and region. */
    json_t *ivs = app->provider->ops->health(app->provider);
    json_object_set_new(ivs, "provider", json_string(app->provider->ops->name));
    json_object_set_new(ivs, "region", json_string(app->cfg->aws_region));
    json_t *data = json_pack("{s:s, s:I, s:s, s:{s:o, s:o}}",
                             "status", redis_up ? "healthy" : "degraded",
                             "uptime", (json_int_t)((clock_now_ms() - app->started_ms) / 1000),
                             "version", USHER_VERSION, "services", "redis", redis, "ivs", ivs);
    if (redis_up) {
        respond_ok(rq, 200, data);
        return;
    }
    /* SPEC §1 wants every error in the error envelope; the health document
     * a probe wants rides along in error.details.health. */
    respond_error(rq, 503, "SERVICE_UNAVAILABLE", "redis is unreachable",
                  json_pack("{s:o}", "health", data));
}

static void pong(void *arg, enum store_error err, const char *detail)
{
    struct health_check *hc = arg;
    (void)detail;
    health_answer(hc->rq, err == STORE_OK, (double)(clock_mono_us() - hc->sent_us) / 1000.0);
    free(hc);
}

void route_health(struct request *rq)
{
    struct health_check *hc = malloc(sizeof *hc);
    if (!hc) {
        health_answer(rq, false, 0);
        return;
    }
    hc->rq = rq;
    hc->sent_us = clock_mono_us();
    store_ping(rq->app->store, pong, hc);
}

void route_root(struct request *rq)
{
    json_t *endpoints = json_array();
    for (size_t i = 0; i < usher_route_count; i++)
        json_array_append_new(endpoints, json_pack("{s:s, s:s}", "method", usher_routes[i].method,
                                                   "path", usher_routes[i].pattern));
    respond_ok(rq, 200, json_pack("{s:s, s:s, s:s, s:o}", "service", "usher",
                                  "version", USHER_VERSION,
                                  "description", "viewer seating, counting and tokens for Amazon IVS Real-Time",
                                  "endpoints", endpoints));
}
