/* scaler.c — see scaler.h.
 *
 * One tick at a time: lease → view (store_stats) → decide → act. Actions
 * run asynchronously and may outlive the tick; each holds copies of what it
 * needs. The scaler writes a stage's bookkeeping (struct stage_state:
 * replication state, attempts, next retry, drain start) only under the
 * lease, so its read-modify-write cannot race another scaler. The time of
 * its last change, which SCALE_DOWN_COOLDOWN counts from, is kept in Redis
 * too (written by the step that adds or drains a stage, answered with the
 * lease), so a process that takes the lease over, or starts afresh, keeps
 * the cooldown another process began. */
#include "scaler/scaler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>

#include "app.h"
#include "config/config.h"
#include "ivs/provider.h"
#include "reconcile/reconcile.h"
#include "scaler/policy.h"
#include "stages/events.h"
#include "stages/evict.h"
#include "stages/orphans.h"
#include "stages/stages.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/waiters.h"

#define MAX_ACTIONS 64
#define REPLICATION_RETRY_MAX_MS 30000
/* A start not answered by then (its scaler died) is tried again. */
#define REPLICATION_PENDING_MS 10000

struct scaler {
    struct app *app;
    struct event *timer;
    struct event *wake;              /* a tick now (scaler_wake) */
    struct orphans *orphans;         /* swept under the lease */
    struct reconcile *reconcile;     /* seats against IVS, under the lease */
    json_t *evicting;                /* draining stages whose participants are being disconnected */
    json_t *adding;                  /* {parent ARN: stages being added from it}, not
                                      * in Redis yet, so not among its children */
    char holder[40];                 /* this process's lease id */
    bool leader;
    bool stopping;                   /* scaler_stop called: answers still on their
                                      * way act on nothing, no tick starts */
    bool ticking;
    bool again;                      /* woken while ticking: tick again after */
    long creating;
    long created_total;              /* numbers the names of added stages */
    int64_t last_change_ms;          /* the last stage added or drained by any
                                      * process, on this clock (unix ms), as of
                                      * the last lease answer or stage this
                                      * process added since; 0: none */
    int64_t window_start_ms;         /* for STAGE_CREATE_RATE */
    long created_in_window;
};

/* What an action needs after the tick's reply is gone. */
struct action_job {
    struct scaler *s;
    char *arn;
    char *parent;
    enum stage_mode mode;            /* the stage's mode when the tick saw it */
    struct stage_state state;        /* the stage's bookkeeping, to update */
};

static void job_free(struct action_job *j)
{
    free(j->arn);
    free(j->parent);
    free(j);
}

static void tick_end(struct scaler *s)
{
    s->ticking = false;
    if (s->again) {
        s->again = false;
        event_active(s->wake, EV_TIMEOUT, 0);
    }
}

void scaler_wake(struct scaler *s)
{
    if (s->ticking)
        s->again = true;
    else
        event_active(s->wake, EV_TIMEOUT, 0);
}

/* ---- writing a stage's mode and bookkeeping ------------------------------- */

static void update_done(void *arg, enum store_error err, const char *detail)
{
    struct action_job *j = arg;
    /* A stage removed meanwhile needs no bookkeeping. */
    if (err != STORE_OK && err != STORE_NO_STAGE)
        log_warn("scaler: updating %s: %s", j->arn, detail);
    /* A stage may have opened: joins waiting for room try again. */
    if (err == STORE_OK && j->s->app->waiters)
        waiters_wake(j->s->app->waiters);
    job_free(j);
}

/* Writes mode and j->state for j->arn, then frees j. */
static void write_stage(struct action_job *j, enum stage_mode mode)
{
    store_stage_update(j->s->app->store, j->s->holder, j->arn, mode, &j->state, update_done, j);
}

/* ---- replication ----------------------------------------------------------- */

