/* waiters.h — requests waiting for room in a stage, without a thread.
 *
 * A join that finds no stage with room while one is being opened does not
 * get a 503 at once: it waits (JOIN_WAIT_MS) on the event loop, and tries
 * its seat again when this process's scaler opens a stage
 * (waiters_wake) or, for stages opened by another process's scaler, after
 * a short interval, whichever comes first. The waiter's owner decides
 * whether to wait again; this list only schedules the retries. */
#ifndef USHER_SCALER_WAITERS_H
#define USHER_SCALER_WAITERS_H

#include <event2/event.h>

struct waiters;

struct waiters *waiters_new(struct event_base *base);
/* Every waiter still waiting is retried now (so each is answered), then
 * the list is freed. */
void waiters_free(struct waiters *w);

/* retry(arg) is called exactly once, on the loop and never from inside
 * this call: at the next waiters_wake or after interval_ms, whichever
 * comes first. Returns 0, or -1 when out of memory or while the list is
 * being freed (retry is then never called). */
int waiters_add(struct waiters *w, long interval_ms, void (*retry)(void *arg), void *arg);

/* Room may have appeared (a stage opened): every waiter is retried on the
 * next loop turn. */
void waiters_wake(struct waiters *w);

#endif
