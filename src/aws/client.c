/* client.c — the IVS Real-Time control-plane client (see client.h).
 *
 * A call goes round these steps until it ends: (deferred start) → limiter
 * slot → credentials → signed POST → answer. An answer worth retrying
 * (aws_classify) arms the call's timer for the backoff and goes round
 * again, while attempts and the time budget last. Every call is on the
 * client's list until its done has been called, so aws_client_free can end
 * the ones still running. */
#include "aws/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "aws/http.h"
#include "aws/sigv4.h"
#include "util/clock.h"
#include "util/log.h"

#define DEFAULT_TIMEOUT_MS 10000
#define SIGNING_NAME "ivs"      /* not "ivsrealtime": ../shared/aws/README.md */
#define RECENT_S 60             /* the window of aws_client_recent */

struct call {
    struct aws_client *c;
    int op;                     /* index in aws_op_name, -1 = unknown */
    char *body;
    aws_call_fn done;
    void *arg;
    int attempts;
    int64_t started_ms;         /* monotonic */
    struct event *timer;        /* start and backoff */
    LIST_ENTRY(call) link;
};

struct recent_slot {
    int64_t second;             /* unix s this slot counts; slot = second % RECENT_S */
    uint64_t throttles, errors;
};

struct aws_client {
    struct event_base *base;
    struct aws_http *http;
    struct aws_creds *creds;
    struct aws_limiter *local, *limiter;
    char *region, *origin, *host, *prefix;
    long timeout_ms;
    struct aws_op_stats *stats;
    struct aws_client_last last;
    struct recent_slot recent[RECENT_S];
    LIST_HEAD(, call) calls;
    bool closing;
    uint64_t rng;               /* xorshift state for backoff jitter */
};

static int64_t mono_ms(void) { return clock_mono_us() / 1000; }

static uint32_t next_random(struct aws_client *c)
{
    c->rng ^= c->rng << 13, c->rng ^= c->rng >> 7, c->rng ^= c->rng << 17;
    return (uint32_t)(c->rng >> 32);
}

static const char *op_name(const struct call *k)
{
    return k->op >= 0 ? aws_op_name((size_t)k->op) : "(unknown operation)";
}

static void log_end(const struct call *k, const struct aws_result *r)
{
    if (r->error == AWS_OK) {
        log_debug("aws %s: ok after %d attempt(s)", r->operation, r->attempts);
        return;
    }
    log_msg(r->error == AWS_ERR_QUOTA_EXCEEDED ? LOG_ERROR : LOG_WARN,
            "aws %s: %s (HTTP %ld, %s) after %d attempt(s): %s", op_name(k),
            aws_error_name(r->error), r->status, r->code ? r->code : "-",
            r->attempts, r->message ? r->message : "-");
}

/* Ends k: counts it, logs it, calls done once, frees k. */
static void finish(struct call *k, struct aws_result *r)
{
    struct aws_client *c = k->c;
    LIST_REMOVE(k, link);
    r->operation = op_name(k);
    r->attempts = k->attempts;
    if (k->op >= 0)
        c->stats[k->op].outcomes[r->error]++;
    c->last = (struct aws_client_last){op_name(k), r->error, clock_now_ms()};
    log_end(k, r);
    k->done(k->arg, r);
    event_free(k->timer);
    free(k->body);
    free(k);
}

static void fail(struct call *k, enum aws_error e, const char *code, const char *message)
{
    struct aws_result r = {.error = e, .code = code, .message = message};
    finish(k, &r);
}

/* ------------------------------------------------------------------------
 * One attempt: slot, credentials, signed request, answer
 * --------------------------------------------------------------------- */

static void on_slot(void *arg);

static void attempt(struct call *k)
{
    struct aws_limiter *l = k->c->limiter;
    int rc = l->acquire_op ? l->acquire_op(l, (size_t)k->op, on_slot, k)
                           : l->acquire(l, aws_op_class_at((size_t)k->op), on_slot, k);
    if (rc < 0)
        fail(k, AWS_ERR_TRANSPORT, "usher", "out of memory");
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct call *k = arg;
    if (k->op < 0)
        fail(k, AWS_ERR_VALIDATION, "usher", "not an IVS Real-Time operation");
    else
        attempt(k);
}

