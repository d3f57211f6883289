/* webhooks.c — see webhooks.h.
 *
 * Three duties on the loop: every POLL_MS, read the stage events after the
 * last one seen and claim those that are webhook events; deliver claimed
 * events, one request at a time per URL, retrying with backoff; and, in
 * the process holding the scaler lease, compare the viewer total with the
 * thresholds and record a crossing as a stage event (viewers_above /
 * viewers_below), which then takes the same way as every other event. */
#include "webhooks/webhooks.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "app.h"
#include "aws/http.h"
#include "config/config.h"
#include "scaler/scaler.h"
#include "stages/events.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/list.h"
#include "util/log.h"

#define MAX_ITEMS 32                 /* URLs, thresholds */
#define URL_MAX 2048
#define POLL_MS 250
#define BATCH 100                    /* stage events read per poll */
#define CLAIM_TTL_S 86400
#define QUEUE_MAX 1000               /* deliveries waiting per URL; more are dropped */
#define SEND_TIMEOUT_MS 5000
#define RETRY_CAP_MS 60000
#define ID_MAX 48

struct delivery {
    TAILQ_ENTRY(delivery) link;
    char *body;
    char id[ID_MAX];
    char type[32];
    char signature[8 + 2 * EVP_MAX_MD_SIZE + 1];   /* sha256=<hex> */
    long attempts;
};

struct target {
    struct webhooks *w;
    char *url;
    TAILQ_HEAD(, delivery) queue;
    size_t queued;
    bool sending;
    struct event *retry;
};

struct webhooks {
    struct app *app;
    struct aws_http *http;
    struct target targets[MAX_ITEMS];
    size_t ntargets;
    long long thresholds[MAX_ITEMS];
    size_t nthresholds;
    struct event *poll;
    bool reading, primed, total_reading, closing;
    char last_id[ID_MAX];
    char started[32];                /* ISO 8601 of webhooks_new: events at or after it are ours */
    long long last_total;            /* -1: not known (not the lease holder) */
};

/* A stage event waiting for its claim. */
struct claim {
    struct webhooks *w;
    char id[ID_MAX];
    const char *type;                /* the webhook type (a constant) */
    json_t *data;
};

/* ---- settings ------------------------------------------------------------ */

/* What each_item's fn is told, and how many items it has seen. */
struct items {
    const char *(*fn)(const char *item, void *arg);
    void *arg;
    size_t n;
};

static const char *one_item(const char *item, size_t len, void *arg)
{
    struct items *it = arg;
    char copy[URL_MAX + 1];
    if (len == 0)
        return NULL;
    if (len > URL_MAX)
        return "has an item too long";
    if (++it->n > MAX_ITEMS)
        return "has more than 32 items";
    memcpy(copy, item, len);
    copy[len] = '\0';
    return it->fn(copy, it->arg);
}

/* Calls fn on each non-empty item of a comma list, NUL-terminated; stops
 * at the first problem fn reports and returns it, or NULL. */
static const char *each_item(const char *list, const char *(*fn)(const char *item, void *arg),
                             void *arg)
{
    struct items it = {fn, arg, 0};
    return list_each(list, one_item, &it);
}

static const char *url_ok(const char *url, void *arg)
{
    struct webhooks *w = arg;
    const char *host = strncmp(url, "https://", 8) == 0 ? url + 8
                     : strncmp(url, "http://", 7) == 0  ? url + 7 : NULL;
    if (!host || !*host || *host == '/')
        return "holds an item that is not an http:// or https:// URL";
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return "holds a URL with a space or control character";
    if (w && !(w->targets[w->ntargets].url = strdup(url)))
        return "out of memory";
    if (w)
        w->targets[w->ntargets++].w = w;
    return NULL;
}

static const char *threshold_ok(const char *item, void *arg)
{
    struct webhooks *w = arg;
    char *end;
    long long n = strtoll(item, &end, 10);
    if (!isdigit((unsigned char)item[0]) || *end || n < 1 || n > 1000000000)
        return "holds an item that is not a viewer count from 1 to 1000000000";
    if (w)
        w->thresholds[w->nthresholds++] = n;
    return NULL;
}

const char *webhook_urls_check(const char *list) { return each_item(list, url_ok, NULL); }
const char *webhook_thresholds_check(const char *list) { return each_item(list, threshold_ok, NULL); }

/* ---- delivering ------------------------------------------------------------ */

static void send_head(struct target *t);

static void drop_head(struct target *t)
{
    struct delivery *d = TAILQ_FIRST(&t->queue);
    TAILQ_REMOVE(&t->queue, d, link);
    t->queued--;
    free(d->body);
    free(d);
}

