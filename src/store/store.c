/* store.c — see store.h.
 *
 * Each operation is one FCALL of a function in store/lua/usher.lua (its
 * code comes from the generated build/gen/lua_library.c, scripts/embed-lua.sh)
 * or one plain command. A function's fixed keys (the table below) are
 * declared as KEYS, prefixed here; its per-stage keys are derived from the
 * prefix inside the library (usher.lua says why). Every reply is turned
 * into its C answer by decode.c before the caller sees it. */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "store/decode.h"
#include "store/redis.h"
#include "store/write_batch.h"
#include "util/clock.h"
#include "util/log.h"

extern const char usher_lua_library[];

enum function {
    FN_SEAT, FN_HEARTBEAT, FN_LEAVE, FN_SWEEP, FN_VIEWER_LIST, FN_STATS, FN_STAGE_ADD,
    FN_STAGE_UPDATE, FN_STAGE_REMOVE, FN_STAGE_RENAME, FN_STAGE_RENEW, FN_LEASE, FN_RATE_TAKE,
    FN_REINDEX, FN_CHECK, FN_WEBHOOK_CLAIM, FN_LIVE,
    FN_SEAT_OF, FN_RECONCILE_SEAT, FN_RECONCILE_GHOSTS, FN_RECONCILE_NOTES, FN_EVENT_NEWS,
    FN_ORPHAN_SEEN, FN_REPLICA_RECORD, FN_REPLICA_CLAIM, FN_COUNT
};

enum { MAX_KEYS = 19, MAX_ARGS = 12 };

/* Heartbeats in one FCALL at most (write_batch.h): about 15 KB of ARGV. */
enum { HEARTBEATS_PER_CALL = 128 };

/* Each function's name and the fixed keys it touches, without the prefix. */
static const struct { const char *name; const char *keys[MAX_KEYS]; } functions[FN_COUNT] = {
    [FN_SEAT] = {"usher_seat", {"publisher:status", "stages", "stage_mode", "total_viewers",
                                "seat_waiting", "open_stages", "stage_slot", "slot_stage",
                                "stage_slot_seq"}},
    [FN_HEARTBEAT] = {"usher_heartbeats", {"stages", "stage_mode", "open_stages", "stage_slot",
                                          "slot_stage", "stage_slot_seq"}},
    [FN_LEAVE] = {"usher_leave", {"stages", "total_viewers", "open_stages", "stage_slot",
                                  "slot_stage", "viewer:left"}},
    [FN_SWEEP] = {"usher_sweep", {"stages", "total_viewers", "open_stages", "stage_slot"}},
    [FN_VIEWER_LIST] = {"usher_viewer_list", {"stages"}},
    [FN_STATS] = {"usher_stats", {"total_viewers", "publisher:status", "master_stage", "stages",
                                  "stage_info", "stage_mode", "stage_state", "seat_waiting"}},
    [FN_STAGE_ADD] = {"usher_stage_add", {"scaler:lease", "master_stage", "stages", "stage_info",
                                          "stage_mode", "stage_state", "stage_tags",
                                          "stage_endpoints", "open_stages", "stage_slot",
                                          "slot_stage", "stage_slot_seq", "scaler:last_change"}},
    [FN_STAGE_UPDATE] = {"usher_stage_update", {"scaler:lease", "stages", "stage_mode", "stage_state",
                                                "open_stages", "stage_slot", "slot_stage",
                                                "stage_slot_seq", "scaler:last_change"}},
    [FN_STAGE_REMOVE] = {"usher_stage_remove", {"scaler:lease", "master_stage", "stages",
                                                "total_viewers", "stage_info", "stage_mode",
                                                "stage_state", "stage_tags", "stage_endpoints",
                                                "open_stages", "stage_slot", "slot_stage",
                                                "stage_reconcile"}},
    [FN_STAGE_RENAME] = {"usher_stage_rename", {"stages", "stage_info"}},
    [FN_STAGE_RENEW] = {"usher_stage_renew", {"stages", "stage_info"}},
    [FN_LEASE] = {"usher_lease", {"scaler:lease", "scaler:epoch", "scaler:last_change"}},
    [FN_RATE_TAKE] = {"usher_rate_take", {NULL}},
    [FN_REINDEX] = {"usher_reindex", {"stages", "stage_mode", "open_stages", "stage_slot",
                                      "slot_stage", "stage_slot_seq"}},
    [FN_CHECK] = {"usher_check", {"state_id", "master_stage", "stages", "total_viewers",
                                  "publisher:status", "stage_info", "stage_mode", "stage_state",
                                  "stage_tags", "scaler:lease", "scaler:epoch", "stage_events",
                                  "seat_waiting", "stage_endpoints", "scaler:last_change",
                                  "open_stages", "stage_slot", "slot_stage", "stage_slot_seq"}},
    [FN_WEBHOOK_CLAIM] = {"usher_webhook_claim", {"webhook:sequence"}},
    [FN_LIVE] = {"usher_live", {"total_viewers", "publisher:status", "master_stage", "stages",
                                "stage_info", "stage_mode", "stage_state", "seat_waiting",
                                "stage_events"}},
    [FN_SEAT_OF] = {"usher_seat_of", {"stages", "slot_stage"}},
    [FN_RECONCILE_SEAT] = {"usher_reconcile_seat", {"stages", "total_viewers", "viewer:left",
                                                    "open_stages", "stage_slot", "slot_stage",
                                                    "stage_slot_seq"}},
    [FN_RECONCILE_GHOSTS] = {"usher_reconcile_ghosts", {"stages", "total_viewers", "open_stages",
                                                        "stage_slot"}},
    [FN_RECONCILE_NOTES] = {"usher_reconcile_notes", {"stage_reconcile"}},
    [FN_EVENT_NEWS] = {"usher_event_news", {"ivs_events"}},
    [FN_ORPHAN_SEEN] = {"usher_orphan_seen", {"orphan_seen"}},
    [FN_REPLICA_RECORD] = {"usher_replica_record", {"scaler:lease", "stages", "stage_mode",
                                                    "stage_state"}},
    [FN_REPLICA_CLAIM] = {"usher_replica_claim", {"scaler:lease"}},
};

