/* reconcile.c — see reconcile.h.
 *
 * A pass: the live stages (store_stats), then for each in turn its
 * connected participants from the provider and one store step that seats
 * and moves (phase 1); once every stage is read, one store step per stage
 * read that removes the ghosts (phase 2). The ghosts wait for phase 1 of
 * every stage, so a viewer IVS shows in another stage is moved there, not
 * removed here and seated anew. A stage IVS cannot list is skipped (its
 * note says why); a failed store step ends the pass; the next one starts
 * over. State of a pass lives in this process only. A
 * pass under way when the lease moves runs to its end while the new
 * holder may start its own: each correction decides on Redis's state of
 * the moment, so two passes cost IVS calls twice but never count twice. */
#include "reconcile/reconcile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "app.h"
#include "config/config.h"
#include "ivs/provider.h"
#include "reconcile/replicas.h"
#include "stages/events.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/log.h"

#define NAMED_MAX 20                 /* users named in one stage event */

struct reconcile {
    struct app *app;
    /* the pass */
    bool passing;
    int64_t last_ms;                 /* last pass's start, 0 = never */
    json_t *arns;                    /* the pass's stages */
    size_t at;                       /* the stage being read, then cleaned */
    int64_t read_at_ms;              /* when its participants were asked for */
    json_t *notes;                   /* arn → this pass's note, for stages read */
    json_t *read_at;                 /* arn → when its participants were asked for (ms) */
    /* the publisher */
    bool looking;
    int64_t looked_ms;               /* last look's start, 0 = never */
    int64_t absent_since_ms;         /* no publisher seen since, 0 = one was seen */
    bool was_live;                   /* publisher:status at the last look */
    struct replicas *replicas;       /* checked after each regular look */
};

struct reconcile *reconcile_new(struct app *app, const char *holder)
{
    struct reconcile *r = calloc(1, sizeof *r);
    if (r && !(r->replicas = replicas_new(app, holder))) {
        free(r);
        return NULL;
    }
    if (r)
        r->app = app;
    return r;
}

void reconcile_free(struct reconcile *r)
{
    if (!r)
        return;
    json_decref(r->arns);
    json_decref(r->notes);
    json_decref(r->read_at);
    replicas_free(r->replicas);
    free(r);
}

/* Whether the pass may go on: the provider and the store are still there
 * (they are freed in turn at shut-down, answering what is due). */
static bool alive(const struct reconcile *r) { return r->app->provider && r->app->store; }

static void pass_end(struct reconcile *r, const char *why)
{
    if (why)
        log_warn("reconcile: pass ended early: %s", why);
    json_decref(r->arns), json_decref(r->notes), json_decref(r->read_at);
    r->arns = r->notes = r->read_at = NULL;
    r->passing = false;
}

/* A stage event naming users (at most NAMED_MAX), with the reason. */
static void correction_event(struct reconcile *r, const char *type, const char *arn,
                             const json_t *users, const char *reason)
{
    size_t n = json_array_size(users);
    if (n == 0)
        return;
    char detail[1024];
    int len = snprintf(detail, sizeof detail, "%zu: %s;", n, reason);
    for (size_t i = 0; i < n && i < NAMED_MAX && len > 0 && (size_t)len < sizeof detail; i++) {
        const json_t *u = json_array_get(users, i);
        const char *name = json_is_array(u) ? json_string_value(json_array_get(u, 0)) : json_string_value(u);
        len += snprintf(detail + len, sizeof detail - (size_t)len, " %s", name ? name : "?");
    }
    if (n > NAMED_MAX && len > 0 && (size_t)len < sizeof detail)
        snprintf(detail + len, sizeof detail - (size_t)len, " and %zu more", n - NAMED_MAX);
    stage_event(r->app, clock_now_ms(), type, arn, detail);
}

/* An answer's list member as an array (Lua's cjson gives {} for empty). */
static json_t *list_of(json_t *doc, const char *name)
{
    json_t *v = name ? json_object_get(doc, name) : doc;
    return json_is_array(v) ? v : NULL;
}

