/* server.c — see server.h.
 *
 * evhttp parses requests and owns connections; everything usher adds sits
 * in on_request(), in the order a request meets it: preflight, route,
 * authentication, rate limit, body. Each refusal is a JSON error of SPEC §1.
 *
 * The one thing evhttp answers itself is a body beyond HARD_BODY_CAP, which
 * it reads no further and refuses with its own 413 page; anything up to that
 * is read and refused as JSON when it exceeds MAX_BODY_BYTES. */
#include "http/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "app.h"
#include "config/config.h"
#include "http/ratelimit.h"
#include "http/request.h"
#include "util/clock.h"
#include "util/log.h"

#define HARD_BODY_CAP (4 * 1024 * 1024)
#define MAX_HEADERS_BYTES (64 * 1024)
#define IDLE_TIMEOUT_S 30
#define MAX_ORIGINS 32

struct http_server {
    struct app *app;
    struct evhttp *http;
    struct evhttp_bound_socket *listener;
    const struct route *routes;
    size_t nroutes;
    struct ratelimit *ratelimit;
    unsigned char key_digest[SHA256_DIGEST_LENGTH];
    char *origins[MAX_ORIGINS];
    size_t norigins;
    int inflight;
};

/* ---- answering ------------------------------------------------------- */

static void on_client_gone(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    struct request *rq = arg;
    rq->req = NULL;
}

static void request_free(struct request *rq)
{
    rq->server->inflight--;
    evhttp_clear_headers(&rq->query);
    json_decref(rq->body);
    free(rq->param_buf);
    free(rq->path);
    free(rq);
}

/* Sends body (may be NULL) as the JSON answer, logs, and frees rq. */
static void send_body(struct request *rq, int status, struct evbuffer *body)
{
    if (rq->req) {
        struct evhttp_request *req = rq->req;
        evhttp_connection_set_closecb(evhttp_request_get_connection(req), NULL, NULL);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "application/json; charset=utf-8");
        evhttp_send_reply(req, status, NULL, body);
    }
    log_info("%s %s %d %lldus%s", rq->method, rq->path, status,
             (long long)(clock_mono_us() - rq->start_us), rq->req ? "" : " (client gone)");
    request_free(rq);
}

static void send_json(struct request *rq, int status, json_t *doc)
{
    char when[32];
    clock_iso8601(rq->now_ms, when, sizeof when);
    json_object_set_new(doc, "timestamp", json_string(when));
    char *text = rq->req ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    struct evbuffer *body = text ? evbuffer_new() : NULL;
    if (body)
        evbuffer_add(body, text, strlen(text));
    send_body(rq, status, body);
    if (body)
        evbuffer_free(body);
    free(text);
    json_decref(doc);
}

void respond_ok_text(struct request *rq, int status, const char *data_json)
{
    char when[32];
    clock_iso8601(rq->now_ms, when, sizeof when);
    struct evbuffer *body = rq->req ? evbuffer_new() : NULL;
    static const char head[] = "{\"success\":true,\"data\":", tail[] = ",\"timestamp\":\"";
    if (body) {
        /* Plain copies: printf would scan a body of many kilobytes again. */
        evbuffer_add(body, head, sizeof head - 1);
        evbuffer_add(body, data_json, strlen(data_json));
        evbuffer_add(body, tail, sizeof tail - 1);
        evbuffer_add(body, when, strlen(when));
        evbuffer_add(body, "\"}", 2);
    }
    send_body(rq, status, body);
    if (body)
        evbuffer_free(body);
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
    if (rq->req)
        evhttp_add_header(evhttp_request_get_output_headers(rq->req), "Retry-After", "1");
    respond_error(rq, 503, "SERVICE_UNAVAILABLE", "the data store is unavailable, try again shortly", NULL);
}

const char *request_query(struct request *rq, const char *name)
{
    return evhttp_find_header(&rq->query, name);
}

void request_add_header(struct request *rq, const char *name, const char *value)
{
    if (rq->req)
        evhttp_add_header(evhttp_request_get_output_headers(rq->req), name, value);
}

/* ---- what every request passes ------------------------------------------ */

static const char *method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "OTHER";
    }
}