/* The head failed: again after a backoff, or given up. */
static void failed(struct target *t, const char *why)
{
    struct delivery *d = TAILQ_FIRST(&t->queue);
    const struct config *cfg = t->w->app->cfg;
    if (d->attempts >= cfg->webhook_max_attempts) {
        log_warn("webhook %s %s to %s given up after %ld tries: %s", d->type, d->id, t->url,
                 d->attempts, why);
        drop_head(t);
        send_head(t);
        return;
    }
    long wait = cfg->webhook_retry_ms;
    for (long i = 1; i < d->attempts && wait < RETRY_CAP_MS; i++)
        wait *= 2;
    wait = wait < RETRY_CAP_MS ? wait : RETRY_CAP_MS;
    log_info("webhook %s %s to %s: %s; again in %ld ms", d->type, d->id, t->url, why, wait);
    struct timeval tv = {wait / 1000, (wait % 1000) * 1000};
    event_add(t->retry, &tv);
}

static void sent(void *arg, const struct aws_http_response *res)
{
    struct target *t = arg;
    t->sending = false;
    if (t->w->closing)
        return;
    if (!res->error && res->status >= 200 && res->status < 300) {
        drop_head(t);
        send_head(t);
        return;
    }
    char why[64];
    snprintf(why, sizeof why, "HTTP %ld", res->status);
    failed(t, res->error ? res->error : why);
}

static void send_head(struct target *t)
{
    struct delivery *d = TAILQ_FIRST(&t->queue);
    if (!d || t->sending || event_pending(t->retry, EV_TIMEOUT, NULL))
        return;
    char event[64], delivery[ID_MAX + 32], signature[sizeof d->signature + 32];
    snprintf(event, sizeof event, "X-Usher-Event: %s", d->type);
    snprintf(delivery, sizeof delivery, "X-Usher-Delivery: %s", d->id);
    snprintf(signature, sizeof signature, "X-Usher-Signature: %s", d->signature);
    const char *headers[] = {"Content-Type: application/json", "User-Agent: usher/" USHER_VERSION,
                             event, delivery, signature, NULL};
    struct aws_http_request req = {"POST", t->url, headers, d->body, strlen(d->body),
                                   SEND_TIMEOUT_MS};
    d->attempts++;
    t->sending = true;
    if (aws_http_send(t->w->http, &req, sent, t) != 0) {
        t->sending = false;
        failed(t, "out of memory");
    }
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    send_head(arg);
}

/* sha256=<hex HMAC-SHA256 of body with the secret> into out. */
static void sign(const char *secret, const char *body, char *out)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, strlen(body),
         mac, &len);
    out += sprintf(out, "sha256=");
    for (unsigned int i = 0; i < len; i++)
        out += sprintf(out, "%02x", mac[i]);
}

static void enqueue(struct target *t, const char *body, const char *id, const char *type)
{
    struct delivery *d = calloc(1, sizeof *d);
    if (t->queued >= QUEUE_MAX || !d || !(d->body = strdup(body))) {
        log_warn("webhook %s %s to %s dropped: %s", type, id, t->url,
                 d ? "too many deliveries waiting" : "out of memory");
        free(d);
        return;
    }
    snprintf(d->id, sizeof d->id, "%s", id);
    snprintf(d->type, sizeof d->type, "%s", type);
    sign(t->w->app->cfg->webhook_secret, body, d->signature);
    TAILQ_INSERT_TAIL(&t->queue, d, link);
    t->queued++;
    send_head(t);
}

/* ---- claiming ------------------------------------------------------------ */

static void claimed(void *arg, enum store_error err, const char *detail, long long sequence)
{
    struct claim *c = arg;
    struct webhooks *w = c->w;
    if (err != STORE_OK)
        log_warn("webhook %s %s not sent: its claim failed: %s", c->type, c->id, detail);
    if (err == STORE_OK && sequence > 0 && !w->closing) {
        json_t *doc = json_pack("{s:s, s:I, s:s, s:O, s:O}", "id", c->id, "sequence",
                                (json_int_t)sequence, "type", c->type, "time",
                                json_object_get(c->data, "at"), "data", c->data);
        json_object_del(json_object_get(doc, "data"), "at");
        char *body = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        for (size_t i = 0; body && i < w->ntargets; i++)
            enqueue(&w->targets[i], body, c->id, c->type);
        free(body);
    }
    json_decref(c->data);
    free(c);
}

