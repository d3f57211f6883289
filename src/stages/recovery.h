/* recovery.h — noticing that Redis lost usher's state, and rebuilding it.
 *
 * Redis can lose what usher keeps there while usher stays connected (a
 * FLUSHALL, a failover to an empty replica, a restart without persistence)
 * or a key can come to hold a foreign value. Every process checks every
 * STATE_CHECK_MS, and each time the connection becomes ready
 * (store_check): keys of a foreign type are set aside, counts recomputed,
 * and `state_id`, written once a master stage is recorded, tells one life
 * of the state from the next. When the master record is gone, the process
 * logs an error and rebuilds: the master stage with the same ARN
 * (stage_recover_master), then the stages the provider still has
 * (provider.h list_stages, stage_adopt), and the publisher's status when
 * it was last seen live. Seats come back as viewers
 * heartbeat (a 404 with `details.action: "rejoin"`) and rejoin (README
 * "Lost seats"). A process that finds the state rebuilt by another (a new
 * state_id) records its provider's stages again too. */
#ifndef USHER_STAGES_RECOVERY_H
#define USHER_STAGES_RECOVERY_H

#include <stdbool.h>
#include <stdint.h>

struct app;
struct recovery;

#define STATE_CHECK_MS 2000

/* Starts checking every STATE_CHECK_MS. NULL when out of memory. */
struct recovery *recovery_new(struct app *app);
void recovery_free(struct recovery *r);
/* A check now (the Redis connection became ready); a check under way is
 * not doubled. */
void recovery_check(struct recovery *r);

/* The publisher's status as this process just wrote it (the checks learn
 * other processes' writes): kept to restore after a loss. */
void recovery_publisher_seen(struct recovery *r, bool live);

/* Why the state is not whole, "" when it is: for /health, which is
 * degraded while this is set (a rebuild under way or failed, a check
 * that fails). */
const char *recovery_problem(const struct recovery *r);
/* The last repair (a foreign value set aside, a count recomputed, a
 * rebuild), "" when none; *at_ms when it was. */
const char *recovery_last_repair(const struct recovery *r, int64_t *at_ms);

#endif