struct store {
    struct redis *redis;
    const char *prefix;
    store_ready_fn on_ready;
    void *ready_arg;
    char *keys[FN_COUNT][MAX_KEYS];  /* the functions' fixed keys, prefixed */
    size_t nkeys[FN_COUNT];
    store_observe_fn observe;
    void *observe_arg;
    char heartbeat_numkeys[8];
    const char *heartbeat_head[3 + MAX_KEYS + 1];  /* FCALL usher_heartbeats ... prefix */
    struct write_batch *heartbeats;
    struct stage_records *records;   /* the stats views' parsed stage records */
};

/* What a kind of answer needs: its decoder (into a union answer), how it
 * is handed to the caller's typed callback, and how it is freed. */
union answer {
    struct seat seat;
    struct heartbeat heartbeat;
    const char *text;
    long long number;
    struct viewer_list list;
    struct stats_view stats;
    struct lease lease;
    struct stage_removed removed;
    struct stage_info info;
    struct stage_events events;
    struct state_check check;
    struct live_read live;
};
struct call;
struct answer_kind {
    enum store_error (*decode)(struct store *s, const redisReply *reply,
                               union answer *out);            /* NULL: none */
    void (*deliver)(const struct call *c, enum store_error err, const char *detail,
                    const union answer *a);                      /* a NULL unless STORE_OK */
    void (*clear)(union answer *a);                              /* NULL: nothing to free */
};

/* An operation waiting for its reply: the caller's typed callback. */
struct call {
    const struct answer_kind *kind;
    void (*fn)(void);
    void *arg;
    struct store *store;
    int64_t sent_us;
};

/* The library's version, from its `local VERSION = n` line. */
static long long library_version(void)
{
    const char *at = strstr(usher_lua_library, "\nlocal VERSION = ");
    return at ? strtoll(at + strlen("\nlocal VERSION = "), NULL, 10) : 0;
}

static void store_keys_free(struct store *s)
{
    for (size_t f = 0; f < FN_COUNT; f++)
        for (size_t k = 0; k < MAX_KEYS; k++)
            free(s->keys[f][k]);
}

static bool store_keys_make(struct store *s)
{
    for (size_t f = 0; f < FN_COUNT; f++)
        for (size_t k = 0; k < MAX_KEYS && functions[f].keys[k]; k++) {
            size_t len = strlen(s->prefix) + strlen(functions[f].keys[k]) + 1;
            if (!(s->keys[f][k] = malloc(len)))
                return false;
            snprintf(s->keys[f][k], len, "%s%s", s->prefix, functions[f].keys[k]);
            s->nkeys[f] = k + 1;
        }
    return true;
}