static void add_cors(struct http_server *s, struct evhttp_request *req)
{
    const char *origin = evhttp_find_header(evhttp_request_get_input_headers(req), "Origin");
    if (!origin)
        return;
    for (size_t i = 0; i < s->norigins; i++) {
        if (strcmp(s->origins[i], "*") == 0 || strcmp(s->origins[i], origin) == 0) {
            struct evkeyvalq *out = evhttp_request_get_output_headers(req);
            evhttp_add_header(out, "Access-Control-Allow-Origin", origin);
            evhttp_add_header(out, "Vary", "Origin");
            evhttp_add_header(out, "Access-Control-Expose-Headers",
                              "Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset");
            return;
        }
    }
}

static void answer_preflight(struct request *rq)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(rq->req);
    evhttp_add_header(out, "Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS");
    evhttp_add_header(out, "Access-Control-Allow-Headers", "Content-Type, Authorization, X-API-Key");
    evhttp_add_header(out, "Access-Control-Max-Age", "600");
    evhttp_connection_set_closecb(evhttp_request_get_connection(rq->req), NULL, NULL);
    evhttp_send_reply(rq->req, 204, "No Content", NULL);
    log_info("%s %s 204 %lldus", rq->method, rq->path,
             (long long)(clock_mono_us() - rq->start_us));
    request_free(rq);
}

static bool is_loopback(const char *ip)
{
    return strncmp(ip, "127.", 4) == 0 || strcmp(ip, "::1") == 0 ||
           strncmp(ip, "::ffff:127.", 11) == 0;
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
    const char *given = evhttp_find_header(evhttp_request_get_input_headers(rq->req), "X-API-Key");
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

static bool within_rate(struct http_server *s, struct request *rq)
{
    struct ratelimit_verdict v;
    ratelimit_hit(s->ratelimit, rq->client_ip, rq->now_ms, &v);
    if (v.limit <= 0)
        return true;
    struct evkeyvalq *out = evhttp_request_get_output_headers(rq->req);
    char num[24];
    snprintf(num, sizeof num, "%ld", v.limit);
    evhttp_add_header(out, "RateLimit-Limit", num);
    snprintf(num, sizeof num, "%ld", v.remaining);
    evhttp_add_header(out, "RateLimit-Remaining", num);
    snprintf(num, sizeof num, "%ld", v.reset_s);
    evhttp_add_header(out, "RateLimit-Reset", num);
    if (v.allowed)
        return true;
    evhttp_add_header(out, "Retry-After", num);
    respond_error(rq, 429, "TOO_MANY_REQUESTS", "too many requests, slow down", NULL);
    return false;
}

/* Parses a POST/PUT body into rq->body. True when the request may go on. */
static bool read_body(struct http_server *s, struct request *rq)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(rq->req);
    size_t len = evbuffer_get_length(in);
    if ((long)len > s->app->cfg->max_body_bytes) {
        char msg[96];
        snprintf(msg, sizeof msg, "the body is over the limit of %ld bytes",
                 s->app->cfg->max_body_bytes);
        respond_error(rq, 413, "PAYLOAD_TOO_LARGE", msg, NULL);
        return false;
    }
    json_error_t err;
    json_t *doc = len ? json_loadb((const char *)evbuffer_pullup(in, -1), len,
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

static void client_address(struct http_server *s, struct request *rq, char *peer, size_t peerlen)
{
    char *addr = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evhttp_request_get_connection(rq->req), &addr, &port);
    snprintf(peer, peerlen, "%s", addr ? addr : "");
    snprintf(rq->client_ip, sizeof rq->client_ip, "%s", peer);
    const char *xff = s->app->cfg->trust_proxy
        ? evhttp_find_header(evhttp_request_get_input_headers(rq->req), "X-Forwarded-For")
        : NULL;
    if (xff) {
        size_t n = strcspn(xff, ", ");
        if (n > 0 && n < sizeof rq->client_ip)
            snprintf(rq->client_ip, sizeof rq->client_ip, "%.*s", (int)n, xff);
    }
}

static bool needs_guard(const char *path)
{
    return strncmp(path, "/api/", 5) == 0 && strcmp(path, "/api/health") != 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct http_server *s = arg;
    struct request *rq = calloc(1, sizeof *rq);
    if (!rq) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    s->inflight++;
    rq->req = req;
    rq->server = s;
    rq->app = s->app;
    rq->start_us = clock_mono_us();
    rq->now_ms = clock_now_ms();
    rq->method = method_name(evhttp_request_get_command(req));
    TAILQ_INIT(&rq->query);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    rq->path = strdup(path && path[0] ? path : "/");
    if (!rq->path) {
        evhttp_send_error(req, 500, NULL);
        request_free(rq);
        return;
    }
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_client_gone, rq);
    char peer[64];
    client_address(s, rq, peer, sizeof peer);
    add_cors(s, req);

    if (evhttp_request_get_command(req) == EVHTTP_REQ_OPTIONS) {
        answer_preflight(rq);
        return;
    }
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    if (query && evhttp_parse_query_str(query, &rq->query) != 0) {
        respond_invalid(rq, "the query string is malformed", json_pack("[s]", "query"));
        return;
    }
    const struct route *route = NULL;
    const char *param = NULL;
    size_t param_len = 0;
    switch (route_find(s->routes, s->nroutes, rq->method, rq->path, &route, &param, &param_len)) {
    case ROUTE_NOT_FOUND:
        respond_error(rq, 404, "NOT_FOUND", "no such route", NULL);
        return;
    case ROUTE_WRONG_METHOD:
        respond_error(rq, 405, "METHOD_NOT_ALLOWED", "this path does not take that method", NULL);
        return;
    case ROUTE_FOUND:
        break;
    }
    if (needs_guard(rq->path) && (!authenticate(s, rq, peer) || !within_rate(s, rq)))
        return;
    bool has_body = strcmp(rq->method, "POST") == 0 || strcmp(rq->method, "PUT") == 0;
    if (has_body && !read_body(s, rq))
        return;
    if (!decode_param(rq, route, param, param_len))
        return;
    route->handler(rq);
}

