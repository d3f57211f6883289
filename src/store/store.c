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

extern const char usher_lua_library[];

enum function {
    FN_SEAT, FN_HEARTBEAT, FN_LEAVE, FN_SWEEP, FN_VIEWER_LIST, FN_STATS, FN_STAGE_ADD,
    FN_STAGE_UPDATE, FN_STAGE_REMOVE, FN_STAGE_RENAME, FN_STAGE_RENEW, FN_LEASE, FN_COUNT
};

enum { MAX_KEYS = 7, MAX_ARGS = 12 };

/* Each function's name and the fixed keys it touches, without the prefix. */
static const struct { const char *name; const char *keys[MAX_KEYS]; } functions[FN_COUNT] = {
    [FN_SEAT] = {"usher_seat", {"publisher:status", "stages", "stage_mode", "total_viewers"}},
    [FN_HEARTBEAT] = {"usher_heartbeat", {"stages", "stage_mode"}},
    [FN_LEAVE] = {"usher_leave", {"stages", "total_viewers"}},
    [FN_SWEEP] = {"usher_sweep", {"stages", "total_viewers"}},
    [FN_VIEWER_LIST] = {"usher_viewer_list", {"stages"}},
    [FN_STATS] = {"usher_stats", {"total_viewers", "publisher:status", "master_stage", "stages",
                                  "stage_info", "stage_mode", "stage_state"}},
    [FN_STAGE_ADD] = {"usher_stage_add", {"scaler:lease", "master_stage", "stages", "stage_info",
                                          "stage_mode", "stage_state"}},
    [FN_STAGE_UPDATE] = {"usher_stage_update", {"scaler:lease", "stages", "stage_mode", "stage_state"}},
    [FN_STAGE_REMOVE] = {"usher_stage_remove", {"scaler:lease", "master_stage", "stages",
                                                "total_viewers", "stage_info", "stage_mode",
                                                "stage_state"}},
    [FN_STAGE_RENAME] = {"usher_stage_rename", {"stages", "stage_info"}},
    [FN_STAGE_RENEW] = {"usher_stage_renew", {"stages", "stage_info"}},
    [FN_LEASE] = {"usher_lease", {"scaler:lease", "scaler:epoch"}},
};

struct store {
    struct redis *redis;
    const char *prefix;
    char *keys[FN_COUNT][MAX_KEYS];  /* the functions' fixed keys, prefixed */
    size_t nkeys[FN_COUNT];
};

