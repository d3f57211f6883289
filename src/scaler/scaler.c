/* scaler.c — see scaler.h.
 *
 * One tick at a time: lease → view (stats.lua) → decide → act. Actions run
 * asynchronously and may outlive the tick; each holds copies of what it
 * needs. The scaler writes a stage's bookkeeping (the `stage_state` JSON:
 * replication state, attempts, next retry, drain start) only under the
 * lease, so its read-modify-write cannot race another scaler. */
#include "scaler/scaler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>

#include "app.h"
#include "config/config.h"
#include "ivs/provider.h"
#include "scaler/policy.h"
#include "stages/events.h"
#include "stages/stages.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/log.h"

#define MAX_ACTIONS 64
#define REPLICATION_RETRY_MAX_MS 30000
/* A start not answered by then (its scaler died) is tried again. */
#define REPLICATION_PENDING_MS 10000
#define REPLICATIONS_PER_SOURCE 5    /* IVS: at most 5 per publisher */

struct scaler {
    struct app *app;
    struct event *timer;
    char holder[40];                 /* this process's lease id */
    bool leader;
    bool ticking;
    long creating;
    long created_total;              /* numbers the names of added stages */
    int64_t last_change_ms;
    int64_t window_start_ms;         /* for STAGE_CREATE_RATE */
    long created_in_window;
};

/* What an action needs after the tick's reply is gone. */
struct action_job {
    struct scaler *s;
    char *arn;
    char *parent;
    enum stage_mode mode;            /* the stage's mode when the tick saw it */
    json_t *state;                   /* the stage's bookkeeping, to update */
};

static void job_free(struct action_job *j)
{
    free(j->arn);
    free(j->parent);
    json_decref(j->state);
    free(j);
}

static void tick_end(struct scaler *s) { s->ticking = false; }

/* ---- writing a stage's mode and bookkeeping ------------------------------- */

static void update_done(void *arg, redisReply *reply, const char *error)
{
    struct action_job *j = arg;
    if (error || store_refusal(reply) != REFUSAL_NONE)
        log_warn("scaler: updating %s: %s", j->arn, error ? error : reply->str);
    job_free(j);
}

/* Writes mode and j->state for j->arn, then frees j. */
static void write_stage(struct action_job *j, const char *mode)
{
    char *state = json_dumps(j->state, JSON_COMPACT);
    const char *argv[] = {j->s->holder, j->arn, mode, state ? state : "{}"};
    store_run(j->s->app->store, SCRIPT_STAGE_UPDATE, update_done, j, 4, argv);
    free(state);
}

/* ---- replication ----------------------------------------------------------- */

static void replication_answered(void *arg, const char *error)
{
    struct action_job *j = arg;
    struct app *app = j->s->app;
    if (!error) {
        json_object_set_new(j->state, "replication", json_string("running"));
        json_object_del(j->state, "error");
        json_object_del(j->state, "retryAt");
        stage_event(app, "replication_started", j->arn, j->parent);
        write_stage(j, "open");
        return;
    }
    long attempts = (long)json_integer_value(json_object_get(j->state, "attempts")) + 1;
    long wait = app->cfg->replication_retry_ms;
    for (long i = 1; i < attempts && wait < REPLICATION_RETRY_MAX_MS; i++)
        wait *= 2;
    if (wait > REPLICATION_RETRY_MAX_MS)
        wait = REPLICATION_RETRY_MAX_MS;
    json_object_set_new(j->state, "replication", json_string("failed"));
    json_object_set_new(j->state, "attempts", json_integer(attempts));
    json_object_set_new(j->state, "retryAt", json_integer(clock_now_ms() + wait));
    json_object_set_new(j->state, "error", json_string(error));
    stage_event(app, "replication_failed", j->arn, error);
    /* An open stage (one an operator made) stays open; an added one waits. */
    write_stage(j, j->mode == MODE_WAITING ? "waiting" : "open");
}

static void start_replication(struct action_job *j)
{
    struct stage_provider *p = j->s->app->provider;
    p->ops->start_replication(p, j->parent, j->arn, replication_answered, j);
}

/* ---- creating, draining, removing -------------------------------------------- */

static void created(void *arg, enum stage_outcome outcome, json_t *info, const char *error)
{
    struct scaler *s = arg;
    s->creating--;
    s->last_change_ms = clock_now_ms();
    if (outcome != STAGE_DONE)
        log_warn("scaler: no stage added: %s", error ? error : "refused");
    json_decref(info);
}

static void removed_done(void *arg, enum stage_outcome outcome, json_t *info, const char *error)
{
    char *arn = arg;
    if (outcome != STAGE_DONE)
        log_warn("scaler: removing %s: %s", arn, error ? error : "refused");
    json_decref(info);
    free(arn);
}