/* participant: the publisher whose video now runs into the stage. */
static void replication_answered(void *arg, const char *participant, const char *error)
{
    struct action_job *j = arg;
    struct app *app = j->s->app;
    int64_t now = clock_now_ms();
    if (!error) {
        j->state.replication = REPL_RUNNING;
        j->state.error[0] = '\0';
        j->state.retry_at_ms = 0;
        snprintf(j->state.participant, sizeof j->state.participant, "%s", participant);
        j->state.running_since_ms = now;
        stage_event(app, now, "replication_started", j->arn, j->parent);
        write_stage(j, MODE_OPEN);
        return;
    }
    long attempts = j->state.attempts + 1;
    long wait = app->cfg->replication_retry_ms;
    for (long i = 1; i < attempts && wait < REPLICATION_RETRY_MAX_MS; i++)
        wait *= 2;
    if (wait > REPLICATION_RETRY_MAX_MS)
        wait = REPLICATION_RETRY_MAX_MS;
    j->state.replication = REPL_FAILED;
    j->state.attempts = attempts;
    j->state.retry_at_ms = now + wait;
    snprintf(j->state.error, sizeof j->state.error, "%s", error);
    stage_event(app, now, "replication_failed", j->arn, error);
    /* An open stage (one an operator made) stays open; an added one waits. */
    write_stage(j, j->mode == MODE_WAITING ? MODE_WAITING : MODE_OPEN);
}

static void start_replication(struct action_job *j)
{
    struct stage_provider *p = j->s->app->provider;
    p->ops->start_replication(p, j->parent, j->arn, replication_answered, j);
}

/* ---- creating, draining, removing -------------------------------------------- */

/* A stage being added, from parent. */
struct creation {
    struct scaler *s;
    char *parent;
};

/* Counts the stages being added, in all and from parent, up (by +1) or
 * down (by -1). */
static void count_adding(struct scaler *s, const char *parent, int by)
{
    s->creating += by;
    json_int_t n = json_integer_value(json_object_get(s->adding, parent)) + by;
    if (n > 0)
        json_object_set_new(s->adding, parent, json_integer(n));
    else
        json_object_del(s->adding, parent);
}

static void created(void *arg, enum store_error err, json_t *info, const char *detail)
{
    struct creation *c = arg;
    struct scaler *s = c->s;
    count_adding(s, c->parent, -1);
    free(c->parent);
    free(c);
    json_decref(info);
    if (err != STORE_OK) {
        log_warn("scaler: no stage added: %s", detail);
        return;
    }
    /* Redis noted the change in the same step (scaler:last_change); a
     * tick whose lease answer came before that step, and its read of the
     * stages after, must count the cooldown from it too. */
    s->last_change_ms = clock_now_ms();
    scaler_wake(s);                 /* its replication starts now, not next tick */
}

/* A draining stage past DRAIN_TIMEOUT: its participants are disconnected,
 * then it is removed. */
struct eviction_job {
    struct scaler *s;
    char *arn;
};

static void removed_done(void *arg, enum store_error err, json_t *info, const char *detail);

static void evicted(void *arg, const char *error)
{
    struct eviction_job *e = arg;
    if (error)
        log_warn("scaler: the participants of %s could not be listed: %s", e->arn, error);
    json_object_del(e->s->evicting, e->arn);
    if (!error && e->s->leader)      /* else a later tick tries again (or we are stopping) */
        stage_remove(e->s->app, e->arn, e->s->holder, clock_now_ms(), removed_done, e->arn);
    else
        free(e->arn);
    free(e);
}

/* Removes the stage of v; a draining one with viewers left (its drain
 * timed out) has them disconnected first. */
