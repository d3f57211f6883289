/* test_router.c — unit tests for src/http/router.c (route_find): exact
 * paths, "/:" parameter patterns (raw segment and its length; a segment
 * holding '/' or an empty one does not match; a fixed tail after the
 * parameter), wrong method versus unknown
 * path, first matching row wins, a few rows of the real table
 * usher_routes (src/routes/routes.c) and which of them a configuration
 * serves. Uses its own table of dummy handlers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "http/router.h"
#include "routes/routes.h"

static void h_list(struct request *rq) { (void)rq; }
static void h_stage_get(struct request *rq) { (void)rq; }
static void h_stage_put(struct request *rq) { (void)rq; }
static void h_stage_create(struct request *rq) { (void)rq; }
static void h_health(struct request *rq) { (void)rq; }
static void h_viewers(struct request *rq) { (void)rq; }
static void h_root(struct request *rq) { (void)rq; }
static void h_participants(struct request *rq) { (void)rq; }

static const struct route table[] = {
    {"GET", "/", h_root},
    {"GET", "/health", h_health},
    {"GET", "/api/stage/list", h_list},
    {"GET", "/api/stage/:arn", h_stage_get},
    {"PUT", "/api/stage/:arn", h_stage_put},
    {"POST", "/api/stage", h_stage_create},
    {"GET", "/api/viewer/list/:stageArn", h_viewers},
    {"GET", "/api/stage/:arn/participants", h_participants},
};
#define N (sizeof table / sizeof *table)

/* Sentinels, so a call that should not touch the outputs is caught. */
static const char sentinel[] = "untouched";

struct out {
    enum route_match m;
    const struct route *found;
    const char *param;
    size_t param_len;
};

static struct out find(const struct route *routes, size_t n, const char *method, const char *path)
{
    struct out o = {.found = (const struct route *)sentinel, .param = sentinel, .param_len = 12345};
    o.m = route_find(routes, n, method, path, &o.found, &o.param, &o.param_len);
    return o;
}

struct case_ {
    const char *method, *path;
    enum route_match want;
    route_handler handler;          /* when ROUTE_FOUND */
    const char *param;              /* when ROUTE_FOUND: expected segment, or NULL */
};

