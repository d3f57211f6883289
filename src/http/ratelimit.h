/* ratelimit.h — requests per client per fixed window (RATE_LIMIT_*).
 *
 * Counts live in this process: a request pays no Redis round trip for
 * them. Behind a load balancer spreading clients over k usher processes a
 * client may thus make up to k times the limit; the README says so. The
 * table is emptied at each window's start, and holds at most a fixed number
 * of clients; past that, new clients share one count, so a flood of
 * addresses cannot grow memory without bound. */
#ifndef USHER_HTTP_RATELIMIT_H
#define USHER_HTTP_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct ratelimit;

struct ratelimit_verdict {
    bool allowed;
    long limit;
    long remaining;
    long reset_s;                   /* seconds until the window ends */
};

/* max <= 0 turns the limit off (every hit allowed). */
struct ratelimit *ratelimit_new(long window_ms, long max);
void ratelimit_free(struct ratelimit *rl);
void ratelimit_hit(struct ratelimit *rl, const char *client, int64_t now_ms,
                   struct ratelimit_verdict *out);

#endif
