/* replicas.h — the replications IVS runs made to agree with what Redis
 * records of them.
 *
 * A replication usher recorded as running can be gone in IVS (stopped
 * behind usher's back, its destination's session ended), and one usher
 * never recorded can run (another tool, a start whose stage record was
 * lost). Above all, a publisher that joins the master stage again gets a
 * new participant id from IVS, and the replications of the old id stop
 * (or linger, within a reconnect window) while the records still say
 * running: the overflow stages would stay dark.
 *
 * So after each regular look for the publisher (reconcile.h: the lease
 * holder, every PUBLISHER_POLL_INTERVAL) that found one, the replications
 * of its participant id out of the master stage are listed
 * (ListParticipantReplicas, all pages), then the stages read from Redis
 * (store_stats), and each stage fed from the master is judged:
 *  - recorded running from another participant id (the publisher joined
 *    again): what is left of the old replication is stopped and the stage's
 *    replication set to none, so the scaler starts it from the new id;
 *  - recorded running but not listed active: set to none (restarted the
 *    same way);
 *  - listed active but recorded failed or none (a start whose answer was
 *    lost): recorded running, from this id;
 *  - listed active into a stage Redis does not record as fed from the
 *    master: stopped, and reported.
 * A replication that started after the look is left alone (its record is
 * newer than what IVS was asked). Then, where stages are chained
 * (REPLICATION_CHAINING; the local provider past REPLICATION_MAX), each
 * overflow stage that feeds another (as that read of Redis found them) is
 * checked the same way in turn: the replications of the same participant
 * id out of it listed (the publisher is a replica there, with its id),
 * Redis read again, the stages fed from it judged, and stops made from it.
 * Restarts go through the scaler, so they stay within REPLICATION_MAX and
 * the shared call pace. Every change is a stage event (replication_stale,
 * replication_lost, replication_adopted, replication_unknown) and a log
 * line. A judgement is acted on (its event sent, its stop made) only after
 * Redis took its write, fenced by the scaler lease and made only while the
 * stage is still as the check read it (store_replica_record); a stop of an
 * unknown replication is claimed in Redis first (store_replica_claim). A check whose lease moved
 * mid-way, or whose read another writer overtook, acts on nothing: two
 * processes never both act on one judgement. A write whose answer is lost
 * (Redis unavailable) is not acted on either: its event is not sent, an
 * unknown replication is stopped by a check after the claim lapses, and
 * what is left of a stale one IVS ends (its participant left the stage). */
#ifndef USHER_RECONCILE_REPLICAS_H
#define USHER_RECONCILE_REPLICAS_H

#include <stdint.h>

struct app;
struct replicas;

/* holder: the scaler's lease id (borrowed; it outlives this). NULL when
 * out of memory. */
struct replicas *replicas_new(struct app *app, const char *holder);
/* Call after the provider and the store are freed. NULL is fine. */
void replicas_free(struct replicas *x);

/* Checks the replications of publisher (its participant id in the master
 * stage, found at looked_ms, unix ms), unless a check runs. */
void replicas_check(struct replicas *x, const char *publisher, int64_t looked_ms);

#endif
