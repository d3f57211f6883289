/* reconcile.h — usher's seats made to agree with who IVS says is connected.
 *
 * Clients lie by omission: an app killed mid-stream never leaves, a token
 * is fetched and never used, a tab whose video died keeps heartbeating,
 * and after a Redis loss the seats are gone while people still watch.
 * Every RECONCILE_INTERVAL the scaler's lease holder reads, stage after
 * stage, the participants IVS lists as connected (provider.h
 * list_participants: GetStage for the active session, then
 * ListParticipants filterByState=CONNECTED, all pages, through the shared
 * call pace at the priority of a non-scaling call) and corrects the seats,
 * each stage in one atomic store step (store_reconcile_seat), once every
 * stage is read the ghosts (store_reconcile_ghosts):
 *  - a subscriber connected without a seat is seated there when the stage
 *    has room, else counted unseated;
 *  - a subscriber connected in a stage other than its seat's is moved there;
 *  - a seat whose participant IVS has not shown connected for
 *    RECONCILE_GRACE (nor joined since) is removed, as a leave.
 * Each correction is logged and appended to stage_events with its reason;
 * each stage's last pass is kept for /api/stats/stages.
 *
 * It also follows the publisher in the master stage
 * (PUBLISHER_POLL_INTERVAL, find_publisher): a published participant
 * there makes publisher:status live; none for PUBLISHER_OFFLINE_GRACE makes
 * it offline. reconcile_look_now looks at once, in the process that
 * received an IVS event (EventBridge) saying something happened there.
 * After each of the lease holder's looks that found the publisher, the
 * replications of its participant id are checked against Redis
 * (replicas.h).
 *
 * Runs only with a provider that knows participants (knows_participants). */
#ifndef USHER_RECONCILE_RECONCILE_H
#define USHER_RECONCILE_RECONCILE_H

#include <stdbool.h>

struct app;
struct reconcile;

/* holder: the scaler's lease id (borrowed; it outlives this), which
 * fences the replication check's writes (replicas.h). NULL when out of
 * memory. */
struct reconcile *reconcile_new(struct app *app, const char *holder);
/* Call after the provider and the store are freed (their answers still
 * due come back here). NULL is fine. */
void reconcile_free(struct reconcile *r);

/* The scaler calls this on every tick it holds the lease: a pass starts
 * when RECONCILE_INTERVAL has passed and none runs; the publisher is looked
 * for when PUBLISHER_POLL_INTERVAL has passed or a hint came. */
void reconcile_tick(struct reconcile *r);

/* Looks for the publisher in the master stage at once (an IVS event said
 * something happened there), unless a look is under way. That look can
 * only make publisher:status live: going offline takes the lease holder's
 * regular looks and the grace. */
void reconcile_look_now(struct reconcile *r);

#endif
