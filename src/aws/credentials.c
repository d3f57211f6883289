/* credentials.c — the AWS credential chain (see credentials.h).
 *
 * One fetch at a time: callers queue as waiters; cached credentials still
 * good for more than a minute are handed out at once (from the loop, via
 * a zero timer) while a refresh may run in the background; otherwise the
 * waiters wait for the fetch. A failed refresh keeps serving credentials
 * that have not expired yet and is tried again on a later call. */
#include "aws/credentials.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "aws/http.h"
#include "util/clock.h"
#include "util/log.h"

#define CONTAINER_HOST "http://169.254.170.2"
#define IMDS_DEFAULT "http://169.254.169.254"
#define IMDS_TOKEN_TTL_S "21600"        /* 6 h, the SDKs' default */
#define DEFAULT_TIMEOUT_MS 2000
#define SERVE_MARGIN_MS (60 * 1000)     /* closer to expiry: wait for a refresh */
#define RETRY_FAILED_MS (10 * 1000)     /* after a failed background refresh */
#define MAX_TOKEN 4096
#define MAX_SESSION_TOKEN 16384         /* bytes; STS tokens are a few KiB */

enum source { SRC_NONE, SRC_ENV, SRC_CONTAINER, SRC_IMDS };
static const char *const source_names[] = {"none", "environment", "container", "imds"};

enum step { STEP_CONTAINER, STEP_IMDS_TOKEN, STEP_IMDS_ROLE, STEP_IMDS_CREDS };

struct waiter {
    aws_creds_fn done;
    void *arg;
    struct waiter *next;
};

struct aws_creds {
    struct event_base *base;
    struct aws_http *http;
    enum source source;
    char *url;                  /* container: the full URL; imds: the endpoint */
    char *auth_token, *auth_token_file;
    long timeout_ms;
    struct aws_credentials cur;
    bool have;
    int64_t refresh_at;         /* unix ms; 0 = never */
    bool fetching;
    enum step step;
    char *imds_token;
    struct waiter *waiters, **tail;
    struct event *deliver;
};

void aws_creds_settings_from_env(struct aws_creds_settings *s)
{
    const char *off = getenv("AWS_EC2_METADATA_DISABLED");
    *s = (struct aws_creds_settings){
        .access_key_id = getenv("AWS_ACCESS_KEY_ID"),
        .secret_access_key = getenv("AWS_SECRET_ACCESS_KEY"),
        .session_token = getenv("AWS_SESSION_TOKEN"),
        .container_full_uri = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        .container_relative_uri = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
        .container_auth_token = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
        .container_auth_token_file = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
        .imds_endpoint = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT"),
        .imds_disabled = off && strcasecmp(off, "true") == 0,
    };
}

/* ------------------------------------------------------------------------
 * Credentials as values
 * --------------------------------------------------------------------- */

void aws_credentials_clear(struct aws_credentials *c)
{
    if (c->secret_access_key)
        memset(c->secret_access_key, 0, strlen(c->secret_access_key));
    free(c->access_key_id), free(c->secret_access_key), free(c->session_token);
    memset(c, 0, sizeof *c);
}

static char *dup_or_null(const char *s) { return s && *s ? strdup(s) : NULL; }

int aws_credentials_copy(struct aws_credentials *dst, const struct aws_credentials *src)
{
    *dst = (struct aws_credentials){
        .access_key_id = dup_or_null(src->access_key_id),
        .secret_access_key = dup_or_null(src->secret_access_key),
        .session_token = dup_or_null(src->session_token),
        .expires_ms = src->expires_ms,
    };
    if (!dst->access_key_id || !dst->secret_access_key ||
        (src->session_token && *src->session_token && !dst->session_token)) {
        aws_credentials_clear(dst);
        return -1;
    }
    return 0;
}

/* A header value from the network or a file: no control characters. */
static bool clean_value(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (; *s; s++)
        if (iscntrl((unsigned char)*s))
            return false;
    return true;
}

/* "2026-11-30T12:00:00Z", fractions of a second allowed; -1 if not that. */
static int64_t parse_expiration(const char *s)
{
    struct tm tm = {0};
    const char *rest = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!rest)
        return -1;
    if (*rest == '.')
        for (rest++; isdigit((unsigned char)*rest); rest++)
            ;
    if (strcmp(rest, "Z") != 0 && strcmp(rest, "+00:00") != 0)
        return -1;
    return (int64_t)timegm(&tm) * 1000;
}

static int parse_fail(char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "%s", why);
    return -1;
}