static void remove_stage(struct scaler *s, const struct stage_view *v, int64_t now)
{
    char *arn = strdup(v->arn);
    if (!arn)
        return;
    if (v->mode != MODE_DRAINING || v->viewers == 0) {
        stage_remove(s->app, arn, s->holder, now, removed_done, arn);
        return;
    }
    struct eviction_job *e = json_object_get(s->evicting, arn) ? NULL : malloc(sizeof *e);
    if (!e) {                        /* under way already */
        free(arn);
        return;
    }
    *e = (struct eviction_job){s, arn};
    json_object_set_new(s->evicting, arn, json_true());
    stage_event(s->app, now, "drain_timeout", arn, "disconnecting the participants left, then deleting");
    stage_evict(s->app, arn, evicted, e);
}

static void removed_done(void *arg, enum store_error err, json_t *info, const char *detail)
{
    char *arn = arg;
    if (err != STORE_OK)
        log_warn("scaler: removing %s: %s", arn, detail);
    json_decref(info);
    free(arn);
}

/* The stage an added stage replicates from: the master while it has fewer
 * than REPLICATION_MAX children, else, where chaining is allowed (no
 * replication quota, or REPLICATION_CHAINING), an open replicated stage
 * that has. Children being added count (a tick may add several, and an
 * addition lasts until the provider answers). */
static const char *pick_parent(const struct scaler *s, const struct stage_view *v, size_t n)
{
    const struct config *cfg = s->app->cfg;
    int passes = !s->app->provider->ops->replication_quota || cfg->replication_chaining ? 2 : 1;
    for (int pass = 0; pass < passes; pass++)
        for (size_t i = 0; i < n; i++) {
            bool candidate = pass == 0 ? v[i].master
                                       : v[i].mode == MODE_OPEN && v[i].replication == REPL_RUNNING;
            json_int_t adding = json_integer_value(json_object_get(s->adding, v[i].arn));
            if (candidate && v[i].children + adding < cfg->replication_max)
                return v[i].arn;
        }
    return NULL;
}

static void create_stage(struct scaler *s, const struct stage_view *v, size_t n, int64_t now)
{
    const char *parent = pick_parent(s, v, n);
    if (!parent)
        return;
    /* Several stages may be added in one millisecond: the count keeps
     * their names apart. */
    char name[160];
    snprintf(name, sizeof name, "%s-%lld-%ld", s->app->cfg->stage_name_prefix,
             (long long)now, ++s->created_total);
    struct stage_spec spec = {.name = name, .auto_scaled = true, .parent = parent,
                              .lease_holder = s->holder, .now_ms = now};
    struct creation *c = malloc(sizeof *c);
    if (!c || !(c->parent = strdup(parent))) {
        free(c);
        return;
    }
    c->s = s;
    count_adding(s, parent, +1);
    s->created_in_window++;
    stage_create(s->app, &spec, created, c);
}

/* ---- the tick ---------------------------------------------------------------- */

/* Fills views from the stats view; returns how many. */
static size_t read_view(const struct stats_view *sv, struct stage_view *views)
{
    for (size_t i = 0; i < sv->count; i++) {
        const struct stage_entry *e = &sv->stages[i];
        views[i] = (struct stage_view){
            .arn = e->arn, .viewers = (long)e->viewers, .master = e->master,
            .auto_scaled = e->info.auto_scaled, .mode = e->mode,
            .replication = e->state.replication, .retry_at_ms = e->state.retry_at_ms,
            .draining_since_ms = e->state.draining_since_ms,
        };
    }
    for (size_t i = 0; i < sv->count; i++)
        for (size_t k = 0; sv->stages[i].info.parent && k < sv->count; k++)
            if (strcmp(views[k].arn, sv->stages[i].info.parent) == 0)
                views[k].children++;
    return sv->count;
}

static struct action_job *job_for(struct scaler *s, const struct stage_entry *e,
                                  const struct stage_state *state, const char *master)
{
    struct action_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->s = s;
    j->mode = e->mode;
    j->arn = strdup(e->arn);
    j->parent = strdup(e->info.parent ? e->info.parent : master);
    j->state = *state;
    if (!j->arn || !j->parent) {
        job_free(j);
        return NULL;
    }
    return j;
}

