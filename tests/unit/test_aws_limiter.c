/* test_aws_limiter.c — src/aws/limiter.c: every IVS operation of the API
 * model has a class and the classes have the documented rates; aws_pace
 * spaces a burst evenly, never lets more calls than the rate start in any
 * one-second window, does not bank idle time as a burst; the local
 * limiter, on an injected clock, hands out slots at the paced delays (the
 * loop runs for real, the clock it reads is the test's). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>
#include <jansson.h>

#include "aws/limiter.h"

static void test_classes(void **state)
{
    (void)state;
    assert_int_equal(aws_op_class_rate(AWS_OPS_STAGE), 5);
    assert_int_equal(aws_op_class_rate(AWS_OPS_PARTICIPANT), 5);
    assert_int_equal(aws_op_class_rate(AWS_OPS_KEY), 3);
    assert_int_equal(aws_op_class_rate(AWS_OPS_TOKEN), 50);
    assert_int_equal(aws_op_class_rate(AWS_OPS_TAG), 10);
    assert_int_equal(aws_op_class_at((size_t)aws_op_index("CreateStage")), AWS_OPS_STAGE);
    assert_int_equal(aws_op_class_at((size_t)aws_op_index("ImportPublicKey")), AWS_OPS_KEY);
    assert_int_equal(aws_op_class_at((size_t)aws_op_index("ListParticipants")),
                     AWS_OPS_PARTICIPANT);
    assert_int_equal(aws_op_class_at((size_t)aws_op_index("StartParticipantReplication")),
                     AWS_OPS_REPLICATION);
    assert_int_equal(aws_op_index("createstage"), -1);
    assert_int_equal(aws_op_index("../CreateStage"), -1);
    assert_int_equal(aws_op_index(NULL), -1);
}

/* Every operation of the API model is known (the model is read at run time). */
static void test_model_operations(void **state)
{
    (void)state;
    json_t *m = json_load_file("../shared/aws/ivs-realtime-service-2.json", 0, NULL);
    assert_non_null(m);
    json_t *ops = json_object_get(m, "operations");
    assert_true(json_object_size(ops) > 0);
    assert_int_equal(json_object_size(ops), aws_op_count());
    const char *name;
    json_t *v;
    json_object_foreach(ops, name, v) {
        if (aws_op_index(name) < 0)
            print_error("operation %s of the model is unknown\n", name);
        assert_true(aws_op_index(name) >= 0);
    }
    json_decref(m);
}

static void test_pace_burst(void **state)
{
    (void)state;
    struct aws_pace p = {0, 200};
    int64_t starts[20];
    for (int i = 0; i < 20; i++)
        starts[i] = 1000 + aws_pace_reserve(&p, 1000);
    for (int i = 0; i < 20; i++)
        assert_int_equal(starts[i], 1000 + 200 * i);
    /* no window [t, t+1000) holds more than 5 starts */
    for (int i = 0; i + 5 < 20; i++)
        assert_true(starts[i + 5] - starts[i] >= 1000);
}

static void test_pace_idle_is_not_banked(void **state)
{
    (void)state;
    struct aws_pace p = {0, 334};
    assert_int_equal(aws_pace_reserve(&p, 0), 0);
    assert_int_equal(aws_pace_reserve(&p, 100), 234);
    /* a long idle gap, then a burst: still one per interval */
    assert_int_equal(aws_pace_reserve(&p, 60000), 0);
    assert_int_equal(aws_pace_reserve(&p, 60000), 334);
    assert_int_equal(aws_pace_reserve(&p, 60000), 668);
    /* callers arriving late get the slot that is free then */
    assert_int_equal(aws_pace_reserve(&p, 61500), 0);
}

struct fake_clock {
    int64_t now;
};

static int64_t fake_now(void *arg) { return ((struct fake_clock *)arg)->now; }

struct got {
    int order[16];
    int n;
};

static struct got got;
static int ids[16];

static void ready(void *arg)
{
    got.order[got.n++] = *(int *)arg;
}

/* Five key operations asked at fake time 0 with 3/s: slots at 0, 334,
 * 668, 1002, 1336 ms of real loop time; the loop runs until all are
 * handed out and they come in order, a stage op asked alongside not
 * waiting behind them. */
static void test_local_limiter(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct fake_clock clk = {0};
    struct aws_limiter *l = aws_local_limiter_new(base, fake_now, &clk);
    assert_non_null(l);
    memset(&got, 0, sizeof got);
    for (int i = 0; i < 5; i++) {
        ids[i] = i;
        assert_int_equal(l->acquire(l, AWS_OPS_KEY, ready, &ids[i]), 0);
    }
    ids[5] = 5;
    assert_int_equal(l->acquire(l, AWS_OPS_STAGE, ready, &ids[5]), 0);
    assert_int_equal(got.n, 0);     /* never from inside acquire */
    event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(got.n, 2);     /* the first key op and the stage op */
    event_base_dispatch(base);
    assert_int_equal(got.n, 6);
    int order[] = {0, 5, 1, 2, 3, 4};
    for (int i = 0; i < 6; i++)
        assert_int_equal(got.order[i], order[i]);
    /* a waiter dropped by free is never called */
    assert_int_equal(l->acquire(l, AWS_OPS_KEY, ready, &ids[0]), 0);
    assert_int_equal(l->acquire(l, AWS_OPS_KEY, ready, &ids[1]), 0);
    l->free(l);
    event_base_dispatch(base);
    assert_int_equal(got.n, 6);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes),
        cmocka_unit_test(test_model_operations),
        cmocka_unit_test(test_pace_burst),
        cmocka_unit_test(test_pace_idle_is_not_banked),
        cmocka_unit_test(test_local_limiter),
    };
    return cmocka_run_group_tests_name("aws_limiter", tests, NULL, NULL);
}