/* ---- life ------------------------------------------------------------ */

static void parse_origins(struct http_server *s, const char *list)
{
    const char *p = list;
    while (*p && s->norigins < MAX_ORIGINS) {
        size_t n = strcspn(p, ",");
        const char *start = p, *end = p + n;
        while (start < end && (*start == ' ' || *start == '\t'))
            start++;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (end > start)
            s->origins[s->norigins++] = strndup(start, (size_t)(end - start));
        p += n + (p[n] == ',');
    }
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
    s->http = evhttp_new(app->base);
    s->ratelimit = ratelimit_new(cfg->rate_limit_window_ms, cfg->rate_limit_max_requests);
    SHA256((const unsigned char *)cfg->api_secret_key, strlen(cfg->api_secret_key), s->key_digest);
    parse_origins(s, cfg->cors_origins);
    if (!s->http || !s->ratelimit) {
        snprintf(err, errlen, "out of memory");
        http_server_free(s);
        return NULL;
    }
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                            EVHTTP_REQ_HEAD | EVHTTP_REQ_PATCH);
    evhttp_set_max_body_size(s->http, HARD_BODY_CAP);
    evhttp_set_max_headers_size(s->http, MAX_HEADERS_BYTES);
    evhttp_set_timeout(s->http, IDLE_TIMEOUT_S);
    evhttp_set_gencb(s->http, on_request, s);
    s->listener = evhttp_bind_socket_with_handle(s->http, cfg->api_host, (ev_uint16_t)cfg->api_port);
    if (!s->listener) {
        snprintf(err, errlen, "cannot listen on %s:%d (in use, or not allowed)",
                 cfg->api_host, cfg->api_port);
        http_server_free(s);
        return NULL;
    }
    /* Answers larger than one segment (the stats of many stages) would
     * otherwise wait on Nagle and the client's delayed ACK, about 40 ms.
     * Accepted sockets inherit the option from the listener on Linux. */
    int one = 1;
    setsockopt(evhttp_bound_socket_get_fd(s->listener), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return s;
}

void http_server_stop_accepting(struct http_server *s)
{
    if (s->listener) {
        evhttp_del_accept_socket(s->http, s->listener);
        s->listener = NULL;
    }
}

int http_server_inflight(const struct http_server *s) { return s->inflight; }

void http_server_free(struct http_server *s)
{
    if (!s)
        return;
    if (s->http)
        evhttp_free(s->http);
    ratelimit_free(s->ratelimit);
    for (size_t i = 0; i < s->norigins; i++)
        free(s->origins[i]);
    free(s);
}
