/* test_aws_op.c — src/ivs/aws_op.c and the List operations of the AWS
 * provider under memory pressure.
 *
 * 1. Every operation calls its caller back exactly once, with an error,
 *    when there is no memory for the operation itself (op_new fails); no
 *    IVS client is needed, as no call is made.
 * 2. A listing (ListStages, ListParticipants all pages,
 *    ListParticipantReplicas, and the publisher search's ListParticipants),
 *    read from a fake IVS on loopback (an evhttp server on the test's
 *    loop) in three pages (9 items), is given one failed allocation at
 *    each point in turn, from the first to past the last: each time the
 *    caller hears once, either an error and no list, or the whole list
 *    (the publisher, on the last page); never a list that is short
 *    (callers stop replications and forget stages a list does not name).
 *    ASan checks nothing leaks.
 *
 * calloc and strdup are wrapped at link time (-Wl,--wrap=calloc,
 * --wrap=strdup, Makefile) and jansson's allocator set
 * (json_set_alloc_funcs), so that they fail while the test says so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "aws/client.h"
#include "aws/limiter.h"

#include "config/config.h"
#include "ivs/provider.h"

#define ARN "arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234"
#define ARN2 "arn:aws:ivs:us-east-1:123456789012:stage/efghEFGH5678"

static bool calloc_fails;           /* every calloc fails */
static long fail_at = -1, allocs;   /* allocation number fail_at (from 0) fails; -1 none */

/* Whether the allocation asked for now fails (counted while fail_at >= 0). */
static bool fails_now(void)
{
    return calloc_fails || (fail_at >= 0 && allocs++ == fail_at);
}

void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size)
{
    return fails_now() ? NULL : __real_calloc(n, size);
}

char *__real_strdup(const char *s);
char *__wrap_strdup(const char *s);
char *__wrap_strdup(const char *s)
{
    return fails_now() ? NULL : __real_strdup(s);
}

static void *json_alloc(size_t n)
{
    return fail_at >= 0 && fails_now() ? NULL : malloc(n);
}

/* What the callbacks heard: how often, and the last error. */
struct heard {
    int calls;
    bool had_result;                 /* a stage, list or text came with it */
    size_t n;                        /* items of a list */
    char text[80];                   /* the text that came */
    char error[400];
};

static void heard(struct heard *h, const char *error, bool result)
{
    h->calls++;
    h->had_result |= result;
    snprintf(h->error, sizeof h->error, "%s", error ? error : "");
}
static void on_done(void *arg, const char *error) { heard(arg, error, false); }
static void on_stage(void *arg, const struct provider_stage *s, const char *error)
{
    heard(arg, error, s != NULL);
}
static void on_list(void *arg, const struct provider_stage *s, size_t n, const char *error)
{
    heard(arg, error, s != NULL || n);
    ((struct heard *)arg)->n = n;
}
static void on_text(void *arg, const char *text, const char *error)
{
    heard(arg, error, text != NULL);
    snprintf(((struct heard *)arg)->text, sizeof ((struct heard *)arg)->text, "%s", text ? text : "");
}
static void on_page(void *arg, const struct participant_page *page, const char *error)
{
    heard(arg, error, page != NULL);
    ((struct heard *)arg)->n = page ? page->count : 0;
}
static void on_replicas(void *arg, const struct provider_replica *r, size_t n, const char *error)
{
    heard(arg, error, r != NULL || n);
    ((struct heard *)arg)->n = n;
}

#define OPS 12

/* Starts every operation of p, operation i hearing into h[i]. */
static void start_all(struct stage_provider *p, struct heard *h)
{
    const struct stage_provider_ops *o = p->ops;
    const struct participant_query q = {.arn = ARN, .max_results = 100};
    o->prepare(p, "pem", on_text, &h[0]);
    o->create_stage(p, "name", NULL, on_stage, &h[1]);
    o->get_stage(p, ARN, on_stage, &h[2]);
    o->list_stages(p, on_list, &h[3]);
    o->rename_stage(p, ARN, "name", on_done, &h[4]);
    o->delete_stage(p, ARN, on_done, &h[5]);
    o->find_publisher(p, ARN, on_text, &h[6]);
    o->start_replication(p, ARN, ARN2, on_text, &h[7]);
    o->stop_replication(p, ARN, ARN2, "p1", on_done, &h[8]);
    o->list_replicas(p, ARN, "p1", on_replicas, &h[9]);
    o->list_participants(p, &q, on_page, &h[10]);
    o->disconnect_participant(p, ARN, "p1", NULL, on_done, &h[11]);
}

