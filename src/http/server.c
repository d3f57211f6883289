/* server.c — see server.h.
 *
 * Connections and framing are conn.c's; everything usher adds sits in
 * on_request(), in the order a request meets it: preflight, route,
 * authentication, rate limit, body. Each refusal is a JSON error of
 * SPEC §1, and so are conn.c's refusals of requests it cannot frame. */
#include "http/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <event2/http.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "app.h"
#include "config/config.h"
#include "http/conn.h"
#include "http/fields.h"
#include "http/proxy.h"
#include "http/ratelimit.h"
#include "http/request.h"
#include "metrics/metrics.h"
#include "util/clock.h"
#include "util/list.h"
#include "util/log.h"

#define MAX_ORIGINS 32
#define JSON_TYPE "application/json; charset=utf-8"

struct http_server {
    struct app *app;
    struct http_listener *listener;
    const struct route *routes;
    size_t nroutes;
    struct ratelimit *ratelimit;        /* per client address */
    struct ratelimit *user_ratelimit;   /* token requests per user id */
    struct trust_proxy trust;
    unsigned char key_digest[SHA256_DIGEST_LENGTH];
    char *origins[MAX_ORIGINS];
    size_t norigins;
};

/* ---- answering ------------------------------------------------------- */

/* Frees what the request holds (the request itself is its connection's). */
static void request_clear(struct request *rq)
{
    evhttp_clear_headers(&rq->query);
    json_decref(rq->body);
    free(rq->param_buf);
    rq->body = NULL;
    rq->param_buf = NULL;
}

/* Logs the answer and counts it (metrics.h); conn.c's refusals of
 * requests it cannot frame never reach usher (no app) and are only logged. */
static void answered(struct request *rq, int status, const char *what)
{
    int64_t took_us = clock_mono_us() - rq->start_us;
    log_info("%s %s %d%s %lldus", rq->method, rq->path, status, what, (long long)took_us);
    if (rq->app)
        metrics_http(rq->app->metrics, rq->route ? rq->route : "none", status, (double)took_us / 1e6);
}

void respond_raw(struct request *rq, int status, const char *type, const char *body, size_t len)
{
    answered(rq, status, "");
    request_clear(rq);
    http_conn_reply(rq->conn, status, body ? type : NULL, body, len);
}

/* Sends JSON body (len bytes; NULL for none) as the answer. */
static void send_body(struct request *rq, int status, const char *body, size_t len)
{
    respond_raw(rq, status, JSON_TYPE, body, len);
}

struct http_conn *http_stream_begin(struct request *rq, int status, const char *type,
                                    void (*on_close)(void *), void *arg)
{
    answered(rq, status, " (stream)");
    request_clear(rq);
    return http_conn_stream_begin(rq->conn, status, type, on_close, arg);
}

evutil_socket_t http_takeover(struct request *rq, char *rest, size_t *rest_len)
{
    answered(rq, 101, " (taken over)");
    request_clear(rq);
    return http_conn_takeover(rq->conn, rest, rest_len);
}

static void send_json(struct request *rq, int status, json_t *doc)
{
    char when[32];
    clock_iso8601(rq->now_ms, when, sizeof when);
    json_object_set_new(doc, "timestamp", json_string(when));
    char *text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(doc);
    if (!text) {
        static const char oom[] = "{\"success\":false,\"error\":{\"code\":\"INTERNAL_ERROR\","
                                  "\"message\":\"out of memory\"}}";
        send_body(rq, 500, oom, sizeof oom - 1);
        return;
    }
    send_body(rq, status, text, strlen(text));
    free(text);
}

size_t request_time_end(const struct request *rq, char out[REQUEST_TIME_END_SIZE])
{
    static const char member[] = ",\"timestamp\":\"";
    memcpy(out, member, sizeof member - 1);
    size_t at = sizeof member - 1;
    clock_iso8601(rq->now_ms, out + at, REQUEST_TIME_END_SIZE - at - 3);
    at += strlen(out + at);
    memcpy(out + at, "\"}", 3);
    return at + 2;
}