/* The message of an IVS error body: message, Message or exceptionMessage. */
static const char *error_message(json_t *body)
{
    static const char *const keys[] = {"message", "Message", "exceptionMessage"};
    for (size_t i = 0; i < 3; i++) {
        const char *m = json_string_value(json_object_get(body, keys[i]));
        if (m)
            return m;
    }
    return NULL;
}

/* s with each control byte as '?': IVS's words end up in log lines, stage
 * events and start errors, where a newline would forge a line of its own. */
static const char *printable(char *s)
{
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < ' ' || *p == 0x7f)
            *p = '?';
    return s;
}

/* Builds the result of a final answer and finishes k. */
static void answer(struct call *k, const struct aws_http_response *res, struct aws_verdict v)
{
    struct aws_result r = {.error = v.error, .status = res->status};
    char code[128] = "", message[512];
    json_error_t jerr;
    json_t *body = res->error ? NULL : json_loadb(res->body, res->body_len, 0, &jerr);
    if (res->error) {
        r.code = "usher", r.message = res->error;
    } else if (v.error == AWS_OK) {
        if (res->body_len == 0)
            body = json_object();
        if (json_is_object(body))
            r.json = body;
        else
            r.error = AWS_ERR_SERVER, r.code = "usher", r.message = "IVS answered 2xx without a JSON object";
    } else {
        aws_error_code(res->error_type, code, sizeof code);
        if (!code[0] && json_string_value(json_object_get(body, "__type")))
            aws_error_code(json_string_value(json_object_get(body, "__type")), code, sizeof code);
        const char *words = error_message(body);
        if (words)
            snprintf(message, sizeof message, "%s", words);
        r.code = code[0] ? printable(code) : NULL;
        r.message = words ? printable(message) : NULL;
    }
    finish(k, &r);
    json_decref(body);
}

/* Counts a failed attempt in the current second's slot. */
static void count_recent(struct aws_client *c, enum aws_error e)
{
    int64_t sec = clock_now_ms() / 1000;
    struct recent_slot *slot = &c->recent[sec % RECENT_S];
    if (slot->second != sec)
        slot->second = sec, slot->throttles = 0, slot->errors = 0;
    if (e == AWS_ERR_THROTTLED)
        slot->throttles++;
    else
        slot->errors++;
}

struct aws_client_recent aws_client_recent(const struct aws_client *c, int64_t now_ms)
{
    struct aws_client_recent r = {0, 0};
    int64_t now = now_ms / 1000;
    for (int i = 0; i < RECENT_S; i++)
        if (c->recent[i].second > now - RECENT_S && c->recent[i].second <= now) {
            r.throttles += c->recent[i].throttles;
            r.errors += c->recent[i].errors;
        }
    return r;
}

static void on_response(void *arg, const struct aws_http_response *res)
{
    struct call *k = arg;
    struct aws_client *c = k->c;
    struct aws_verdict v = aws_classify(res->status, res->error_type, res->error != NULL,
                                        res->timed_out);
    if (v.error != AWS_OK)
        count_recent(c, v.error);
    if (v.retry && !c->closing) {
        int64_t delay = aws_backoff_ms(k->attempts, next_random(c));
        if (aws_retry_allowed(k->attempts, mono_ms() - k->started_ms, delay)) {
            c->stats[k->op].retries++;
            log_info("aws %s: %s (HTTP %ld%s%s), attempt %d, again in %lld ms", op_name(k),
                     aws_error_name(v.error), res->status, res->error ? ", " : "",
                     res->error ? res->error : "", k->attempts, (long long)delay);
            struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
            evtimer_add(k->timer, &tv);
            return;
        }
    }
    answer(k, res, v);
}

/* "Name: value" lines for libcurl: Host, Content-Type, then what the
 * signer added; NULL-terminated, each and the array on the heap. */