int aws_credentials_parse(const char *json, size_t len, struct aws_credentials *out,
                          char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    json_t *o = json_loadb(json, len, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return parse_fail(err, errlen, "the answer is not a JSON object");
    }
    const char *code = json_string_value(json_object_get(o, "Code"));
    struct aws_credentials c = {
        .access_key_id = (char *)json_string_value(json_object_get(o, "AccessKeyId")),
        .secret_access_key = (char *)json_string_value(json_object_get(o, "SecretAccessKey")),
        .session_token = (char *)json_string_value(json_object_get(o, "Token")),
    };
    json_t *exp = json_object_get(o, "Expiration");
    const char *why = NULL;
    if (json_object_get(o, "Code") && (!code || strcmp(code, "Success") != 0))
        why = "Code is not \"Success\"";
    else if (!c.access_key_id || !*c.access_key_id || !c.secret_access_key ||
             !*c.secret_access_key)
        why = "AccessKeyId or SecretAccessKey missing or not a string";
    else if (!clean_value(c.access_key_id, MAX_TOKEN))
        why = "AccessKeyId holds control characters or is too long";
    else if (!clean_value(c.secret_access_key, MAX_TOKEN))
        why = "SecretAccessKey holds control characters or is too long";
    else if (c.session_token && *c.session_token && !clean_value(c.session_token, MAX_SESSION_TOKEN))
        why = "Token holds control characters or is too long";
    else if (exp && (c.expires_ms = parse_expiration(json_string_value(exp))) < 0)
        why = "Expiration is not an ISO-8601 UTC time";
    else if (aws_credentials_copy(out, &c) < 0)
        why = "out of memory";
    json_decref(o);
    return why ? parse_fail(err, errlen, why) : 0;
}

int64_t aws_credentials_refresh_at(const struct aws_credentials *c, int64_t fetched_ms)
{
    if (c->expires_ms == 0)
        return 0;
    int64_t five_min = c->expires_ms - 5 * 60 * 1000;
    int64_t half = fetched_ms + (c->expires_ms - fetched_ms) / 2;
    return five_min > half ? five_min : half;
}

/* ------------------------------------------------------------------------
 * Handing out credentials
 * --------------------------------------------------------------------- */

static bool usable(const struct aws_creds *cc, int64_t now)
{
    return cc->have && (cc->cur.expires_ms == 0 || now < cc->cur.expires_ms - SERVE_MARGIN_MS);
}

/* Calls every waiter with the current credentials, or with error. */
static void answer_waiters(struct aws_creds *cc, const char *error)
{
    struct waiter *w = cc->waiters;
    cc->waiters = NULL, cc->tail = &cc->waiters;
    while (w) {
        struct waiter *next = w->next;
        if (error)
            w->done(w->arg, NULL, error);
        else
            w->done(w->arg, &cc->cur, NULL);
        free(w);
        w = next;
    }
}

static void fetch_done(struct aws_creds *cc, struct aws_credentials *got, const char *error)
{
    int64_t now = clock_now_ms();
    cc->fetching = false;
    free(cc->imds_token);
    cc->imds_token = NULL;
    if (got) {
        aws_credentials_clear(&cc->cur);
        cc->cur = *got;
        cc->have = true;
        cc->refresh_at = aws_credentials_refresh_at(&cc->cur, now);
        char when[32] = "never";
        if (cc->cur.expires_ms)
            clock_iso8601(cc->cur.expires_ms, when, sizeof when);
        log_info("aws credentials: from %s, expire %s", source_names[cc->source], when);
    } else {
        cc->refresh_at = now + RETRY_FAILED_MS;
        log_warn("aws credentials: %s", error);
    }
    /* Fresh credentials are handed out even inside the margin: they are
     * the newest there are. */
    if (cc->have && (cc->cur.expires_ms == 0 || now < cc->cur.expires_ms))
        answer_waiters(cc, NULL);
    else
        answer_waiters(cc, error ? error : "the credentials fetched have expired");
}

/* ------------------------------------------------------------------------
 * Fetching: container endpoint, IMDSv2
 * --------------------------------------------------------------------- */

static void on_http(void *arg, const struct aws_http_response *res);

static void send_get(struct aws_creds *cc, const char *method, const char *url,
                     const char *header)
{
    const char *headers[] = {header, NULL};
    struct aws_http_request req = {.method = method, .url = url, .headers = headers,
                                   .timeout_ms = cc->timeout_ms};
    if (aws_http_send(cc->http, &req, on_http, cc) < 0)
        fetch_done(cc, NULL, "out of memory");
}

/* The container Authorization token: the variable, or the file's text
 * (read at each fetch, as the agent may rotate it) without the end of line. */
