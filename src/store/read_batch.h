/* read_batch.h — many readers of the stats view, one Redis call.
 *
 * Requests that want the stats view (GET /api/stats) while a
 * call is in flight wait for the next call instead of each sending their
 * own: Redis sees one call per batch, and the answer is turned into JSON
 * once per batch (the memo). Every waiter's answer comes from a call sent
 * after the waiter arrived, so nobody gets a state older than its request. */
#ifndef USHER_STORE_READ_BATCH_H
#define USHER_STORE_READ_BATCH_H

#include "store/store.h"

struct read_batch;

/* view is shared by the batch (NULL unless err is STORE_OK); memo starts
 * NULL for each batch, a waiter may set it (say, to the JSON made from the
 * view) for the waiters after it, and it is freed with memo_free once the
 * batch is done (memo_free NULL: the memo is not the batch's to free). */
typedef void (*read_batch_fn)(void *arg, enum store_error err, const char *detail,
                              const struct stats_view *view, void **memo);

struct read_batch *read_batch_new(struct store *store, void (*memo_free)(void *memo));
void read_batch_call(struct read_batch *b, read_batch_fn fn, void *arg);
void read_batch_free(struct read_batch *b);

#endif
