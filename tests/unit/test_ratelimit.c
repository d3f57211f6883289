/* test_ratelimit.c — unit tests for src/http/ratelimit.c: hits within one
 * fixed window (allowed/remaining/limit, refusal past max, refusals not
 * counted), clients independent of each other, the next window starting
 * afresh, reset_s = ceil(ms to the window's end / 1000) at several points,
 * max <= 0 turning the limit off, and a flood of 70,000 distinct clients:
 * no crash, and past the table's cap new clients share one count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/ratelimit.h"

/* The table's cap (MAX_CLIENTS in ratelimit.c, not exported). */
#define CAP 65536

static struct ratelimit *rl;

static int setup_3_per_s(void **state)
{
    (void)state;
    rl = ratelimit_new(1000, 3);
    return rl ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    ratelimit_free(rl);
    rl = NULL;
    return 0;
}

static struct ratelimit_verdict hit(const char *client, int64_t now)
{
    struct ratelimit_verdict v;
    memset(&v, 0xa5, sizeof v);
    ratelimit_hit(rl, client, now, &v);
    return v;
}

#define ASSERT_VERDICT(v, allowed_, limit_, remaining_, reset_)  \
    do {                                                         \
        struct ratelimit_verdict v_ = (v);                       \
        assert_int_equal(v_.allowed, (allowed_));                \
        assert_int_equal(v_.limit, (limit_));                    \
        assert_int_equal(v_.remaining, (remaining_));            \
        assert_int_equal(v_.reset_s, (reset_));                  \
    } while (0)

static void test_three_then_refused(void **state)
{
    (void)state;
    const int64_t t = 5000;              /* start of window 5 */
    ASSERT_VERDICT(hit("10.0.0.1", t), true, 3, 2, 1);
    ASSERT_VERDICT(hit("10.0.0.1", t + 100), true, 3, 1, 1);
    ASSERT_VERDICT(hit("10.0.0.1", t + 200), true, 3, 0, 1);
    ASSERT_VERDICT(hit("10.0.0.1", t + 300), false, 3, 0, 1);
    /* Refusals do not count further, and stay refusals. */
    ASSERT_VERDICT(hit("10.0.0.1", t + 999), false, 3, 0, 1);
}

static void test_clients_independent(void **state)
{
    (void)state;
    const int64_t t = 7000;
    for (int i = 0; i < 3; i++)
        assert_true(hit("10.0.0.1", t).allowed);
    assert_false(hit("10.0.0.1", t).allowed);

    ASSERT_VERDICT(hit("10.0.0.2", t), true, 3, 2, 1);
    ASSERT_VERDICT(hit("::1", t), true, 3, 2, 1);
    ASSERT_VERDICT(hit("10.0.0.2", t), true, 3, 1, 1);
    /* A prefix of another address is another client. */
    ASSERT_VERDICT(hit("10.0.0.", t), true, 3, 2, 1);
    ASSERT_VERDICT(hit("10.0.0.10", t), true, 3, 2, 1);
    assert_false(hit("10.0.0.1", t).allowed);
}

static void test_next_window(void **state)
{
    (void)state;
    const int64_t t = 12000;
    for (int i = 0; i < 3; i++)
        assert_true(hit("a", t + 10).allowed);
    assert_false(hit("a", t + 10).allowed);
    assert_false(hit("a", t + 999).allowed);           /* still window 12 */
    ASSERT_VERDICT(hit("a", t + 10 + 1000), true, 3, 2, 1);   /* window 13 */
    ASSERT_VERDICT(hit("a", t + 1999), true, 3, 1, 1);
    ASSERT_VERDICT(hit("a", t + 2000), true, 3, 2, 1);  /* window 14, fresh */
}

static void test_reset_seconds(void **state)
{
    (void)state;
    /* 1 s window: always 1 s (ceil of 1..1000 ms). */
    ASSERT_VERDICT(hit("a", 0), true, 3, 2, 1);
    ASSERT_VERDICT(hit("b", 999), true, 3, 2, 1);
    ratelimit_free(rl);

    /* 60 s window, max 100 (the SPEC's defaults). */
    rl = ratelimit_new(60000, 100);
    assert_non_null(rl);
    static const struct { int64_t now; long reset; } cases[] = {
        {60000 * 10, 60},               /* window start: 60000 ms left */
        {60000 * 10 + 1, 60},           /* 59999 ms → 60 */
        {60000 * 10 + 999, 60},         /* 59001 ms → 60 */
        {60000 * 10 + 1000, 59},        /* 59000 ms → 59 exactly */
        {60000 * 10 + 1001, 59},        /* 58999 ms → 59 */
        {60000 * 10 + 30500, 30},       /* 29500 ms → 30 */
        {60000 * 10 + 58999, 2},        /* 1001 ms → 2 */
        {60000 * 10 + 59000, 1},        /* 1000 ms → 1 */
        {60000 * 10 + 59999, 1},        /* 1 ms → 1 */
        {60000 * 11, 60},               /* next window */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct ratelimit_verdict v = hit("c", cases[i].now);
        if (v.reset_s != cases[i].reset)
            fail_msg("now=%lld: want reset_s %ld, got %ld", (long long)cases[i].now,
                     cases[i].reset, v.reset_s);
        assert_int_equal(v.limit, 100);
        assert_true(v.allowed);
    }
    /* 2500 ms window: a reset that is not a whole number of seconds. */
    ratelimit_free(rl);
    rl = ratelimit_new(2500, 1);
    assert_non_null(rl);
    ASSERT_VERDICT(hit("d", 5000), true, 1, 0, 3);      /* 2500 ms → 3 */
    ASSERT_VERDICT(hit("d", 6000), false, 1, 0, 2);     /* 1500 ms → 2 */
    ASSERT_VERDICT(hit("d", 6500), false, 1, 0, 1);     /* 1000 ms → 1 */
    ASSERT_VERDICT(hit("d", 7500), true, 1, 0, 3);      /* next window */
}