static void store_on_ready(void *arg);

/* The batch heartbeats share: its FCALL head is that of FN_HEARTBEAT. */
static struct write_batch *heartbeats_new(struct store *s)
{
    int n = 0;
    snprintf(s->heartbeat_numkeys, sizeof s->heartbeat_numkeys, "%zu", s->nkeys[FN_HEARTBEAT]);
    s->heartbeat_head[n++] = "FCALL";
    s->heartbeat_head[n++] = functions[FN_HEARTBEAT].name;
    s->heartbeat_head[n++] = s->heartbeat_numkeys;
    for (size_t k = 0; k < s->nkeys[FN_HEARTBEAT]; k++)
        s->heartbeat_head[n++] = s->keys[FN_HEARTBEAT][k];
    s->heartbeat_head[n++] = s->prefix;
    return write_batch_new(s->redis, n, s->heartbeat_head, HEARTBEATS_PER_CALL);
}

struct store *store_new(struct event_base *base, const struct config *cfg,
                        store_ready_fn on_ready, void *ready_arg)
{
    struct store *s = calloc(1, sizeof *s);
    long long version = library_version();
    if (!s || version <= 0) {
        free(s);
        return NULL;
    }
    s->prefix = cfg->redis_key_prefix;
    s->on_ready = on_ready;
    s->ready_arg = ready_arg;
    if (!store_keys_make(s) ||
        !(s->redis = redis_new(base, cfg, usher_lua_library, version, store_on_ready, s)) ||
        !(s->heartbeats = heartbeats_new(s)) || !(s->records = stage_records_new())) {
        write_batch_free(s->heartbeats);
        redis_free(s->redis);
        store_keys_free(s);
        free(s);
        return NULL;
    }
    return s;
}

void store_free(struct store *s)
{
    if (!s)
        return;
    write_batch_free(s->heartbeats);
    redis_free(s->redis);
    stage_records_free(s->records);
    store_keys_free(s);
    free(s);
}

bool store_ready(const struct store *s) { return s && redis_is_ready(s->redis); }

void store_observe(struct store *s, store_observe_fn fn, void *arg)
{
    s->observe = fn;
    s->observe_arg = arg;
}

const char *store_last_error(const struct store *s) { return redis_last_error(s->redis); }

/* ---- answers -------------------------------------------------------------- */

/* Decoders of a reply; those of stats views parse the stage records through
 * the store's cache (records.h). */
#define DECODER(name, expr) \
    static enum store_error name(struct store *s, const redisReply *r, union answer *a) \
    { \
        (void)s, (void)a; \
        return expr; \
    }
DECODER(dec_seat, decode_seat(r, &a->seat))
DECODER(dec_heartbeat, decode_heartbeat(r, &a->heartbeat))
DECODER(dec_text, decode_text(r, &a->text))
DECODER(dec_number, decode_number(r, &a->number))
DECODER(dec_joined, decode_joined(r, &a->number))
DECODER(dec_live, decode_live(r, &a->number))
DECODER(dec_updated, decode_updated(r))
DECODER(dec_list, decode_viewer_list(r, &a->list))
DECODER(dec_stats, decode_stats(r, s->records, &a->stats))
DECODER(dec_lease, decode_lease(r, &a->lease))
DECODER(dec_removed, decode_stage_removed(r, &a->removed))
DECODER(dec_info, decode_stage_info(r, &a->info))
DECODER(dec_events, decode_events(r, &a->events))
DECODER(dec_check, decode_check(r, &a->check))
DECODER(dec_live_read, decode_live_read(r, s->records, &a->live))
#undef DECODER

static void clear_list(union answer *a) { viewer_list_clear(&a->list); }
static void clear_stats(union answer *a) { stats_view_clear(&a->stats); }
static void clear_info(union answer *a) { stage_info_clear(&a->info); }
static void clear_events(union answer *a) { stage_events_clear(&a->events); }
static void clear_check(union answer *a) { state_check_clear(&a->check); }
static void clear_live_read(union answer *a)
{
    stats_view_clear(&a->live.stats);
    stage_events_clear(&a->live.events);
}

