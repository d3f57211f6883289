/* test_store_names.c — unit tests for the pure parts of src/store/store.c,
 * no Redis needed: store_key (prefix + name + suffix, exact fit, too small
 * a buffer), store_refusal on hand-made hiredis replies (each refusal word,
 * with and without Redis's "ERR Error running script" wrapping, unknown
 * errors, non-error replies, NULL), and reply_str / reply_int on a
 * hand-built array reply (string, status, integer, number in a string,
 * nil, out-of-range index, non-array, NULL). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "store/store.h"

#define ARN "arn:aws:ivs:ap-northeast-1:123456789012:stage/sWyAydfRqqF8"

/* ---- store_key -------------------------------------------------------- */

static const struct store prod = {.redis = NULL, .prefix = "ivs:prod:"};

static void test_key_prefix_name(void **state)
{
    (void)state;
    char out[256];
    memset(out, '#', sizeof out);
    size_t n = store_key(&prod, out, sizeof out, "viewers:", ARN);
    assert_string_equal(out, "ivs:prod:viewers:" ARN);
    assert_int_equal(n, strlen("ivs:prod:viewers:" ARN));

    n = store_key(&prod, out, sizeof out, "total_viewers", NULL);
    assert_string_equal(out, "ivs:prod:total_viewers");
    assert_int_equal(n, 22);

    n = store_key(&prod, out, sizeof out, "viewer:heartbeat:", ARN);
    assert_string_equal(out, "ivs:prod:viewer:heartbeat:" ARN);
    assert_int_equal(n, strlen(out));

    n = store_key(&prod, out, sizeof out, "publisher:status", "");
    assert_string_equal(out, "ivs:prod:publisher:status");
    assert_int_equal(n, 25);
}

static void test_key_other_prefix(void **state)
{
    (void)state;
    const struct store empty = {.redis = NULL, .prefix = ""};
    const struct store test = {.redis = NULL, .prefix = "t1:"};
    char out[64];
    assert_int_equal(store_key(&empty, out, sizeof out, "stage:", "x"), 7);
    assert_string_equal(out, "stage:x");
    assert_int_equal(store_key(&test, out, sizeof out, "stage:", "x"), 10);
    assert_string_equal(out, "t1:stage:x");
}

static void test_key_too_small(void **state)
{
    (void)state;
    /* "ivs:prod:total_viewers" is 22 bytes: 23 fits with its NUL, 22 not. */
    char out[64];
    assert_int_equal(store_key(&prod, out, 23, "total_viewers", NULL), 22);
    assert_string_equal(out, "ivs:prod:total_viewers");
    assert_int_equal(store_key(&prod, out, 22, "total_viewers", NULL), 0);
    assert_int_equal(store_key(&prod, out, 5, "viewers:", ARN), 0);
    assert_int_equal(store_key(&prod, out, 1, "viewers:", ARN), 0);
    assert_int_equal(store_key(&prod, NULL, 0, "viewers:", ARN), 0);
    /* Suffix is what does not fit. */
    assert_int_equal(store_key(&prod, out, 20, "viewers:", ARN), 0);
}

/* ---- store_refusal ---------------------------------------------------- */

static redisReply mk(int type, const char *str)
{
    redisReply r = {.type = type, .str = (char *)str, .len = str ? strlen(str) : 0};
    return r;
}

