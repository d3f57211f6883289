/* test_clock.c — unit tests for src/util/clock.c: clock_due, the rule
 * every periodic duty (orphan sweep, reconciliation pass, publisher look)
 * is started by, and the ISO-8601 form answers carry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/clock.h"

static void test_due_first_then_each_interval(void **state)
{
    (void)state;
    int64_t last = 0;
    assert_true(clock_due(&last, 10000, 5000));      /* never run: due */
    assert_int_equal(last, 10000);
    assert_false(clock_due(&last, 14999, 5000));     /* 4,999 ms later: not yet */
    assert_int_equal(last, 10000);
    assert_true(clock_due(&last, 15000, 5000));      /* exactly one interval */
    assert_int_equal(last, 15000);
}

static void test_interval_zero_is_never(void **state)
{
    (void)state;
    int64_t last = 0;
    assert_false(clock_due(&last, 10000, 0));
    assert_int_equal(last, 0);
}

static void test_iso8601(void **state)
{
    (void)state;
    char out[25];
    clock_iso8601(1760873400123, out, sizeof out);
    assert_string_equal(out, "2025-10-19T11:30:00.123Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_due_first_then_each_interval),
        cmocka_unit_test(test_interval_zero_is_never),
        cmocka_unit_test(test_iso8601),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
