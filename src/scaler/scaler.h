/* scaler.h — opening and closing stages as the audience changes.
 *
 * Every usher process runs a scaler, but only the holder of the scaler
 * lease in Redis (store_lease) acts: each SCALER_INTERVAL_MS it renews the
 * lease, reads the stages in one call (store_stats), asks the policy (policy.h)
 * what to do, and does it: create stages, start their replication, open
 * them, drain and remove them. Every change it writes is fenced by the
 * lease, so a process that lost it (stalled, partitioned) cannot act. If
 * the holder dies, its lease expires and another process takes over within
 * SCALER_LEASE_MS plus one interval. */
#ifndef USHER_SCALER_SCALER_H
#define USHER_SCALER_SCALER_H

#include <stdbool.h>

struct app;
struct scaler;

struct scaler *scaler_new(struct app *app);
/* Stops ticking and, when this process holds the lease, gives it up so
 * another process takes over at once. done(arg) is called when that is
 * settled (on the loop, exactly once). */
void scaler_stop(struct scaler *s, void (*done)(void *arg), void *arg);
void scaler_free(struct scaler *s);
/* True while this process holds the scaler lease (as of its last renewal). */
bool scaler_is_leader(const struct scaler *s);
/* The reconciliation the scaler runs under its lease (reconcile/reconcile.h);
 * NULL for a NULL scaler. */
struct reconcile *scaler_reconcile(struct scaler *s);
/* A tick now (on the next loop turn) instead of at the next interval:
 * a join found no room, or a stage was just added. Ticks never overlap:
 * a wake during a tick makes another one follow it. */
void scaler_wake(struct scaler *s);

#endif
