/* shared_limiter.c — see shared_limiter.h. A waiter is first a store step
 * (reserving the slot), then a timer (waiting for it; or, for a call
 * without priority that found scaling calls queued, waiting to ask again). A waiter whose
 * limiter is freed while its store step runs is orphaned: the step's
 * answer frees it without calling anyone. */
#include "ivs/shared_limiter.h"

#include <stdbool.h>
#include <stdlib.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "store/store.h"
#include "util/log.h"

struct shared;

struct waiter {
    struct shared *l;                /* NULL once orphaned */
    struct event *timer;
    enum aws_op_class cls;
    bool priority;                   /* a scaling call (aws_op_scaling) */
    bool again;                      /* the timer asks Redis again (no slot yet) */
    aws_limiter_ready_fn ready;
    void *arg;
    LIST_ENTRY(waiter) link;
};

struct shared {
    struct aws_limiter base;         /* first: a struct aws_limiter * is a struct shared * */
    struct event_base *evbase;
    struct store *store;
    struct aws_limiter *local;       /* when Redis cannot be reached */
    long margin_ms;
    LIST_HEAD(, waiter) waiters;
};

static void take(struct waiter *w);

static void waited(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct waiter *w = arg;
    if (w->again) {
        take(w);
        return;
    }
    aws_limiter_ready_fn ready = w->ready;
    void *ready_arg = w->arg;
    LIST_REMOVE(w, link);
    event_free(w->timer);
    free(w);
    ready(ready_arg);
}

static void slot_taken(void *arg, enum store_error err, const char *detail, long long wait_ms)
{
    struct waiter *w = arg;
    if (!w->l) {                     /* the limiter was freed meanwhile */
        event_free(w->timer);
        free(w);
        return;
    }
    if (err != STORE_OK) {
        /* Redis trouble: this process paces itself. */
        struct shared *l = w->l;
        log_debug("IVS call pace from this process alone: %s", detail);
        aws_limiter_ready_fn ready = w->ready;
        void *ready_arg = w->arg;
        enum aws_op_class cls = w->cls;
        LIST_REMOVE(w, link);
        event_free(w->timer);
        free(w);
        if (l->local->acquire(l->local, cls, ready, ready_arg) == 0)
            return;
        log_error("IVS call pace: out of memory; calling now");
        ready(ready_arg);
        return;
    }
    /* A call without priority found scaling calls queued: it asks again. */
    w->again = wait_ms < 0;
    long long ms = wait_ms < 0 ? -wait_ms : wait_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(w->timer, &tv);
}

static void take(struct waiter *w)
{
    int rate = aws_op_class_rate(w->cls);
    store_rate_take(w->l->store, aws_op_class_name(w->cls),
                    (1000 + rate - 1) / rate + w->l->margin_ms, w->priority, slot_taken, w);
}

static int acquire(struct shared *l, enum aws_op_class cls, bool priority,
                   aws_limiter_ready_fn ready, void *arg)
{
    struct waiter *w = calloc(1, sizeof *w);
    if (w)
        w->timer = evtimer_new(l->evbase, waited, w);
    if (!w || !w->timer) {
        free(w);
        return -1;
    }
    *w = (struct waiter){.l = l, .timer = w->timer, .cls = cls, .priority = priority,
                         .ready = ready, .arg = arg};
    LIST_INSERT_HEAD(&l->waiters, w, link);
    take(w);
    return 0;
}

/* Without the operation: queued like a scaling call. */
static int shared_acquire(struct aws_limiter *lim, enum aws_op_class cls,
                          aws_limiter_ready_fn ready, void *arg)
{
    return acquire((struct shared *)lim, cls, true, ready, arg);
}

static int shared_acquire_op(struct aws_limiter *lim, size_t op, aws_limiter_ready_fn ready,
                             void *arg)
{
    return acquire((struct shared *)lim, aws_op_class_at(op), aws_op_scaling(op), ready, arg);
}

static void shared_free(struct aws_limiter *lim)
{
    struct shared *l = (struct shared *)lim;
    while (!LIST_EMPTY(&l->waiters)) {
        struct waiter *w = LIST_FIRST(&l->waiters);
        LIST_REMOVE(w, link);
        if (evtimer_pending(w->timer, NULL)) {
            event_free(w->timer);
            free(w);
        } else {
            w->l = NULL;             /* its store step frees it */
        }
    }
    l->local->free(l->local);
    free(l);
}

struct aws_limiter *shared_limiter_new(struct event_base *base, struct store *store,
                                       long margin_ms)
{
    struct shared *l = calloc(1, sizeof *l);
    if (!l || !(l->local = aws_local_limiter_new(base, NULL, NULL))) {
        free(l);
        return NULL;
    }
    l->base = (struct aws_limiter){shared_acquire, shared_free, shared_acquire_op};
    l->evbase = base;
    l->store = store;
    l->margin_ms = margin_ms;
    return &l->base;
}
