/* replicas.c — see replicas.h. One check at a time, its state in this
 * process only; every write it makes is fenced by the lease. */
#include "reconcile/replicas.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "app.h"
#include "ivs/ids.h"
#include "ivs/provider.h"
#include "stages/events.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/log.h"

struct replicas {
    struct app *app;
    const char *holder;              /* the scaler's lease id */
    bool checking;
    char publisher[PARTICIPANT_ID_MAX + 1];
    char master[STAGE_ARN_MAX + 1];
    int64_t looked_ms;               /* when the publisher was looked for */
    json_t *active;                  /* destinations IVS lists active: arn → true */
};

struct replicas *replicas_new(struct app *app, const char *holder)
{
    struct replicas *x = calloc(1, sizeof *x);
    if (x)
        *x = (struct replicas){.app = app, .holder = holder};
    return x;
}

void replicas_free(struct replicas *x)
{
    if (!x)
        return;
    json_decref(x->active);
    free(x);
}

static void check_end(struct replicas *x, const char *why)
{
    if (why)
        log_warn("replicas: check ended early: %s", why);
    json_decref(x->active);
    x->active = NULL;
    x->checking = false;
}

static bool alive(const struct replicas *x) { return x->app->provider && x->app->store; }

/* ---- acting --------------------------------------------------------------- */

static void written(void *arg, enum store_error err, const char *detail)
{
    char *arn = arg;
    if (err != STORE_OK && err != STORE_NO_STAGE)
        log_warn("replicas: the record of %s not written: %s", arn, detail);
    free(arn);
}

/* Writes e's replication as running from the publisher (running) or as
 * none, for the scaler to start it again. */
static void record(struct replicas *x, const struct stage_entry *e, bool running)
{
    struct stage_state st = e->state;
    st.replication = running ? REPL_RUNNING : REPL_NONE;
    st.attempts = 0, st.retry_at_ms = 0, st.error[0] = '\0';
    snprintf(st.participant, sizeof st.participant, "%s", running ? x->publisher : "");
    st.running_since_ms = running ? x->looked_ms : 0;
    char *arn = strdup(e->arn);
    if (arn)
        store_stage_update(x->app->store, x->holder, e->arn, e->mode, &st, written, arn);
}

static void stopped(void *arg, const char *error)
{
    char *arn = arg;
    if (error)
        log_warn("replicas: the replication into %s not stopped: %s", arn, error);
    free(arn);
}

/* Stops the replication of participant from the master into dest. */
static void stop(struct replicas *x, const char *dest, const char *participant)
{
    char *arn = strdup(dest);
    if (arn)
        x->app->provider->ops->stop_replication(x->app->provider, x->master, dest, participant,
                                                stopped, arn);
}

/* A stage event and a log line, the detail as printf's fmt says. */
__attribute__((format(printf, 4, 5)))
static void event(struct replicas *x, const char *type, const char *arn, const char *fmt, ...)
{
    char detail[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    log_info("replicas: %s %s: %s", type, arn, detail);
    stage_event(x->app, clock_now_ms(), type, arn, detail);
}

/* ---- judging -------------------------------------------------------------- */

/* One stage fed from the master; active: IVS lists the publisher's
 * replication into it as active. */
static void judge_stage(struct replicas *x, const struct stage_entry *e, bool active)
{
    const struct stage_state *st = &e->state;
    if (st->replication == REPL_RUNNING) {
        if (st->running_since_ms >= x->looked_ms)
            return;                  /* started after the look: newer than IVS's answer */
        if (st->participant[0] && strcmp(st->participant, x->publisher) != 0) {
            event(x, "replication_stale", e->arn, "the publisher joined again as %s (was %s)",
                  x->publisher, st->participant);
            stop(x, e->arn, st->participant);
            record(x, e, active);
        } else if (!active) {
            event(x, "replication_lost", e->arn,
                  "IVS lists no replication of %s into it; started again", x->publisher);
            record(x, e, false);
        } else if (!st->participant[0]) {
            record(x, e, true);      /* recorded before ids were: now known */
        }
        return;
    }
    if (active && st->replication != REPL_PENDING && e->mode != MODE_DRAINING) {
        event(x, "replication_adopted", e->arn, "IVS replicates %s into it; recorded as running",
              x->publisher);
        record(x, e, true);
    }
}

static void judge(struct replicas *x, const struct stats_view *v)
{
    for (size_t i = 0; i < v->count; i++) {
        const struct stage_entry *e = &v->stages[i];
        const char *parent = e->info.parent ? e->info.parent : v->master_arn;
        if (e->master || strcmp(parent, x->master) != 0)
            continue;
        bool active = json_object_get(x->active, e->arn) != NULL;
        json_object_del(x->active, e->arn);
        judge_stage(x, e, active);
    }
    const char *dest;
    json_t *on;
    json_object_foreach(x->active, dest, on) {
        (void)on;
        event(x, "replication_unknown", dest,
              "IVS replicates %s into a stage usher does not feed from %s; stopped", x->publisher,
              x->master);
        stop(x, dest, x->publisher);
    }
}

static void viewed(void *arg, enum store_error err, const char *detail, const struct stats_view *v)
{
    struct replicas *x = arg;
    if (err != STORE_OK || !alive(x)) {
        check_end(x, err != STORE_OK ? detail : NULL);
        return;
    }
    /* The master changed meanwhile (Redis lost and rebuilt): next time. */
    if (strcmp(v->master_arn, x->master) == 0)
        judge(x, v);
    check_end(x, NULL);
}

static void listed(void *arg, const struct provider_replica *items, size_t n, const char *error)
{
    struct replicas *x = arg;
    if (error || !alive(x) || !(x->active = json_object())) {
        check_end(x, error ? error : alive(x) ? "out of memory" : NULL);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (items[i].active && items[i].dest)
            json_object_set_new(x->active, items[i].dest, json_true());
    /* Redis is read after IVS: a stage is recorded before its replication
     * starts, so every replication listed has its record by now. */
    store_stats(x->app->store, viewed, x);
}

void replicas_check(struct replicas *x, const char *publisher, int64_t looked_ms)
{
    struct stage_provider *p = x->app->provider;
    if (x->checking || !p || !x->app->store || !publisher[0] || !x->app->master_arn[0] ||
        strlen(publisher) > PARTICIPANT_ID_MAX)
        return;
    x->checking = true;
    x->looked_ms = looked_ms;
    snprintf(x->publisher, sizeof x->publisher, "%s", publisher);
    snprintf(x->master, sizeof x->master, "%s", x->app->master_arn);
    p->ops->list_replicas(p, x->master, x->publisher, listed, x);
}
