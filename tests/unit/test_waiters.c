/* test_waiters.c — unit tests for src/util/waiters.c on a real libevent
 * loop: a waiter is retried after its interval when nothing wakes it, at
 * once (next loop turn, long before its interval) when waiters_wake is
 * called, exactly once either way and never from inside waiters_add or
 * waiters_wake; freeing the list retries every waiter still waiting, and
 * a retry that wants to wait again while the list is being freed is
 * refused; dropping the list calls nobody. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <event2/event.h>

#include "util/waiters.h"
#include "util/clock.h"

struct probe {
    struct waiters *w;
    int calls;
    int64_t at_us;
    int again;                       /* waiters_add's answer when re-adding, or 1: not tried */
};

static void retried(void *arg)
{
    struct probe *p = arg;
    p->calls++;
    p->at_us = clock_mono_us();
}

static void retried_and_waits_again(void *arg)
{
    struct probe *p = arg;
    p->calls++;
    p->again = waiters_add(p->w, 10, retried, p);
}

/* Runs the loop for ms milliseconds. */
static void run_for(struct event_base *base, long ms)
{
    struct timeval t = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(base, &t);
    event_base_dispatch(base);
}

static void test_interval_without_wake(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct waiters *w = waiters_new(base);
    struct probe p = {.w = w, .again = 1};
    /* 300 ms against the 20 ms look: a loaded machine may stall the loop
     * past a shorter interval, and then both are due at once. */
    assert_int_equal(waiters_add(w, 300, retried, &p), 0);
    assert_int_equal(p.calls, 0);
    run_for(base, 20);
    assert_int_equal(p.calls, 0);
    run_for(base, 400);
    assert_int_equal(p.calls, 1);
    run_for(base, 100);
    assert_int_equal(p.calls, 1);
    waiters_free(w);
    assert_int_equal(p.calls, 1);
    event_base_free(base);
}

static void test_wake_retries_all_at_once(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct waiters *w = waiters_new(base);
    struct probe p[3] = {{.w = w}, {.w = w}, {.w = w}};
    for (int i = 0; i < 3; i++)
        assert_int_equal(waiters_add(w, 10000, retried, &p[i]), 0);
    int64_t t0 = clock_mono_us();
    waiters_wake(w);
    for (int i = 0; i < 3; i++)
        assert_int_equal(p[i].calls, 0);
    run_for(base, 50);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(p[i].calls, 1);
        assert_true(p[i].at_us - t0 < 1000000);
    }
    waiters_wake(w);                 /* nobody waits: nothing happens */
    run_for(base, 20);
    for (int i = 0; i < 3; i++)
        assert_int_equal(p[i].calls, 1);
    waiters_free(w);
    event_base_free(base);
}

static void test_free_retries_the_waiting_once(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct waiters *w = waiters_new(base);
    struct probe p = {.w = w, .again = 1};
    assert_int_equal(waiters_add(w, 10000, retried_and_waits_again, &p), 0);
    waiters_free(w);
    assert_int_equal(p.calls, 1);
    assert_int_equal(p.again, -1);   /* no waiting while the list is freed */
    event_base_free(base);
}

static void test_drop_calls_nobody(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct waiters *w = waiters_new(base);
    struct probe p[2] = {{.w = w}, {.w = w}};
    assert_int_equal(waiters_add(w, 0, retried, &p[0]), 0);
    assert_int_equal(waiters_add(w, 10000, retried, &p[1]), 0);
    waiters_drop(w);
    run_for(base, 20);
    assert_int_equal(p[0].calls, 0);
    assert_int_equal(p[1].calls, 0);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interval_without_wake),
        cmocka_unit_test(test_wake_retries_all_at_once),
        cmocka_unit_test(test_free_retries_the_waiting_once),
        cmocka_unit_test(test_drop_calls_nobody),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
