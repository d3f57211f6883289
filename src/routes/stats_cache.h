/* stats_cache.h — each stage's /api/stats entry rendered once.
 *
 * Dashboards poll /api/stats in crowds, and a stage's record (name,
 * creation time, mode, replication) changes rarely while its count changes
 * all the time. The cache keeps, per stage, its entry rendered as JSON in
 * two pieces around the count, rendered again only when the record seen in
 * the stats view differs; a rendering then only formats the counts and
 * joins the pieces. */
#ifndef USHER_ROUTES_STATS_CACHE_H
#define USHER_ROUTES_STATS_CACHE_H

#include "store/store.h"

struct stats_cache;

struct stats_cache *stats_cache_new(void);  /* NULL when out of memory */
void stats_cache_free(struct stats_cache *c);

/* A rendering: len bytes of text (NUL-terminated). */
struct stats_text {
    const char *s;
    size_t len;
};

/* The data of /api/stats (SPEC §2: totalViewers, activeStages,
 * isPublisherLive, stages) as compact JSON, without its timestamp (each
 * request adds its own). Returns the text, owned by the cache and valid
 * until its next rendering or its free; NULL when out of memory. Entries
 * of stages gone from the view are dropped from the cache. */
const struct stats_text *stats_cache_render(struct stats_cache *c, const struct stats_view *view);

#endif
