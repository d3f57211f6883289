/* stats_cache.c — see stats_cache.h. The entries are kept in the order of
 * the last view (stages are listed oldest first, so the order rarely
 * changes): the entry at the same position is tried first. */
#include "routes/stats_cache.h"

#include "routes/routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

struct entry {
    char *key;                       /* the record's fields, joined */
    char *head;                      /* {"stageId":…,"viewerCount": */
    char *tail;                      /* ,"info":{…},…} */
};

struct stats_cache {
    struct entry *items;
    size_t count;
};

/* Growing text; `failed` once memory ran out. */
struct text {
    char *s;
    size_t len, cap;
    bool failed;
};

static void put(struct text *t, const char *s, size_t n)
{
    if (t->failed)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *grown = realloc(t->s, cap);
        if (!grown) {
            t->failed = true;
            return;
        }
        t->s = grown;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void put_str(struct text *t, const char *s) { put(t, s, strlen(s)); }

static void put_num(struct text *t, long long n)
{
    char buf[24];
    put(t, buf, (size_t)snprintf(buf, sizeof buf, "%lld", n));
}

/* Every field an entry shows but its count, joined; NULL when out of memory. */
static char *entry_key(const struct stage_entry *e)
{
    const struct stage_info *i = &e->info;
    struct text t = {0};
    const char *parts[] = {e->arn, i->name ? i->name : "\x01", i->created_at ? i->created_at : "\x01",
                           !i->doc ? "n" : i->auto_scaled ? "1" : "0", stage_mode_name(e->mode),
                           e->master ? "m" : replication_name(e->state.replication)};
    for (size_t k = 0; k < sizeof parts / sizeof *parts; k++) {
        put_str(&t, parts[k]);
        put(&t, "\x1f", 1);
    }
    if (t.failed)
        free(t.s);
    return t.failed ? NULL : t.s;
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
        put_str(&head, "{\"stageId\":");
        put_str(&head, arn_text);
        put_str(&head, ",\"viewerCount\":");
        put_str(&tail, ",");
        put_str(&tail, rest_text + 1);          /* the object without its "{" */
    }
    free(arn_text);
    free(rest_text);
    if (!head.s || !tail.s || head.failed || tail.failed) {
        free(head.s);
        free(tail.s);
        return false;
    }
    out->head = head.s;
    out->tail = tail.s;
    return true;
}

static void entry_free(struct entry *e)
{
    free(e->key);
    free(e->head);
    free(e->tail);
}

/* The cached entry with this key, taken out of old (its slot emptied). */
static bool entry_take(struct stats_cache *c, size_t hint, const char *key, struct entry *out)
{
    for (size_t k = 0; k < c->count; k++) {
        struct entry *e = &c->items[(hint + k) % c->count];
        if (e->key && strcmp(e->key, key) == 0) {
            *out = *e;
            e->key = e->head = e->tail = NULL;
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
    for (size_t i = 0; ok && i < view->count; i++) {
        char *key = entry_key(&view->stages[i]);
        ok = key != NULL;
        if (ok && entry_take(c, i, key, &now[i]))
            free(key);
        else if (ok && (ok = entry_render(&view->stages[i], &now[i])))
            now[i].key = key;
        else
            free(key);
    }
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

char *stats_cache_render(struct stats_cache *c, const struct stats_view *view)
{
    if (!entries_update(c, view))
        return NULL;
    struct text t = {0};
    /* SPEC §2 fixes these five fields exactly (the fifth, timestamp, is
     * the request's: routes/stats.c); more goes in the stages. */
    put_str(&t, "{\"totalViewers\":");
    put_num(&t, view->total_viewers);
    put_str(&t, ",\"activeStages\":");
    put_num(&t, (long long)view->count);
    put_str(&t, view->publisher_live ? ",\"isPublisherLive\":true,\"stages\":["
                                     : ",\"isPublisherLive\":false,\"stages\":[");
    for (size_t i = 0; i < view->count; i++) {
        if (i)
            put(&t, ",", 1);
        put_str(&t, c->items[i].head);
        put_num(&t, view->stages[i].viewers);
        put_str(&t, c->items[i].tail);
    }
    put_str(&t, "]}");
    if (t.failed) {
        free(t.s);
        return NULL;
    }
    return t.s;
}

struct stats_cache *stats_cache_new(void) { return calloc(1, sizeof(struct stats_cache)); }

void stats_cache_free(struct stats_cache *c)
{
    if (!c)
        return;
    for (size_t k = 0; k < c->count; k++)
        entry_free(&c->items[k]);
    free(c->items);
    free(c);
}
