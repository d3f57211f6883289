/* store.h — usher's state in Redis: key names and the atomic scripts.
 *
 * Every change to viewer or stage state is one Lua script (src/store/lua/),
 * run atomically by Redis, so the SPEC §3 invariants hold whatever the
 * number of usher processes and wherever one is killed. This module names
 * the keys, owns the connection (redis.h) and runs the scripts with the key
 * prefix as their first argument. Replies are handed back as hiredis
 * replies; a script's refusal comes back as an error reply whose first word
 * is its code (store_refusal()). */
#ifndef USHER_STORE_STORE_H
#define USHER_STORE_STORE_H

#include <stddef.h>
#include "store/redis.h"

enum store_script {
    SCRIPT_SEAT,
    SCRIPT_HEARTBEAT,
    SCRIPT_LEAVE,
    SCRIPT_SWEEP,
    SCRIPT_STATS,
    SCRIPT_STAGE_ADD,
    SCRIPT_STAGE_RENEW,
    SCRIPT_VIEWER_LIST,
    SCRIPT_LEASE,
    SCRIPT_STAGE_UPDATE,
    SCRIPT_STAGE_REMOVE,
    SCRIPT_STAGE_RENAME,
    SCRIPT_COUNT
};

/* What a script refused, from the first word of its error reply. */
enum store_refusal {
    REFUSAL_NONE,        /* not an error reply */
    REFUSAL_NOT_LIVE,
    REFUSAL_NO_STAGE,
    REFUSAL_STAGE_FULL,
    REFUSAL_STAGE_LIMIT,
    REFUSAL_NOT_LEADER,
    REFUSAL_IS_MASTER,
    REFUSAL_NOT_EMPTY,
    REFUSAL_OTHER        /* an error that is no refusal: a bug or Redis trouble */
};

/* Where things are in the reply of stats.lua (SCRIPT_STATS): a header,
 * then STATS_PER_STAGE fields for each stage, oldest first. Its readers
 * (the stats routes, the scaler) index it with these names. */
enum stats_reply { STATS_TOTAL, STATS_PUBLISHER, STATS_MASTER, STATS_FIRST_STAGE };
enum stats_stage_field {
    STATS_ARN, STATS_VIEWERS, STATS_INFO, STATS_MODE, STATS_STATE, STATS_REPLICATION,
    STATS_PER_STAGE
};

#define STAGE_KEY_TTL_S 3600
#define PUBLISHER_STATUS_TTL_S 86400

struct store {
    struct redis *redis;
    const char *prefix;
};

struct store *store_new(struct event_base *base, const struct config *cfg,
                        redis_ready_fn on_ready, void *ready_arg);
void store_free(struct store *s);

/* Runs a script; ARGV[1] is the prefix, then argv[0..argc). */
void store_run(struct store *s, enum store_script script, redis_reply_fn fn,
               void *arg, int argc, const char **argv);

/* Writes prefix + name + suffix (suffix may be NULL) into out. Returns the
 * length, or 0 when it does not fit. */
size_t store_key(const struct store *s, char *out, size_t outlen,
                 const char *name, const char *suffix);

enum store_refusal store_refusal(const redisReply *reply);



/* Element i of an array reply as text (NULL if absent or not text), and as
 * a number (integers, or text holding one; 0 otherwise). */
const char *reply_str(const redisReply *reply, size_t i);
long long reply_int(const redisReply *reply, size_t i);

#endif
