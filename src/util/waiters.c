/* waiters.c — see waiters.h. Each waiter has its own timer; a wake makes
 * every timer due at once, so a call always runs from the loop. */
#include "util/waiters.h"

#include <stdbool.h>
#include <stdlib.h>
#include <sys/queue.h>

struct waiter {
    LIST_ENTRY(waiter) link;
    struct event *timer;
    void (*fn)(void *arg);
    void *arg;
};

struct waiters {
    struct event_base *base;
    LIST_HEAD(, waiter) head;
    bool closing;                    /* being freed: nobody waits any more */
};

struct waiters *waiters_new(struct event_base *base)
{
    struct waiters *w = calloc(1, sizeof *w);
    if (w)
        w->base = base;
    return w;
}

static void waiter_free(struct waiter *x)
{
    LIST_REMOVE(x, link);
    event_free(x->timer);
    free(x);
}

static void due(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct waiter *x = arg;
    void (*fn)(void *) = x->fn;
    void *fn_arg = x->arg;
    waiter_free(x);
    fn(fn_arg);
}

int waiters_add(struct waiters *w, long interval_ms, void (*fn)(void *arg), void *arg)
{
    struct waiter *x = w->closing ? NULL : calloc(1, sizeof *x);
    if (!x)
        return -1;
    x->timer = evtimer_new(w->base, due, x);
    struct timeval after = {interval_ms / 1000, (interval_ms % 1000) * 1000};
    if (!x->timer || evtimer_add(x->timer, &after) != 0) {
        if (x->timer)
            event_free(x->timer);
        free(x);
        return -1;
    }
    *x = (struct waiter){.timer = x->timer, .fn = fn, .arg = arg};
    LIST_INSERT_HEAD(&w->head, x, link);
    return 0;
}

void waiters_wake(struct waiters *w)
{
    struct waiter *x;
    LIST_FOREACH(x, &w->head, link)
        event_active(x->timer, EV_TIMEOUT, 0);
}

void waiters_free(struct waiters *w)
{
    if (!w)
        return;
    w->closing = true;
    while (!LIST_EMPTY(&w->head))
        due(-1, 0, LIST_FIRST(&w->head));
    free(w);
}

void waiters_drop(struct waiters *w)
{
    if (!w)
        return;
    while (!LIST_EMPTY(&w->head))
        waiter_free(LIST_FIRST(&w->head));
    free(w);
}