static int container_token(const struct aws_creds *cc, char *out, size_t outlen)
{
    out[0] = '\0';
    if (cc->auth_token) {
        snprintf(out, outlen, "%s", cc->auth_token);
    } else if (cc->auth_token_file) {
        FILE *f = fopen(cc->auth_token_file, "r");
        if (!f)
            return -1;
        size_t n = fread(out, 1, outlen - 1, f);
        fclose(f);
        out[n] = '\0';
        out[strcspn(out, "\r\n")] = '\0';
    }
    return out[0] && !clean_value(out, outlen - 1) ? -1 : 0;
}

static void fetch_container(struct aws_creds *cc)
{
    char token[MAX_TOKEN], header[MAX_TOKEN + 32] = "";
    if (container_token(cc, token, sizeof token) < 0) {
        fetch_done(cc, NULL, "container: cannot read a clean authorization token "
                             "(AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE])");
        return;
    }
    if (token[0])
        snprintf(header, sizeof header, "Authorization: %s", token);
    cc->step = STEP_CONTAINER;
    send_get(cc, "GET", cc->url, header[0] ? header : NULL);
}

static void imds_send(struct aws_creds *cc, enum step step, const char *role)
{
    char url[1024], header[MAX_TOKEN + 64];
    cc->step = step;
    if (step == STEP_IMDS_TOKEN) {
        snprintf(url, sizeof url, "%s/latest/api/token", cc->url);
        send_get(cc, "PUT", url, "X-aws-ec2-metadata-token-ttl-seconds: " IMDS_TOKEN_TTL_S);
        return;
    }
    snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/%s", cc->url,
             role ? role : "");
    snprintf(header, sizeof header, "X-aws-ec2-metadata-token: %s", cc->imds_token);
    send_get(cc, "GET", url, header);
}

/* An IAM role name: [A-Za-z0-9+=,.@_-], at most 64 characters (IAM's rule). */
static bool role_name(const char *body, char *out, size_t outlen)
{
    size_t n = strcspn(body, "\r\n");
    if (n == 0 || n > 64 || n >= outlen)
        return false;
    memcpy(out, body, n);
    out[n] = '\0';
    return strspn(out, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                       "0123456789+=,.@_-") == n;
}

/* The answer to a 200: the next IMDS step or the credentials. */
static void next_step(struct aws_creds *cc, const struct aws_http_response *res)
{
    char role[65], err[160], why[200];
    struct aws_credentials got;
    if (cc->step == STEP_IMDS_TOKEN) {
        if (clean_value(res->body, MAX_TOKEN) && (cc->imds_token = strdup(res->body)))
            imds_send(cc, STEP_IMDS_ROLE, NULL);
        else
            fetch_done(cc, NULL, "imds: bad session token");
    } else if (cc->step == STEP_IMDS_ROLE) {
        if (role_name(res->body, role, sizeof role))
            imds_send(cc, STEP_IMDS_CREDS, role);
        else
            fetch_done(cc, NULL, "imds: no IAM role attached to this instance");
    } else if (aws_credentials_parse(res->body, res->body_len, &got, err, sizeof err) < 0) {
        snprintf(why, sizeof why, "%s: %s", source_names[cc->source], err);
        fetch_done(cc, NULL, why);
    } else {
        fetch_done(cc, &got, NULL);
    }
}

static void on_http(void *arg, const struct aws_http_response *res)
{
    struct aws_creds *cc = arg;
    char why[256];
    if (res->error || res->status != 200) {
        if (res->error)
            snprintf(why, sizeof why, "%s: %s", source_names[cc->source], res->error);
        else
            snprintf(why, sizeof why, "%s: HTTP %ld", source_names[cc->source], res->status);
        fetch_done(cc, NULL, why);
        return;
    }
    next_step(cc, res);
}

static void start_fetch(struct aws_creds *cc)
{
    cc->fetching = true;
    if (cc->source == SRC_CONTAINER)
        fetch_container(cc);
    else if (cc->source == SRC_IMDS)
        imds_send(cc, STEP_IMDS_TOKEN, NULL);
    else
        fetch_done(cc, NULL, "no credentials: set AWS_ACCESS_KEY_ID and "
                             "AWS_SECRET_ACCESS_KEY, or run where the container "
                             "or instance metadata provides them");
}

/* ------------------------------------------------------------------------
 * The chain
 * --------------------------------------------------------------------- */

static bool need_fetch(const struct aws_creds *cc, int64_t now)
{
    return !cc->fetching && cc->source != SRC_ENV &&
           (!cc->have || (cc->refresh_at && now >= cc->refresh_at) || !usable(cc, now));
}

