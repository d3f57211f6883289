/* evict.h — a draining stage's last participants disconnected before the
 * stage is deleted. A stage drains so that its viewers move to open
 * stages; those still there when DRAIN_TIMEOUT passes are disconnected in
 * IVS (DisconnectParticipant, the reason saying why), so that their
 * clients see a clear end and ask for a seat again, rather than watch a
 * stage that is about to vanish. */
#ifndef USHER_STAGES_EVICT_H
#define USHER_STAGES_EVICT_H

#include "ivs/provider.h"

struct app;

#define EVICT_REASON "the stage is closing: ask for a new seat"

/* Lists the stage's connected participants (all pages) and disconnects
 * every one that is not the publisher's video (published, or a replica).
 * done(arg, error) is called once when every disconnect has answered;
 * error is the listing's failure, or NULL (a failed disconnect is logged,
 * not an error: the deletion ends it anyway). With a provider that knows
 * no participants, done comes at once with NULL. */
void stage_evict(struct app *app, const char *arn, provider_done_fn done, void *arg);

#endif
