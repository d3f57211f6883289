/* events.c — see events.h. */
#include "stages/events.h"

#include "app.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/log.h"

static void appended(void *arg, enum store_error err, const char *detail)
{
    (void)arg;
    if (err != STORE_OK)
        log_warn("stage event not recorded: %s", detail);
}

void stage_event(struct app *app, int64_t at_ms, const char *type, const char *arn,
                 const char *detail)
{
    log_info("stage event %s %s%s%s", type, arn, detail ? ": " : "", detail ? detail : "");
    char at[32];
    clock_iso8601(at_ms, at, sizeof at);
    struct stage_event event = {.type = type, .stage_arn = arn, .detail = detail, .at = at};
    store_events_append(app->store, &event, EVENTS_KEPT, appended, NULL);
}