static char **header_lines(const struct sigv4_header *hs, size_t n)
{
    char **lines = calloc(n + 1, sizeof *lines);
    for (size_t i = 0; lines && i < n; i++)
        if (asprintf(&lines[i], "%s: %s", hs[i].name, hs[i].value) < 0) {
            lines[i] = NULL;
            for (size_t j = 0; j < i; j++)
                free(lines[j]);
            free(lines);
            return NULL;
        }
    return lines;
}

/* Signs and sends one attempt; returns an error message or NULL. */
static const char *send_signed(struct call *k, const struct aws_credentials *cr)
{
    struct aws_client *c = k->c;
    char path[512], err[128];
    snprintf(path, sizeof path, "%s/%s", c->prefix, op_name(k));
    struct sigv4_header hs[2 + SIGV4_MAX_ADDED] = {{"Host", c->host},
                                                   {"Content-Type", "application/json"}};
    struct sigv4_request req = {"POST", path, NULL, hs, 2, k->body, strlen(k->body)};
    struct sigv4_params p = {cr->access_key_id, cr->secret_access_key, cr->session_token,
                             c->region, SIGNING_NAME, clock_now_ms() / 1000, false};
    struct sigv4_result sig;
    if (sigv4_sign(&req, &p, &sig, err, sizeof err) < 0) {
        log_error("aws %s: cannot sign: %s", op_name(k), err);
        return "cannot sign the request";
    }
    memcpy(hs + 2, sig.added, sig.nadded * sizeof *hs);
    char **lines = header_lines(hs, 2 + sig.nadded);
    char url[1024];
    snprintf(url, sizeof url, "%s%s", c->origin, path);
    struct aws_http_request hr = {"POST", url, (const char *const *)lines, k->body,
                                  strlen(k->body), c->timeout_ms};
    int rc = lines ? aws_http_send(c->http, &hr, on_response, k) : -1;
    for (size_t i = 0; lines && lines[i]; i++)
        free(lines[i]);
    free(lines);
    sigv4_result_free(&sig);
    if (rc < 0)
        return "out of memory";
    k->attempts++;
    return NULL;
}

static void on_creds(void *arg, const struct aws_credentials *cr, const char *error)
{
    struct call *k = arg;
    if (k->c->closing) {
        fail(k, AWS_ERR_TRANSPORT, "usher", "client closed");
        return;
    }
    const char *why = cr ? send_signed(k, cr) : error;
    if (why)
        fail(k, cr ? AWS_ERR_TRANSPORT : AWS_ERR_CREDENTIALS, "usher", why);
}

static void on_slot(void *arg)
{
    struct call *k = arg;
    if (aws_creds_get(k->c->creds, on_creds, k) < 0)
        fail(k, AWS_ERR_TRANSPORT, "usher", "out of memory");
}

/* ------------------------------------------------------------------------
 * Calls
 * --------------------------------------------------------------------- */

int aws_call(struct aws_client *c, const char *operation, const json_t *body,
             aws_call_fn done, void *arg)
{
    static const struct timeval now = {0, 0};
    if (c->closing)
        return -1;
    struct call *k = calloc(1, sizeof *k);
    if (!k)
        return -1;
    *k = (struct call){.c = c, .op = aws_op_index(operation), .done = done, .arg = arg,
                       .started_ms = mono_ms()};
    k->body = body ? json_dumps(body, JSON_COMPACT) : strdup("{}");
    k->timer = evtimer_new(c->base, on_timer, k);
    if (!k->body || !k->timer) {
        free(k->body);
        if (k->timer)
            event_free(k->timer);
        free(k);
        return -1;
    }
    LIST_INSERT_HEAD(&c->calls, k, link);
    evtimer_add(k->timer, &now);
    return 0;
}

/* ------------------------------------------------------------------------
 * The client
 * --------------------------------------------------------------------- */

const char *aws_endpoint_check(const char *url)
{
    static const char bad[] = "is not an http(s)://host[:port][/path] URL";
    const char *auth = strncmp(url, "https://", 8) == 0 ? url + 8
                       : strncmp(url, "http://", 7) == 0 ? url + 7 : NULL;
    if (!auth)
        return bad;
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return bad;
    size_t alen = strcspn(auth, "/?#");
    if (alen == 0 || auth[alen] == '?' || auth[alen] == '#' || memchr(auth, '@', alen))
        return bad;
    return NULL;
}