/* From the loop: start a fetch if one is due, answer waiters if we can. */
static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct aws_creds *cc = arg;
    int64_t now = clock_now_ms();
    if (need_fetch(cc, now))
        start_fetch(cc);
    if (usable(cc, clock_now_ms()))
        answer_waiters(cc, NULL);
}

int aws_creds_get(struct aws_creds *cc, aws_creds_fn done, void *arg)
{
    static const struct timeval now = {0, 0};
    struct waiter *w = malloc(sizeof *w);
    if (!w)
        return -1;
    *w = (struct waiter){done, arg, NULL};
    *cc->tail = w;
    cc->tail = &w->next;
    evtimer_add(cc->deliver, &now);
    return 0;
}

const char *aws_creds_source(const struct aws_creds *cc) { return source_names[cc->source]; }

/* http:// only to loopback or the ECS / EKS agent addresses, as the SDKs
 * allow; https:// anywhere. */
static bool container_uri_ok(const char *uri)
{
    if (strncmp(uri, "https://", 8) == 0)
        return true;
    if (strncmp(uri, "http://", 7) != 0)
        return false;
    const char *host = uri + 7;
    static const char *const allowed[] = {"127.", "localhost", "[::1]", "169.254.170.2",
                                          "169.254.170.23", "[fd00:ec2::23]"};
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        size_t n = strlen(allowed[i]);
        if (strncmp(host, allowed[i], n) == 0 &&
            (allowed[i][n - 1] == '.' || strchr(":/", host[n]) || host[n] == '\0'))
            return true;
    }
    return false;
}

static bool set(const char *s) { return s && *s; }

/* Picks the first configured source; returns -1 on a bad container URI. */
static int choose_source(struct aws_creds *cc, const struct aws_creds_settings *s)
{
    if (set(s->access_key_id) && set(s->secret_access_key)) {
        struct aws_credentials c = {(char *)s->access_key_id, (char *)s->secret_access_key,
                                    (char *)s->session_token, 0};
        cc->source = SRC_ENV;
        cc->have = aws_credentials_copy(&cc->cur, &c) == 0;
        return cc->have ? 0 : -1;
    }
    if (set(s->container_full_uri) || set(s->container_relative_uri)) {
        cc->source = SRC_CONTAINER;
        if (set(s->container_full_uri) && !set(s->container_relative_uri)) {
            if (!container_uri_ok(s->container_full_uri)) {
                log_error("aws credentials: AWS_CONTAINER_CREDENTIALS_FULL_URI must be "
                          "https or a loopback / container agent address");
                return -1;
            }
            cc->url = strdup(s->container_full_uri);
        } else if (asprintf(&cc->url, CONTAINER_HOST "%s", s->container_relative_uri) < 0) {
            cc->url = NULL;
        }
        cc->auth_token = dup_or_null(s->container_auth_token);
        cc->auth_token_file = dup_or_null(s->container_auth_token_file);
        return cc->url ? 0 : -1;
    }
    if (s->imds_disabled)
        return 0;   /* SRC_NONE: every get fails, saying what to set */
    cc->source = SRC_IMDS;
    cc->url = strdup(set(s->imds_endpoint) ? s->imds_endpoint : IMDS_DEFAULT);
    if (cc->url && *cc->url && cc->url[strlen(cc->url) - 1] == '/')
        cc->url[strlen(cc->url) - 1] = '\0';
    return cc->url ? 0 : -1;
}

struct aws_creds *aws_creds_new(struct event_base *base, struct aws_http *http,
                                const struct aws_creds_settings *s)
{
    struct aws_creds *cc = calloc(1, sizeof *cc);
    if (!cc)
        return NULL;
    cc->base = base, cc->http = http;
    cc->tail = &cc->waiters;
    cc->timeout_ms = s->timeout_ms > 0 ? s->timeout_ms : DEFAULT_TIMEOUT_MS;
    cc->deliver = evtimer_new(base, on_kick, cc);
    if (!cc->deliver || choose_source(cc, s) < 0) {
        aws_creds_free(cc);
        return NULL;
    }
    log_info("aws credentials: source %s", source_names[cc->source]);
    return cc;
}

void aws_creds_free(struct aws_creds *cc)
{
    if (!cc)
        return;
    answer_waiters(cc, "closed");
    if (cc->deliver)
        event_free(cc->deliver);
    aws_credentials_clear(&cc->cur);
    free(cc->url), free(cc->auth_token), free(cc->auth_token_file), free(cc->imds_token);
    free(cc);
}
