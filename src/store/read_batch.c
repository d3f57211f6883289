/* read_batch.c — see read_batch.h. Two lists: the waiters of the call in
 * flight, and those that came after it was sent, who get the next call. */
#include "store/read_batch.h"

#include <stdlib.h>

struct waiter {
    read_batch_fn fn;
    void *arg;
};

struct waiters {
    struct waiter *items;
    size_t count, cap;
};

struct read_batch {
    struct store *store;
    void (*memo_free)(void *memo);
    struct waiters sent, next;
    bool in_flight;
};

static void answered(void *arg, enum store_error err, const char *detail,
                     const struct stats_view *view);

static void send_next(struct read_batch *b)
{
    struct waiters sent = b->sent;
    b->sent = b->next;
    b->next = (struct waiters){.items = sent.items, .cap = sent.cap};
    b->in_flight = true;
    store_stats(b->store, answered, b);
}

static void answered(void *arg, enum store_error err, const char *detail,
                     const struct stats_view *view)
{
    struct read_batch *b = arg;
    void *memo = NULL;
    for (size_t i = 0; i < b->sent.count; i++)
        b->sent.items[i].fn(b->sent.items[i].arg, err, detail, view, &memo);
    if (memo && b->memo_free)
        b->memo_free(memo);
    b->sent.count = 0;
    b->in_flight = false;
    if (b->next.count)
        send_next(b);
}

void read_batch_call(struct read_batch *b, read_batch_fn fn, void *arg)
{
    struct waiters *w = &b->next;
    if (w->count == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        struct waiter *items = realloc(w->items, cap * sizeof *items);
        if (!items) {
            void *memo = NULL;
            fn(arg, STORE_FAILED, "out of memory", NULL, &memo);
            return;
        }
        w->items = items;
        w->cap = cap;
    }
    w->items[w->count++] = (struct waiter){fn, arg};
    if (!b->in_flight)
        send_next(b);
}

struct read_batch *read_batch_new(struct store *store, void (*memo_free)(void *memo))
{
    struct read_batch *b = calloc(1, sizeof *b);
    if (b) {
        b->store = store;
        b->memo_free = memo_free;
    }
    return b;
}

void read_batch_free(struct read_batch *b)
{
    if (!b)
        return;
    free(b->sent.items);
    free(b->next.items);
    free(b);
}