/* Splits a checked scheme://authority[/prefix] into origin, host and
 * prefix (no trailing '/'); -1 when out of memory. */
static int parse_endpoint(struct aws_client *c, const char *url)
{
    const char *auth = strstr(url, "://") + 3;
    size_t alen = strcspn(auth, "/");
    c->origin = strndup(url, (size_t)(auth - url) + alen);
    c->host = strndup(auth, alen);
    c->prefix = strdup(auth + alen);
    if (!c->origin || !c->host || !c->prefix)
        return -1;
    size_t plen = strlen(c->prefix);
    while (plen > 0 && c->prefix[plen - 1] == '/')
        c->prefix[--plen] = '\0';
    return 0;
}

static int client_fail(struct aws_client *c, char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "%s", why);
    aws_client_free(c);
    return -1;
}

static int setup(struct aws_client *c, const struct aws_client_settings *s, char *err,
                 size_t errlen)
{
    char url[512], what[700];
    if (!s->region || !*s->region)
        return client_fail(c, err, errlen, "AWS_REGION is empty");
    if (s->endpoint_url && *s->endpoint_url)
        snprintf(url, sizeof url, "%s", s->endpoint_url);
    else
        snprintf(url, sizeof url, "https://ivsrealtime.%s.amazonaws.com", s->region);
    const char *bad = aws_endpoint_check(url);
    if (bad) {
        snprintf(what, sizeof what, "AWS_ENDPOINT_URL: %s %s", url, bad);
        return client_fail(c, err, errlen, what);
    }
    if (!(c->region = strdup(s->region)) || parse_endpoint(c, url) < 0)
        return client_fail(c, err, errlen, "out of memory");
    c->stats = calloc(aws_op_count(), sizeof *c->stats);
    c->http = aws_http_new(c->base);
    c->local = aws_local_limiter_new(c->base, NULL, NULL);
    if (!c->stats || !c->http || !c->local)
        return client_fail(c, err, errlen, "out of memory");
    c->creds = aws_creds_new(c->base, c->http, &s->creds);
    if (!c->creds)
        return client_fail(c, err, errlen,
                           "cannot set up AWS credentials (see the log line before)");
    return 0;
}

struct aws_client *aws_client_new(struct event_base *base,
                                  const struct aws_client_settings *s,
                                  char *err, size_t errlen)
{
    struct aws_client *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->base = base;
    c->timeout_ms = s->timeout_ms > 0 ? s->timeout_ms : DEFAULT_TIMEOUT_MS;
    c->rng = (uint64_t)clock_mono_us() * 0x9E3779B97F4A7C15ull | 1;
    if (setup(c, s, err, errlen) < 0)
        return NULL;
    c->limiter = c->local;
    log_info("aws client: region %s, endpoint %s%s, signing name " SIGNING_NAME,
             c->region, c->origin, c->prefix);
    return c;
}

void aws_client_set_limiter(struct aws_client *c, struct aws_limiter *l)
{
    c->limiter = l ? l : c->local;
}

const struct aws_op_stats *aws_client_op_stats(const struct aws_client *c, size_t i)
{
    return &c->stats[i];
}

struct aws_client_last aws_client_last(const struct aws_client *c) { return c->last; }
const char *aws_client_region(const struct aws_client *c) { return c->region; }

const char *aws_client_credentials_source(const struct aws_client *c)
{
    return aws_creds_source(c->creds);
}

void aws_client_free(struct aws_client *c)
{
    if (!c)
        return;
    c->closing = true;
    if (c->local)
        c->local->free(c->local);   /* drops waiters: their calls are failed below */
    aws_http_free(c->http);         /* fails calls waiting for an answer, and
                                       a credential fetch under way */
    aws_creds_free(c->creds);       /* fails calls waiting for credentials */
    while (!LIST_EMPTY(&c->calls))
        fail(LIST_FIRST(&c->calls), AWS_ERR_TRANSPORT, "usher", "client closed");
    free(c->stats);
    free(c->region), free(c->origin), free(c->host), free(c->prefix);
    free(c);
}
