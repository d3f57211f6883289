/* stats_cache.c — see stats_cache.h. The entries are kept in the order of
 * the last view (stages are listed oldest first, so the order rarely
 * changes): the entry at the same position is tried first. An entry is
 * known by what it shows but the count: the stage's ARN, mode, role and
 * replication, and its record, by identity: the store parses a record
 * once while its text stays the same (store/records.h) and the entry holds
 * a reference to that parse, so the same document means the same record. */
#include "routes/stats_cache.h"

#include "routes/routes.h"
#include "util/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

struct entry {
    char *arn;                       /* NULL: an empty slot */
    json_t *record;                  /* the record's document (a reference), or NULL */
    enum stage_mode mode;
    enum replication_state replication;
    bool master;
    char *head;                      /* {"stageId":…,"viewerCount": */
    char *tail;                      /* ,"info":{…},…} */
};

struct stats_cache {
    struct entry *items;
    size_t count;
    struct text out;                 /* the last rendering, its buffer reused */
    struct stats_text shown;         /* what stats_cache_render returned */
};

static void put_num(struct text *t, long long n)
{
    char buf[24];
    text_add(t, buf, (size_t)snprintf(buf, sizeof buf, "%lld", n));
}

/* Whether e shows stage s (but its count). */
static bool entry_is(const struct entry *e, const struct stage_entry *s)
{
    return e->arn && e->record == s->info.doc && e->mode == s->mode && e->master == s->master &&
           e->replication == s->state.replication && strcmp(e->arn, s->arn) == 0;
}

/* An entry's two pieces around its count, cut from stage_entry() (routes.h):
 * its fields after stageId and viewerCount keep their order. */
static bool entry_render(const struct stage_entry *e, struct entry *out)
{
    json_t *arn = json_string(e->arn);
    json_t *rest = stage_entry(e, false);
    if (rest) {
        json_object_del(rest, "stageId");
        json_object_del(rest, "viewerCount");
    }
    char *arn_text = arn ? json_dumps(arn, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    char *rest_text = rest ? json_dumps(rest, JSON_COMPACT) : NULL;
    json_decref(arn);
    json_decref(rest);
    struct text head = {0}, tail = {0};
    if (arn_text && rest_text) {
        text_str(&head, "{\"stageId\":");
        text_str(&head, arn_text);
        text_str(&head, ",\"viewerCount\":");
        text_str(&tail, ",");
        text_str(&tail, rest_text + 1);          /* the object without its "{" */
    }
    free(arn_text);
    free(rest_text);
    char *key = strdup(e->arn);
    if (!key || !head.s || !tail.s || head.failed || tail.failed) {
        free(key);
        free(head.s);
        free(tail.s);
        return false;
    }
    *out = (struct entry){key, json_incref(e->info.doc), e->mode, e->state.replication, e->master,
                          head.s, tail.s};
    return true;
}

static void entry_free(struct entry *e)
{
    free(e->arn);
    json_decref(e->record);
    free(e->head);
    free(e->tail);
    *e = (struct entry){0};
}

/* The cached entry of stage s, taken out of the cache (its slot emptied). */
static bool entry_take(struct stats_cache *c, size_t hint, const struct stage_entry *s,
                       struct entry *out)
{
    for (size_t k = 0; k < c->count; k++) {
        struct entry *e = &c->items[(hint + k) % c->count];
        if (entry_is(e, s)) {
            *out = *e;
            *e = (struct entry){0};
            return true;
        }
    }
    return false;
}

/* The entries of view, from the cache or rendered; the cache then holds
 * exactly them. False when out of memory (the cache is left as it was). */
static bool entries_update(struct stats_cache *c, const struct stats_view *view)
{
    struct entry *now = calloc(view->count ? view->count : 1, sizeof *now);
    bool ok = now != NULL;
    for (size_t i = 0; ok && i < view->count; i++)
        if (!entry_take(c, i, &view->stages[i], &now[i]))
            ok = entry_render(&view->stages[i], &now[i]);
    size_t keep = ok ? c->count : view->count;
    struct entry *drop = ok ? c->items : now;
    for (size_t k = 0; drop && k < keep; k++)
        entry_free(&drop[k]);
    free(drop);
    if (ok) {
        c->items = now;
        c->count = view->count;
    }
    return ok;
}

const struct stats_text *stats_cache_render(struct stats_cache *c, const struct stats_view *view)
{
    if (!entries_update(c, view))
        return NULL;
    struct text *t = &c->out;
    t->len = 0;
    t->failed = false;
    /* SPEC §2 fixes these five fields exactly (the fifth, timestamp, is
     * the request's: routes/stats.c); more goes in the stages. */
    text_str(t, "{\"totalViewers\":");
    put_num(t, view->total_viewers);
    text_str(t, ",\"activeStages\":");
    put_num(t, (long long)view->count);
    text_str(t, view->publisher_live ? ",\"isPublisherLive\":true,\"stages\":["
                                    : ",\"isPublisherLive\":false,\"stages\":[");
    for (size_t i = 0; i < view->count; i++) {
        if (i)
            text_add(t, ",", 1);
        text_str(t, c->items[i].head);
        put_num(t, view->stages[i].viewers);
        text_str(t, c->items[i].tail);
    }
    text_str(t, "]}");
    if (t->failed)
        return NULL;
    c->shown = (struct stats_text){t->s, t->len};
    return &c->shown;
}

struct stats_cache *stats_cache_new(void) { return calloc(1, sizeof(struct stats_cache)); }

void stats_cache_free(struct stats_cache *c)
{
    if (!c)
        return;
    for (size_t k = 0; k < c->count; k++)
        entry_free(&c->items[k]);
    free(c->items);
    free(c->out.s);
    free(c);
}
