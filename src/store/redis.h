/* redis.h — one asynchronous connection to Redis, with deadlines.
 *
 * hiredis 0.14 has no command timeouts and, when Redis stalls, would leave
 * a request waiting forever. This layer watches the connection: when
 * commands wait and Redis sends nothing back for REDIS_TIMEOUT_MS, it drops
 * the connection and reconnects by itself with backoff, loading usher's
 * function library again each time when Redis lacks it or has an older
 * one. A command's callback is called exactly once,
 * with the reply, or with NULL and a message when the connection drops or
 * Redis is not reachable right now (then on the next loop turn, never from
 * inside the call).
 *
 * Used by store.c only: nothing outside src/store/ talks to Redis. */
#ifndef USHER_STORE_REDIS_H
#define USHER_STORE_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

struct config;
struct redis;

typedef void (*redis_reply_fn)(void *arg, redisReply *reply, const char *error);
/* Called each time the connection becomes ready (library loaded). */
typedef void (*redis_ready_fn)(void *arg);

struct redis *redis_new(struct event_base *base, const struct config *cfg,
                        const char *library, long long version,
                        redis_ready_fn on_ready, void *ready_arg);
void redis_free(struct redis *r);

bool redis_is_ready(const struct redis *r);
/* Why the connection is not ready, for logs and /health. */
const char *redis_last_error(const struct redis *r);

void redis_command(struct redis *r, redis_reply_fn fn, void *arg, int argc,
                   const char **argv, const size_t *argvlen);
#endif
