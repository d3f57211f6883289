/* stages.c — see stages.h. A stage is created in two steps, each
 * asynchronous: the provider makes it, then one script records it, checking
 * MAX_STAGES atomically. If the record is refused the provider's stage is
 * left unused; with the local provider that costs nothing. */
#include "stages/stages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "config/config.h"
#include "ivs/provider.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/log.h"

enum master_mode { NOT_MASTER, MASTER_UNLESS_ONE, MASTER_FORCED };

struct creation {
    struct app *app;
    stage_created_fn done;
    void *arg;
    char *name;
    bool auto_scaled;
    enum master_mode master;
    json_t *info;
};

static void creation_end(struct creation *c, enum stage_outcome outcome,
                         const char *error)
{
    if (c->done)
        c->done(c->arg, outcome, outcome == STAGE_CREATED ? json_incref(c->info) : NULL, error);
    json_decref(c->info);
    free(c->name);
    free(c);
}

static void recorded(void *arg, redisReply *reply, const char *error)
{
    struct creation *c = arg;
    if (error) {
        creation_end(c, STAGE_UNAVAILABLE, error);
        return;
    }
    switch (store_refusal(reply)) {
    case REFUSAL_NONE:
        break;
    case REFUSAL_STAGE_LIMIT:
        creation_end(c, STAGE_LIMIT, "MAX_STAGES reached");
        return;
    default:
        creation_end(c, STAGE_FAILED, reply->str);
        return;
    }
    if (c->master != NOT_MASTER && reply->type == REDIS_REPLY_STRING) {
        snprintf(c->app->master_arn, sizeof c->app->master_arn, "%s", reply->str);
        log_info("master stage: %s", c->app->master_arn);
    }
    creation_end(c, STAGE_CREATED, NULL);
}

static void record(struct creation *c, const char *arn)
{
    int64_t now = clock_now_ms();
    char created_iso[32], created_ms[24], ttl[16], max[16];
    clock_iso8601(now, created_iso, sizeof created_iso);
    snprintf(created_ms, sizeof created_ms, "%lld", (long long)now);
    snprintf(ttl, sizeof ttl, "%d", STAGE_KEY_TTL_S);
    snprintf(max, sizeof max, "%ld", c->app->cfg->max_stages);
    c->info = json_pack("{s:s, s:s, s:b, s:s}", "name", c->name, "arn", arn,
                        "autoScaled", c->auto_scaled, "createdAt", created_iso);
    char *info = json_dumps(c->info, JSON_COMPACT);
    const char *mode = c->master == NOT_MASTER ? "0" : c->master == MASTER_FORCED ? "2" : "1";
    const char *argv[] = {arn, info ? info : "{}", created_ms, ttl, max, mode};
    store_run(c->app->store, SCRIPT_STAGE_ADD, recorded, c, 6, argv);
    free(info);
}

static void provided(void *arg, const char *arn, const char *error)
{
    struct creation *c = arg;
    if (!arn) {
        log_error("stage provider could not create a stage: %s", error);
        creation_end(c, STAGE_FAILED, error);
        return;
    }
    record(c, arn);
}

static struct creation *creation_new(struct app *app, const char *name, bool auto_scaled,
                                     enum master_mode master, stage_created_fn done, void *arg)
{
    struct creation *c = calloc(1, sizeof *c);
    if (!c || !(c->name = strdup(name))) {
        free(c);
        if (done)
            done(arg, STAGE_FAILED, NULL, "out of memory");
        return NULL;
    }
    c->app = app;
    c->done = done;
    c->arg = arg;
    c->auto_scaled = auto_scaled;
    c->master = master;
    return c;
}

void stage_create(struct app *app, const char *name, bool auto_scaled,
                  stage_created_fn done, void *arg)
{
    struct creation *c = creation_new(app, name, auto_scaled, NOT_MASTER, done, arg);
    if (c)
        app->provider->ops->create_stage(app->provider, name, provided, c);
}

static void master_looked_up(void *arg, redisReply *reply, const char *error)
{
    struct app *app = arg;
    if (error || !reply || reply->type == REDIS_REPLY_ERROR)
        return;                     /* the next reconnect tries again */
    if (reply->type == REDIS_REPLY_STRING) {
        snprintf(app->master_arn, sizeof app->master_arn, "%s", reply->str);
        return;
    }
    struct creation *c = creation_new(app, "master-stage", false, MASTER_UNLESS_ONE, NULL, NULL);
    if (c)
        app->provider->ops->create_stage(app->provider, "master-stage", provided, c);
}

void stage_ensure_master(struct app *app)
{
    if (app->cfg->master_stage_arn[0]) {
        struct creation *c = creation_new(app, "master-stage", false, MASTER_FORCED, NULL, NULL);
        if (c)
            record(c, app->cfg->master_stage_arn);
        return;
    }
    char key[128];
    store_key(app->store, key, sizeof key, "master_stage", NULL);
    const char *argv[] = {"GET", key};
    redis_command(app->store->redis, master_looked_up, app, 2, argv, NULL);
}
