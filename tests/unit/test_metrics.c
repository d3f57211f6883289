/* test_metrics.c — unit tests for src/metrics/metrics.c and the list checks
 * of src/webhooks/webhooks.c: counters written as counters; one HTTP series
 * per (route, status) and one latency histogram per route, with cumulative
 * buckets, +Inf equal to _count and the sum in seconds; the Redis histogram
 * and errors; label values
 * escaped (\, ", newline); WEBHOOK_URLS and WEBHOOK_VIEWER_THRESHOLDS lists
 * accepted and refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics/metrics.h"
#include "webhooks/webhooks.h"

/* Everything metrics_write writes, as one string (free it). */
static char *written(const struct metrics *m)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    metrics_write(m, out);
    fclose(out);
    return text;
}

static void assert_line(const char *text, const char *line)
{
    char *with_newline = malloc(strlen(line) + 3);
    sprintf(with_newline, "\n%s\n", line);
    if (!strstr(text, with_newline))
        fail_msg("missing line: %s\nin:\n%s", line, text);
    free(with_newline);
}

static void test_counters(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    metrics_add(m, METRIC_JOINS, 3);
    metrics_add(m, METRIC_JOINS, 0);
    metrics_add(m, METRIC_LEAVES, 1);
    metrics_add(m, METRIC_EXPIRIES, -5);      /* nothing: counters only go up */
    char *text = written(m);
    assert_line(text, "# TYPE usher_joins_total counter");
    assert_line(text, "usher_joins_total 3");
    assert_line(text, "usher_leaves_total 1");
    assert_line(text, "usher_expiries_total 0");
    assert_line(text, "usher_moves_total 0");
    free(text);
    metrics_free(m);
}

static void test_http_series_and_histograms(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    metrics_http(m, "/api/stats", 200, 0.0004);
    metrics_http(m, "/api/stats", 200, 0.003);
    metrics_http(m, "/api/stats", 503, 0.8);
    metrics_http(m, "/api/token/viewer", 200, 20.0);
    char *text = written(m);
    assert_line(text, "usher_http_requests_total{route=\"/api/stats\",status=\"200\"} 2");
    assert_line(text, "usher_http_requests_total{route=\"/api/stats\",status=\"503\"} 1");
    assert_line(text, "usher_http_requests_total{route=\"/api/token/viewer\",status=\"200\"} 1");
    const char *h = "usher_http_request_duration_seconds";
    char line[160];
    static const struct { const char *le; int n; } stats_buckets[] = {
        {"0.0005", 1}, {"0.001", 1}, {"0.0025", 1}, {"0.005", 2}, {"0.5", 2}, {"1", 3}, {"10", 3},
        {"+Inf", 3},
    };
    for (size_t i = 0; i < sizeof stats_buckets / sizeof *stats_buckets; i++) {
        snprintf(line, sizeof line, "%s_bucket{route=\"/api/stats\",le=\"%s\"} %d", h,
                 stats_buckets[i].le, stats_buckets[i].n);
        assert_line(text, line);
    }
    snprintf(line, sizeof line, "%s_count{route=\"/api/stats\"} 3", h);
    assert_line(text, line);
    snprintf(line, sizeof line, "%s_sum{route=\"/api/stats\"} 0.8034", h);
    assert_line(text, line);
    /* Past the last bound: only in +Inf. */
    snprintf(line, sizeof line, "%s_bucket{route=\"/api/token/viewer\",le=\"10\"} 0", h);
    assert_line(text, line);
    snprintf(line, sizeof line, "%s_bucket{route=\"/api/token/viewer\",le=\"+Inf\"} 1", h);
    assert_line(text, line);
    free(text);
    metrics_free(m);
}

static void test_redis(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    metrics_redis(m, 0.0002, false);
    metrics_redis(m, 0.9, true);
    char *text = written(m);
    assert_line(text, "usher_redis_roundtrip_seconds_bucket{le=\"0.0005\"} 1");
    assert_line(text, "usher_redis_roundtrip_seconds_bucket{le=\"1\"} 2");
    assert_line(text, "usher_redis_roundtrip_seconds_count 2");
    assert_line(text, "usher_redis_errors_total 1");
    free(text);
    metrics_free(m);
}

static void test_label_escaping(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    metrics_label(out, "a\\b\"c\nd");
    fclose(out);
    assert_string_equal(text, "a\\\\b\\\"c\\nd");
    free(text);
}

static void test_webhook_lists(void **state)
{
    (void)state;
    assert_null(webhook_urls_check("https://hooks.example.com/usher"));
    assert_null(webhook_urls_check(" http://10.0.0.1:8080/a , https://b.example/x?y=1 ,"));
    assert_non_null(webhook_urls_check("ftp://x/y"));
    assert_non_null(webhook_urls_check("https://"));
    assert_non_null(webhook_urls_check("http:///path"));
    assert_non_null(webhook_urls_check("http://a b/"));
    assert_non_null(webhook_urls_check("example.com"));
    assert_null(webhook_thresholds_check("100, 1000,10000"));
    assert_non_null(webhook_thresholds_check("0"));
    assert_non_null(webhook_thresholds_check("-5"));
    assert_non_null(webhook_thresholds_check("10,ten"));
    assert_non_null(webhook_thresholds_check("1e3"));
    assert_non_null(webhook_thresholds_check("2000000000"));
    char many[200] = "";
    for (int i = 1; i <= 33; i++)
        sprintf(many + strlen(many), "%d,", i);
    assert_non_null(webhook_thresholds_check(many));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_http_series_and_histograms),
        cmocka_unit_test(test_redis),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_webhook_lists),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
