/* orphans.h — stages this deployment made in IVS that no Redis record
 * names, found and deleted.
 *
 * CreateStage takes no idempotency token: a call whose answer was lost
 * (timeout, dropped connection, a process killed between the call and the
 * record) may have made a stage nobody will ever use, and IVS bills and
 * counts it against the 1,000-stage quota. Every ORPHAN_SWEEP_INTERVAL the
 * scaler's lease holder lists the stages tagged as this stream's
 * (ListStages, all pages; ivs/provider.h) and compares with Redis. IVS
 * gives no creation time, so a stage is deleted only once it has been seen
 * unrecorded for ORPHAN_GRACE (a creation in flight is recorded long
 * before), counted from the first sweep that saw it in any process (Redis
 * keeps that moment: store_orphan_seen). The master stage is never deleted, nor anything while Redis
 * holds no master (its data may be lost: see README). */
#ifndef USHER_STAGES_ORPHANS_H
#define USHER_STAGES_ORPHANS_H

struct app;
struct orphans;

/* NULL when out of memory. */
struct orphans *orphans_new(struct app *app);
/* Call after the provider and the store are freed (their answers still
 * due come back here). NULL is fine. */
void orphans_free(struct orphans *o);

/* The scaler calls this on every tick it holds the lease; a sweep starts
 * when the interval has passed and none runs. */
void orphans_tick(struct orphans *o);

#endif
