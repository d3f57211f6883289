/* waiters.h — callbacks waiting on the event loop, each called once:
 * after its interval, or sooner when the list is woken.
 *
 * Two users. A join that finds no stage with room while one is being
 * opened does not get a 503 at once: it waits (JOIN_WAIT_MS) and tries its
 * seat again when this process's scaler opens a stage (waiters_wake) or,
 * for stages opened by another process's scaler, after a short interval,
 * whichever comes first; the waiter's owner decides whether to wait again.
 * And the local IVS call pace (aws/limiter.c) lets each call go when its
 * slot comes. This list only schedules the calls. */
#ifndef USHER_UTIL_WAITERS_H
#define USHER_UTIL_WAITERS_H

#include <event2/event.h>

struct waiters;

/* NULL when out of memory. */
struct waiters *waiters_new(struct event_base *base);
/* Every waiter still waiting is called now (so each is answered), then
 * the list is freed. NULL is fine. */
void waiters_free(struct waiters *w);
/* The list is freed and the waiters still waiting are dropped, never
 * called: their owner answers them itself. NULL is fine. */
void waiters_drop(struct waiters *w);

/* fn(arg) is called exactly once, on the loop and never from inside
 * this call: at the next waiters_wake or after interval_ms (>= 0),
 * whichever comes first. Returns 0, or -1 when out of memory or while the
 * list is being freed (fn is then never called). */
int waiters_add(struct waiters *w, long interval_ms, void (*fn)(void *arg), void *arg);

/* Room may have appeared (a stage opened): every waiter is called on the
 * next loop turn. */
void waiters_wake(struct waiters *w);

#endif
