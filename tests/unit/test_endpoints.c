/* test_endpoints.c — unit tests for the endpoints cache of
 * src/stages/endpoints.c: what is remembered is found again, per ARN; a
 * second remember replaces; too long values and an empty WHIP URL are not
 * kept; a full cache is emptied and keeps working; the JSON form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stages/endpoints.h"

#define ARN(n) "arn:aws:ivs:us-east-1:123456789012:stage/stage" #n

static void test_remember_and_find(void **state)
{
    (void)state;
    struct endpoints_cache *c = endpoints_cache_new(8);
    assert_non_null(c);
    assert_null(endpoints_cached(c, ARN(1)));
    endpoints_remember(c, ARN(1), "https://a.whip", "wss://events");
    endpoints_remember(c, ARN(2), "https://b.whip", "wss://events2");
    const struct endpoints *e = endpoints_cached(c, ARN(1));
    assert_non_null(e);
    assert_string_equal(e->whip, "https://a.whip");
    assert_string_equal(e->events, "wss://events");
    assert_string_equal(endpoints_cached(c, ARN(2))->whip, "https://b.whip");
    endpoints_remember(c, ARN(1), "https://c.whip", "wss://events");
    assert_string_equal(endpoints_cached(c, ARN(1))->whip, "https://c.whip");
    endpoints_cache_free(c);
}

static void test_not_kept(void **state)
{
    (void)state;
    struct endpoints_cache *c = endpoints_cache_new(8);
    char long_url[STAGE_ENDPOINT_MAX + 2];
    memset(long_url, 'x', sizeof long_url - 1);
    long_url[sizeof long_url - 1] = '\0';
    endpoints_remember(c, ARN(1), long_url, "wss://events");
    endpoints_remember(c, ARN(2), "", "wss://events");
    assert_null(endpoints_cached(c, ARN(1)));
    assert_null(endpoints_cached(c, ARN(2)));
    endpoints_cache_free(c);
}

/* Past `max` entries the cache starts afresh: the newest is kept, every
 * entry found is right. */
static void test_full_cache_starts_afresh(void **state)
{
    (void)state;
    struct endpoints_cache *c = endpoints_cache_new(4);
    char arn[80], whip[80];
    for (int i = 0; i < 50; i++) {
        snprintf(arn, sizeof arn, "arn:aws:ivs:us-east-1:123456789012:stage/s%d", i);
        snprintf(whip, sizeof whip, "https://w%d.whip", i);
        endpoints_remember(c, arn, whip, "wss://e");
        assert_string_equal(endpoints_cached(c, arn)->whip, whip);
        for (int k = 0; k < i; k++) {
            char other[80], want[80];
            snprintf(other, sizeof other, "arn:aws:ivs:us-east-1:123456789012:stage/s%d", k);
            snprintf(want, sizeof want, "https://w%d.whip", k);
            const struct endpoints *e = endpoints_cached(c, other);
            if (e)
                assert_string_equal(e->whip, want);
        }
    }
    endpoints_cache_free(c);
}

static void test_json(void **state)
{
    (void)state;
    char *text = endpoints_json("https://a.whip", "wss://e");
    assert_string_equal(text, "{\"whip\":\"https://a.whip\",\"events\":\"wss://e\"}");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remember_and_find),
        cmocka_unit_test(test_not_kept),
        cmocka_unit_test(test_full_cache_starts_afresh),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
