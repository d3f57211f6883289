/* routes.h — the HTTP API of SPEC §2: the route table and its handlers,
 * one file per area (tokens, publisher, viewers, stats, stages,
 * participants, service). */
#ifndef USHER_ROUTES_ROUTES_H
#define USHER_ROUTES_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "http/router.h"
#include "store/store.h"

struct request;

extern const struct route usher_routes[];
extern const size_t usher_route_count;

struct config;

/* Copies into out (room for usher_route_count) the routes of usher_routes
 * that cfg serves: all but those a setting turns off (POST
 * /api/test/participants needs LOCAL_PARTICIPANTS_API). Returns how many.
 * The server routes only these, so a route turned off is a 404, and GET /
 * lists only these. */
size_t usher_routes_served(const struct config *cfg, struct route *out);

void route_publisher_token(struct request *rq);
void route_viewer_token(struct request *rq);
void route_public_key(struct request *rq);

void route_publisher_status_put(struct request *rq);
void route_publisher_status_get(struct request *rq);

void route_viewer_heartbeat(struct request *rq);
void route_viewer_leave(struct request *rq);
void route_viewer_rejoin(struct request *rq);
void route_viewer_list(struct request *rq);
void route_viewer_duration(struct request *rq);

void route_stats(struct request *rq);
void route_stats_viewers(struct request *rq);
void route_stats_stages(struct request *rq);
void route_stats_stream(struct request *rq);
void route_ws(struct request *rq);
void route_dashboard(struct request *rq);
void route_metrics(struct request *rq);
void route_dashboard_file(struct request *rq);

void route_stage_list(struct request *rq);
void route_stage_create(struct request *rq);
void route_stage_master_info(struct request *rq);
void route_stage_events(struct request *rq);
void route_stage_get(struct request *rq);
void route_stage_rename(struct request *rq);
void route_stage_delete(struct request *rq);

void route_viewer_kick(struct request *rq);
void route_stage_participants(struct request *rq);
void route_ivs_events(struct request *rq);
void route_test_participants(struct request *rq);

void route_health(struct request *rq);
void route_root(struct request *rq);

/* Shared by the handlers. */

/* Answers a store error that is not STORE_OK: Redis trouble (503 with
 * Retry-After), a refusal (404, 403, 400 or 503, SPEC §2 codes), or an
 * answer nobody expected (500). The one table from store errors to HTTP. */
void respond_store_error(struct request *rq, enum store_error err, const char *detail);
/* The stages of the stats view, as /api/stats shows them
 * ({stageId, viewerCount, info}) or, with list_shape, as /api/stage/list
 * does ({stageArn, name, viewerCount, autoScaled, createdAt}); both with
 * mode, replication and isMasterStage. */
json_t *stage_entries(const struct stats_view *view, bool list_shape);
/* One of those entries (a new reference; NULL when out of memory). */
json_t *stage_entry(const struct stage_entry *e, bool list_shape);
/* {spareSeats, capacityPerStage, spareInUse}: the free seats in open
 * stages, "in use" once less than one stage's worth is left (the scaler is
 * then adding a stage). */
json_t *stage_spare(const struct stats_view *view, long capacity);
/* The data of GET /api/stats (SPEC §2) for the view, stamped `timestamp`. */
json_t *stats_data(const struct stats_view *view, const char *timestamp);
/* The `services` object of GET /health: {redis: {status, latencyMs |
 * error}, ivs: {provider, region}}; latency_ms of the Redis call that
 * found Redis up. */
struct app;
json_t *health_services(const struct app *app, bool redis_up, double latency_ms);
/* One stage event as GET /api/stage/events lists it. */
json_t *stage_event_json(const struct stage_event *e);
/* Has a viewer token issued for the seat and answers with data plus the
 * token's fields (tokens.c; the issuing is tokens/issue.h). */
void answer_with_viewer_token(struct request *rq, json_t *data, const char *user_id,
                              const char *stage_arn, const char *participant_id);
/* The body's userId/stageArn, already validated by the handler. */
const char *body_str(struct request *rq, const char *name);

#endif