void respond_ok_text(struct request *rq, int status, const struct http_piece *data, size_t n)
{
    static const char head[] = "{\"success\":true,\"data\":";
    char tail[REQUEST_TIME_END_SIZE];
    size_t tail_len = request_time_end(rq, tail);
    struct http_piece pieces[HTTP_MAX_PIECES];
    if (n > HTTP_MAX_PIECES - 2) {
        respond_error(rq, 500, "INTERNAL_ERROR", "the answer could not be made", NULL);
        return;
    }
    pieces[0] = (struct http_piece){head, sizeof head - 1};
    memcpy(pieces + 1, data, n * sizeof *data);
    pieces[n + 1] = (struct http_piece){tail, tail_len};
    answered(rq, status, "");
    request_clear(rq);
    http_conn_reply_pieces(rq->conn, status, JSON_TYPE, pieces, n + 2);
}

void respond_ok(struct request *rq, int status, json_t *data)
{
    send_json(rq, status, json_pack("{s:b, s:o}", "success", 1, "data",
                                    data ? data : json_object()));
}

void respond_error(struct request *rq, int status, const char *code,
                   const char *message, json_t *details)
{
    json_t *error = json_pack("{s:s, s:s}", "code", code, "message", message);
    if (details)
        json_object_set_new(error, "details", details);
    send_json(rq, status, json_pack("{s:b, s:o}", "success", 0, "error", error));
}

void respond_invalid(struct request *rq, const char *message, json_t *fields)
{
    respond_error(rq, 400, "VALIDATION_ERROR", message,
                  json_pack("{s:o}", "fields", fields ? fields : json_array()));
}

void respond_unavailable(struct request *rq, const char *why)
{
    log_warn("%s %s: %s", rq->method, rq->path, why);
    request_add_header(rq, "Retry-After", "1");
    respond_error(rq, 503, "SERVICE_UNAVAILABLE", "the data store is unavailable, try again shortly", NULL);
}

const char *request_query(struct request *rq, const char *name)
{
    return evhttp_find_header(&rq->query, name);
}

const char *request_header(struct request *rq, const char *name)
{
    return http_conn_header(rq->conn, name);
}

void request_add_header(struct request *rq, const char *name, const char *value)
{
    http_conn_add_header(rq->conn, name, value);
}

/* ---- what every request passes ------------------------------------------ */

static void add_cors(struct http_server *s, struct request *rq)
{
    const char *origin = request_header(rq, "Origin");
    if (!origin)
        return;
    for (size_t i = 0; i < s->norigins; i++) {
        if (strcmp(s->origins[i], "*") == 0 || strcmp(s->origins[i], origin) == 0) {
            request_add_header(rq, "Access-Control-Allow-Origin", origin);
            request_add_header(rq, "Vary", "Origin");
            request_add_header(rq, "Access-Control-Expose-Headers",
                              "Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset");
            return;
        }
    }
}

static void answer_preflight(struct request *rq)
{
    request_add_header(rq, "Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS");
    request_add_header(rq, "Access-Control-Allow-Headers", "Content-Type, Authorization, X-API-Key");
    request_add_header(rq, "Access-Control-Max-Age", "600");
    send_body(rq, 204, NULL, 0);
}

static bool is_loopback(const char *ip)
{
    return strncmp(ip, "127.", 4) == 0 || strcmp(ip, "::1") == 0 ||
           strncmp(ip, "::ffff:127.", 11) == 0;
}

/* Streams a browser opens with EventSource or WebSocket, which cannot
 * send an X-API-Key header: for them alone the key may come in the cookie
 * usher_api_key (never in the query string, which access logs keep). Only
 * GET routes that change nothing take it, so a cookie sent along by a
 * cross-site request changes nothing either. */
#define KEY_COOKIE "usher_api_key"
static bool takes_key_cookie(const char *path)
{
    return strcmp(path, "/api/stats/stream") == 0 || strcmp(path, "/ws") == 0;
}

/* The value of cookie `name` in a Cookie header (RFC 6265 "a=b; c=d"),
 * copied to out; false when absent or longer than outlen - 1. */
static bool cookie_value(const char *header, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    for (const char *p = header; p && *p;) {
        p += strspn(p, " \t");
        size_t len = strcspn(p, ";");
        if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            size_t vlen = len - nlen - 1;
            if (vlen >= outlen)
                return false;
            memcpy(out, p + nlen + 1, vlen);
            out[vlen] = '\0';
            return true;
        }
        p += len + (p[len] == ';');
    }
    return false;
}

