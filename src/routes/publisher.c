/* publisher.c — whether the publisher is live (SPEC §2 "Publisher").
 * The state is one Redis key with a day's TTL, so a publisher that
 * vanished without saying so is not live forever. */
#include "routes/routes.h"

#include <stdio.h>
#include <string.h>

#include "app.h"
#include "http/request.h"
#include "store/store.h"

static void status_written(void *arg, redisReply *reply, const char *error)
{
    struct request *rq = arg;
    if (answer_store_failure(rq, reply, error))
        return;
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
    char key[128], ttl[16];
    store_key(rq->app->store, key, sizeof key, "publisher:status", NULL);
    snprintf(ttl, sizeof ttl, "%d", PUBLISHER_STATUS_TTL_S);
    const char *argv[] = {"SET", key, status, "EX", ttl};
    redis_command(rq->app->store->redis, status_written, rq, 5, argv, NULL);
}

static void status_read(void *arg, redisReply *reply, const char *error)
{
    struct request *rq = arg;
    if (answer_store_failure(rq, reply, error))
        return;
    bool live = reply->type == REDIS_REPLY_STRING && strcmp(reply->str, "live") == 0;
    respond_ok(rq, 200, json_pack("{s:b}", "isPublisherLive", live));
}

void route_publisher_status_get(struct request *rq)
{
    char key[128];
    store_key(rq->app->store, key, sizeof key, "publisher:status", NULL);
    const char *argv[] = {"GET", key};
    redis_command(rq->app->store->redis, status_read, rq, 2, argv, NULL);
}