/* The stage an added stage replicates from: the master while it has fewer
 * than REPLICATIONS_PER_SOURCE, else an open replicated stage that has. */
static const char *pick_parent(const struct stage_view *v, size_t n)
{
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n; i++) {
            bool candidate = pass == 0 ? v[i].master
                                       : v[i].mode == MODE_OPEN && v[i].replication == REPL_RUNNING;
            if (candidate && v[i].children < REPLICATIONS_PER_SOURCE)
                return v[i].arn;
        }
    return NULL;
}

static void create_stage(struct scaler *s, const struct stage_view *v, size_t n)
{
    const char *parent = pick_parent(v, n);
    if (!parent)
        return;
    /* Several stages may be added in one millisecond: the count keeps
     * their names apart. */
    char name[160];
    snprintf(name, sizeof name, "%s-%lld-%ld", s->app->cfg->stage_name_prefix,
             (long long)clock_now_ms(), ++s->created_total);
    struct stage_spec spec = {.name = name, .auto_scaled = true, .parent = parent,
                              .lease_holder = s->holder};
    s->creating++;
    s->created_in_window++;
    stage_create(s->app, &spec, created, s);
}

/* ---- the tick ---------------------------------------------------------------- */

static enum stage_mode mode_of(const char *text)
{
    if (text && strcmp(text, "waiting") == 0)
        return MODE_WAITING;
    return text && strcmp(text, "draining") == 0 ? MODE_DRAINING : MODE_OPEN;
}

static enum replication_state replication_of(json_t *state)
{
    const char *r = json_string_value(json_object_get(state, "replication"));
    if (!r)
        return REPL_NONE;
    if (strcmp(r, "running") == 0)
        return REPL_RUNNING;
    return strcmp(r, "failed") == 0 ? REPL_FAILED : REPL_PENDING;
}

/* Fills views (and their parsed JSON in infos/states) from a stats.lua reply. */
static size_t read_view(redisReply *reply, const char *master, struct stage_view *views,
                        json_t **infos, json_t **states, size_t max)
{
    size_t n = 0;
    for (size_t i = STATS_FIRST_STAGE; i + STATS_PER_STAGE <= reply->elements && n < max;
         i += STATS_PER_STAGE, n++) {
        const char *info = reply_str(reply, i + STATS_INFO), *state = reply_str(reply, i + STATS_STATE);
        infos[n] = info && info[0] ? json_loads(info, 0, NULL) : NULL;
        states[n] = state && state[0] ? json_loads(state, 0, NULL) : NULL;
        if (!states[n])
            states[n] = json_object();
        views[n] = (struct stage_view){
            .arn = reply_str(reply, i + STATS_ARN),
            .viewers = (long)reply_int(reply, i + STATS_VIEWERS),
            .master = strcmp(reply_str(reply, i + STATS_ARN), master) == 0,
            .auto_scaled = json_is_true(json_object_get(infos[n], "autoScaled")),
            .mode = mode_of(reply_str(reply, i + STATS_MODE)),
            .replication = replication_of(states[n]),
            .retry_at_ms = json_integer_value(json_object_get(states[n], "retryAt")),
            .draining_since_ms = json_integer_value(json_object_get(states[n], "drainingSince")),
        };
    }
    for (size_t i = 0; i < n; i++) {
        const char *parent = json_string_value(json_object_get(infos[i], "parentStage"));
        for (size_t k = 0; parent && k < n; k++)
            if (strcmp(views[k].arn, parent) == 0)
                views[k].children++;
    }
    return n;
}

static struct action_job *job_for(struct scaler *s, const struct stage_view *v, json_t *info,
                                  json_t *state, const char *master)
{
    struct action_job *j = calloc(1, sizeof *j);
    const char *parent = json_string_value(json_object_get(info, "parentStage"));
    if (!j)
        return NULL;
    j->s = s;
    j->mode = v->mode;
    j->arn = strdup(v->arn);
    j->parent = strdup(parent ? parent : master);
    j->state = json_deep_copy(state);
    if (!j->arn || !j->parent || !j->state) {
        job_free(j);
        return NULL;
    }
    return j;
}

