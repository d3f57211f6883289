/* http.c — libcurl's multi interface on libevent (see http.h).
 *
 * The wiring is libcurl's documented event-driven pattern (the hiperfifo
 * example, curl_multi_socket_action(3)): libcurl tells, through the socket
 * callback, which sockets to watch for what, and through the timer
 * callback when to call it back; each libevent event calls
 * curl_multi_socket_action, after which finished transfers are collected
 * with curl_multi_info_read and their callbacks called. */
#include "aws/http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <curl/curl.h>
#include <event2/event.h>

struct req {
    struct aws_http *h;
    CURL *easy;                 /* NULL when setup failed */
    struct curl_slist *headers;
    aws_http_done_fn done;
    void *arg;
    char *body;
    size_t len;
    bool too_big;
    char *error_type, *request_id;
    const char *setup_error;    /* set when setup failed */
    struct event *defer;        /* reports setup_error from the loop */
    char errbuf[CURL_ERROR_SIZE];
    LIST_ENTRY(req) link;
};

struct aws_http {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    LIST_HEAD(, req) reqs;      /* every request whose done is still owed */
};

static void free_req(struct req *r)
{
    if (r->easy) {
        curl_multi_remove_handle(r->h->multi, r->easy);
        curl_easy_cleanup(r->easy);
    }
    if (r->defer)
        event_free(r->defer);
    curl_slist_free_all(r->headers);
    free(r->body), free(r->error_type), free(r->request_id);
    free(r);
}

/* Unlinks r, calls its done once with res, frees it. */
static void finish(struct req *r, struct aws_http_response *res)
{
    LIST_REMOVE(r, link);
    res->error_type = r->error_type;
    res->request_id = r->request_id;
    res->body = r->body ? r->body : "";
    res->body_len = r->len;
    aws_http_done_fn done = r->done;
    void *arg = r->arg;
    if (r->easy) {
        curl_multi_remove_handle(r->h->multi, r->easy);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
    }
    done(arg, res);
    free_req(r);
}

static void finish_transfer(struct req *r, CURLcode rc)
{
    struct aws_http_response res = {0};
    if (rc == CURLE_OK) {
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res.status);
    } else {
        res.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
        res.error = r->too_big ? "response body too large"
                    : r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc);
    }
    finish(r, &res);
}

static void collect_done(struct aws_http *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct req *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        finish_transfer(r, m->data.result);
    }
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
    struct aws_http *h = arg;
    int running;
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) |
                (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    curl_multi_socket_action(h->multi, fd, flags, &running);
    collect_done(h);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct aws_http *h = arg;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    collect_done(h);
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what libcurl asks, or stop. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *sockp)
{
    (void)easy;
    struct aws_http *h = userp;
    struct event *ev = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (ev)
            event_free(ev);
        curl_multi_assign(h->multi, s, NULL);
        return 0;
    }
    short kind = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) |
                 (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (ev) {
        event_del(ev);
        event_assign(ev, h->base, s, kind, on_event, h);
    } else {
        ev = event_new(h->base, s, kind, on_event, h);
        if (!ev)
            return -1;
        curl_multi_assign(h->multi, s, ev);
    }
    return event_add(ev, NULL);
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer, otherwise (re)arm it. */
static int on_timer_set(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct aws_http *h = userp;
    if (timeout_ms < 0)
        return evtimer_del(h->timer);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    return evtimer_add(h->timer, &tv);
}

struct aws_http *aws_http_new(struct event_base *base)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NULL;
    struct aws_http *h = calloc(1, sizeof *h);
    if (!h || !(h->multi = curl_multi_init()) ||
        !(h->timer = evtimer_new(base, on_timer, h))) {
        if (h && h->multi)
            curl_multi_cleanup(h->multi);
        free(h);
        curl_global_cleanup();
        return NULL;
    }
    h->base = base;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer_set);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    return h;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct req *r = arg;
    size_t len = size * n;
    if (r->len + len > AWS_HTTP_MAX_BODY) {
        r->too_big = true;
        return 0;
    }
    char *b = realloc(r->body, r->len + len + 1);
    if (!b)
        return 0;
    memcpy(b + r->len, p, len);
    r->body = b;
    r->len += len;
    b[r->len] = '\0';
    return len;
}

/* Keeps the value of header line p if its name is name, trimmed. */
static void keep_header(const char *p, size_t len, const char *name, char **out)
{
    size_t nlen = strlen(name);
    if (len <= nlen || p[nlen] != ':' || strncasecmp(p, name, nlen) != 0)
        return;
    const char *v = p + nlen + 1, *end = p + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    free(*out);
    *out = strndup(v, (size_t)(end - v));
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct req *r = arg;
    keep_header(p, size * n, "x-amzn-ErrorType", &r->error_type);
    keep_header(p, size * n, "x-amzn-RequestId", &r->request_id);
    return size * n;
}

static const char *set_headers(struct req *r, const char *const *headers)
{
    /* "Expect:" keeps libcurl from waiting for 100-continue on large bodies. */
    struct curl_slist *l = curl_slist_append(NULL, "Expect:");
    for (const char *const *hp = headers; l && hp && *hp; hp++) {
        struct curl_slist *more = curl_slist_append(l, *hp);
        if (!more)
            curl_slist_free_all(l);
        l = more;
    }
    r->headers = l;
    return l ? NULL : "out of memory";
}

/* Configures r->easy for req; returns NULL or what is wrong. */
static const char *setup(struct req *r, const struct aws_http_request *req)
{
    CURL *e = r->easy;
    if (!req->method || !req->url || req->timeout_ms <= 0)
        return "bad request: method, url and timeout are required";
    if (set_headers(r, req->headers))
        return "out of memory";
    if (curl_easy_setopt(e, CURLOPT_URL, req->url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK)
        return "bad URL";
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    if (strcmp(req->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        if (curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "") != CURLE_OK)
            return "out of memory";
        if (strcmp(req->method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
    }
    return NULL;
}

static void on_defer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct req *r = arg;
    struct aws_http_response res = {.error = r->setup_error};
    finish(r, &res);
}

int aws_http_send(struct aws_http *h, const struct aws_http_request *req,
                  aws_http_done_fn done, void *arg)
{
    struct req *r = calloc(1, sizeof *r);
    if (!r || !(r->defer = evtimer_new(h->base, on_defer, r))) {
        free(r);
        return -1;
    }
    r->h = h, r->done = done, r->arg = arg;
    LIST_INSERT_HEAD(&h->reqs, r, link);
    r->easy = curl_easy_init();
    r->setup_error = r->easy ? setup(r, req) : "out of memory";
    if (!r->setup_error && curl_multi_add_handle(h->multi, r->easy) != CURLM_OK)
        r->setup_error = "cannot start the request";
    if (r->setup_error) {
        static const struct timeval now = {0, 0};
        evtimer_add(r->defer, &now);
    }
    return 0;
}

void aws_http_free(struct aws_http *h)
{
    if (!h)
        return;
    while (!LIST_EMPTY(&h->reqs)) {
        struct aws_http_response res = {.error = "client closed"};
        finish(LIST_FIRST(&h->reqs), &res);
    }
    curl_multi_cleanup(h->multi);
    event_free(h->timer);
    free(h);
    curl_global_cleanup();
}
