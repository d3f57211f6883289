/* records.h — stage records parsed once, while their text stays the same.
 *
 * Every stats view (GET /api/stats, the live feed, the scaler's tick, the
 * stage list) carries each live stage's record and scaler state as JSON
 * text (usher_stats). Parsing them all with jansson for every view was a
 * third of usher's CPU per /api/stats at 100 stages (BENCHMARKS.md, issue
 * 11), yet they change rarely: the cache keeps each position's texts and
 * their parsed forms, and parses again only a text that differs from the
 * one last seen at that position. Stages are listed oldest first, so
 * positions move only when a stage is added or removed. */
#ifndef USHER_STORE_RECORDS_H
#define USHER_STORE_RECORDS_H

#include <stddef.h>

#include "stages/state.h"

struct stage_records;

struct stage_records *stage_records_new(void);   /* NULL when out of memory */
void stage_records_free(struct stage_records *r);

/* Sizes the cache for a view of count stages (entries past it are
 * dropped). Call before the view's stage_records_parse calls. */
void stage_records_resize(struct stage_records *r, size_t count);

/* The record (stage_info_parse) and scaler state (stage_state_parse) of
 * the stage at position `at` (< the count of the last resize) from their
 * texts, from the cache when the texts are those seen there last. info
 * gets its own reference to the parsed document: free it with
 * stage_info_clear as usual. r NULL parses without caching; when memory
 * runs out the texts are parsed and not kept. */
void stage_records_parse(struct stage_records *r, size_t at, const char *info_text,
                         const char *state_text, struct stage_info *info,
                         struct stage_state *state);

#endif
