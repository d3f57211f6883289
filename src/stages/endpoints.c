/* endpoints.c — see endpoints.h. The cache is a small open hash table of
 * ARNs; it only grows to `max` entries and is then emptied. */
#include "stages/endpoints.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "app.h"
#include "ivs/ids.h"
#include "store/store.h"
#include "util/log.h"

struct entry {
    char arn[STAGE_ARN_MAX + 1];
    struct endpoints ep;
};

struct endpoints_cache {
    size_t slots, used, max;
    struct entry *table;             /* arn[0] == '\0': empty */
};

struct endpoints_cache *endpoints_cache_new(size_t max)
{
    struct endpoints_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->max = max;
    c->slots = 2 * max + 1;
    if (!(c->table = calloc(c->slots, sizeof *c->table))) {
        free(c);
        return NULL;
    }
    return c;
}

void endpoints_cache_free(struct endpoints_cache *c)
{
    if (c)
        free(c->table);
    free(c);
}

/* FNV-1a over the ARN. */
static size_t slot_of(const struct endpoints_cache *c, const char *arn)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)arn; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (size_t)(h % c->slots);
}

/* arn's slot, or the empty slot where it would go. */
static struct entry *find(struct endpoints_cache *c, const char *arn)
{
    size_t i = slot_of(c, arn);
    while (c->table[i].arn[0] && strcmp(c->table[i].arn, arn) != 0)
        i = (i + 1) % c->slots;
    return &c->table[i];
}

void endpoints_remember(struct endpoints_cache *c, const char *arn, const char *whip,
                        const char *events)
{
    if (strlen(arn) > STAGE_ARN_MAX || strlen(whip) > STAGE_ENDPOINT_MAX ||
        strlen(events) > STAGE_ENDPOINT_MAX || !whip[0])
        return;
    struct entry *e = find(c, arn);
    if (!e->arn[0] && c->used >= c->max) {
        memset(c->table, 0, c->slots * sizeof *c->table);
        c->used = 0;
        e = find(c, arn);
    }
    if (!e->arn[0])
        c->used++;
    snprintf(e->arn, sizeof e->arn, "%s", arn);
    snprintf(e->ep.whip, sizeof e->ep.whip, "%s", whip);
    snprintf(e->ep.events, sizeof e->ep.events, "%s", events);
}

const struct endpoints *endpoints_cached(struct endpoints_cache *c, const char *arn)
{
    const struct entry *e = strlen(arn) <= STAGE_ARN_MAX ? find(c, arn) : NULL;
    return e && e->arn[0] ? &e->ep : NULL;
}

char *endpoints_json(const char *whip, const char *events)
{
    json_t *doc = json_pack("{s:s, s:s}", "whip", whip, "events", events);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return text;
}

/* ---- fetching --------------------------------------------------------------- */

struct fetch {
    struct app *app;
    endpoints_fn fn;
    void *arg;
    char arn[STAGE_ARN_MAX + 1];
};

/* Remembers and answers; frees f. */
static void fetch_end(struct fetch *f, const char *whip, const char *events, const char *error)
{
    if (!error)
        endpoints_remember(f->app->endpoints, f->arn, whip, events);
    const struct endpoints *ep = error ? NULL : endpoints_cached(f->app->endpoints, f->arn);
    if (!error && !ep)
        error = "the provider gave no usable endpoints";
    f->fn(f->arg, ep, error);
    free(f);
}

static void provider_read(void *arg, const struct provider_stage *stage, const char *error)
{
    struct fetch *f = arg;
    if (error)
        log_warn("endpoints of %s: %s", f->arn, error);
    fetch_end(f, stage ? stage->whip : "", stage ? stage->events : "", error);
}

static void recorded(void *arg, enum store_error err, const char *detail, const char *text)
{
    struct fetch *f = arg;
    if (err != STORE_OK) {
        char why[300];
        snprintf(why, sizeof why, "unavailable: %s", detail);
        fetch_end(f, "", "", why);
        return;
    }
    json_t *doc = text[0] ? json_loads(text, 0, NULL) : NULL;
    const char *whip = json_string_value(json_object_get(doc, "whip"));
    const char *events = json_string_value(json_object_get(doc, "events"));
    if (whip && events && whip[0]) {
        fetch_end(f, whip, events, NULL);
    } else {
        /* Recorded without endpoints (by an older usher): ask the provider. */
        struct stage_provider *p = f->app->provider;
        p->ops->get_stage(p, f->arn, provider_read, f);
    }
    json_decref(doc);
}

void endpoints_fetch(struct app *app, const char *arn, endpoints_fn fn, void *arg)
{
    struct fetch *f = calloc(1, sizeof *f);
    if (!f || strlen(arn) > STAGE_ARN_MAX) {
        free(f);
        /* Refused before anything started: answered at once. */
        fn(arg, NULL, "out of memory or not a stage ARN");
        return;
    }
    *f = (struct fetch){.app = app, .fn = fn, .arg = arg};
    snprintf(f->arn, sizeof f->arn, "%s", arn);
    store_stage_endpoints(app->store, arn, recorded, f);
}
