/* store.c — see store.h. The scripts' text comes from the generated
 * build/gen/lua_scripts.c (scripts/embed-lua.sh). */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

extern const char usher_lua_seat[], usher_lua_heartbeat[], usher_lua_leave[],
    usher_lua_sweep[], usher_lua_stats[], usher_lua_stage_add[],
    usher_lua_stage_renew[], usher_lua_viewer_list[], usher_lua_lease[],
    usher_lua_stage_update[], usher_lua_stage_remove[], usher_lua_stage_rename[];

static const char *const scripts[SCRIPT_COUNT] = {
    [SCRIPT_SEAT] = usher_lua_seat,
    [SCRIPT_HEARTBEAT] = usher_lua_heartbeat,
    [SCRIPT_LEAVE] = usher_lua_leave,
    [SCRIPT_SWEEP] = usher_lua_sweep,
    [SCRIPT_STATS] = usher_lua_stats,
    [SCRIPT_STAGE_ADD] = usher_lua_stage_add,
    [SCRIPT_STAGE_RENEW] = usher_lua_stage_renew,
    [SCRIPT_VIEWER_LIST] = usher_lua_viewer_list,
    [SCRIPT_LEASE] = usher_lua_lease,
    [SCRIPT_STAGE_UPDATE] = usher_lua_stage_update,
    [SCRIPT_STAGE_REMOVE] = usher_lua_stage_remove,
    [SCRIPT_STAGE_RENAME] = usher_lua_stage_rename,
};

struct store *store_new(struct event_base *base, const struct config *cfg,
                        redis_ready_fn on_ready, void *ready_arg)
{
    struct store *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->prefix = cfg->redis_key_prefix;
    s->redis = redis_new(base, cfg, scripts, SCRIPT_COUNT, on_ready, ready_arg);
    if (!s->redis) {
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
    free(s);
}

void store_run(struct store *s, enum store_script script, redis_reply_fn fn,
               void *arg, int argc, const char **argv)
{
    enum { MAX_ARGS = 15 };
    const char *av[MAX_ARGS + 1];
    if (argc > MAX_ARGS) {
        fn(arg, NULL, "too many script arguments");
        return;
    }
    av[0] = s->prefix;
    if (argc > 0)
        memcpy(av + 1, argv, (size_t)argc * sizeof *argv);
    redis_eval(s->redis, script, fn, arg, argc + 1, av, NULL);
}

size_t store_key(const struct store *s, char *out, size_t outlen,
                 const char *name, const char *suffix)
{
    int n = snprintf(out, outlen, "%s%s%s", s->prefix, name, suffix ? suffix : "");
    return n < 0 || (size_t)n >= outlen ? 0 : (size_t)n;
}

enum store_refusal store_refusal(const redisReply *reply)
{
    static const struct { const char *word; enum store_refusal refusal; } words[] = {
        {"NOT_LIVE ", REFUSAL_NOT_LIVE},
        {"NO_STAGE ", REFUSAL_NO_STAGE},
        {"STAGE_FULL ", REFUSAL_STAGE_FULL},
        {"STAGE_LIMIT ", REFUSAL_STAGE_LIMIT},
        {"NOT_LEADER ", REFUSAL_NOT_LEADER},
        {"IS_MASTER ", REFUSAL_IS_MASTER},
        {"NOT_EMPTY ", REFUSAL_NOT_EMPTY},
    };
    if (!reply || reply->type != REDIS_REPLY_ERROR)
        return REFUSAL_NONE;
    for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
        /* Redis may put "ERR " or the script location in front. */
        if (strstr(reply->str, words[i].word))
            return words[i].refusal;
    }
    return REFUSAL_OTHER;
}

const char *reply_str(const redisReply *reply, size_t i)
{
    if (!reply || reply->type != REDIS_REPLY_ARRAY || i >= reply->elements)
        return NULL;
    const redisReply *e = reply->element[i];
    return e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS ? e->str : NULL;
}

long long reply_int(const redisReply *reply, size_t i)
{
    if (!reply || reply->type != REDIS_REPLY_ARRAY || i >= reply->elements)
        return 0;
    const redisReply *e = reply->element[i];
    if (e->type == REDIS_REPLY_INTEGER)
        return e->integer;
    return e->type == REDIS_REPLY_STRING ? strtoll(e->str, NULL, 10) : 0;
}