#define GIVE(type, field) ((type)c->fn)(c->arg, err, detail, a ? &a->field : NULL)
static void give_done(const struct call *c, enum store_error err, const char *detail, const union answer *a)
{
    (void)a;
    ((store_done_fn)c->fn)(c->arg, err, detail);
}
static void give_number(const struct call *c, enum store_error err, const char *detail, const union answer *a)
{
    ((store_number_fn)c->fn)(c->arg, err, detail, a ? a->number : 0);
}
static void give_text(const struct call *c, enum store_error err, const char *detail, const union answer *a)
{
    ((store_text_fn)c->fn)(c->arg, err, detail, a ? a->text : NULL);
}
static void give_seat(const struct call *c, enum store_error err, const char *detail, const union answer *a) { GIVE(store_seat_fn, seat); }
static void give_heartbeat(const struct call *c, enum store_error err, const char *detail, const union answer *a) { GIVE(store_heartbeat_fn, heartbeat); }
static void give_list(const struct call *c, enum store_error err, const char *detail, const union answer *a) { GIVE(store_viewer_list_fn, list); }
static void give_stats(const struct call *c, enum store_error err, const char *detail, const union answer *a) { GIVE(store_stats_fn, stats); }
static void give_lease(const struct call *c, enum store_error err, const char *detail, const union answer *a) { GIVE(store_lease_fn, lease); }
static void give_removed(const struct call *c, enum store_error err, const char *detail, const union answer *a) { GIVE(store_removed_fn, removed); }
static void give_info(const struct call *c, enum store_error err, const char *detail, const union answer *a) { GIVE(store_info_fn, info); }
static void give_events(const struct call *c, enum store_error err, const char *detail, const union answer *a) { GIVE(store_events_fn, events); }
static void give_check(const struct call *c, enum store_error err, const char *detail, const union answer *a) { GIVE(store_check_fn, check); }
static void give_live_read(const struct call *c, enum store_error err, const char *detail, const union answer *a) { GIVE(store_live_fn, live); }
#undef GIVE

static const struct answer_kind
    DONE = {NULL, give_done, NULL},           UPDATED = {dec_updated, give_done, NULL},
    NUMBER = {dec_number, give_number, NULL}, JOINED = {dec_joined, give_number, NULL},
    LIVE = {dec_live, give_number, NULL},     TEXT = {dec_text, give_text, NULL},
    SEAT = {dec_seat, give_seat, NULL},       HEARTBEAT = {dec_heartbeat, give_heartbeat, NULL},
    LIST = {dec_list, give_list, clear_list}, STATS = {dec_stats, give_stats, clear_stats},
    LEASE = {dec_lease, give_lease, NULL},    REMOVED = {dec_removed, give_removed, NULL},
    INFO = {dec_info, give_info, clear_info}, EVENTS = {dec_events, give_events, clear_events},
    CHECK = {dec_check, give_check, clear_check},
    LIVE_READ = {dec_live_read, give_live_read, clear_live_read};

/* Every reply comes here: Redis trouble, a refusal, or an answer to decode. */
static void on_reply(void *p, redisReply *reply, const char *error)
{
    struct call c = *(struct call *)p;
    free(p);
    union answer a;
    memset(&a, 0, sizeof a);
    const char *detail = error ? error : reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "";
    enum store_error err = error || !reply ? STORE_UNAVAILABLE : decode_error(reply);
    if (err == STORE_OK && c.kind->decode)
        err = c.kind->decode(c.store, reply, &a);
    if (err != STORE_OK && !detail[0])
        detail = err == STORE_FAILED ? "unexpected reply from redis" : "refused";
    if (c.store->observe)
        c.store->observe(c.store->observe_arg, (double)(clock_mono_us() - c.sent_us) / 1e6,
                         err == STORE_UNAVAILABLE || err == STORE_FAILED);
    c.kind->deliver(&c, err, detail, err == STORE_OK ? &a : NULL);
    if (c.kind->clear)
        c.kind->clear(&a);
}

/* ---- sending ------------------------------------------------------------ */

/* A call for fn; NULL (and fn already answered) when out of memory. With
 * no memory there is no way to answer later, so that answer comes at once. */
