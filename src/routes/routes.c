/* routes.c — the route table, and what handlers share for answering
 * store errors. Exact paths come before the "/:" patterns that could
 * swallow them (router.h). */
#include "routes/routes.h"

#include <stdio.h>

#include "app.h"
#include "config/config.h"
#include "http/request.h"
#include "stages/stages.h"

/* Retry-After of a 503 STAGE_FULL: when every stage that may exist is
 * full, room comes as viewers leave or expire (a few seconds is a fair
 * guess at a live event's churn); when a stage is being added, it seats
 * viewers within a second or two. */
#define STAGE_FULL_RETRY_S 5
#define ROOM_COMING_RETRY_S 1

const struct route usher_routes[] = {
    {"GET", "/", route_root},
    {"GET", "/health", route_health},
    {"GET", "/ws", route_ws},
    {"GET", "/metrics", route_metrics},
    {"GET", "/dashboard", route_dashboard},
    {"GET", "/dashboard/", route_dashboard},
    {"GET", "/dashboard/:file", route_dashboard_file},
    {"GET", "/api/health", route_health},

    {"POST", "/api/token/publisher", route_publisher_token},
    {"POST", "/api/token/viewer", route_viewer_token},
    {"GET", "/api/token/public-key", route_public_key},

    {"PUT", "/api/publisher/status", route_publisher_status_put},
    {"GET", "/api/stats/publisher", route_publisher_status_get},

    {"POST", "/api/viewer/heartbeat", route_viewer_heartbeat},
    {"POST", "/api/viewer/leave", route_viewer_leave},
    {"POST", "/api/viewer/rejoin", route_viewer_rejoin},
    {"GET", "/api/viewer/duration", route_viewer_duration},
    {"GET", "/api/viewer/list/:stageArn", route_viewer_list},
    {"DELETE", "/api/viewer/:userId", route_viewer_kick},

    {"GET", "/api/stats", route_stats},
    {"GET", "/api/stats/viewers", route_stats_viewers},
    {"GET", "/api/stats/stages", route_stats_stages},
    {"GET", "/api/stats/stream", route_stats_stream},

    {"GET", "/api/stage/list", route_stage_list},
    {"GET", "/api/stage/master/info", route_stage_master_info},
    {"GET", "/api/stage/events", route_stage_events},
    {"POST", "/api/stage", route_stage_create},
    {"GET", "/api/stage/:stageArn/participants", route_stage_participants},
    {"GET", "/api/stage/:stageArn", route_stage_get},
    {"PUT", "/api/stage/:stageArn", route_stage_rename},
    {"DELETE", "/api/stage/:stageArn", route_stage_delete},

    {"POST", "/api/ivs/events", route_ivs_events},
    {"POST", "/api/test/participants", route_test_participants},
};
const size_t usher_route_count = sizeof usher_routes / sizeof *usher_routes;

size_t usher_routes_served(const struct config *cfg, struct route *out)
{
    size_t n = 0;
    for (size_t i = 0; i < usher_route_count; i++)
        if (usher_routes[i].handler != route_test_participants || cfg->local_participants_api)
            out[n++] = usher_routes[i];
    return n;
}

/* 503 STAGE_FULL always says when to come back (SPEC §7): Retry-After,
 * and in details why, when room is expected, and the ceiling of stages
 * (stages/stages.h) with what sets it. */
static void respond_stage_full(struct request *rq, long retry_s, const char *why,
                               const char *expected)
{
    struct stage_ceiling ceiling = stage_ceiling(rq->app);
    char after[24];
    snprintf(after, sizeof after, "%ld", retry_s);
    request_add_header(rq, "Retry-After", after);
    respond_error(rq, 503, "STAGE_FULL", "no stage has room for another viewer now",
                  json_pack("{s:s, s:s, s:I, s:I, s:s}", "why", why, "roomExpected", expected,
                            "retryAfterSeconds", (json_int_t)retry_s,
                            "stageCeiling", (json_int_t)ceiling.stages,
                            "ceilingReason", ceiling.reason));
}

void respond_store_error(struct request *rq, enum store_error err, const char *detail)
{
    switch (err) {
    case STORE_UNAVAILABLE:
        respond_unavailable(rq, detail);
        return;
    case STORE_NOT_LIVE:
        respond_error(rq, 404, "NOT_FOUND", "the publisher is not live", NULL);
        return;
    case STORE_NO_STAGE:
        respond_error(rq, 404, "NOT_FOUND", "no such stage", NULL);
        return;
    case STORE_NO_SEAT:
        respond_error(rq, 404, "NOT_FOUND", "this viewer holds no seat in that stage", NULL);
        return;
    case STORE_STAGE_FULL:
        respond_stage_full(rq, STAGE_FULL_RETRY_S, detail,
                           "when a seated viewer leaves or its seat expires");
        return;
    case STORE_NO_ROOM_YET:
        respond_stage_full(rq, ROOM_COMING_RETRY_S, "no stage opened within JOIN_WAIT_MS",
                           "a stage is being added; it seats viewers once the stream reaches it");
        return;
    case STORE_STAGE_LIMIT:
        respond_error(rq, 503, "STAGE_LIMIT_REACHED", "as many stages as allowed exist already",
                      json_pack("{s:I, s:s}", "stageCeiling", (json_int_t)stage_ceiling(rq->app).stages,
                                "ceilingReason", stage_ceiling(rq->app).reason));
        return;
    case STORE_IS_MASTER:
        respond_error(rq, 403, "FORBIDDEN", "the master stage cannot be deleted", NULL);
        return;
    case STORE_NOT_EMPTY:
        respond_error(rq, 400, "VALIDATION_ERROR", "viewers are still seated in this stage",
                      json_pack("{s:[s]}", "fields", "stageArn"));
        return;
    default:
        respond_error(rq, 500, "INTERNAL_ERROR", "the request could not be completed", NULL);
        return;
    }
}

const char *body_str(struct request *rq, const char *name)
{
    return json_string_value(json_object_get(rq->body, name));
}