/* A browser sends a cookie with any page's request, WebSocket handshakes
 * included (which CORS does not guard): the cookie counts only from usher's
 * own origin, one listed exactly in CORS_ORIGINS, or a client that sends no
 * Origin (not a browser page). */
static bool origin_trusted(const struct http_server *s, struct request *rq)
{
    const char *origin = request_header(rq, "Origin"), *host = request_header(rq, "Host");
    const char *scheme_end = origin ? strstr(origin, "://") : NULL;
    if (!origin || (scheme_end && host && strcmp(scheme_end + 3, host) == 0))
        return true;
    for (size_t i = 0; i < s->norigins; i++)
        if (strcmp(s->origins[i], origin) == 0)
            return true;
    return false;
}

/* The API key the request presents: X-API-Key; on the stream routes the
 * usher_api_key cookie (from a trusted origin, copied to buf); on /metrics
 * "Authorization: Bearer <key>", as Prometheus sends it. NULL when none. */
static const char *presented_key(const struct http_server *s, struct request *rq, char *buf,
                                 size_t len)
{
    const char *given = request_header(rq, "X-API-Key");
    if (given)
        return given;
    if (takes_key_cookie(rq->path) && origin_trusted(s, rq) &&
        cookie_value(request_header(rq, "Cookie"), KEY_COOKIE, buf, len))
        return buf;
    const char *authorization = request_header(rq, "Authorization");
    if (strcmp(rq->path, "/metrics") == 0 && authorization &&
        strncasecmp(authorization, "Bearer ", 7) == 0)
        return authorization + 7;
    return NULL;
}

/* True when the request may go on; otherwise it has been answered. */
static bool authenticate(struct http_server *s, struct request *rq, const char *peer)
{
    const struct config *cfg = s->app->cfg;
    if (cfg->skip_auth)
        return true;
    if (!cfg->api_secret_key[0]) {
        if (is_loopback(peer))
            return true;
        respond_error(rq, 401, "UNAUTHORIZED",
                      "no API key is configured, so only loopback clients are served", NULL);
        return false;
    }
    char cookie[512];
    const char *given = presented_key(s, rq, cookie, sizeof cookie);
    /* Comparing digests keeps the time independent of the key's length too. */
    unsigned char digest[SHA256_DIGEST_LENGTH];
    if (given)
        SHA256((const unsigned char *)given, strlen(given), digest);
    if (given && CRYPTO_memcmp(digest, s->key_digest, sizeof digest) == 0)
        return true;
    respond_error(rq, 401, "UNAUTHORIZED",
                  given ? "the X-API-Key is not valid" : "the X-API-Key header is missing", NULL);
    return false;
}

/* What the limits count is what costs: a seated viewer's heartbeat and
 * leave are cheap and many (an audience behind one NAT or one load
 * balancer sends them by the thousand), so no limit refuses them. */
static bool counted(const char *path)
{
    return strcmp(path, "/api/viewer/heartbeat") != 0 && strcmp(path, "/api/viewer/leave") != 0;
}

/* Per client address. True when the request may go on; otherwise it has
 * been answered 429. */
static bool within_rate(struct http_server *s, struct request *rq)
{
    if (!counted(rq->path))
        return true;
    struct ratelimit_verdict v;
    ratelimit_hit(s->ratelimit, rq->client_ip, rq->now_ms, &v);
    if (v.limit <= 0)
        return true;
    char num[24];
    snprintf(num, sizeof num, "%ld", v.limit);
    request_add_header(rq, "RateLimit-Limit", num);
    snprintf(num, sizeof num, "%ld", v.remaining);
    request_add_header(rq, "RateLimit-Remaining", num);
    snprintf(num, sizeof num, "%ld", v.reset_s);
    request_add_header(rq, "RateLimit-Reset", num);
    if (v.allowed)
        return true;
    request_add_header(rq, "Retry-After", num);
    respond_error(rq, 429, "TOO_MANY_REQUESTS", "too many requests, slow down", NULL);
    return false;
}

/* Token requests are also counted per user id, wherever they come from.
 * Ids that are not valid are not counted (their request is refused as 400);
 * so the table's keys stay short. */
