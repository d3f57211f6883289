/* evict.c — see evict.h. */
#include "stages/evict.h"

#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "util/log.h"

struct eviction {
    struct stage_provider *provider;
    provider_done_fn done;
    void *arg;
    size_t waiting;                  /* disconnects not yet answered, +1 while sending */
    char *arn;
};

/* One answer less to wait for; the last one ends the eviction. */
static void eviction_step(struct eviction *e, const char *error)
{
    if (--e->waiting > 0)
        return;
    e->done(e->arg, error);
    free(e->arn);
    free(e);
}

static void disconnected(void *arg, const char *error)
{
    struct eviction *e = arg;
    if (error)
        log_warn("evict: a participant of %s was not disconnected: %s", e->arn, error);
    eviction_step(e, NULL);
}

static void listed(void *arg, const struct participant_page *page, const char *error)
{
    struct eviction *e = arg;
    if (error) {
        eviction_step(e, error);
        return;
    }
    for (size_t i = 0; i < page->count; i++) {
        const struct provider_participant *pt = &page->items[i];
        if (pt->published || pt->replica || strcmp(pt->state, "CONNECTED") != 0)
            continue;
        e->waiting++;
        e->provider->ops->disconnect_participant(e->provider, e->arn, pt->id, EVICT_REASON,
                                                 disconnected, e);
    }
    log_info("evict: disconnecting %zu participants of %s", e->waiting - 1, e->arn);
    eviction_step(e, NULL);
}

void stage_evict(struct app *app, const char *arn, provider_done_fn done, void *arg)
{
    struct stage_provider *p = app->provider;
    struct eviction *e = calloc(1, sizeof *e);
    if (!e || !(e->arn = strdup(arn))) {
        free(e);
        done(arg, "out of memory");
        return;
    }
    *e = (struct eviction){.provider = p, .done = done, .arg = arg, .waiting = 1, .arn = e->arn};
    if (!p->ops->knows_participants(p)) {
        eviction_step(e, NULL);
        return;
    }
    struct participant_query q = {.arn = arn, .max_results = 100, .connected_only = true,
                                  .all_pages = true};
    p->ops->list_participants(p, &q, listed, e);
}