static struct call *call_new(struct store *s, const struct answer_kind *kind, void (*fn)(void),
                             void *arg)
{
    struct call *c = malloc(sizeof *c);
    if (c) {
        *c = (struct call){kind, fn, arg, s, clock_mono_us()};
        return c;
    }
    struct call failed = {kind, fn, arg, s, 0};
    kind->deliver(&failed, STORE_FAILED, "out of memory", NULL);
    return NULL;
}
#define CALL(kind, fn) call_new(s, &(kind), (void (*)(void))(fn), arg)

/* The FCALL of function f with its fixed keys and ARGV = prefix, args, into
 * av (room for 4 + MAX_KEYS + argc); returns the count. */
static int fcall_argv(struct store *s, enum function f, char numkeys[8], int argc,
                      const char **args, const char **av)
{
    int n = 0;
    snprintf(numkeys, 8, "%zu", s->nkeys[f]);
    av[n++] = "FCALL";
    av[n++] = functions[f].name;
    av[n++] = numkeys;
    for (size_t k = 0; k < s->nkeys[f]; k++)
        av[n++] = s->keys[f][k];
    av[n++] = s->prefix;
    for (int i = 0; i < argc; i++)
        av[n++] = args[i];
    return n;
}

/* FCALL function f with its fixed keys and ARGV = prefix, args. */
static void fcall(struct store *s, enum function f, struct call *c, int argc, const char **args)
{
    const char *av[4 + MAX_KEYS + MAX_ARGS];
    char numkeys[8];
    if (!c)
        return;
    int n = fcall_argv(s, f, numkeys, argc < MAX_ARGS ? argc : MAX_ARGS, args, av);
    redis_command(s->redis, on_reply, c, n, av, NULL);
}

/* A plain command on one key, prefix + name + suffix (suffix may be NULL);
 * args follow the key. */
static void command(struct store *s, const char *verb, const char *name, const char *suffix,
                    struct call *c, int argc, const char **args)
{
    char key[512];
    const char *av[2 + MAX_ARGS];
    if (!c)
        return;
    snprintf(key, sizeof key, "%s%s%s", s->prefix, name, suffix ? suffix : "");
    av[0] = verb;
    av[1] = key;
    for (int i = 0; i < argc && i < MAX_ARGS; i++)
        av[2 + i] = args[i];
    redis_command(s->redis, on_reply, c, 2 + (argc < MAX_ARGS ? argc : MAX_ARGS), av, NULL);
}

static void lltoa(long long v, char *out, size_t len) { snprintf(out, len, "%lld", v); }

static void reindexed(void *arg, enum store_error err, const char *detail, long long seats)
{
    (void)arg;
    if (err != STORE_OK)
        log_error("redis: usher_reindex failed: %s", detail);
    else if (seats > 0)
        log_info("redis: seat index built for %lld seats recorded before it existed", seats);
}

/* Each ready connection first builds what an older library left out (a
 * no-op once done); commands sent after it run after it, in order. */
static void store_on_ready(void *arg)
{
    struct store *s = arg;
    fcall(s, FN_REINDEX, call_new(s, &NUMBER, (void (*)(void))reindexed, NULL), 0, NULL);
    if (s->on_ready)
        s->on_ready(s->ready_arg);
}

/* ---- viewers ------------------------------------------------------------ */

void store_seat(struct store *s, const struct seat_request *q, store_seat_fn fn, void *arg)
{
    char now[24], capacity[24], max_stages[24];
    lltoa(q->now_ms, now, sizeof now);
    lltoa(q->capacity, capacity, sizeof capacity);
    lltoa(q->max_stages, max_stages, sizeof max_stages);
    const char *args[] = {q->user_id, q->stage_arn ? q->stage_arn : "", q->participant_id,
                          now, capacity, q->rejoin ? "rejoin" : "join", max_stages};
    fcall(s, FN_SEAT, CALL(SEAT, fn), 7, args);
}

void store_heartbeat(struct store *s, const char *user_id, const char *stage_arn,
                     int64_t now_ms, long capacity, store_heartbeat_fn fn, void *arg)
{
    char now[24], cap[24];
    lltoa(now_ms, now, sizeof now);
    lltoa(capacity, cap, sizeof cap);
    const char *args[] = {user_id, stage_arn, now, cap};
    struct call *c = CALL(HEARTBEAT, fn);
    if (c)
        write_batch_add(s->heartbeats, 4, args, on_reply, c);
}