/* ---- phase 2: ghosts ----------------------------------------------------- */

static void ghosts_next(struct reconcile *r);

static void noted(void *arg, enum store_error err, const char *detail)
{
    (void)arg;
    if (err != STORE_OK)
        log_warn("reconcile: note not kept: %s", detail);
}

static void ghosts_removed(void *arg, enum store_error err, const char *detail, const char *text)
{
    struct reconcile *r = arg;
    const char *arn = json_string_value(json_array_get(r->arns, r->at));
    json_t *gone = err == STORE_OK ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    if (err != STORE_OK || !alive(r)) {
        json_decref(gone);
        pass_end(r, err != STORE_OK ? detail : NULL);
        return;
    }
    correction_event(r, "reconcile_removed", arn, list_of(gone, NULL),
                     "seats whose participant IVS has not shown connected for RECONCILE_GRACE");
    json_t *note = json_object_get(r->notes, arn);
    json_object_set_new(note, "removed", json_integer((json_int_t)json_array_size(list_of(gone, NULL))));
    char *text_note = json_dumps(note, JSON_COMPACT);
    if (text_note)
        store_reconcile_note(r->app->store, arn, text_note, noted, NULL);
    free(text_note);
    json_decref(gone);
    r->at++;
    ghosts_next(r);
}

/* The next stage that was read, else the pass is over. A seat is a ghost
 * when last seen (or joined) before the grace and before this pass read
 * its stage: so a pass longer than the grace removes none it saw. */
static void ghosts_next(struct reconcile *r)
{
    for (; r->at < json_array_size(r->arns); r->at++) {
        const char *arn = json_string_value(json_array_get(r->arns, r->at));
        if (json_object_get(r->notes, arn)) {
            int64_t cutoff = clock_now_ms() - r->app->cfg->reconcile_grace_s * 1000;
            int64_t read_at = json_integer_value(json_object_get(r->read_at, arn));
            if (cutoff >= read_at)
                cutoff = read_at - 1;
            store_reconcile_ghosts(r->app->store, arn, cutoff, ghosts_removed, r);
            return;
        }
    }
    log_debug("reconcile: pass done");
    pass_end(r, NULL);
}

/* ---- phase 1: seats ------------------------------------------------------ */

static void stage_next(struct reconcile *r);

static void seated(void *arg, enum store_error err, const char *detail, const char *text)
{
    struct reconcile *r = arg;
    const char *arn = json_string_value(json_array_get(r->arns, r->at));
    json_t *out = err == STORE_OK && text[0] ? json_loads(text, 0, NULL) : NULL;
    if (err != STORE_OK || !alive(r)) {
        pass_end(r, err != STORE_OK ? detail : NULL);
        return;
    }
    json_t *note = json_object_get(r->notes, arn);
    if (!out) {                      /* the stage is gone: nothing to clean */
        json_object_del(r->notes, arn);
    } else {
        json_t *in = list_of(out, "seated"), *moved = list_of(out, "moved"), *un = list_of(out, "unseated");
        correction_event(r, "reconcile_seated", arn, in, "connected in IVS without a seat");
        correction_event(r, "reconcile_moved", arn, moved, "connected in IVS here, seated in another stage");
        correction_event(r, "reconcile_unseated", arn, un, "connected in IVS without a seat; the stage is full");
        json_object_set_new(note, "seated", json_integer((json_int_t)json_array_size(in)));
        json_object_set_new(note, "moved", json_integer((json_int_t)json_array_size(moved)));
        json_object_set_new(note, "unseated", json_integer((json_int_t)json_array_size(un)));
    }
    json_decref(out);
    r->at++;
    stage_next(r);
}

/* The subscribers of a page: connected, not published, no replica, with
 * a user id. Returns how many were put in list. */
