/* publisher.c — whether the publisher is live (SPEC §2 "Publisher").
 * The state is one Redis key with a day's TTL, so a publisher that
 * vanished without saying so is not live forever. */
#include "routes/routes.h"

#include <string.h>

#include "app.h"
#include "http/request.h"
#include "stages/recovery.h"

static void status_written(void *arg, enum store_error err, const char *detail)
{
    struct request *rq = arg;
    if (err != STORE_OK) {
        respond_store_error(rq, err, detail);
        return;
    }
    recovery_publisher_seen(rq->app->recovery, strcmp(body_str(rq, "status"), "live") == 0);
    respond_ok(rq, 200, json_pack("{s:b, s:s}", "isPublisherLive",
                                  strcmp(body_str(rq, "status"), "live") == 0,
                                  "status", body_str(rq, "status")));
}

void route_publisher_status_put(struct request *rq)
{
    const char *status = body_str(rq, "status");
    if (!status || (strcmp(status, "live") != 0 && strcmp(status, "offline") != 0)) {
        respond_invalid(rq, "status must be \"live\" or \"offline\"", json_pack("[s]", "status"));
        return;
    }
    store_publisher_set(rq->app->store, strcmp(status, "live") == 0, status_written, rq);
}

static void status_read(void *arg, enum store_error err, const char *detail, long long live)
{
    struct request *rq = arg;
    if (err != STORE_OK) {
        respond_store_error(rq, err, detail);
        return;
    }
    respond_ok(rq, 200, json_pack("{s:b}", "isPublisherLive", live == 1));
}

void route_publisher_status_get(struct request *rq)
{
    store_publisher_get(rq->app->store, status_read, rq);
}
