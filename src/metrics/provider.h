/* provider.h — a stage provider wrapped so that each of its operations is
 * counted, by IVS operation name and outcome, in metrics.h's
 * usher_provider_calls_total. */
#ifndef USHER_METRICS_PROVIDER_H
#define USHER_METRICS_PROVIDER_H

#include "ivs/provider.h"

struct metrics;

/* Takes inner (freed with the wrapper, or at once on failure); metrics
 * must outlive it. Returns the provider to use, or NULL. */
struct stage_provider *metered_provider_new(struct stage_provider *inner, struct metrics *metrics);

#endif