/* Does one action of the tick whose clock reading is now (unix ms). */
static void act(struct scaler *s, const struct scale_action *a, const struct stage_view *views,
                size_t n, const struct stats_view *sv, int64_t now)
{
    if (a->kind == ACT_CREATE) {
        create_stage(s, views, n, now);
        return;
    }
    const struct stage_view *v = &views[a->stage];
    if (a->kind == ACT_REMOVE) {
        remove_stage(s, v, now);
        return;
    }
    const struct stage_entry *e = &sv->stages[a->stage];
    struct action_job *j = job_for(s, e, &e->state, sv->master_arn);
    if (!j)
        return;
    switch (a->kind) {
    case ACT_START_REPLICATION:
        /* Marked first, so the next tick does not start it twice. */
        j->state.replication = REPL_PENDING;
        j->state.retry_at_ms = now + REPLICATION_PENDING_MS;
        {
            struct action_job *mark = job_for(s, e, &j->state, sv->master_arn);
            if (mark)
                write_stage(mark, v->mode == MODE_WAITING ? MODE_WAITING : MODE_OPEN);
        }
        start_replication(j);
        return;
    case ACT_OPEN:
        write_stage(j, MODE_OPEN);
        return;
    case ACT_DRAIN:
        j->state.draining_since_ms = now;
        stage_event(s->app, now, "drain", j->arn, NULL);
        write_stage(j, MODE_DRAINING);
        return;
    default:
        job_free(j);
        return;
    }
}

/* This second's creations are used up: the next tick comes when the next
 * second starts, so a ramp goes at STAGE_CREATE_RATE and not at the pace
 * of the interval. */
static void pace_next(struct scaler *s, int64_t now)
{
    if (s->created_in_window < s->app->cfg->stage_create_rate)
        return;
    long ms = (long)(s->window_start_ms + 1000 - now);
    struct timeval after = {0, (ms > 0 ? ms : 0) * 1000};
    event_add(s->wake, &after);
}

static void viewed(void *arg, enum store_error err, const char *detail,
                   const struct stats_view *sv)
{
    struct scaler *s = arg;
    const struct config *cfg = s->app->cfg;
    (void)detail;
    /* A tick answered while shutting down (the provider freed) does nothing. */
    bool acting = err == STORE_OK && s->app->provider && !s->stopping;
    struct stage_view *views = acting ? calloc(sv->count + 1, sizeof *views) : NULL;
    if (!views) {
        tick_end(s);
        return;
    }
    size_t n = read_view(sv, views);

    int64_t now = clock_now_ms();
    if (now - s->window_start_ms >= 1000) {
        s->window_start_ms = now;
        s->created_in_window = 0;
    }
    struct scale_input in = {
        .stages = views, .nstages = n, .capacity = cfg->max_viewers_per_stage,
        .up = cfg->scale_up_threshold, .down = cfg->scale_down_threshold,
        .max_stages = stage_ceiling(s->app).stages, .publisher_live = sv->publisher_live,
        .now_ms = now, .last_change_ms = s->last_change_ms,
        .cooldown_ms = cfg->scale_down_cooldown_s * 1000,
        .drain_timeout_ms = cfg->drain_timeout_s * 1000, .creating = s->creating,
        .waiting = (long)sv->waiting,
        .create_budget = cfg->auto_scale_enabled ? cfg->stage_create_rate - s->created_in_window : 0,
    };
    struct scale_action actions[MAX_ACTIONS];
    size_t nactions = scale_decide(&in, actions, MAX_ACTIONS);
    for (size_t i = 0; i < nactions; i++) {
        /* With auto-scaling off, stages are the operator's: only their
         * replication is looked after. */
        bool scaling = actions[i].kind == ACT_CREATE || actions[i].kind == ACT_DRAIN ||
                       actions[i].kind == ACT_REMOVE;
        if (!scaling || cfg->auto_scale_enabled)
            act(s, &actions[i], views, n, sv, now);
    }
    free(views);
    pace_next(s, now);
    tick_end(s);
}