static bool within_user_rate(struct http_server *s, struct request *rq)
{
    json_t *user = json_object_get(rq->body, "userId");
    if (strncmp(rq->path, "/api/token/", 11) != 0 || !json_is_string(user) ||
        !valid_user_id(json_string_value(user), json_string_length(user)))
        return true;
    struct ratelimit_verdict v;
    ratelimit_hit(s->user_ratelimit, json_string_value(user), rq->now_ms, &v);
    if (v.allowed)
        return true;
    char num[24];
    snprintf(num, sizeof num, "%ld", v.reset_s);
    request_add_header(rq, "Retry-After", num);
    respond_error(rq, 429, "TOO_MANY_REQUESTS", "too many token requests for this userId, slow down",
                  NULL);
    return false;
}

/* Parses a POST/PUT (or DELETE) body into rq->body. True when the request may go on. */
static bool read_body(struct http_server *s, struct request *rq)
{
    size_t len = 0;
    const char *in = http_conn_body(rq->conn, &len);
    if ((long)len > s->app->cfg->max_body_bytes) {
        char msg[96];
        snprintf(msg, sizeof msg, "the body is over the limit of %ld bytes",
                 s->app->cfg->max_body_bytes);
        respond_error(rq, 413, "PAYLOAD_TOO_LARGE", msg, NULL);
        return false;
    }
    json_error_t err;
    json_t *doc = len ? json_loadb(in, len,
                                   JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err)
                      : NULL;
    if (!json_is_object(doc)) {
        json_decref(doc);
        respond_invalid(rq, len == 0 ? "the body must be a JSON object"
                            : doc   ? "the body must be a JSON object, not another JSON value"
                                    : "the body is not valid JSON", NULL);
        return false;
    }
    rq->body = doc;
    return true;
}

/* Decodes the route's :param; false (answered) when it holds a NUL. */
static bool decode_param(struct request *rq, const struct route *route,
                         const char *raw, size_t len)
{
    if (!raw)
        return true;
    char *copy = strndup(raw, len);
    size_t size = 0;
    rq->param_buf = copy ? evhttp_uridecode(copy, 0, &size) : NULL;
    free(copy);
    if (rq->param_buf && strlen(rq->param_buf) == size) {
        rq->param = rq->param_buf;
        return true;
    }
    respond_invalid(rq, "the path parameter is not a valid percent-encoded value",
                    json_pack("[s]", strstr(route->pattern, "/:") + 2));
    return false;
}

/* peer: the socket's address (conn.c put it in client_ip); client_ip
 * becomes the address TRUST_PROXY picks from X-Forwarded-For. */
static void client_address(struct http_server *s, struct request *rq, char *peer, size_t peerlen)
{
    snprintf(peer, peerlen, "%s", rq->client_ip);
    trust_proxy_client(&s->trust, peer, request_header(rq, "X-Forwarded-For"), rq->client_ip,
                       sizeof rq->client_ip);
}

/* Under the API key: /api/ (but health), the WebSocket, and /metrics unless METRICS_PUBLIC. */
static bool needs_guard(const struct http_server *s, const char *path)
{
    return (strncmp(path, "/api/", 5) == 0 && strcmp(path, "/api/health") != 0) ||
           strcmp(path, "/ws") == 0 ||
           (strcmp(path, "/metrics") == 0 && !s->app->cfg->metrics_public);
}

/* Route, authentication and rate limit; true when the route may run. */
static bool admit(struct http_server *s, struct request *rq, const char *peer,
                  const struct route **route, const char **param, size_t *param_len)
{
    const char *query = http_conn_query(rq->conn);
    if (query && evhttp_parse_query_str(query, &rq->query) != 0) {
        respond_invalid(rq, "the query string is malformed", json_pack("[s]", "query"));
        return false;
    }
    switch (route_find(s->routes, s->nroutes, rq->method, rq->path, route, param, param_len)) {
    case ROUTE_NOT_FOUND:
        respond_error(rq, 404, "NOT_FOUND", "no such route", NULL);
        return false;
    case ROUTE_WRONG_METHOD:
        respond_error(rq, 405, "METHOD_NOT_ALLOWED", "this path does not take that method", NULL);
        return false;
    case ROUTE_FOUND:
        rq->route = (*route)->pattern;
        break;
    }
    return !needs_guard(s, rq->path) || (authenticate(s, rq, peer) && within_rate(s, rq));
}

