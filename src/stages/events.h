/* events.h — what happened to stages: scale-ups, drains, moves, deletions
 * and replication changes, each logged and appended to a capped Redis
 * stream (`stage_events`, about the last EVENTS_KEPT entries), which
 * GET /api/stage/events reads. The stream is a record for people, not
 * state: losing an entry changes no decision. */
#ifndef USHER_STAGES_EVENTS_H
#define USHER_STAGES_EVENTS_H

#define EVENTS_KEPT 1000

struct app;

/* type: "scale_up", "drain", "delete", "replication_started", ...;
 * detail may be NULL; at_ms: when it happened (unix ms), the reading of
 * the request or scaler tick that made it, so the event and the answer or
 * record that shows the same moment agree. */
#include <stdint.h>

void stage_event(struct app *app, int64_t at_ms, const char *type, const char *arn,
                 const char *detail);

#endif