static void leased(void *arg, enum store_error err, const char *detail, const struct lease *lease)
{
    struct scaler *s = arg;
    (void)detail;
    if (s->stopping) {               /* renewed just before the release: not ours to use */
        tick_end(s);
        return;
    }
    bool was_leader = s->leader;
    s->leader = err == STORE_OK && lease->held;
    if (s->leader != was_leader)
        log_info("scaler: %s the lease (epoch %lld)", s->leader ? "took" : "lost",
                 err == STORE_OK ? lease->epoch : 0);
    if (!s->leader || !s->app->master_arn[0] || !s->app->provider) {
        tick_end(s);
        return;
    }
    /* Redis's age of the change, on this process's clock. */
    s->last_change_ms = lease->since_change_ms < 0 ? 0 : clock_now_ms() - lease->since_change_ms;
    orphans_tick(s->orphans);
    reconcile_tick(s->reconcile);
    store_stats(s->app->store, viewed, s);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct scaler *s = arg;
    if (s->stopping || s->ticking || !store_ready(s->app->store))
        return;
    s->ticking = true;
    store_lease(s->app->store, s->holder, s->app->cfg->scaler_lease_ms, leased, s);
}

struct release {
    void (*done)(void *arg);
    void *arg;
};

static void released(void *arg, enum store_error err, const char *detail, const struct lease *lease)
{
    (void)err, (void)detail, (void)lease;
    struct release *r = arg;
    r->done(r->arg);
    free(r);
}

void scaler_stop(struct scaler *s, void (*done)(void *arg), void *arg)
{
    event_del(s->timer);
    event_del(s->wake);
    s->leader = false;
    s->stopping = true;
    struct release *r = malloc(sizeof *r);
    if (!r) {
        done(arg);
        return;
    }
    r->done = done;
    r->arg = arg;
    store_lease(s->app->store, s->holder, 0, released, r);
}

struct scaler *scaler_new(struct app *app)
{
    struct scaler *s = calloc(1, sizeof *s);
    unsigned char id[12];
    if (!s || RAND_bytes(id, sizeof id) != 1) {
        free(s);
        return NULL;
    }
    for (size_t i = 0; i < sizeof id; i++)
        snprintf(s->holder + 2 * i, 3, "%02x", id[i]);
    s->app = app;
    s->timer = event_new(app->base, -1, EV_PERSIST, on_tick, s);
    s->wake = event_new(app->base, -1, 0, on_tick, s);
    s->orphans = orphans_new(app);
    s->reconcile = reconcile_new(app, s->holder);
    s->evicting = json_object();
    s->adding = json_object();
    if (!s->timer || !s->wake || !s->orphans || !s->reconcile || !s->evicting || !s->adding) {
        json_decref(s->evicting);
        json_decref(s->adding);
        if (s->timer)
            event_free(s->timer);
        if (s->wake)
            event_free(s->wake);
        orphans_free(s->orphans);
        reconcile_free(s->reconcile);
        free(s);
        return NULL;
    }
    long ms = app->cfg->scaler_interval_ms;
    struct timeval every = {ms / 1000, (ms % 1000) * 1000};
    event_add(s->timer, &every);
    return s;
}

void scaler_free(struct scaler *s)
{
    if (!s)
        return;
    event_free(s->timer);
    event_free(s->wake);
    orphans_free(s->orphans);
    reconcile_free(s->reconcile);
    json_decref(s->evicting);
    json_decref(s->adding);
    free(s);
}

bool scaler_is_leader(const struct scaler *s) { return s->leader; }
struct reconcile *scaler_reconcile(struct scaler *s) { return s ? s->reconcile : NULL; }