static const struct case_ cases[] = {
    /* exact */
    {"GET", "/", ROUTE_FOUND, h_root, NULL},
    {"GET", "/health", ROUTE_FOUND, h_health, NULL},
    {"POST", "/api/stage", ROUTE_FOUND, h_stage_create, NULL},
    /* exact row before the pattern that could swallow it */
    {"GET", "/api/stage/list", ROUTE_FOUND, h_list, NULL},
    /* patterns */
    {"GET", "/api/stage/abc", ROUTE_FOUND, h_stage_get, "abc"},
    {"PUT", "/api/stage/abc", ROUTE_FOUND, h_stage_put, "abc"},
    {"GET", "/api/stage/arn%3Aaws%3Aivs%3Aap-northeast-1%3A123456789012%3Astage%2FsWyAydfRqqF8",
     ROUTE_FOUND, h_stage_get,
     "arn%3Aaws%3Aivs%3Aap-northeast-1%3A123456789012%3Astage%2FsWyAydfRqqF8"},
    {"GET", "/api/viewer/list/x", ROUTE_FOUND, h_viewers, "x"},
    /* PUT on "/api/stage/list": the exact GET row says wrong method, but
     * the PUT pattern row after it matches, and wins. */
    {"PUT", "/api/stage/list", ROUTE_FOUND, h_stage_put, "list"},
    /* a parameter followed by a fixed tail */
    {"GET", "/api/stage/abc/participants", ROUTE_FOUND, h_participants, "abc"},
    {"GET", "/api/stage/abc/participantsx", ROUTE_NOT_FOUND, NULL, NULL},
    {"GET", "/api/stage//participants", ROUTE_NOT_FOUND, NULL, NULL},
    {"GET", "/api/stage/abc/participants/", ROUTE_NOT_FOUND, NULL, NULL},
    {"PUT", "/api/stage/abc/participants", ROUTE_WRONG_METHOD, NULL, NULL},
    /* segment with '/', empty segment, no segment */
    {"GET", "/api/stage/a/b", ROUTE_NOT_FOUND, NULL, NULL},
    {"GET", "/api/stage/arn:aws:ivs:x:1:stage/abc", ROUTE_NOT_FOUND, NULL, NULL},
    {"GET", "/api/stage/abc/", ROUTE_NOT_FOUND, NULL, NULL},
    {"GET", "/api/viewer/list/", ROUTE_NOT_FOUND, NULL, NULL},
    {"GET", "/api/viewer/list", ROUTE_NOT_FOUND, NULL, NULL},
    {"GET", "/api/viewer/listx", ROUTE_NOT_FOUND, NULL, NULL},
    {"GET", "/api/stage/", ROUTE_NOT_FOUND, NULL, NULL},
    /* "/api/stage" exists for POST only */
    {"GET", "/api/stage", ROUTE_WRONG_METHOD, NULL, NULL},
    /* wrong method */
    {"POST", "/health", ROUTE_WRONG_METHOD, NULL, NULL},
    {"DELETE", "/", ROUTE_WRONG_METHOD, NULL, NULL},
    {"DELETE", "/api/stage/abc", ROUTE_WRONG_METHOD, NULL, NULL},
    {"POST", "/api/viewer/list/x", ROUTE_WRONG_METHOD, NULL, NULL},
    {"get", "/health", ROUTE_WRONG_METHOD, NULL, NULL},
    /* unknown */
    {"GET", "/nope", ROUTE_NOT_FOUND, NULL, NULL},
    {"GET", "/health/", ROUTE_NOT_FOUND, NULL, NULL},
    {"GET", "/healthz", ROUTE_NOT_FOUND, NULL, NULL},
    {"GET", "/HEALTH", ROUTE_NOT_FOUND, NULL, NULL},
    {"GET", "", ROUTE_NOT_FOUND, NULL, NULL},
    {"DELETE", "/nope", ROUTE_NOT_FOUND, NULL, NULL},
};

static const char *match_name(enum route_match m)
{
    switch (m) {
    case ROUTE_FOUND: return "FOUND";
    case ROUTE_WRONG_METHOD: return "WRONG_METHOD";
    case ROUTE_NOT_FOUND: return "NOT_FOUND";
    }
    return "?";
}