/* An operation waiting for its reply: the caller's typed callback. */
struct call {
    void (*fn)(void);
    void *arg;
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
    if (!store_keys_make(s) ||
        !(s->redis = redis_new(base, cfg, usher_lua_library, version, on_ready, ready_arg))) {
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
    redis_free(s->redis);
    store_keys_free(s);
    free(s);
}

bool store_ready(const struct store *s) { return redis_is_ready(s->redis); }

const char *store_last_error(const struct store *s) { return redis_last_error(s->redis); }

/* ---- sending ------------------------------------------------------------ */

static struct call *call_new(void (*fn)(void), void *arg)
{
    struct call *c = malloc(sizeof *c);
    if (c)
        *c = (struct call){fn, arg};
    return c;
}

/* Takes the call apart (freeing it) and says how the reply went: Redis
 * trouble, a refusal or unexpected error, or STORE_OK. */
static enum store_error reply_error(struct call *c, const redisReply *reply, const char *error,
                                    const char **detail, void **arg)
{
    *arg = c->arg;
    free(c);
    *detail = error ? error : reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "";
    return error || !reply ? STORE_UNAVAILABLE : decode_error(reply);
}

/* FCALL function f with its fixed keys and ARGV = prefix, args. */
static void fcall(struct store *s, enum function f, redis_reply_fn on_reply, struct call *c,
                  int argc, const char **args)
{
    const char *av[3 + MAX_KEYS + 1 + MAX_ARGS];
    char numkeys[8];
    int n = 0;
    snprintf(numkeys, sizeof numkeys, "%zu", s->nkeys[f]);
    av[n++] = "FCALL";
    av[n++] = functions[f].name;
    av[n++] = numkeys;
    for (size_t k = 0; k < s->nkeys[f]; k++)
        av[n++] = s->keys[f][k];
    av[n++] = s->prefix;
    for (int i = 0; i < argc && i < MAX_ARGS; i++)
        av[n++] = args[i];
    redis_command(s->redis, on_reply, c, n, av, NULL);
}

/* A plain command on one key, prefix + name; extra arguments follow it. */
static void command(struct store *s, const char *verb, const char *name, const char *suffix,
                    redis_reply_fn on_reply, struct call *c, int argc, const char **args)
{
    char key[512];
    const char *av[2 + 12];
    snprintf(key, sizeof key, "%s%s%s", s->prefix, name, suffix ? suffix : "");
    av[0] = verb;
    av[1] = key;
    for (int i = 0; i < argc && i < 12; i++)
        av[2 + i] = args[i];
    redis_command(s->redis, on_reply, c, 2 + (argc < 12 ? argc : 12), av, NULL);
}

/* A call could not be made (out of memory): say so through fn's kind.
 * The callback must not run inside the caller's call; with no memory for
 * the call there is no way to defer it, so these are answered at once. */
#define NO_MEMORY(fn, ...) fn(arg, STORE_FAILED, "out of memory", __VA_ARGS__)

static void lltoa(long long v, char *out, size_t len) { snprintf(out, len, "%lld", v); }

/* ---- viewers ------------------------------------------------------------ */

static void seat_reply(void *p, redisReply *reply, const char *error)
{
    store_seat_fn fn = (store_seat_fn)((struct call *)p)->fn;
    void *arg;
    const char *detail;
    struct seat seat;
    enum store_error err = reply_error(p, reply, error, &detail, &arg);
    if (err == STORE_OK)
        err = decode_seat(reply, &seat);
    fn(arg, err, detail, err == STORE_OK ? &seat : NULL);
}

void store_seat(struct store *s, const struct seat_request *q, store_seat_fn fn, void *arg)
{
    struct call *c = call_new((void (*)(void))fn, arg);
    if (!c) {
        NO_MEMORY(fn, NULL);
        return;
    }
    char now[24], capacity[24];
    lltoa(q->now_ms, now, sizeof now);
    lltoa(q->capacity, capacity, sizeof capacity);
    const char *args[] = {q->user_id, q->stage_arn ? q->stage_arn : "", q->participant_id,
                          now, capacity, q->rejoin ? "rejoin" : "join"};
    fcall(s, FN_SEAT, seat_reply, c, 6, args);
}

static void heartbeat_reply(void *p, redisReply *reply, const char *error)
{
    store_heartbeat_fn fn = (store_heartbeat_fn)((struct call *)p)->fn;
    void *arg;
    const char *detail;
    struct heartbeat hb;
    enum store_error err = reply_error(p, reply, error, &detail, &arg);
    if (err == STORE_OK)
        err = decode_heartbeat(reply, &hb);
    fn(arg, err, detail, err == STORE_OK ? &hb : NULL);
}

void store_heartbeat(struct store *s, const char *user_id, const char *stage_arn,
                     int64_t now_ms, long capacity, store_heartbeat_fn fn, void *arg)
{
    struct call *c = call_new((void (*)(void))fn, arg);
    if (!c) {
        NO_MEMORY(fn, NULL);
        return;
    }
    char now[24], cap[24];
    lltoa(now_ms, now, sizeof now);
    lltoa(capacity, cap, sizeof cap);
    const char *args[] = {user_id, stage_arn, now, cap};
    fcall(s, FN_HEARTBEAT, heartbeat_reply, c, 4, args);
}

static void text_reply(void *p, redisReply *reply, const char *error)
{
    store_text_fn fn = (store_text_fn)((struct call *)p)->fn;
    void *arg;
    const char *detail, *text = NULL;
    enum store_error err = reply_error(p, reply, error, &detail, &arg);
    if (err == STORE_OK)
        err = decode_text(reply, &text);
    fn(arg, err, detail, err == STORE_OK ? text : NULL);
}

static void number_reply(void *p, redisReply *reply, const char *error)
{
    store_number_fn fn = (store_number_fn)((struct call *)p)->fn;
    void *arg;
    const char *detail;
    long long n = 0;
    enum store_error err = reply_error(p, reply, error, &detail, &arg);
    if (err == STORE_OK)
        err = decode_number(reply, &n);
    fn(arg, err, detail, n);
}

static void done_reply(void *p, redisReply *reply, const char *error)
{
    store_done_fn fn = (store_done_fn)((struct call *)p)->fn;
    void *arg;
    const char *detail;
    enum store_error err = reply_error(p, reply, error, &detail, &arg);
    fn(arg, err, detail);
}

void store_leave(struct store *s, const char *user_id, const char *stage_arn,
                 store_text_fn fn, void *arg)
{
    struct call *c = call_new((void (*)(void))fn, arg);
    if (!c) {
        NO_MEMORY(fn, NULL);
        return;
    }
    const char *args[] = {user_id, stage_arn};
    fcall(s, FN_LEAVE, text_reply, c, 2, args);
}

void store_sweep(struct store *s, int64_t cutoff_ms, long limit, store_number_fn fn, void *arg)
{
    struct call *c = call_new((void (*)(void))fn, arg);
    if (!c) {
        NO_MEMORY(fn, 0);
        return;
    }
    char cutoff[24], max[24];
    lltoa(cutoff_ms, cutoff, sizeof cutoff);
    lltoa(limit, max, sizeof max);
    const char *args[] = {cutoff, max};
    fcall(s, FN_SWEEP, number_reply, c, 2, args);
}

static void viewer_list_reply(void *p, redisReply *reply, const char *error)
{
    store_viewer_list_fn fn = (store_viewer_list_fn)((struct call *)p)->fn;
    void *arg;
    const char *detail;
    struct viewer_list list = {0};
    enum store_error err = reply_error(p, reply, error, &detail, &arg);
    if (err == STORE_OK)
        err = decode_viewer_list(reply, &list);
    fn(arg, err, detail, err == STORE_OK ? &list : NULL);
    viewer_list_clear(&list);
}

void store_viewer_list(struct store *s, const char *stage_arn, int64_t active_after_ms,
                       long max, store_viewer_list_fn fn, void *arg)
{
    struct call *c = call_new((void (*)(void))fn, arg);
    if (!c) {
        NO_MEMORY(fn, NULL);
        return;
    }
    char cutoff[24], most[24];
    lltoa(active_after_ms, cutoff, sizeof cutoff);
    lltoa(max, most, sizeof most);
    const char *args[] = {stage_arn, cutoff, most};
    fcall(s, FN_VIEWER_LIST, viewer_list_reply, c, 3, args);
}

static void joined_reply(void *p, redisReply *reply, const char *error)
{
    store_number_fn fn = (store_number_fn)((struct call *)p)->fn;
    void *arg;
    const char *detail;
    long long joined = 0;
    enum store_error err = reply_error(p, reply, error, &detail, &arg);
    if (err == STORE_OK)
        err = decode_joined(reply, &joined);
    fn(arg, err, detail, joined);
}

void store_seat_joined(struct store *s, const char *user_id, const char *stage_arn,
                       store_number_fn fn, void *arg)
{
    struct call *c = call_new((void (*)(void))fn, arg);
    if (!c) {
        NO_MEMORY(fn, 0);
        return;
    }
    command(s, "HGET", "viewer:heartbeat:", stage_arn, joined_reply, c, 1, &user_id);
}

void store_total_viewers(struct store *s, store_number_fn fn, void *arg)
{
    struct call *c = call_new((void (*)(void))fn, arg);
    if (!c) {
        NO_MEMORY(fn, 0);
        return;
    }
    command(s, "GET", "total_viewers", NULL, number_reply, c, 0, NULL);
}

/* ---- publisher ------------------------------------------------------------ */

void store_publisher_set(struct store *s, bool live, store_done_fn fn, void *arg)
{
    struct call *c = call_new((void (*)(void))fn, arg);
    if (!c) {
        fn(arg, STORE_FAILED, "out of memory");
        return;
    }
    char ttl[16];
    lltoa(PUBLISHER_STATUS_TTL_S, ttl, sizeof ttl);
    const char *args[] = {live ? "live" : "offline", "EX", ttl};
    command(s, "SET", "publisher:status", NULL, done_reply, c, 3, args);
}

static void publisher_reply(void *p, redisReply *reply, const char *error)
{
    store_number_fn fn = (store_number_fn)((struct call *)p)->fn;
    void *arg;
    const char *detail, *status = NULL;
    enum store_error err = reply_error(p, reply, error, &detail, &arg);
    if (err == STORE_OK)
        err = decode_text(reply, &status);
    fn(arg, err, detail, err == STORE_OK && strcmp(status, "live") == 0);
}

void store_publisher_get(struct store *s, store_number_fn fn, void *arg)
{
    struct call *c = call_new((void (*)(void))fn, arg);
    if (!c) {
        NO_MEMORY(fn, 0);
        return;
    }
    command(s, "GET", "publisher:status", NULL, publisher_reply, c, 0, NULL);
}

/* ---- stages --------------------------------------------------------------- */

static void stats_reply(void *p, redisReply *reply, const char *error)
{
    store_stats_fn fn = (store_stats_fn)((struct call *)p)->fn;
    void *arg;
    const char *detail;
    struct stats_view view = {0};
    enum store_error err = reply_error(p, reply, error, &detail, &arg);
    if (err == STORE_OK)
        err = decode_stats(reply, &view);
    fn(arg, err, detail, err == STORE_OK ? &view : NULL);
    stats_view_clear(&view);
}

void store_stats(struct store *s, store_stats_fn fn, void *arg)
{
    struct call *c = call_new((void (*)(void))fn, arg);
    if (!c) {
        NO_MEMORY(fn, NULL);
        return;
    }
    fcall(s, FN_STATS, stats_reply, c, 0, NULL);
}

void store_stage_add(struct store *s, const struct stage_record *r, store_text_fn fn, void *arg)
{
    struct call *c = call_new((void (*)(void))fn, arg);
    char *state = r->state ? stage_state_json(r->state) : NULL;
    if (!c || (r->state && !state)) {
        free(c), free(state);
        NO_MEMORY(fn, NULL);
        return;
    }
    char created[24], ttl[16], max[24], master[4];
    lltoa(r->created_ms, created, sizeof created);
    lltoa(STAGE_KEY_TTL_S, ttl, sizeof ttl);
    lltoa(r->max_stages, max, sizeof max);
    lltoa(r->master == MASTER_NONE ? 0 : r->master == MASTER_UNLESS_ONE ? 1 : 2, master, sizeof master);
    const char *args[] = {r->arn, r->info_json, created, ttl, max, master,
                          r->lease_holder ? r->lease_holder : "", stage_mode_name(r->mode),
                          state ? state : ""};
    fcall(s, FN_STAGE_ADD, text_reply, c, 9, args);
    free(state);
}

/* stage_update answers 0 when the stage is gone. */
static void updated_reply(void *p, redisReply *reply, const char *error)
{
    store_done_fn fn = (store_done_fn)((struct call *)p)->fn;
    void *arg;
    const char *detail;
    long long n = 0;
    enum store_error err = reply_error(p, reply, error, &detail, &arg);
    if (err == STORE_OK)
        err = decode_number(reply, &n);
    fn(arg, err == STORE_OK && n != 1 ? STORE_NO_STAGE : err, detail);
}

void store_stage_update(struct store *s, const char *lease_holder, const char *stage_arn,
                        enum stage_mode mode, const struct stage_state *state,
                        store_done_fn fn, void *arg)
{
    struct call *c = call_new((void (*)(void))fn, arg);
    char *json = stage_state_json(state);
    if (!c || !json) {
        free(c), free(json);
        fn(arg, STORE_FAILED, "out of memory");
        return;
    }
    const char *args[] = {lease_holder, stage_arn, stage_mode_name(mode), json};
    fcall(s, FN_STAGE_UPDATE, updated_reply, c, 4, args);
    free(json);
}

static void removed_reply(void *p, redisReply *reply, const char *error)
{
    store_removed_fn fn = (store_removed_fn)((struct call *)p)->fn;
    void *arg;
    const char *detail;
    struct stage_removed removed;
    enum store_error err = reply_error(p, reply, error, &detail, &arg);
    if (err == STORE_OK)
        err = decode_stage_removed(reply, &removed);
    fn(arg, err, detail, err == STORE_OK ? &removed : NULL);
}

void store_stage_remove(struct store *s, const char *stage_arn, const char *lease_holder,
                        store_removed_fn fn, void *arg)
{
    struct call *c = call_new((void (*)(void))fn, arg);
    if (!c) {
        NO_MEMORY(fn, NULL);
        return;
    }
    const char *args[] = {stage_arn, lease_holder ? lease_holder : ""};
    fcall(s, FN_STAGE_REMOVE, removed_reply, c, 2, args);
}

static void renamed_reply(void *p, redisReply *reply, const char *error)
{
    store_info_fn fn = (store_info_fn)((struct call *)p)->fn;
    void *arg;
    const char *detail, *text = NULL;
    struct stage_info info = {0};
    enum store_error err = reply_error(p, reply, error, &detail, &arg);
    if (err == STORE_OK)
        err = decode_text(reply, &text);
    if (err == STORE_OK)
        stage_info_parse(text, &info);
    fn(arg, err, detail, err == STORE_OK ? &info : NULL);
    stage_info_clear(&info);
}

void store_stage_rename(struct store *s, const char *stage_arn, const char *name,
                        store_info_fn fn, void *arg)
{
    struct call *c = call_new((void (*)(void))fn, arg);
    if (!c) {
        NO_MEMORY(fn, NULL);
        return;
    }
    char ttl[16];
    lltoa(STAGE_KEY_TTL_S, ttl, sizeof ttl);
    const char *args[] = {stage_arn, name, ttl};
    fcall(s, FN_STAGE_RENAME, renamed_reply, c, 3, args);
}

void store_stage_renew(struct store *s, store_number_fn fn, void *arg)
{
    struct call *c = call_new((void (*)(void))fn, arg);
    if (!c) {
        NO_MEMORY(fn, 0);
        return;
    }
    char ttl[16];
    lltoa(STAGE_KEY_TTL_S, ttl, sizeof ttl);
    const char *args[] = {ttl};
    fcall(s, FN_STAGE_RENEW, number_reply, c, 1, args);
}

void store_master_get(struct store *s, store_text_fn fn, void *arg)
{
    struct call *c = call_new((void (*)(void))fn, arg);
    if (!c) {
        NO_MEMORY(fn, NULL);
        return;
    }
    command(s, "GET", "master_stage", NULL, text_reply, c, 0, NULL);
}

/* ---- scaler lease ------------------------------------------------------- */

static void lease_reply(void *p, redisReply *reply, const char *error)
{
    store_lease_fn fn = (store_lease_fn)((struct call *)p)->fn;
    void *arg;
    const char *detail;
    struct lease lease;
    enum store_error err = reply_error(p, reply, error, &detail, &arg);
    if (err == STORE_OK)
        err = decode_lease(reply, &lease);
    fn(arg, err, detail, err == STORE_OK ? &lease : NULL);
}

void store_lease(struct store *s, const char *holder, long ttl_ms, store_lease_fn fn, void *arg)
{
    struct call *c = call_new((void (*)(void))fn, arg);
    if (!c) {
        NO_MEMORY(fn, NULL);
        return;
    }
    char ttl[24];
    lltoa(ttl_ms, ttl, sizeof ttl);
    const char *args[] = {holder, ttl};
    fcall(s, FN_LEASE, lease_reply, c, 2, args);
}

/* ---- stage events ------------------------------------------------------- */

void store_events_append(struct store *s, const struct stage_event *e, long kept,
                         store_done_fn fn, void *arg)
{
    struct call *c = call_new((void (*)(void))fn, arg);
    if (!c) {
        fn(arg, STORE_FAILED, "out of memory");
        return;
    }
    char most[24];
    lltoa(kept, most, sizeof most);
    const char *args[] = {"MAXLEN", "~", most, "*", "type", e->type, "stageArn", e->stage_arn,
                          "detail", e->detail ? e->detail : "", "at", e->at};
    command(s, "XADD", "stage_events", NULL, done_reply, c, 12, args);
}

static void events_reply(void *p, redisReply *reply, const char *error)
{
    store_events_fn fn = (store_events_fn)((struct call *)p)->fn;
    void *arg;
    const char *detail;
    struct stage_events events = {0};
    enum store_error err = reply_error(p, reply, error, &detail, &arg);
    if (err == STORE_OK)
        err = decode_events(reply, &events);
    fn(arg, err, detail, err == STORE_OK ? &events : NULL);
    stage_events_clear(&events);
}

void store_events_read(struct store *s, long limit, store_events_fn fn, void *arg)
{
    struct call *c = call_new((void (*)(void))fn, arg);
    if (!c) {
        NO_MEMORY(fn, NULL);
        return;
    }
    char count[24];
    lltoa(limit, count, sizeof count);
    const char *args[] = {"+", "-", "COUNT", count};
    command(s, "XREVRANGE", "stage_events", NULL, events_reply, c, 4, args);
}

/* ---- health --------------------------------------------------------------- */

void store_ping(struct store *s, store_done_fn fn, void *arg)
{
    struct call *c = call_new((void (*)(void))fn, arg);
    if (!c) {
        fn(arg, STORE_FAILED, "out of memory");
        return;
    }
    const char *av[] = {"PING"};
    redis_command(s->redis, done_reply, c, 1, av, NULL);
}
