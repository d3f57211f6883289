/* test_list.c — unit tests for src/util/list.c: the items of a comma list
 * as each reader is told them (trimmed, in order, empty ones included),
 * a NULL list, and the walk stopping at the first problem. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "util/list.h"

/* Joins the items it is told as [item] into out; stops at "stop". */
static const char *collect(const char *item, size_t len, void *arg)
{
    char *out = arg;
    size_t used = strlen(out);
    snprintf(out + used, 256 - used, "[%.*s]", (int)len, item);
    return len == 4 && memcmp(item, "stop", 4) == 0 ? "stopped" : NULL;
}

static const char *walk(const char *list, char out[256])
{
    out[0] = '\0';
    return list_each(list, collect, out);
}

/* Each list, and its items as told: trimmed, in order, empty ones too. */
static void test_items(void **state)
{
    (void)state;
    static const struct {
        const char *list, *told;
    } cases[] = {
        {"a,b", "[a][b]"},
        {" a b \t, \n c\r\n", "[a b][c]"},
        {"https://x.example/a?b=c", "[https://x.example/a?b=c]"},
        {"", "[]"},
        {"a,, ,b,", "[a][][][b][]"},
        {",", "[][]"},
        {NULL, ""},
    };
    char out[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_null(walk(cases[i].list, out));
        assert_string_equal(out, cases[i].told);
    }
}

static void test_stops_at_first_problem(void **state)
{
    (void)state;
    char out[256];
    assert_string_equal(walk("a, stop ,b", out), "stopped");
    assert_string_equal(out, "[a][stop]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_items),
        cmocka_unit_test(test_stops_at_first_problem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
