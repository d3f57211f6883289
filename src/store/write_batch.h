/* write_batch.h — many calls of one Redis function, one FCALL.
 *
 * Heartbeats come by the tens of thousands a second, each a tiny step; one
 * FCALL apiece would spend most of Redis's time on the call itself. Calls
 * added while a batch is in flight wait and go together in the next FCALL:
 * its ARGV is the fixed head followed by each call's arguments, and the
 * function answers with an array holding each call's reply in order. Each
 * call is still its own step inside the function, and each caller gets its
 * own reply. Up to WRITE_BATCH_IN_FLIGHT batches are in flight at a time:
 * a lone call goes at once, a crowd waits at most one round trip, and
 * Redis runs one batch while usher sends the next and answers the last
 * (with one in flight they took turns: at 1,000 connections, 500-call
 * batches and fewer heartbeats a second than with no batching; four of up
 * to 128 measured best, BENCHMARKS.md). Used by store.c only. */
#ifndef USHER_STORE_WRITE_BATCH_H
#define USHER_STORE_WRITE_BATCH_H

#include <stddef.h>

#include "store/redis.h"

struct write_batch;

enum { WRITE_BATCH_IN_FLIGHT = 4 };

/* head: the FCALL argv up to the first call's arguments ("FCALL", name,
 * numkeys, keys..., prefix); the strings are not copied and must outlive
 * the batch. max_calls bounds one FCALL (the rest wait for the next). NULL
 * when out of memory. */
struct write_batch *write_batch_new(struct redis *redis, int headc, const char *const *head,
                                    size_t max_calls);

/* Adds one call with argc arguments (copied). fn gets the element of the
 * reply for this call, or the whole reply when it is not an array of one
 * element per call (an error reply, say), or NULL and a message when Redis
 * gave none; exactly once, never from inside this call except when memory
 * runs out (then at once, with NULL and "out of memory"). */
void write_batch_add(struct write_batch *b, int argc, const char *const *args,
                     redis_reply_fn fn, void *arg);

/* Calls not yet sent are answered now (NULL, "shutting down"); batches in
 * flight are answered when the connection is freed (redis_free), after
 * which the batch is gone. Call before redis_free. */
void write_batch_free(struct write_batch *b);

#endif
