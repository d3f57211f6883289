/* endpoints.h — a stage's endpoints (WHIP, events), which every token for
 * the stage carries (whip_url, events_url) and the publisher's answer
 * shows (whipEndpoint). IVS gives them when a stage is created or read
 * (the WHIP host is not the stage id); usher records them in Redis beside
 * the stage (`stage_endpoints`) and keeps the ones it used in a small
 * per-process cache, so a join costs no extra round trip once a stage is
 * known. A lookup goes cache → Redis → provider (GetStage). */
#ifndef USHER_STAGES_ENDPOINTS_H
#define USHER_STAGES_ENDPOINTS_H

#include <stddef.h>

#include "ivs/provider.h"

struct app;
struct endpoints_cache;

struct endpoints {
    char whip[STAGE_ENDPOINT_MAX + 1];
    char events[STAGE_ENDPOINT_MAX + 1];
};

/* A cache of at most max stages (it is emptied when full: a miss costs one
 * Redis read). NULL when out of memory. */
struct endpoints_cache *endpoints_cache_new(size_t max);
void endpoints_cache_free(struct endpoints_cache *c);

/* Remembers arn's endpoints (strings copied; too long ones are not kept). */
void endpoints_remember(struct endpoints_cache *c, const char *arn, const char *whip,
                        const char *events);
/* The cached endpoints of arn (valid until the next remember), or NULL. */
const struct endpoints *endpoints_cached(struct endpoints_cache *c, const char *arn);

/* {"whip":…,"events":…}, malloc'd (caller frees), NULL when out of memory. */
char *endpoints_json(const char *whip, const char *events);

/* ep is NULL with error set when neither Redis nor the provider could say
 * (error starts with "unavailable" when Redis could not be reached). */
typedef void (*endpoints_fn)(void *arg, const struct endpoints *ep, const char *error);
/* Looks arn's endpoints up in Redis, then at the provider, and remembers
 * them; fn is called once, on the loop, never from inside the call (only
 * when memory for the call itself runs out is the answer given at once). */
void endpoints_fetch(struct app *app, const char *arn, endpoints_fn fn, void *arg);

#endif
