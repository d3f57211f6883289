/* test_text.c — unit tests for src/util/text.c: pieces appended in order
 * across growths (past the first 256 bytes), NUL-terminated all along,
 * and what text_take hands over ("" when nothing was added). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/text.h"

static void test_pieces_in_order(void **state)
{
    (void)state;
    struct text t = {0};
    char want[1200] = "";
    for (int i = 0; i < 100; i++) {
        text_str(&t, "piece-");
        text_add(&t, "0123456789", (size_t)(i % 10) + 1);
        strcat(want, "piece-");
        strncat(want, "0123456789", (size_t)(i % 10) + 1);
        assert_int_equal(t.len, strlen(want));
        assert_string_equal(t.s, want);
    }
    assert_false(t.failed);
    char *s = text_take(&t);
    assert_string_equal(s, want);
    free(s);
}

static void test_take_of_nothing(void **state)
{
    (void)state;
    struct text t = {0};
    char *s = text_take(&t);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pieces_in_order),
        cmocka_unit_test(test_take_of_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