static void test_max_zero_is_off(void **state)
{
    (void)state;
    rl = ratelimit_new(1000, 0);
    assert_non_null(rl);
    for (int i = 0; i < 1000; i++) {
        struct ratelimit_verdict v = hit("10.0.0.1", 3000 + i % 1000);
        assert_true(v.allowed);
        assert_int_equal(v.limit, 0);
    }
    ratelimit_free(rl);
    rl = ratelimit_new(1000, -5);
    assert_non_null(rl);
    for (int i = 0; i < 100; i++)
        assert_true(hit("10.0.0.1", 3000).allowed);
}

static void test_flood_of_clients(void **state)
{
    (void)state;
    const int64_t t = 100000;            /* window 100 */
    char addr[64];

    /* Fill the table to its cap: each has its own count. */
    for (int i = 0; i < CAP; i++) {
        snprintf(addr, sizeof addr, "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        struct ratelimit_verdict v = hit(addr, t);
        if (!v.allowed || v.remaining != 2)
            fail_msg("client %d (%s): allowed %d remaining %ld", i, addr, v.allowed, v.remaining);
    }
    /* Clients already in the table keep their own counts. */
    ASSERT_VERDICT(hit("10.0.0.0", t), true, 3, 1, 1);
    ASSERT_VERDICT(hit("10.0.0.0", t), true, 3, 0, 1);
    assert_false(hit("10.0.0.0", t).allowed);
    ASSERT_VERDICT(hit("10.0.255.255", t), true, 3, 1, 1);

    /* Past the cap, new clients share one count: three of them get one hit
     * each, and then every new client is refused. */
    ASSERT_VERDICT(hit("new-1", t), true, 3, 2, 1);
    ASSERT_VERDICT(hit("new-2", t), true, 3, 1, 1);
    ASSERT_VERDICT(hit("new-3", t), true, 3, 0, 1);
    ASSERT_VERDICT(hit("new-4", t), false, 3, 0, 1);
    ASSERT_VERDICT(hit("new-1", t), false, 3, 0, 1);

    /* The rest of a 70,000-client flood: no crash, all refused (shared). */
    int allowed = 0;
    for (int i = CAP; i < 70000; i++) {
        snprintf(addr, sizeof addr, "11.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        allowed += hit(addr, t).allowed;
    }
    assert_int_equal(allowed, 0);
    /* In-table clients are untouched by the overflow. */
    ASSERT_VERDICT(hit("10.0.0.1", t), true, 3, 1, 1);

    /* Next window: the table is emptied, a new client has its own count. */
    ASSERT_VERDICT(hit("new-4", t + 1000), true, 3, 2, 1);
    ASSERT_VERDICT(hit("new-5", t + 1000), true, 3, 2, 1);
    ASSERT_VERDICT(hit("10.0.0.0", t + 1000), true, 3, 2, 1);
}

static void test_flood_twice(void **state)
{
    (void)state;
    /* Two full windows of 70,000 clients: memory is freed at the turn
     * (ASan's leak check covers the end). */
    char addr[32];
    for (int w = 0; w < 2; w++) {
        int allowed = 0;
        for (int i = 0; i < 70000; i++) {
            snprintf(addr, sizeof addr, "c%d", i);
            allowed += hit(addr, (int64_t)w * 1000).allowed;
        }
        /* CAP own counts, plus 3 hits of the shared one. */
        assert_int_equal(allowed, CAP + 3);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_three_then_refused, setup_3_per_s, teardown),
        cmocka_unit_test_setup_teardown(test_clients_independent, setup_3_per_s, teardown),
        cmocka_unit_test_setup_teardown(test_next_window, setup_3_per_s, teardown),
        cmocka_unit_test_setup_teardown(test_reset_seconds, setup_3_per_s, teardown),
        cmocka_unit_test_setup_teardown(test_max_zero_is_off, NULL, teardown),
        cmocka_unit_test_setup_teardown(test_flood_of_clients, setup_3_per_s, teardown),
        cmocka_unit_test_setup_teardown(test_flood_twice, setup_3_per_s, teardown),
    };
    return cmocka_run_group_tests_name("ratelimit", tests, NULL, NULL);
}