static size_t subscribers(const struct participant_page *page, struct reconcile_participant *list)
{
    size_t n = 0;
    for (size_t i = 0; i < page->count; i++) {
        const struct provider_participant *p = &page->items[i];
        if (p->published || p->replica || !p->user_id || !p->user_id[0] || !p->id ||
            !p->state || strcmp(p->state, "CONNECTED") != 0)
            continue;
        list[n++] = (struct reconcile_participant){p->id, p->user_id};
    }
    return n;
}

/* A stage whose participants could not be read (deleted in IVS meanwhile,
 * IVS trouble): its seats stay as they are this pass, and its note says why. */
static void stage_unread(struct reconcile *r, const char *arn, const char *error)
{
    log_warn("reconcile: %s not read: %s", arn, error);
    char at[32];
    clock_iso8601(clock_now_ms(), at, sizeof at);
    json_t *note = json_pack("{s:s, s:s}", "lastAttemptAt", at, "error", error);
    char *text = note ? json_dumps(note, JSON_COMPACT) : NULL;
    if (text)
        store_reconcile_note(r->app->store, arn, text, noted, NULL);
    free(text);
    json_decref(note);
}

static void participants_read(void *arg, const struct participant_page *page, const char *error)
{
    struct reconcile *r = arg;
    const char *arn = json_string_value(json_array_get(r->arns, r->at));
    struct reconcile_participant *list = page ? calloc(page->count + 1, sizeof *list) : NULL;
    if (!alive(r) || (!error && !list)) {
        free(list);
        pass_end(r, alive(r) ? "out of memory" : NULL);
        return;
    }
    if (error) {                     /* this stage is skipped, noted; the others go on */
        stage_unread(r, arn, error);
        r->at++;
        stage_next(r);
        return;
    }
    size_t n = subscribers(page, list);
    char at[32];
    clock_iso8601(clock_now_ms(), at, sizeof at);
    json_object_set_new(r->notes, arn, json_pack("{s:s, s:I}", "lastReconciledAt", at,
                                                  "connected", (json_int_t)n));
    json_object_set_new(r->read_at, arn, json_integer(r->read_at_ms));
    store_reconcile_seat(r->app->store, arn, r->read_at_ms, clock_now_ms(),
                         r->app->cfg->max_viewers_per_stage, list, n, seated, r);
    free(list);
}

/* Reads the next stage's participants, else starts phase 2. */
static void stage_next(struct reconcile *r)
{
    const char *arn = json_string_value(json_array_get(r->arns, r->at));
    if (!arn) {
        r->at = 0;
        ghosts_next(r);
        return;
    }
    struct participant_query q = {.arn = arn, .max_results = 100, .connected_only = true,
                                  .all_pages = true};
    r->read_at_ms = clock_now_ms();
    r->app->provider->ops->list_participants(r->app->provider, &q, participants_read, r);
}

static void stages_read(void *arg, enum store_error err, const char *detail,
                        const struct stats_view *v)
{
    struct reconcile *r = arg;
    if (err != STORE_OK || !alive(r) || !(r->arns = json_array()) || !(r->notes = json_object()) ||
        !(r->read_at = json_object())) {
        pass_end(r, err != STORE_OK ? detail : alive(r) ? "out of memory" : NULL);
        return;
    }
    for (size_t i = 0; i < v->count; i++)
        json_array_append_new(r->arns, json_string(v->stages[i].arn));
    r->at = 0;
    stage_next(r);
}

/* ---- the publisher --------------------------------------------------------- */

/* The stage event says what changed, from the status the write replaced
 * (one event per change, whoever wrote it: stage_event_publisher()). */
static void publisher_written(struct app *app, bool live, enum store_error err,
                              const char *detail, const char *previous)
{
    if (err != STORE_OK) {
        log_warn("reconcile: publisher:status not written: %s", detail);
        return;
    }
    stage_event_publisher(app, live, previous);
}

static void publisher_written_live(void *arg, enum store_error err, const char *detail,
                                   const char *previous)
{
    publisher_written(arg, true, err, detail, previous);
}

