/* sweeper.c — see sweeper.h.
 *
 * A sweep removes at most BATCH viewers per store call, so Redis is never
 * held for long (about a millisecond per thousand viewers); while a call
 * comes back full, the next one follows at once. One sweep is in flight at
 * a time per process. */
#include "sweeper/sweeper.h"

#include <stdlib.h>

#include "app.h"
#include "config/config.h"
#include "metrics/metrics.h"
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

static void batch_done(void *arg, enum store_error err, const char *detail, long long removed)
{
    struct sweeper *s = arg;
    if (err != STORE_OK) {
        log_warn("sweep: %s", detail);
        s->sweeping = false;
        return;
    }
    s->removed += removed;
    metrics_add(s->app->metrics, METRIC_EXPIRIES, removed);
    if (removed >= BATCH) {
        sweep_batch(s);
        return;
    }
    if (s->removed > 0)
        log_info("sweep: %ld silent viewers removed", s->removed);
    s->sweeping = false;
}

static void sweep_batch(struct sweeper *s)
{
    store_sweep(s->app->store, clock_now_ms() - s->app->cfg->heartbeat_timeout * 1000, BATCH,
                batch_done, s);
}

static void on_sweep_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct sweeper *s = arg;
    if (s->sweeping || !store_ready(s->app->store))
        return;
    s->sweeping = true;
    s->removed = 0;
    sweep_batch(s);
}

static void renewed(void *arg, enum store_error err, const char *detail, long long renewed)
{
    (void)arg, (void)renewed;
    if (err != STORE_OK)
        log_warn("stage renewal: %s", detail);
}

static void on_renew_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct sweeper *s = arg;
    if (!store_ready(s->app->store))
        return;
    store_stage_renew(s->app->store, renewed, s);
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
