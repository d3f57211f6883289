/* sweeper.h — the background duties every usher process runs: expiring
 * viewers whose heartbeats stopped (SPEC §4) and keeping the stages'
 * `stage:{arn}` keys alive (SPEC §3).
 *
 * Every process sweeps. That is safe because a sweep is one function call
 * per batch (store_sweep): Redis runs one at a time, and a viewer removed by one batch is no
 * longer there for the next, so nobody is removed twice. */
#ifndef USHER_SWEEPER_SWEEPER_H
#define USHER_SWEEPER_SWEEPER_H

struct app;
struct sweeper;

struct sweeper *sweeper_new(struct app *app);
void sweeper_free(struct sweeper *s);

#endif