static void test_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const struct case_ *c = &cases[i];
        struct out o = find(table, N, c->method, c->path);
        if (o.m != c->want) {
            print_error("%s %s: want %s, got %s\n", c->method, c->path,
                        match_name(c->want), match_name(o.m));
            failures++;
            continue;
        }
        if (o.m != ROUTE_FOUND)
            continue;
        if (o.found->handler != c->handler || strcmp(o.found->method, c->method) != 0) {
            print_error("%s %s: wrong row (%s %s)\n", c->method, c->path,
                        o.found->method, o.found->pattern);
            failures++;
        }
        if (c->param == NULL) {
            if (o.param != NULL || o.param_len != 0) {
                print_error("%s %s: exact route, want no param, got len %zu\n",
                            c->method, c->path, o.param_len);
                failures++;
            }
        } else if (!o.param || o.param_len != strlen(c->param) ||
                   memcmp(o.param, c->param, o.param_len) != 0) {
            print_error("%s %s: want param \"%s\", got len %zu\n", c->method,
                        c->path, c->param, o.param_len);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_param_points_into_path(void **state)
{
    (void)state;
    const char *path = "/api/stage/sWyAydfRqqF8";
    struct out o = find(table, N, "GET", path);
    assert_int_equal(o.m, ROUTE_FOUND);
    assert_ptr_equal(o.found, &table[3]);
    /* The raw segment is a pointer into the path, not a copy. */
    assert_ptr_equal(o.param, path + strlen("/api/stage/"));
    assert_int_equal(o.param_len, 12);
}

static void test_first_row_wins(void **state)
{
    (void)state;
    static const struct route dup[] = {
        {"GET", "/api/stage/:arn", h_stage_get},
        {"GET", "/api/stage/list", h_list},          /* shadowed */
        {"GET", "/x", h_root},
        {"GET", "/x", h_health},                     /* shadowed */
    };
    struct out o = find(dup, 4, "GET", "/api/stage/list");
    assert_int_equal(o.m, ROUTE_FOUND);
    assert_ptr_equal(o.found, &dup[0]);
    assert_int_equal(o.param_len, 4);
    assert_memory_equal(o.param, "list", 4);

    o = find(dup, 4, "GET", "/x");
    assert_int_equal(o.m, ROUTE_FOUND);
    assert_ptr_equal(o.found, &dup[2]);
    assert_ptr_equal(o.found->handler, h_root);
}

static void test_outputs_untouched_unless_found(void **state)
{
    (void)state;
    struct out o = find(table, N, "DELETE", "/health");
    assert_int_equal(o.m, ROUTE_WRONG_METHOD);
    assert_ptr_equal(o.found, (const struct route *)sentinel);
    assert_ptr_equal(o.param, sentinel);
    assert_int_equal(o.param_len, 12345);

    o = find(table, N, "GET", "/nope");
    assert_int_equal(o.m, ROUTE_NOT_FOUND);
    assert_ptr_equal(o.found, (const struct route *)sentinel);
}

static void test_empty_table(void **state)
{
    (void)state;
    struct out o = find(table, 0, "GET", "/");
    assert_int_equal(o.m, ROUTE_NOT_FOUND);
}

static void test_real_table(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path;
        enum route_match m;
        route_handler handler;
        const char *param;          /* NULL: none */
    } rows[] = {
        {"GET", "/api/stats", ROUTE_FOUND, route_stats, NULL},
        {"DELETE", "/api/stats", ROUTE_WRONG_METHOD, NULL, NULL},
        {"GET", "/api/stats/viewers", ROUTE_FOUND, route_stats_viewers, NULL},
        {"GET", "/api/stats/publisher", ROUTE_FOUND, route_publisher_status_get, NULL},
        {"GET", "/api/viewer/list/arn%3Aaws", ROUTE_FOUND, route_viewer_list, "arn%3Aaws"},
        {"GET", "/api/stage/list", ROUTE_FOUND, route_stage_list, NULL},
        {"GET", "/api/health", ROUTE_FOUND, route_health, NULL},
        {"GET", "/api/no-such-thing", ROUTE_NOT_FOUND, NULL, NULL},
    };
    assert_true(usher_route_count > 0);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct out o = find(usher_routes, usher_route_count, rows[i].method, rows[i].path);
        assert_int_equal(o.m, rows[i].m);
        if (rows[i].m != ROUTE_FOUND)
            continue;
        assert_ptr_equal(o.found->handler, rows[i].handler);
        assert_int_equal(o.param_len, rows[i].param ? strlen(rows[i].param) : 0);
        if (rows[i].param)
            assert_memory_equal(o.param, rows[i].param, o.param_len);
        else
            assert_null(o.param);
    }
}

/* The test participants route is served only with LOCAL_PARTICIPANTS_API;
 * every other route always. */
static void test_routes_served(void **state)
{
    (void)state;
    struct route served[usher_route_count];
    struct config cfg = {.local_participants_api = true};
    assert_int_equal(usher_routes_served(&cfg, served), usher_route_count);
    cfg.local_participants_api = false;
    size_t n = usher_routes_served(&cfg, served);
    assert_int_equal(n, usher_route_count - 1);
    for (size_t i = 0; i < n; i++)
        assert_ptr_not_equal(served[i].handler, route_test_participants);
    struct out o = find(served, n, "POST", "/api/test/participants");
    assert_int_equal(o.m, ROUTE_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_param_points_into_path),
        cmocka_unit_test(test_first_row_wins),
        cmocka_unit_test(test_outputs_untouched_unless_found),
        cmocka_unit_test(test_empty_table),
        cmocka_unit_test(test_real_table),
        cmocka_unit_test(test_routes_served),
    };
    return cmocka_run_group_tests_name("router", tests, NULL, NULL);
}
