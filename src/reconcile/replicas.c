/* replicas.c — see replicas.h. One check at a time, its state in this
 * process only; every write it makes is fenced by the lease, and nothing
 * is sent or stopped before Redis has taken that write. */
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
    char source[STAGE_ARN_MAX + 1];  /* whose replications are listed now: the
                                      * master, then each overflow stage that
                                      * feeds another (REPLICATION_CHAINING) */
    json_t *sources;                 /* those overflow stages still to list, from
                                      * the first read of Redis; NULL before it */
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
    json_decref(x->sources);
    free(x);
}

static void check_end(struct replicas *x, const char *why)
{
    if (why)
        log_warn("replicas: check ended early: %s", why);
    json_decref(x->active);
    json_decref(x->sources);
    x->active = x->sources = NULL;
    x->checking = false;
}

static bool alive(const struct replicas *x) { return x->app->provider && x->app->store; }

/* ---- acting --------------------------------------------------------------- */

/* One judgement, acted on (its event, its stop) only once Redis has taken
 * its lease-fenced write: the record of the stage, or the claim of the
 * stop. A process whose lease moved, or whose read of the stage another
 * writer overtook, acts on nothing. Owns its copies: the check may end,
 * and another start, before Redis answers. */
struct verdict {
    struct replicas *x;
    const char *type;                          /* the stage event, NULL: none */
    char detail[300];
    char dest[STAGE_ARN_MAX + 1];
    char source[STAGE_ARN_MAX + 1];            /* the stage dest is fed from */
    char stop[PARTICIPANT_ID_MAX + 1];         /* whose replication to stop, "": none */
};

/* A verdict on dest (malloc'd, NULL when out of memory), type its event
 * or NULL, stop the participant id whose replication into dest is stopped
 * ("" for none). */
static struct verdict *verdict_new(struct replicas *x, const char *dest, const char *type,
                                   const char *stop)
{
    struct verdict *v = malloc(sizeof *v);
    if (!v) {
        log_warn("replicas: the judgement of %s dropped: out of memory", dest);
        return NULL;
    }
    *v = (struct verdict){.x = x, .type = type};
    snprintf(v->dest, sizeof v->dest, "%s", dest);
    snprintf(v->source, sizeof v->source, "%s", x->source);
    snprintf(v->stop, sizeof v->stop, "%s", stop);
    return v;
}

/* The event's detail, as printf's fmt says. */
__attribute__((format(printf, 2, 3)))
static void say(struct verdict *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->detail, sizeof v->detail, fmt, ap);
    va_end(ap);
}

static void stopped(void *arg, const char *error)
{
    struct verdict *v = arg;
    if (error)
        log_warn("replicas: the replication of %s into %s not stopped: %s", v->stop, v->dest, error);
    free(v);
}

/* Redis took v's write: its event and its stop; frees v. */
static void act(struct verdict *v)
{
    struct app *app = v->x->app;
    if (v->type) {
        log_info("replicas: %s %s: %s", v->type, v->dest, v->detail);
        stage_event(app, clock_now_ms(), v->type, v->dest, v->detail);
    }
    if (!v->stop[0]) {
        free(v);
        return;
    }
    app->provider->ops->stop_replication(app->provider, v->source, v->dest, v->stop, stopped, v);
}

/* Redis's answer to v's write: n 1 taken. */
static void written(void *arg, enum store_error err, const char *detail, long long n)
{
    struct verdict *v = arg;
    if (err == STORE_OK && n == 1 && alive(v->x)) {
        act(v);
        return;
    }
    if (err == STORE_NOT_LEADER || (err == STORE_OK && n != 1))
        log_info("replicas: %s %s not acted on: %s", v->type ? v->type : "the record of", v->dest,
                 err == STORE_OK ? "changed since it was read" : "the lease moved");
    else if (err != STORE_OK)
        log_warn("replicas: the judgement of %s not written: %s", v->dest, detail);
    free(v);
}

/* Writes e's replication as running from the publisher (running) or as
 * none, for the scaler to start it again; then acts on v (NULL: nothing,
 * out of memory). */
static void record(struct replicas *x, const struct stage_entry *e, bool running,
                   struct verdict *v)
{
    if (!v)
        return;
    struct stage_state st = e->state;
    st.replication = running ? REPL_RUNNING : REPL_NONE;
    st.attempts = 0, st.retry_at_ms = 0, st.error[0] = '\0';
    snprintf(st.participant, sizeof st.participant, "%s", running ? x->publisher : "");
    st.running_since_ms = running ? x->looked_ms : 0;
    store_replica_record(x->app->store, x->holder, e->arn, e->mode, &e->state, &st, written, v);
}

/* ---- judging -------------------------------------------------------------- */

/* One stage fed from the master recorded running; active: IVS lists the
 * publisher's replication into it as active. */