/* The webhook type of a stage event type; NULL: not a webhook event. */
static const char *webhook_type(const char *event)
{
    static const char *const map[][2] = {
        {"created", "stage.opened"}, {"scale_up", "stage.opened"}, {"drain", "stage.draining"},
        {"delete", "stage.closed"}, {"replication_started", "replication.started"},
        {"replication_failed", "replication.failed"}, {"publisher_live", "publisher.live"},
        {"publisher_offline", "publisher.offline"}, {"viewers_above", "viewers.above"},
        {"viewers_below", "viewers.below"}, {"orphan_deleted", "reconciliation.corrected"},
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (strcmp(map[i][0], event) == 0)
            return map[i][1];
    return NULL;
}

static void claim(struct webhooks *w, const struct stage_event *e)
{
    const char *type = webhook_type(e->type);
    struct claim *c = type ? malloc(sizeof *c) : NULL;
    if (!c)
        return;
    c->w = w;
    c->type = type;
    snprintf(c->id, sizeof c->id, "%s", e->id);
    c->data = json_pack("{s:s, s:s, s:s, s:s}", "stageArn", e->stage_arn, "detail", e->detail,
                        "event", e->type, "at", e->at);
    if (strncmp(e->type, "viewers_", 8) == 0)
        json_object_set_new(c->data, "threshold", json_integer(strtoll(e->detail, NULL, 10)));
    store_webhook_claim(w->app->store, c->id, CLAIM_TTL_S, claimed, c);
}

/* The first read: the newest BATCH entries, newest first. Reading goes on
 * after the newest; of these, the ones that happened since this process
 * started are claimed, oldest first, so an event recorded between the
 * start (requests may come at once) and this read is not lost. Older ones
 * were other processes' to deliver. */
static void prime(struct webhooks *w, const struct stage_events *events)
{
    if (events->count)
        snprintf(w->last_id, sizeof w->last_id, "%s", events->items[0].id);
    for (size_t i = events->count; i-- > 0;)
        if (strcmp(events->items[i].at, w->started) >= 0)
            claim(w, &events->items[i]);
    w->primed = true;
}

static void events_read(void *arg, enum store_error err, const char *detail,
                        const struct stage_events *events)
{
    struct webhooks *w = arg;
    w->reading = false;
    if (err != STORE_OK) {
        log_debug("webhooks: stage events not read: %s", detail);
        return;
    }
    if (!w->primed) {
        prime(w, events);
        return;
    }
    for (size_t i = 0; i < events->count; i++) {
        snprintf(w->last_id, sizeof w->last_id, "%s", events->items[i].id);
        claim(w, &events->items[i]);
    }
}

/* ---- thresholds ------------------------------------------------------------ */

static void total_read(void *arg, enum store_error err, const char *detail, long long total)
{
    (void)detail;
    struct webhooks *w = arg;
    w->total_reading = false;
    if (err != STORE_OK || w->closing)
        return;
    for (size_t i = 0; w->last_total >= 0 && i < w->nthresholds; i++) {
        long long t = w->thresholds[i];
        bool up = w->last_total < t && total >= t, down = w->last_total >= t && total < t;
        char count[24];
        snprintf(count, sizeof count, "%lld", t);
        if (up || down)
            stage_event(w->app, clock_now_ms(), up ? "viewers_above" : "viewers_below",
                        w->app->master_arn, count);
    }
    w->last_total = total;
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct webhooks *w = arg;
    if (!store_ready(w->app->store))
        return;
    if (!w->reading) {
        w->reading = true;
        if (w->primed)
            store_events_after(w->app->store, w->last_id, BATCH, events_read, w);
        else
            store_events_read(w->app->store, BATCH, events_read, w);
    }
    if (!scaler_is_leader(w->app->scaler))
        w->last_total = -1;
    else if (w->nthresholds && !w->total_reading) {
        w->total_reading = true;
        store_total_viewers(w->app->store, total_read, w);
    }
}

/* ---- life ------------------------------------------------------------ */

struct webhooks *webhooks_new(struct app *app, int *failed_out)
{
    *failed_out = 0;
    if (!*app->cfg->webhook_urls)
        return NULL;
    struct webhooks *w = calloc(1, sizeof *w);
    *failed_out = 1;
    if (!w)
        return NULL;
    w->app = app;
    w->last_total = -1;
    clock_iso8601(clock_now_ms(), w->started, sizeof w->started);
    struct timeval every = {0, POLL_MS * 1000};
    if (each_item(app->cfg->webhook_urls, url_ok, w) ||
        each_item(app->cfg->webhook_viewer_thresholds, threshold_ok, w) ||
        !(w->http = aws_http_new(app->base)) ||
        !(w->poll = event_new(app->base, -1, EV_PERSIST, on_poll, w))) {
        webhooks_free(w);
        return NULL;
    }
    for (size_t i = 0; i < w->ntargets; i++) {
        TAILQ_INIT(&w->targets[i].queue);
        if (!(w->targets[i].retry = evtimer_new(app->base, on_retry, &w->targets[i]))) {
            webhooks_free(w);
            return NULL;
        }
    }
    event_add(w->poll, &every);
    *failed_out = 0;
    log_info("webhooks: %zu URLs, %zu viewer thresholds", w->ntargets, w->nthresholds);
    return w;
}

void webhooks_free(struct webhooks *w)
{
    if (!w)
        return;
    w->closing = true;
    aws_http_free(w->http);          /* requests in flight end, their callbacks see closing */
    if (w->poll)
        event_free(w->poll);
    for (size_t i = 0; i < w->ntargets; i++) {
        struct target *t = &w->targets[i];
        if (t->queued)
            log_warn("webhooks: %zu deliveries to %s dropped at stop", t->queued, t->url);
        while (t->url && TAILQ_FIRST(&t->queue))
            drop_head(t);
        if (t->retry)
            event_free(t->retry);
        free(t->url);
    }
    free(w);
}
