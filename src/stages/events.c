/* events.c — see events.h. */
#include "stages/events.h"

#include <stdio.h>

#include "app.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/log.h"

static void appended(void *arg, redisReply *reply, const char *error)
{
    (void)arg;
    if (error || (reply && reply->type == REDIS_REPLY_ERROR))
        log_warn("stage event not recorded: %s", error ? error : reply->str);
}

void stage_event(struct app *app, const char *type, const char *arn, const char *detail)
{
    log_info("stage event %s %s%s%s", type, arn, detail ? ": " : "", detail ? detail : "");
    char key[128], at[32], kept[16];
    store_key(app->store, key, sizeof key, "stage_events", NULL);
    clock_iso8601(clock_now_ms(), at, sizeof at);
    snprintf(kept, sizeof kept, "%d", EVENTS_KEPT);
    const char *argv[] = {"XADD", key, "MAXLEN", "~", kept, "*", "type", type,
                          "stageArn", arn, "detail", detail ? detail : "", "at", at};
    redis_command(app->store->redis, appended, NULL, 14, argv, NULL);
}
