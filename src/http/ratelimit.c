/* ratelimit.c — see ratelimit.h. A chained hash table keyed by client
 * address; entries are freed wholesale when the window turns. */
#include "http/ratelimit.h"

#include <stdlib.h>
#include <string.h>

#define BUCKETS 4096
#define MAX_CLIENTS 65536

struct client {
    struct client *next;
    long count;
    char addr[];
};

struct ratelimit {
    long window_ms, max;
    int64_t window;                 /* index of the current window */
    long clients;
    long overflow;                  /* shared count once the table is full */
    struct client *buckets[BUCKETS];
};

struct ratelimit *ratelimit_new(long window_ms, long max)
{
    struct ratelimit *rl = calloc(1, sizeof *rl);
    if (rl) {
        rl->window_ms = window_ms > 0 ? window_ms : 1;
        rl->max = max;
        rl->window = -1;
    }
    return rl;
}

static void clear(struct ratelimit *rl)
{
    for (size_t i = 0; i < BUCKETS; i++) {
        struct client *c = rl->buckets[i];
        while (c) {
            struct client *next = c->next;
            free(c);
            c = next;
        }
        rl->buckets[i] = NULL;
    }
    rl->clients = 0;
    rl->overflow = 0;
}

void ratelimit_free(struct ratelimit *rl)
{
    if (rl) {
        clear(rl);
        free(rl);
    }
}

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;                /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static long *count_of(struct ratelimit *rl, const char *addr)
{
    struct client **slot = &rl->buckets[hash(addr) % BUCKETS];
    for (struct client *c = *slot; c; c = c->next)
        if (strcmp(c->addr, addr) == 0)
            return &c->count;
    if (rl->clients >= MAX_CLIENTS)
        return &rl->overflow;
    size_t len = strlen(addr) + 1;
    struct client *c = malloc(sizeof *c + len);
    if (!c)
        return &rl->overflow;
    memcpy(c->addr, addr, len);
    c->count = 0;
    c->next = *slot;
    *slot = c;
    rl->clients++;
    return &c->count;
}

void ratelimit_hit(struct ratelimit *rl, const char *client, int64_t now_ms,
                   struct ratelimit_verdict *out)
{
    int64_t window = now_ms / rl->window_ms;
    if (window != rl->window) {
        clear(rl);
        rl->window = window;
    }
    out->limit = rl->max;
    out->reset_s = (long)(((window + 1) * rl->window_ms - now_ms + 999) / 1000);
    if (rl->max <= 0) {
        out->allowed = true;
        out->remaining = 0;
        return;
    }
    long *count = count_of(rl, client);
    out->allowed = *count < rl->max;
    if (out->allowed)
        (*count)++;
    out->remaining = rl->max - *count;
}
