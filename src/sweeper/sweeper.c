/* sweeper.c — see sweeper.h.
 *
 * A sweep removes at most BATCH viewers per script call, so Redis is never
 * held for long (about a millisecond per thousand viewers); while a call
 * comes back full, the next one follows at once. One sweep is in flight at
 * a time per process. */
#include "sweeper/sweeper.h"

#include <stdio.h>
#include <stdlib.h>

#include "app.h"
#include "config/config.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/log.h"

#define BATCH 1000
#define RENEW_INTERVAL_S 300

struct sweeper {
    struct app *app;
    struct event *sweep_timer;
    struct event *renew_timer;
    bool sweeping;
    long removed;                   /* in the sweep under way */
};

static void sweep_batch(struct sweeper *s);

static void batch_done(void *arg, redisReply *reply, const char *error)
{
    struct sweeper *s = arg;
    if (error || reply->type != REDIS_REPLY_INTEGER) {
        log_warn("sweep: %s", error ? error : reply->type == REDIS_REPLY_ERROR ? reply->str : "odd reply");
        s->sweeping = false;
        return;
    }
    s->removed += reply->integer;
    if (reply->integer >= BATCH) {
        sweep_batch(s);
        return;
    }
    if (s->removed > 0)
        log_info("sweep: %ld silent viewers removed", s->removed);
    s->sweeping = false;
}

static void sweep_batch(struct sweeper *s)
{
    char cutoff[24], batch[16];
    snprintf(cutoff, sizeof cutoff, "%lld",
             (long long)(clock_now_ms() - s->app->cfg->heartbeat_timeout * 1000));
    snprintf(batch, sizeof batch, "%d", BATCH);
    const char *argv[] = {cutoff, batch};
    store_run(s->app->store, SCRIPT_SWEEP, batch_done, s, 2, argv);
}

static void on_sweep_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct sweeper *s = arg;
    if (s->sweeping || !redis_is_ready(s->app->store->redis))
        return;
    s->sweeping = true;
    s->removed = 0;
    sweep_batch(s);
}

static void renewed(void *arg, redisReply *reply, const char *error)
{
    (void)arg;
    if (error || reply->type == REDIS_REPLY_ERROR)
        log_warn("stage renewal: %s", error ? error : reply->str);
}

static void on_renew_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct sweeper *s = arg;
    if (!redis_is_ready(s->app->store->redis))
        return;
    char ttl[16];
    snprintf(ttl, sizeof ttl, "%d", STAGE_KEY_TTL_S);
    const char *argv[] = {ttl};
    store_run(s->app->store, SCRIPT_STAGE_RENEW, renewed, s, 1, argv);
}

struct sweeper *sweeper_new(struct app *app)
{
    struct sweeper *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->app = app;
    s->sweep_timer = event_new(app->base, -1, EV_PERSIST, on_sweep_timer, s);
    s->renew_timer = event_new(app->base, -1, EV_PERSIST, on_renew_timer, s);
    if (!s->sweep_timer || !s->renew_timer) {
        sweeper_free(s);
        return NULL;
    }
    struct timeval sweep_every = {app->cfg->heartbeat_cleanup_interval, 0};
    struct timeval renew_every = {RENEW_INTERVAL_S, 0};
    evtimer_add(s->sweep_timer, &sweep_every);
    evtimer_add(s->renew_timer, &renew_every);
    return s;
}

void sweeper_free(struct sweeper *s)
{
    if (!s)
        return;
    if (s->sweep_timer)
        event_free(s->sweep_timer);
    if (s->renew_timer)
        event_free(s->renew_timer);
    free(s);
}