static void on_request(void *arg, struct request *rq)
{
    struct http_server *s = arg;
    rq->server = s;
    rq->app = s->app;
    TAILQ_INIT(&rq->query);
    char peer[64];
    client_address(s, rq, peer, sizeof peer);
    add_cors(s, rq);
    if (strcmp(rq->method, "OPTIONS") == 0) {
        answer_preflight(rq);
        return;
    }
    const struct route *route = NULL;
    const char *param = NULL;
    size_t param_len = 0;
    if (!admit(s, rq, peer, &route, &param, &param_len))
        return;
    /* A DELETE may carry a body (a kick's reason), and then it is read too. */
    size_t body_len = 0;
    http_conn_body(rq->conn, &body_len);
    bool has_body = strcmp(rq->method, "POST") == 0 || strcmp(rq->method, "PUT") == 0 ||
                    (strcmp(rq->method, "DELETE") == 0 && body_len > 0);
    if (has_body && (!read_body(s, rq) || !within_user_rate(s, rq)))
        return;
    if (!decode_param(rq, route, param, param_len))
        return;
    route->handler(rq);
}

/* ---- life ------------------------------------------------------------ */

static const char *count_origin(const char *item, size_t len, void *arg)
{
    (void)item;
    size_t *n = arg;
    return len > 0 && ++*n > MAX_ORIGINS ? "has more than 32 origins" : NULL;
}

const char *http_origins_check(const char *list)
{
    size_t n = 0;
    return list_each(list, count_origin, &n);
}

/* One CORS_ORIGINS item; empty ones are nothing. config.c refuses more
 * than MAX_ORIGINS (http_origins_check); the bound here guards the array. */
static const char *add_origin(const char *item, size_t len, void *arg)
{
    struct http_server *s = arg;
    if (len > 0 && s->norigins < MAX_ORIGINS)
        s->origins[s->norigins++] = strndup(item, len);
    return NULL;
}

struct http_server *http_server_new(struct app *app, const struct route *routes,
                                    size_t nroutes, char *err, size_t errlen)
{
    const struct config *cfg = app->cfg;
    struct http_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->app = app;
    s->routes = routes;
    s->nroutes = nroutes;
    s->ratelimit = ratelimit_new(cfg->rate_limit_window_ms, cfg->rate_limit_max_requests);
    s->user_ratelimit = ratelimit_new(cfg->rate_limit_window_ms, cfg->rate_limit_max_requests);
    const char *bad = trust_proxy_parse(cfg->trust_proxy, &s->trust);
    if (bad) {
        snprintf(err, errlen, "TRUST_PROXY %s", bad);
        http_server_free(s);
        return NULL;
    }
    SHA256((const unsigned char *)cfg->api_secret_key, strlen(cfg->api_secret_key), s->key_digest);
    list_each(cfg->cors_origins, add_origin, s);
    if (!s->ratelimit || !s->user_ratelimit) {
        snprintf(err, errlen, "out of memory");
        http_server_free(s);
        return NULL;
    }
    struct http_limits limits = {.max_body_bytes = cfg->max_body_bytes,
                                 .read_timeout_ms = cfg->http_read_timeout_ms,
                                 .idle_timeout_ms = cfg->http_idle_timeout_ms};
    s->listener = http_listener_new(app->base, cfg->api_host, cfg->api_port, &limits,
                                    on_request, s, err, errlen);
    if (!s->listener) {
        http_server_free(s);
        return NULL;
    }
    return s;
}

void http_server_stop_accepting(struct http_server *s)
{
    http_listener_stop_accepting(s->listener);
}

int http_server_inflight(const struct http_server *s)
{
    return http_listener_inflight(s->listener);
}

void http_server_free(struct http_server *s)
{
    if (!s)
        return;
    http_listener_free(s->listener);
    ratelimit_free(s->ratelimit);
    ratelimit_free(s->user_ratelimit);
    for (size_t i = 0; i < s->norigins; i++)
        free(s->origins[i]);
    free(s);
}