void store_leave(struct store *s, const char *user_id, const char *stage_arn, int64_t now_ms,
                 store_text_fn fn, void *arg)
{
    char now[24];
    lltoa(now_ms, now, sizeof now);
    const char *args[] = {user_id, stage_arn, now};
    fcall(s, FN_LEAVE, CALL(TEXT, fn), 3, args);
}

void store_seat_of(struct store *s, const char *user_id, store_text_fn fn, void *arg)
{
    fcall(s, FN_SEAT_OF, CALL(TEXT, fn), 1, &user_id);
}

void store_sweep(struct store *s, int64_t cutoff_ms, long limit, store_number_fn fn, void *arg)
{
    char cutoff[24], max[24];
    lltoa(cutoff_ms, cutoff, sizeof cutoff);
    lltoa(limit, max, sizeof max);
    const char *args[] = {cutoff, max};
    fcall(s, FN_SWEEP, CALL(NUMBER, fn), 2, args);
}

void store_viewer_list(struct store *s, const char *stage_arn, int64_t active_after_ms,
                       long max, store_viewer_list_fn fn, void *arg)
{
    char cutoff[24], most[24];
    lltoa(active_after_ms, cutoff, sizeof cutoff);
    lltoa(max, most, sizeof most);
    const char *args[] = {stage_arn, cutoff, most};
    fcall(s, FN_VIEWER_LIST, CALL(LIST, fn), 3, args);
}

void store_seat_joined(struct store *s, const char *user_id, const char *stage_arn,
                       store_number_fn fn, void *arg)
{
    command(s, "HGET", "viewer:heartbeat:", stage_arn, CALL(JOINED, fn), 1, &user_id);
}

void store_total_viewers(struct store *s, store_number_fn fn, void *arg)
{
    command(s, "GET", "total_viewers", NULL, CALL(NUMBER, fn), 0, NULL);
}

/* ---- publisher ------------------------------------------------------------ */

void store_publisher_set(struct store *s, bool live, store_text_fn fn, void *arg)
{
    char ttl[16];
    lltoa(PUBLISHER_STATUS_TTL_S, ttl, sizeof ttl);
    const char *args[] = {live ? "live" : "offline", "EX", ttl, "GET"};
    command(s, "SET", "publisher:status", NULL, CALL(TEXT, fn), 4, args);
}

void store_publisher_get(struct store *s, store_number_fn fn, void *arg)
{
    command(s, "GET", "publisher:status", NULL, CALL(LIVE, fn), 0, NULL);
}

/* ---- stages --------------------------------------------------------------- */

void store_stats(struct store *s, store_stats_fn fn, void *arg)
{
    fcall(s, FN_STATS, CALL(STATS, fn), 0, NULL);
}

void store_stage_add(struct store *s, const struct stage_record *r, store_text_fn fn, void *arg)
{
    char *state = r->state ? stage_state_json(r->state) : NULL;
    if (r->state && !state) {
        fn(arg, STORE_FAILED, "out of memory", NULL);
        return;
    }
    char created[24], ttl[16], max[24], master[4];
    lltoa(r->created_ms, created, sizeof created);
    lltoa(STAGE_KEY_TTL_S, ttl, sizeof ttl);
    lltoa(r->max_stages, max, sizeof max);
    lltoa(r->master == MASTER_NONE ? 0 : r->master == MASTER_UNLESS_ONE ? 1 : 2, master, sizeof master);
    const char *args[] = {r->arn, r->info_json, created, ttl, max, master,
                          r->lease_holder ? r->lease_holder : "", stage_mode_name(r->mode),
                          state ? state : "", r->tags_json ? r->tags_json : "",
                          r->endpoints_json ? r->endpoints_json : ""};
    fcall(s, FN_STAGE_ADD, CALL(TEXT, fn), 11, args);
    free(state);
}

void store_stage_update(struct store *s, const char *lease_holder, const char *stage_arn,
                        enum stage_mode mode, const struct stage_state *state,
                        store_done_fn fn, void *arg)
{
    char *json = stage_state_json(state);
    if (!json) {
        fn(arg, STORE_FAILED, "out of memory");
        return;
    }
    const char *args[] = {lease_holder, stage_arn, stage_mode_name(mode), json};
    fcall(s, FN_STAGE_UPDATE, CALL(UPDATED, fn), 4, args);
    free(json);
}