static void judge_running(struct replicas *x, const struct stage_entry *e, bool active)
{
    const struct stage_state *st = &e->state;
    struct verdict *v;
    if (st->running_since_ms >= x->looked_ms)
        return;                      /* started after the look: newer than IVS's answer */
    if (st->participant[0] && strcmp(st->participant, x->publisher) != 0) {
        if ((v = verdict_new(x, e->arn, "replication_stale", st->participant)))
            say(v, "the publisher joined again as %s (was %s)", x->publisher, st->participant);
        record(x, e, active, v);
    } else if (!active) {
        if ((v = verdict_new(x, e->arn, "replication_lost", "")))
            say(v, "IVS lists no replication of %s into it; started again", x->publisher);
        record(x, e, false, v);
    } else if (!st->participant[0]) {
        record(x, e, true, verdict_new(x, e->arn, NULL, ""));   /* recorded before ids were */
    }
}

static void judge_stage(struct replicas *x, const struct stage_entry *e, bool active)
{
    if (e->state.replication == REPL_RUNNING) {
        judge_running(x, e, active);
        return;
    }
    if (active && e->state.replication != REPL_PENDING && e->mode != MODE_DRAINING) {
        struct verdict *v = verdict_new(x, e->arn, "replication_adopted", "");
        if (v)
            say(v, "IVS replicates %s into it; recorded as running", x->publisher);
        record(x, e, true, v);
    }
}

/* A replication IVS lists into a stage usher does not feed from the
 * master: stopped, once the stop is claimed in Redis. */
static void judge_unknown(struct replicas *x, const char *dest)
{
    struct verdict *v = verdict_new(x, dest, "replication_unknown", x->publisher);
    if (!v)
        return;
    say(v, "IVS replicates %s into a stage usher does not feed from %s; stopped", x->publisher,
        x->source);
    store_replica_claim(x->app->store, x->holder, dest, x->publisher, STORE_STOP_CLAIM_MS, written, v);
}

static void judge(struct replicas *x, const struct stats_view *v)
{
    for (size_t i = 0; i < v->count; i++) {
        const struct stage_entry *e = &v->stages[i];
        const char *parent = e->info.parent ? e->info.parent : v->master_arn;
        if (e->master || strcmp(parent, x->source) != 0)
            continue;
        bool active = json_object_get(x->active, e->arn) != NULL;
        json_object_del(x->active, e->arn);
        judge_stage(x, e, active);
    }
    const char *dest;
    json_t *on;
    json_object_foreach(x->active, dest, on) {
        (void)on;
        judge_unknown(x, dest);
    }
}

/* Whether array (of strings) holds s. */
static bool holds(const json_t *array, const char *s)
{
    size_t i;
    const json_t *one;
    json_array_foreach(array, i, one)
        if (strcmp(json_string_value(one), s) == 0)
            return true;
    return false;
}

/* The overflow stages of v that feed another of v's stages
 * (REPLICATION_CHAINING): a new array (NULL when out of memory). */
static json_t *chained_sources(const struct stats_view *v)
{
    json_t *sources = json_array();
    for (size_t i = 0; sources && i < v->count; i++)
        for (size_t k = 0; k < v->count; k++) {
            const char *parent = v->stages[k].info.parent;
            const char *arn = v->stages[i].arn;
            if (!v->stages[i].master && parent && strcmp(parent, arn) == 0 && !holds(sources, arn))
                json_array_append_new(sources, json_string(arn));
        }
    return sources;
}

static void listed(void *arg, const struct provider_replica *items, size_t n, const char *error);

/* Lists the replications out of the next source, or ends the check. */
static void list_next(struct replicas *x)
{
    json_decref(x->active);
    x->active = NULL;
    if (!json_array_size(x->sources)) {
        check_end(x, NULL);
        return;
    }
    snprintf(x->source, sizeof x->source, "%s", json_string_value(json_array_get(x->sources, 0)));
    json_array_remove(x->sources, 0);
    x->app->provider->ops->list_replicas(x->app->provider, x->source, x->publisher, listed, x);
}

static void viewed(void *arg, enum store_error err, const char *detail, const struct stats_view *v)
{
    struct replicas *x = arg;
    if (err != STORE_OK || !alive(x)) {
        check_end(x, err != STORE_OK ? detail : NULL);
        return;
    }
    /* The master changed meanwhile (Redis lost and rebuilt): next time. */
    if (strcmp(v->master_arn, x->master) != 0) {
        check_end(x, NULL);
        return;
    }
    judge(x, v);
    if (!x->sources && !(x->sources = chained_sources(v))) {
        check_end(x, "out of memory");
        return;
    }
    list_next(x);
}

static void listed(void *arg, const struct provider_replica *items, size_t n, const char *error)
{
    struct replicas *x = arg;
    if (error || !alive(x) || !(x->active = json_object())) {
        check_end(x, error ? error : alive(x) ? "out of memory" : NULL);
        return;
    }
    for (size_t i = 0; i < n; i++)   /* one left out would be judged lost or let run */
        if (items[i].active && items[i].dest &&
            json_object_set_new(x->active, items[i].dest, json_true()) < 0) {
            check_end(x, "out of memory");
            return;
        }
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
    snprintf(x->source, sizeof x->source, "%s", x->master);
    p->ops->list_replicas(p, x->source, x->publisher, listed, x);
}