static void act(struct scaler *s, const struct scale_action *a, const struct stage_view *views,
                size_t n, json_t **infos, json_t **states, const char *master)
{
    if (a->kind == ACT_CREATE) {
        create_stage(s, views, n);
        return;
    }
    const struct stage_view *v = &views[a->stage];
    if (a->kind == ACT_REMOVE) {
        char *arn = strdup(v->arn);
        if (arn)
            stage_remove(s->app, arn, s->holder, removed_done, arn);
        return;
    }
    struct action_job *j = job_for(s, v, infos[a->stage], states[a->stage], master);
    if (!j)
        return;
    switch (a->kind) {
    case ACT_START_REPLICATION:
        /* Marked first, so the next tick does not start it twice. */
        json_object_set_new(j->state, "replication", json_string("pending"));
        json_object_set_new(j->state, "retryAt", json_integer(clock_now_ms() + REPLICATION_PENDING_MS));
        {
            struct action_job *mark = job_for(s, v, infos[a->stage], j->state, master);
            if (mark)
                write_stage(mark, v->mode == MODE_WAITING ? "waiting" : "open");
        }
        start_replication(j);
        return;
    case ACT_OPEN:
        write_stage(j, "open");
        return;
    case ACT_DRAIN:
        json_object_set_new(j->state, "drainingSince", json_integer(clock_now_ms()));
        s->last_change_ms = clock_now_ms();
        stage_event(s->app, "drain", j->arn, NULL);
        write_stage(j, "draining");
        return;
    default:
        job_free(j);
        return;
    }
}

static void viewed(void *arg, redisReply *reply, const char *error)
{
    struct scaler *s = arg;
    const struct config *cfg = s->app->cfg;
    if (error || reply->type != REDIS_REPLY_ARRAY) {
        tick_end(s);
        return;
    }
    const char *master = reply_str(reply, STATS_MASTER);
    const char *status = reply_str(reply, STATS_PUBLISHER);
    size_t max = reply->elements / STATS_PER_STAGE + 1;
    struct stage_view *views = calloc(max, sizeof *views);
    json_t **infos = calloc(max, sizeof *infos), **states = calloc(max, sizeof *states);
    if (!views || !infos || !states) {
        free(views), free(infos), free(states);
        tick_end(s);
        return;
    }
    size_t n = read_view(reply, master ? master : "", views, infos, states, max);

    int64_t now = clock_now_ms();
    if (now - s->window_start_ms >= 1000) {
        s->window_start_ms = now;
        s->created_in_window = 0;
    }
    struct scale_input in = {
        .stages = views, .nstages = n, .capacity = cfg->max_viewers_per_stage,
        .up = cfg->scale_up_threshold, .down = cfg->scale_down_threshold,
        .max_stages = cfg->max_stages, .publisher_live = status && strcmp(status, "live") == 0,
        .now_ms = now, .last_change_ms = s->last_change_ms,
        .cooldown_ms = cfg->scale_down_cooldown_s * 1000,
        .drain_timeout_ms = cfg->drain_timeout_s * 1000, .creating = s->creating,
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
            act(s, &actions[i], views, n, infos, states, master ? master : "");
    }
    for (size_t i = 0; i < n; i++) {
        json_decref(infos[i]);
        json_decref(states[i]);
    }
    free(views), free(infos), free(states);
    tick_end(s);
}

static void leased(void *arg, redisReply *reply, const char *error)
{
    struct scaler *s = arg;
    long long held = error ? 0 : reply_int(reply, 0);
    bool was_leader = s->leader;
    s->leader = held == 1 || held == 2;
    if (s->leader != was_leader)
        log_info("scaler: %s the lease (epoch %lld)", s->leader ? "took" : "lost",
                 error ? 0 : reply_int(reply, 1));
    if (!s->leader || !s->app->master_arn[0]) {
        tick_end(s);
        return;
    }
    store_run(s->app->store, SCRIPT_STATS, viewed, s, 0, NULL);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct scaler *s = arg;
    if (s->ticking || !redis_is_ready(s->app->store->redis))
        return;
    s->ticking = true;
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%ld", s->app->cfg->scaler_lease_ms);
    const char *argv[] = {s->holder, ttl};
    store_run(s->app->store, SCRIPT_LEASE, leased, s, 2, argv);
}

struct release {
    void (*done)(void *arg);
    void *arg;
};

static void released(void *arg, redisReply *reply, const char *error)
{
    (void)reply, (void)error;
    struct release *r = arg;
    r->done(r->arg);
    free(r);
}

void scaler_stop(struct scaler *s, void (*done)(void *arg), void *arg)
{
    event_del(s->timer);
    struct release *r = malloc(sizeof *r);
    if (!r) {
        done(arg);
        return;
    }
    r->done = done;
    r->arg = arg;
    s->leader = false;
    const char *argv[] = {s->holder, "0"};
    store_run(s->app->store, SCRIPT_LEASE, released, r, 2, argv);
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
    if (!s->timer) {
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
    free(s);
}
