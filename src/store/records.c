/* records.c — see records.h. One entry per position of the last view; an
 * entry holds the texts it was parsed from (NULL: nothing kept) and their
 * parsed forms. The parsed documents are never changed once made, so a
 * view shares them by reference. */
#include "store/records.h"

#include <stdlib.h>
#include <string.h>

struct record {
    char *info_text, *state_text;
    struct stage_info info;
    struct stage_state state;
};

struct stage_records {
    struct record *items;
    size_t count;
};

static void record_clear(struct record *e)
{
    free(e->info_text);
    free(e->state_text);
    stage_info_clear(&e->info);
    *e = (struct record){0};
}

struct stage_records *stage_records_new(void) { return calloc(1, sizeof(struct stage_records)); }

void stage_records_free(struct stage_records *r)
{
    if (!r)
        return;
    stage_records_resize(r, 0);
    free(r);
}

void stage_records_resize(struct stage_records *r, size_t count)
{
    if (!r || count == r->count)
        return;
    for (size_t k = count; k < r->count; k++)
        record_clear(&r->items[k]);
    if (count < r->count || count == 0) {
        r->count = count;           /* the block may stay larger */
        if (!count) {
            free(r->items);
            r->items = NULL;
        }
        return;
    }
    struct record *items = realloc(r->items, count * sizeof *items);
    if (!items)
        return;                     /* positions past the old count are not kept */
    for (size_t k = r->count; k < count; k++)
        items[k] = (struct record){0};
    r->items = items;
    r->count = count;
}

/* Whether the text kept (NULL: none) is text. */
static bool same(const char *kept, const char *text) { return kept && strcmp(kept, text) == 0; }

void stage_records_parse(struct stage_records *r, size_t at, const char *info_text,
                         const char *state_text, struct stage_info *info,
                         struct stage_state *state)
{
    struct record *e = r && at < r->count ? &r->items[at] : NULL;
    if (!e) {
        stage_info_parse(info_text, info);
        stage_state_parse(state_text, state);
        return;
    }
    if (!same(e->info_text, info_text)) {
        free(e->info_text);
        stage_info_clear(&e->info);
        stage_info_parse(info_text, &e->info);
        e->info_text = strdup(info_text);
    }
    if (!same(e->state_text, state_text)) {
        free(e->state_text);
        stage_state_parse(state_text, &e->state);
        e->state_text = strdup(state_text);
    }
    *info = e->info;
    json_incref(info->doc);
    *state = e->state;
}