static void test_refusal_table(void **state)
{
    (void)state;
    static const struct { const char *str; enum store_refusal want; } errors[] = {
        {"NOT_LIVE the publisher is not live", REFUSAL_NOT_LIVE},
        {"NO_STAGE no such stage", REFUSAL_NO_STAGE},
        {"STAGE_FULL the stage is full", REFUSAL_STAGE_FULL},
        {"STAGE_FULL no stage has room", REFUSAL_STAGE_FULL},
        {"STAGE_LIMIT no more stages allowed", REFUSAL_STAGE_LIMIT},
        {"ERR Error running script (call to f_0123456789abcdef0123456789abcdef01234567): "
         "@user_script:58: STAGE_FULL no stage has room", REFUSAL_STAGE_FULL},
        {"ERR Error running script (call to f_abc): @user_script:11: NOT_LIVE the publisher is not live",
         REFUSAL_NOT_LIVE},
        {"ERR Error running script (call to f_abc): @user_script:18: STAGE_LIMIT no more stages allowed",
         REFUSAL_STAGE_LIMIT},
        {"ERR unknown command 'EVALSHA'", REFUSAL_OTHER},
        {"NOSCRIPT No matching script. Please use EVAL.", REFUSAL_OTHER},
        {"LOADING Redis is loading the dataset in memory", REFUSAL_OTHER},
        {"ERR Error running script: @user_script:3: attempt to compare nil with number", REFUSAL_OTHER},
        {"", REFUSAL_OTHER},
        /* The word alone, without its message, is no known refusal. */
        {"NOT_LIVEX something", REFUSAL_OTHER},
    };
    int failures = 0;
    for (size_t i = 0; i < sizeof errors / sizeof *errors; i++) {
        redisReply r = mk(REDIS_REPLY_ERROR, errors[i].str);
        enum store_refusal got = store_refusal(&r);
        if (got != errors[i].want) {
            print_error("store_refusal(\"%s\"): want %d, got %d\n", errors[i].str,
                        errors[i].want, got);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_refusal_not_errors(void **state)
{
    (void)state;
    assert_int_equal(store_refusal(NULL), REFUSAL_NONE);

    /* Text that looks like a refusal, in a reply that is not an error. */
    redisReply s = mk(REDIS_REPLY_STRING, "NOT_LIVE the publisher is not live");
    assert_int_equal(store_refusal(&s), REFUSAL_NONE);
    redisReply st = mk(REDIS_REPLY_STATUS, "STAGE_FULL no stage has room");
    assert_int_equal(store_refusal(&st), REFUSAL_NONE);
    redisReply ok = mk(REDIS_REPLY_STATUS, "OK");
    assert_int_equal(store_refusal(&ok), REFUSAL_NONE);

    redisReply n = {.type = REDIS_REPLY_INTEGER, .integer = 3};
    assert_int_equal(store_refusal(&n), REFUSAL_NONE);
    redisReply nil = {.type = REDIS_REPLY_NIL};
    assert_int_equal(store_refusal(&nil), REFUSAL_NONE);
    redisReply arr = {.type = REDIS_REPLY_ARRAY, .elements = 0, .element = NULL};
    assert_int_equal(store_refusal(&arr), REFUSAL_NONE);
}

/* ---- reply_str / reply_int -------------------------------------------- */

static void test_reply_elements(void **state)
{
    (void)state;
    redisReply e0 = mk(REDIS_REPLY_STRING, ARN);
    redisReply e1 = {.type = REDIS_REPLY_INTEGER, .integer = 42};
    redisReply e2 = mk(REDIS_REPLY_STRING, "1729356123456");
    redisReply e3 = mk(REDIS_REPLY_STRING, "-7");
    redisReply e4 = mk(REDIS_REPLY_STRING, "not a number");
    redisReply e5 = {.type = REDIS_REPLY_NIL};
    redisReply e6 = mk(REDIS_REPLY_STATUS, "OK");
    redisReply e7 = {.type = REDIS_REPLY_INTEGER, .integer = -9000000000LL};
    redisReply e8 = mk(REDIS_REPLY_ERROR, "NOT_LIVE x");
    redisReply *elems[] = {&e0, &e1, &e2, &e3, &e4, &e5, &e6, &e7, &e8};
    redisReply arr = {.type = REDIS_REPLY_ARRAY, .elements = 9, .element = elems};

    /* reply_str: text only. */
    assert_string_equal(reply_str(&arr, 0), ARN);
    assert_ptr_equal(reply_str(&arr, 0), e0.str);
    assert_null(reply_str(&arr, 1));                     /* integer */
    assert_string_equal(reply_str(&arr, 2), "1729356123456");
    assert_string_equal(reply_str(&arr, 4), "not a number");
    assert_null(reply_str(&arr, 5));                     /* nil */
    assert_string_equal(reply_str(&arr, 6), "OK");       /* status is text */
    assert_null(reply_str(&arr, 8));                     /* error is not */
    assert_null(reply_str(&arr, 9));                     /* out of range */
    assert_null(reply_str(&arr, (size_t)-1));

    /* reply_int: integers, and text holding one. */
    assert_int_equal(reply_int(&arr, 0), 0);             /* text, not a number */
    assert_int_equal(reply_int(&arr, 1), 42);
    assert_true(reply_int(&arr, 2) == 1729356123456LL);
    assert_true(reply_int(&arr, 3) == -7);
    assert_int_equal(reply_int(&arr, 4), 0);
    assert_int_equal(reply_int(&arr, 5), 0);             /* nil */
    assert_true(reply_int(&arr, 7) == -9000000000LL);
    assert_int_equal(reply_int(&arr, 8), 0);             /* error */
    assert_int_equal(reply_int(&arr, 9), 0);             /* out of range */
    assert_int_equal(reply_int(&arr, 1000), 0);
}

static void test_reply_not_array(void **state)
{
    (void)state;
    redisReply s = mk(REDIS_REPLY_STRING, "12");
    redisReply n = {.type = REDIS_REPLY_INTEGER, .integer = 12};
    redisReply err = mk(REDIS_REPLY_ERROR, "ERR x");
    redisReply empty = {.type = REDIS_REPLY_ARRAY, .elements = 0, .element = NULL};

    assert_null(reply_str(&s, 0));
    assert_null(reply_str(&n, 0));
    assert_null(reply_str(&err, 0));
    assert_null(reply_str(&empty, 0));
    assert_null(reply_str(NULL, 0));

    assert_int_equal(reply_int(&s, 0), 0);
    assert_int_equal(reply_int(&n, 0), 0);
    assert_int_equal(reply_int(&err, 0), 0);
    assert_int_equal(reply_int(&empty, 0), 0);
    assert_int_equal(reply_int(NULL, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_prefix_name),
        cmocka_unit_test(test_key_other_prefix),
        cmocka_unit_test(test_key_too_small),
        cmocka_unit_test(test_refusal_table),
        cmocka_unit_test(test_refusal_not_errors),
        cmocka_unit_test(test_reply_elements),
        cmocka_unit_test(test_reply_not_array),
    };
    return cmocka_run_group_tests_name("store_names", tests, NULL, NULL);
}