void store_replica_record(struct store *s, const char *lease_holder, const char *stage_arn,
                          enum stage_mode mode, const struct stage_state *seen,
                          const struct stage_state *state, store_number_fn fn, void *arg)
{
    char *was = stage_state_json(seen), *json = stage_state_json(state);
    if (was && json) {
        const char *args[] = {lease_holder, stage_arn, stage_mode_name(mode), was, json};
        fcall(s, FN_REPLICA_RECORD, CALL(NUMBER, fn), 5, args);
    } else {
        fn(arg, STORE_FAILED, "out of memory", 0);
    }
    free(was);
    free(json);
}

void store_replica_claim(struct store *s, const char *lease_holder, const char *dest_arn,
                         const char *participant_id, long ttl_ms, store_number_fn fn, void *arg)
{
    char ttl[24];
    lltoa(ttl_ms, ttl, sizeof ttl);
    const char *args[] = {lease_holder, dest_arn, participant_id, ttl};
    fcall(s, FN_REPLICA_CLAIM, CALL(NUMBER, fn), 4, args);
}

void store_stage_remove(struct store *s, const char *stage_arn, const char *lease_holder,
                        store_removed_fn fn, void *arg)
{
    char claim_ms[16];
    lltoa(STORE_STOP_CLAIM_MS, claim_ms, sizeof claim_ms);
    const char *args[] = {stage_arn, lease_holder ? lease_holder : "", claim_ms};
    fcall(s, FN_STAGE_REMOVE, CALL(REMOVED, fn), 3, args);
}

void store_stage_rename(struct store *s, const char *stage_arn, const char *name,
                        store_info_fn fn, void *arg)
{
    char ttl[16];
    lltoa(STAGE_KEY_TTL_S, ttl, sizeof ttl);
    const char *args[] = {stage_arn, name, ttl};
    fcall(s, FN_STAGE_RENAME, CALL(INFO, fn), 3, args);
}

void store_stage_renew(struct store *s, store_number_fn fn, void *arg)
{
    char ttl[16];
    lltoa(STAGE_KEY_TTL_S, ttl, sizeof ttl);
    const char *args[] = {ttl};
    fcall(s, FN_STAGE_RENEW, CALL(NUMBER, fn), 1, args);
}

void store_stage_endpoints(struct store *s, const char *stage_arn, store_text_fn fn, void *arg)
{
    command(s, "HGET", "stage_endpoints", NULL, CALL(TEXT, fn), 1, &stage_arn);
}

void store_check(struct store *s, const char *new_state_id, store_check_fn fn, void *arg)
{
    fcall(s, FN_CHECK, CALL(CHECK, fn), 1, &new_state_id);
}

/* ---- scaler lease ------------------------------------------------------- */

void store_lease(struct store *s, const char *holder, long ttl_ms, store_lease_fn fn, void *arg)
{
    char ttl[24];
    lltoa(ttl_ms, ttl, sizeof ttl);
    const char *args[] = {holder, ttl};
    fcall(s, FN_LEASE, CALL(LEASE, fn), 2, args);
}

/* ---- IVS call rates ------------------------------------------------------ */

void store_rate_take(struct store *s, const char *cls, long interval_ms, bool priority,
                     store_number_fn fn, void *arg)
{
    char interval[24];
    lltoa(interval_ms, interval, sizeof interval);
    const char *args[] = {cls, interval, priority ? "high" : "low"};
    fcall(s, FN_RATE_TAKE, CALL(NUMBER, fn), 3, args);
}

/* ---- reconciliation ------------------------------------------------------ */

void store_reconcile_seat(struct store *s, const char *stage_arn, int64_t read_at_ms,
                          int64_t now_ms, long capacity, const struct reconcile_participant *list,
                          size_t n, store_text_fn fn, void *arg)
{
    size_t argc = 4 + 2 * n;
    const char **args = malloc(argc * sizeof *args);
    const char **av = malloc((argc + 4 + MAX_KEYS) * sizeof *av);
    if (!args || !av) {
        free(args), free(av);
        fn(arg, STORE_FAILED, "out of memory", NULL);
        return;
    }
    char read_at[24], now[24], cap[24], numkeys[8];
    lltoa(read_at_ms, read_at, sizeof read_at);
    lltoa(now_ms, now, sizeof now);
    lltoa(capacity, cap, sizeof cap);
    args[0] = stage_arn, args[1] = read_at, args[2] = now, args[3] = cap;
    for (size_t i = 0; i < n; i++)
        args[4 + 2 * i] = list[i].participant_id, args[5 + 2 * i] = list[i].user_id;
    struct call *c = CALL(TEXT, fn);
    if (c)
        redis_command(s->redis, on_reply, c,
                      fcall_argv(s, FN_RECONCILE_SEAT, numkeys, (int)argc, args, av), av, NULL);
    free(args), free(av);
}