static void publisher_written_offline(void *arg, enum store_error err, const char *detail,
                                      const char *previous)
{
    publisher_written(arg, false, err, detail, previous);
}

/* What IVS showed (found: a publisher) against publisher:status (live).
 * A look for a hint (regular false) only ever makes it live: the grace is
 * counted by the regular looks of the lease holder. */
static void publisher_judge(struct reconcile *r, bool found, bool live, bool regular)
{
    int64_t now = clock_now_ms();
    const char *master = r->app->master_arn;
    if (!regular) {
        if (found && !live) {
            store_publisher_set(r->app->store, true, publisher_written_live, r->app);
        }
        return;
    }
    if (live && !r->was_live)        /* made live meanwhile (a publisher token): grace anew */
        r->absent_since_ms = 0;
    r->was_live = live;
    if (found) {
        r->absent_since_ms = 0;
        if (!live) {
            store_publisher_set(r->app->store, true, publisher_written_live, r->app);
            r->was_live = true;
        }
        return;
    }
    if (!r->absent_since_ms)
        r->absent_since_ms = now;
    if (live && now - r->absent_since_ms >= r->app->cfg->publisher_offline_grace_s * 1000) {
        log_info("reconcile: no published participant in %s for PUBLISHER_OFFLINE_GRACE", master);
        store_publisher_set(r->app->store, false, publisher_written_offline, r->app);
        r->was_live = false;
    }
}

struct look {
    struct reconcile *r;
    bool found;
    bool regular;                    /* a poll of the lease holder, not a hint's */
    int64_t at_ms;                   /* when the look started */
};

static void status_read(void *arg, enum store_error err, const char *detail, long long live)
{
    struct look *l = arg;
    struct reconcile *r = l->r;
    struct look done = *l;
    free(l);
    r->looking = false;
    if (err != STORE_OK) {
        log_warn("reconcile: publisher:status not read: %s", detail);
        return;
    }
    if (alive(r))
        publisher_judge(r, done.found, live == 1, done.regular);
}

static void publisher_found(void *arg, const char *participant, const char *error)
{
    struct look *l = arg;
    struct reconcile *r = l->r;
    if (error || !alive(r)) {
        if (error)
            log_warn("reconcile: the publisher could not be looked for: %s", error);
        free(l);
        r->looking = false;
        return;
    }
    l->found = participant[0] != '\0';
    if (l->regular)                  /* the lease holder's: its replications checked */
        replicas_check(r->replicas, participant, l->at_ms);
    store_publisher_get(r->app->store, status_read, l);
}

/* Looks for the publisher in the master stage (find_publisher), then
 * judges (publisher_judge). */
static void publisher_look(struct reconcile *r, bool regular)
{
    struct look *l = malloc(sizeof *l);
    if (!l)
        return;
    *l = (struct look){.r = r, .regular = regular, .at_ms = clock_now_ms()};
    r->looking = true;
    r->app->provider->ops->find_publisher(r->app->provider, r->app->master_arn, publisher_found, l);
}

static void publisher_tick(struct reconcile *r, int64_t now)
{
    if (r->looking || !r->app->master_arn[0] ||
        !clock_due(&r->looked_ms, now, r->app->cfg->publisher_poll_interval_s * 1000))
        return;
    publisher_look(r, true);
}

/* ---- ticks ------------------------------------------------------------------- */

void reconcile_tick(struct reconcile *r)
{
    struct stage_provider *p = r->app->provider;
    int64_t now = clock_now_ms();
    if (!p || !p->ops->knows_participants(p))
        return;
    publisher_tick(r, now);
    if (r->passing || !clock_due(&r->last_ms, now, r->app->cfg->reconcile_interval_s * 1000))
        return;
    r->passing = true;
    store_stats(r->app->store, stages_read, r);
}

void reconcile_look_now(struct reconcile *r)
{
    struct stage_provider *p = r->app->provider;
    if (p && r->app->store && p->ops->knows_participants(p) && !r->looking && r->app->master_arn[0])
        publisher_look(r, false);
}