static void test_no_memory_for_the_op(void **state)
{
    (void)state;
    struct config cfg;
    memset(&cfg, 0, sizeof cfg);
    struct event_base *base = event_base_new();
    assert_non_null(base);
    struct stage_provider *p = aws_provider_new(base, &cfg, NULL);
    assert_non_null(p);
    struct heard h[OPS];
    memset(h, 0, sizeof h);
    calloc_fails = true;
    start_all(p, h);
    calloc_fails = false;
    for (int turn = 0; turn < 3; turn++)    /* nothing more comes later */
        event_base_loop(base, EVLOOP_NONBLOCK);
    for (int i = 0; i < OPS; i++) {
        if (h[i].calls != 1 || strcmp(h[i].error, "out of memory") != 0 || h[i].had_result)
            print_error("operation %d: %d calls, error \"%s\"\n", i, h[i].calls, h[i].error);
        assert_int_equal(h[i].calls, 1);
        assert_string_equal(h[i].error, "out of memory");
        assert_false(h[i].had_result);
    }
    p->ops->free(p);
    event_base_free(base);
}

/* ---- listings read from a fake IVS, one allocation failing ---- */

#define SESSION "st-abcdefghijklm"
/* Every list: 3 pages, of 4, 4 and 1 items; 9 in all, one more than a
 * jansson array holds before it grows. */
#define PAGES 3
#define PAGE_ITEMS 4
#define WHOLE (PAGE_ITEMS * (PAGES - 1) + 1)
#define PUBLISHER "p20"              /* the one participant published: the last page's */

static struct {
    struct event_base *base;
    struct evhttp *http;
    int port;
} ivs;

/* Item i of page n of the list named `name`, as IVS gives it. */
static int item(char *out, size_t len, const char *name, int n, int i)
{
    if (strcmp(name, "stages") == 0)
        return snprintf(out, len, "{\"arn\":\"arn:aws:ivs:us-east-1:123456789012:stage/s%d%d\","
                        "\"name\":\"s\",\"tags\":{\"usher:managed\":\"true\","
                        "\"usher:stream\":\"test\"}}", n, i);
    if (strcmp(name, "participants") == 0)
        return snprintf(out, len, "{\"participantId\":\"p%d%d\",\"userId\":\"u%d%d\","
                        "\"state\":\"CONNECTED\",\"published\":%s,"
                        "\"firstJoinTime\":\"2026-01-01T00:00:00Z\"}", n, i, n, i,
                        n == PAGES - 1 ? "true" : "false");
    return snprintf(out, len, "{\"destinationStageArn\":\"arn:aws:ivs:us-east-1:123456789012:"
                    "stage/d%d%d\",\"destinationSessionId\":\"" SESSION "\","
                    "\"replicationState\":\"ACTIVE\"}", n, i);
}

/* Answers /ListStages, /ListParticipants, /ListParticipantReplicas with
 * the page the request's nextToken names ("t1", "t2"; none: the first),
 * /GetStage with a stage in session SESSION. Written without calloc,
 * strdup or jansson: only usher's allocations are counted and failed. */
static void on_ivs(struct evhttp_request *req, void *arg)
{
    (void)arg;
    char body[2048] = "", page[4096];
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    evbuffer_copyout(in, body, sizeof body - 1);
    const char *uri = evhttp_request_get_uri(req);
    if (strcmp(uri, "/GetStage") == 0) {
        snprintf(page, sizeof page, "{\"stage\":{\"arn\":\"" ARN "\","
                 "\"activeSessionId\":\"" SESSION "\"}}");
        evbuffer_add(evhttp_request_get_output_buffer(req), page, strlen(page));
        evhttp_send_reply(req, 200, "OK", NULL);
        return;
    }
    const char *name = strcmp(uri, "/ListStages") == 0         ? "stages"
                       : strcmp(uri, "/ListParticipants") == 0 ? "participants"
                                                               : "replicas";
    int n = strstr(body, "\"t1\"") ? 1 : strstr(body, "\"t2\"") ? 2 : 0;
    int len = snprintf(page, sizeof page, "{\"%s\":[", name);
    for (int i = 0; i < (n == PAGES - 1 ? 1 : PAGE_ITEMS); i++) {
        len += i ? snprintf(page + len, sizeof page - (size_t)len, ",") : 0;
        len += item(page + len, sizeof page - (size_t)len, name, n, i);
    }
    if (n < PAGES - 1)
        len += snprintf(page + len, sizeof page - (size_t)len, "],\"nextToken\":\"t%d\"}", n + 1);
    else
        len += snprintf(page + len, sizeof page - (size_t)len, "]}");
    struct evbuffer *out = evbuffer_new();
    evbuffer_add(out, page, (size_t)len);
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

/* A limiter that lets every call go on the next loop turn: the sweeps
 * make hundreds of calls, IVS's pace would take minutes. */
struct go {
    aws_limiter_ready_fn ready;
    void *arg;
};

static void go_now(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct go g = *(struct go *)arg;
    free(arg);
    g.ready(g.arg);
}

static int no_pace(struct aws_limiter *l, enum aws_op_class cls, aws_limiter_ready_fn ready,
                   void *arg)
{
    (void)l, (void)cls;
    static const struct timeval now = {0, 0};
    struct go *g = malloc(sizeof *g);
    assert_non_null(g);
    *g = (struct go){ready, arg};
    assert_int_equal(event_base_once(ivs.base, -1, EV_TIMEOUT, go_now, g, &now), 0);
    return 0;
}

static struct aws_limiter unpaced = {.acquire = no_pace};

static struct stage_provider *provider_on_fake(struct config *cfg)
{
    ivs.base = event_base_new();
    ivs.http = evhttp_new(ivs.base);
    assert_non_null(ivs.http);
    evhttp_set_gencb(ivs.http, on_ivs, NULL);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(ivs.http, "127.0.0.1", 0);
    assert_non_null(bs);
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &len);
    ivs.port = ntohs(sin.sin_port);
    static char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", ivs.port);
    struct aws_client_settings s = {.region = "us-east-1", .endpoint_url = endpoint,
                                    .timeout_ms = 5000};
    s.creds.access_key_id = "AKIDTEST", s.creds.secret_access_key = "secret";
    char err[256];
    struct aws_client *c = aws_client_new(ivs.base, &s, err, sizeof err);
    if (!c)
        print_error("aws_client_new: %s\n", err);
    assert_non_null(c);
    aws_client_set_limiter(c, &unpaced);
    memset(cfg, 0, sizeof *cfg);
    cfg->stream_name = "test";
    struct stage_provider *p = aws_provider_new(ivs.base, cfg, c);
    assert_non_null(p);
    return p;
}