void store_reconcile_ghosts(struct store *s, const char *stage_arn, int64_t cutoff_ms,
                            store_text_fn fn, void *arg)
{
    char cutoff[24];
    lltoa(cutoff_ms, cutoff, sizeof cutoff);
    const char *args[] = {stage_arn, cutoff};
    fcall(s, FN_RECONCILE_GHOSTS, CALL(TEXT, fn), 2, args);
}

void store_reconcile_note(struct store *s, const char *stage_arn, const char *note_json,
                          store_done_fn fn, void *arg)
{
    const char *args[] = {stage_arn, note_json};
    command(s, "HSET", "stage_reconcile", NULL, CALL(DONE, fn), 2, args);
}

void store_reconcile_notes(struct store *s, store_text_fn fn, void *arg)
{
    fcall(s, FN_RECONCILE_NOTES, CALL(TEXT, fn), 0, NULL);
}

void store_event_news(struct store *s, const char *stage_arn, const char *time, const char *id,
                      store_number_fn fn, void *arg)
{
    const char *args[] = {stage_arn, time, id};
    fcall(s, FN_EVENT_NEWS, CALL(NUMBER, fn), 3, args);
}

void store_orphan_seen(struct store *s, const char *arns_json, store_text_fn fn, void *arg)
{
    const char *args[] = {arns_json};
    fcall(s, FN_ORPHAN_SEEN, CALL(TEXT, fn), 1, args);
}

/* ---- stage events ------------------------------------------------------- */

void store_events_append(struct store *s, const struct stage_event *e, long kept,
                         store_done_fn fn, void *arg)
{
    char most[24];
    lltoa(kept, most, sizeof most);
    const char *args[] = {"MAXLEN", "~", most, "*", "type", e->type, "stageArn", e->stage_arn,
                          "detail", e->detail ? e->detail : "", "at", e->at};
    command(s, "XADD", "stage_events", NULL, CALL(DONE, fn), 12, args);
}

void store_events_read(struct store *s, long limit, store_events_fn fn, void *arg)
{
    char count[24];
    lltoa(limit, count, sizeof count);
    const char *args[] = {"+", "-", "COUNT", count};
    command(s, "XREVRANGE", "stage_events", NULL, CALL(EVENTS, fn), 4, args);
}

void store_events_after(struct store *s, const char *after_id, long limit,
                        store_events_fn fn, void *arg)
{
    char count[24], start[64];
    lltoa(limit, count, sizeof count);
    if (after_id[0])
        snprintf(start, sizeof start, "(%s", after_id);
    else
        snprintf(start, sizeof start, "-");
    const char *args[] = {start, "+", "COUNT", count};
    command(s, "XRANGE", "stage_events", NULL, CALL(EVENTS, fn), 4, args);
}

/* ---- the live feed ------------------------------------------------------- */

void store_live(struct store *s, const char *after_id, long limit, store_live_fn fn, void *arg)
{
    char most[24];
    lltoa(limit, most, sizeof most);
    const char *args[] = {after_id, most};
    fcall(s, FN_LIVE, CALL(LIVE_READ, fn), 2, args);
}

/* ---- webhooks ------------------------------------------------------------ */

void store_webhook_claim(struct store *s, const char *event_id, long ttl_s, store_number_fn fn,
                         void *arg)
{
    char ttl[24];
    lltoa(ttl_s, ttl, sizeof ttl);
    const char *args[] = {event_id, ttl};
    fcall(s, FN_WEBHOOK_CLAIM, CALL(NUMBER, fn), 2, args);
}

/* ---- health --------------------------------------------------------------- */

void store_ping(struct store *s, store_done_fn fn, void *arg)
{
    struct call *c = CALL(DONE, fn);
    const char *av[] = {"PING"};
    if (c)
        redis_command(s->redis, on_reply, c, 1, av, NULL);
}
