/* service.c — / and the health check (SPEC §2 "Service"). Health asks
 * Redis for a PING and reports how long it took; when Redis is down it
 * answers 503 "degraded" within the Redis deadline, never later. */
#include "routes/routes.h"

#include <stdlib.h>

#include "app.h"
#include "config/config.h"
#include "http/request.h"
#include "ivs/provider.h"
#include "stages/recovery.h"
#include "util/clock.h"

struct health_check {
    struct request *rq;
    int64_t sent_us;
};

/* What Redis holds for usher (stages/recovery.h): "ok", or "degraded" with
 * the problem; and the last repair made, if any. */
static json_t *state_health(const struct app *app)
{
    const char *problem = recovery_problem(app->recovery);
    json_t *state = json_pack("{s:s}", "status", problem[0] ? "degraded" : "ok");
    if (problem[0])
        json_object_set_new(state, "problem", json_string(problem));
    int64_t at_ms;
    const char *repair = recovery_last_repair(app->recovery, &at_ms);
    if (repair[0]) {
        char at[32];
        clock_iso8601(at_ms, at, sizeof at);
        json_object_set_new(state, "lastRepair", json_pack("{s:s, s:s}", "what", repair, "at", at));
    }
    return state;
}

/* The provider's own report (for aws: last call, recent throttles, errors
 * and quota refusals) beside its name and region (routes.h). */
json_t *health_services(const struct app *app, bool redis_up, double latency_ms)
{
    json_t *redis = json_pack("{s:s}", "status", redis_up ? "up" : "down");
    if (redis_up)
        json_object_set_new(redis, "latencyMs", json_real(latency_ms));
    else
        json_object_set_new(redis, "error", json_string(store_last_error(app->store)));
    json_t *ivs = app->provider->ops->health(app->provider);
    json_object_set_new(ivs, "provider", json_string(app->provider->ops->name));
    json_object_set_new(ivs, "region", json_string(app->cfg->aws_region));
    return json_pack("{s:o, s:o}", "redis", redis, "ivs", ivs);
}

static void health_answer(struct request *rq, bool redis_up, double latency_ms)
{
    const struct app *app = rq->app;
    json_t *services = health_services(app, redis_up, latency_ms);
    json_object_set_new(json_object_get(services, "redis"), "state", state_health(app));
    bool healthy = redis_up && !recovery_problem(app->recovery)[0];
    json_t *data = json_pack("{s:s, s:I, s:s, s:o}",
                             "status", healthy ? "healthy" : "degraded",
                             "uptime", (json_int_t)((rq->now_ms - app->started_ms) / 1000),
                             "version", USHER_VERSION, "services", services);
    if (healthy) {
        respond_ok(rq, 200, data);
        return;
    }
    /* SPEC §1 wants every error in the error envelope; the health document
     * a probe wants rides along in error.details.health. */
    respond_error(rq, 503, "SERVICE_UNAVAILABLE",
                  redis_up ? "usher's state in redis is being rebuilt" : "redis is unreachable",
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
    for (size_t i = 0; i < rq->app->nroutes; i++)
        json_array_append_new(endpoints, json_pack("{s:s, s:s}", "method", rq->app->routes[i].method,
                                                   "path", rq->app->routes[i].pattern));
    respond_ok(rq, 200, json_pack("{s:s, s:s, s:s, s:o}", "service", "usher",
                                  "version", USHER_VERSION,
                                  "description", "viewer seating, counting and tokens for Amazon IVS Real-Time",
                                  "endpoints", endpoints));
}