typedef void (*list_fn)(struct stage_provider *p, struct heard *h);

static void list_stages(struct stage_provider *p, struct heard *h)
{
    p->ops->list_stages(p, on_list, h);
}

static void list_participants(struct stage_provider *p, struct heard *h)
{
    const struct participant_query q = {.arn = ARN, .session = SESSION, .max_results = PAGE_ITEMS,
                                        .all_pages = true};
    p->ops->list_participants(p, &q, on_page, h);
}

static void list_replicas(struct stage_provider *p, struct heard *h)
{
    p->ops->list_replicas(p, ARN, "p1", on_replicas, h);
}

/* The publisher search pages ListParticipants until one is published. */
static void find_publisher(struct stage_provider *p, struct heard *h)
{
    p->ops->find_publisher(p, ARN, on_text, h);
}

static bool whole_list(const struct heard *h) { return h->n == WHOLE; }
static bool publisher_found(const struct heard *h) { return strcmp(h->text, PUBLISHER) == 0; }

/* Lists once with allocation number k failing (none when k < 0). */
static struct heard list_once(struct stage_provider *p, list_fn list, long k, bool *failed)
{
    struct heard h;
    memset(&h, 0, sizeof h);
    allocs = 0, fail_at = k;
    list(p, &h);
    while (h.calls == 0)
        event_base_loop(ivs.base, EVLOOP_ONCE);
    *failed = k >= 0 && allocs > k;
    fail_at = -1;
    for (int turn = 0; turn < 3; turn++)    /* nothing more comes later */
        event_base_loop(ivs.base, EVLOOP_NONBLOCK);
    return h;
}

/* Lists with each allocation in turn failing, until one run makes fewer
 * allocations than the one asked to fail: the caller hears once, an
 * error or the whole list. A page's items left unkept must have been
 * among the failures seen ("keeping a page"). */
static void sweep(struct stage_provider *p, list_fn list, bool (*whole)(const struct heard *),
                  const char *what)
{
    bool failed;
    struct heard h = list_once(p, list, -1, &failed);
    assert_string_equal(h.error, "");
    assert_true(whole(&h));
    int errors = 0, kept_short = 0;
    for (long k = 0; failed || k == 0; k++) {
        h = list_once(p, list, k, &failed);
        if (h.calls != 1 || (h.error[0] ? h.had_result : !whole(&h)))
            print_error("%s, allocation %ld failing: %d calls, %zu items, text \"%s\", "
                        "error \"%s\"\n", what, k, h.calls, h.n, h.text, h.error);
        assert_int_equal(h.calls, 1);
        if (h.error[0]) {
            assert_false(h.had_result);
            errors++;
            kept_short += strstr(h.error, "keeping a page") != NULL;
        } else {
            assert_true(whole(&h));
        }
    }
    print_message("%s: %d runs failed with an error, %d keeping a page\n", what, errors,
                  kept_short);
    assert_true(kept_short > 0);
}

static void test_no_memory_for_a_page(void **state)
{
    (void)state;
    struct config cfg;
    json_set_alloc_funcs(json_alloc, free);
    struct stage_provider *p = provider_on_fake(&cfg);
    sweep(p, list_stages, whole_list, "ListStages");
    sweep(p, list_participants, whole_list, "ListParticipants");
    sweep(p, list_replicas, whole_list, "ListParticipantReplicas");
    sweep(p, find_publisher, publisher_found, "the publisher search (GetStage, ListParticipants)");
    p->ops->free(p);
    evhttp_free(ivs.http);
    event_base_free(ivs.base);
    json_set_alloc_funcs(malloc, free);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_memory_for_the_op),
        cmocka_unit_test(test_no_memory_for_a_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
