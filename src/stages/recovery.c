/* recovery.c — see recovery.h. */
#include "stages/recovery.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>

#include "app.h"
#include "config/config.h"
#include "ivs/provider.h"
#include "stages/stages.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/log.h"

#define STATE_ID_BYTES 8

struct recovery {
    struct app *app;
    struct event *timer;
    bool checking;
    bool rebuilding;
    bool lost;                       /* the rebuild follows a loss (not a first start) */
    bool publisher_live;             /* publisher:status last seen, kept for a rebuild */
    char state_id[2 * STATE_ID_BYTES + 1];   /* the life of the state last seen, "" none */
    char problem[256];
    char last_repair[512];
    int64_t last_repair_ms;
};

static void repaired(struct recovery *r, const char *what)
{
    snprintf(r->last_repair, sizeof r->last_repair, "%s", what);
    r->last_repair_ms = clock_now_ms();
}

/* ---- stages the provider still has ------------------------------------------ */

static void adopted(void *arg, enum store_error err, json_t *info, const char *detail)
{
    (void)arg;
    if (err != STORE_OK)
        log_error("state rebuild: a stage could not be recorded again: %s", detail);
    json_decref(info);
}

static void listed(void *arg, const struct provider_stage *stages, size_t n, const char *error)
{
    struct recovery *r = arg;
    if (!r->app->store)
        return;                     /* stopping */
    if (error) {
        log_error("state rebuild: the provider could not list its stages: %s", error);
        return;
    }
    int64_t now = clock_now_ms();
    size_t again = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(stages[i].arn, r->app->master_arn) == 0)
            continue;
        stage_adopt(r->app, &stages[i], now, adopted, NULL);
        again++;
    }
    if (again)
        log_error("state rebuild: recording %zu stages the provider still has", again);
}

static void adopt_provider_stages(struct recovery *r)
{
    struct stage_provider *p = r->app->provider;
    if (!p)                          /* shutting down: the provider is gone */
        return;
    if (p->ops->list_stages)
        p->ops->list_stages(p, listed, r);
    else
        log_warn("state rebuild: the %s provider cannot list its stages; added stages are "
                 "made again by the scaler", p->ops->name);
}

/* ---- the master -------------------------------------------------------------- */

static void publisher_restored(void *arg, enum store_error err, const char *detail,
                               const char *previous)
{
    (void)arg, (void)previous;
    if (err != STORE_OK)
        log_error("state rebuild: the publisher could not be marked live again: %s", detail);
    else
        log_warn("state rebuild: the publisher, last seen live, is marked live again");
}

static void master_recorded(void *arg, enum store_error err, json_t *info, const char *detail)
{
    struct recovery *r = arg;
    json_decref(info);
    r->rebuilding = false;
    if (err != STORE_OK) {
        snprintf(r->problem, sizeof r->problem, "the master stage could not be recorded: %s", detail);
        log_error("state rebuild: %s", r->problem);
        return;
    }
    r->problem[0] = '\0';
    if (r->lost) {
        adopt_provider_stages(r);
        if (r->publisher_live)
            store_publisher_set(r->app->store, true, publisher_restored, r);
    }
    recovery_check(r);               /* learns the new state id */
}

/* No master stage is recorded: a first start, or the state was lost. */
static void rebuild(struct recovery *r)
{
    struct app *app = r->app;
    if (r->rebuilding)
        return;
    r->lost = r->state_id[0] || app->master_arn[0];
    if (r->lost) {
        log_error("redis lost usher's state (state id %s, master stage %s no longer recorded): "
                  "rebuilding", r->state_id[0] ? r->state_id : "-", app->master_arn);
        char what[sizeof r->last_repair];
        snprintf(what, sizeof what, "the state was lost and rebuilt (master stage %s)",
                 app->cfg->master_stage_arn[0] ? app->cfg->master_stage_arn
                 : app->master_arn[0] ? app->master_arn : "new");
        repaired(r, what);
    }
    r->state_id[0] = '\0';
    r->rebuilding = true;
    snprintf(r->problem, sizeof r->problem, "recording the master stage");
    stage_recover_master(app, master_recorded, r);
}

/* ---- the check ------------------------------------------------------------------ */

static void checked(void *arg, enum store_error err, const char *detail, const struct state_check *c)
{
    struct recovery *r = arg;
    r->checking = false;
    if (err != STORE_OK) {
        /* Redis away is the store's to report; anything else is ours. */
        if (err != STORE_UNAVAILABLE) {
            snprintf(r->problem, sizeof r->problem, "the state check failed: %s", detail);
            log_error("redis: %s", r->problem);
        }
        return;
    }
    for (size_t i = 0; i < c->nproblems; i++) {
        log_error("redis: %s", c->problems[i]);
        repaired(r, c->problems[i]);
    }
    if (c->publisher[0])
        r->publisher_live = strcmp(c->publisher, "live") == 0;
    struct app *app = r->app;
    const char *forced = app->cfg->master_stage_arn;
    if (!c->master_arn[0] || (forced[0] && strcmp(forced, c->master_arn) != 0)) {
        rebuild(r);
        return;
    }
    if (strcmp(app->master_arn, c->master_arn) != 0) {
        log_info("master stage: %s", c->master_arn);
        snprintf(app->master_arn, sizeof app->master_arn, "%s", c->master_arn);
    }
    if (r->state_id[0] && strcmp(r->state_id, c->state_id) != 0) {
        log_error("redis lost usher's state and it was rebuilt (state id %s, now %s): "
                  "recording this process's stages again", r->state_id, c->state_id);
        adopt_provider_stages(r);
    }
    snprintf(r->state_id, sizeof r->state_id, "%s", c->state_id);
    if (!r->rebuilding)
        r->problem[0] = '\0';
}

void recovery_check(struct recovery *r)
{
    unsigned char raw[STATE_ID_BYTES];
    char id[2 * STATE_ID_BYTES + 1];
    /* No store: shutting down (its timer may fire while the loop is flushed). */
    if (r->checking || !r->app->store || !store_ready(r->app->store) || RAND_bytes(raw, sizeof raw) != 1)
        return;
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(id + 2 * i, 3, "%02x", raw[i]);
    r->checking = true;
    store_check(r->app->store, id, checked, r);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    recovery_check(arg);
}

struct recovery *recovery_new(struct app *app)
{
    struct recovery *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->app = app;
    r->timer = event_new(app->base, -1, EV_PERSIST, on_timer, r);
    struct timeval every = {STATE_CHECK_MS / 1000, (STATE_CHECK_MS % 1000) * 1000};
    if (!r->timer || event_add(r->timer, &every) != 0) {
        if (r->timer)
            event_free(r->timer);
        free(r);
        return NULL;
    }
    return r;
}

void recovery_free(struct recovery *r)
{
    if (!r)
        return;
    event_free(r->timer);
    free(r);
}

void recovery_publisher_seen(struct recovery *r, bool live) { r->publisher_live = live; }

const char *recovery_problem(const struct recovery *r) { return r->problem; }

const char *recovery_last_repair(const struct recovery *r, int64_t *at_ms)
{
    *at_ms = r->last_repair_ms;
    return r->last_repair;
}
