/* test_aws_retry.c — src/aws/retry.c: a table of (status, x-amzn-ErrorType,
 * transport error) → error class and retry-or-not covering every IVS error
 * of the API model, throttling by code and by status, 5xx, transport
 * errors and timeouts; the code extracted from an ErrorType value; backoff
 * delays within [d/2, d] for the lowest and highest random draws and never
 * above the cap; the retry budget by attempts and by time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "aws/retry.h"

static void test_classification_table(void **state)
{
    (void)state;
    static const struct {
        long status;
        const char *type;
        bool transport, timeout;
        enum aws_error want;
        bool retry;
    } cases[] = {
        {200, NULL, false, false, AWS_OK, false},
        {204, NULL, false, false, AWS_OK, false},
        {400, "ValidationException:http://internal.amazon.com/coral/x/", false, false,
         AWS_ERR_VALIDATION, false},
        {400, NULL, false, false, AWS_ERR_VALIDATION, false},
        {402, "ServiceQuotaExceededException", false, false, AWS_ERR_QUOTA_EXCEEDED, false},
        {402, NULL, false, false, AWS_ERR_QUOTA_EXCEEDED, false},
        {403, "AccessDeniedException", false, false, AWS_ERR_ACCESS_DENIED, false},
        {403, "PendingVerification", false, false, AWS_ERR_ACCESS_DENIED, false},
        {401, NULL, false, false, AWS_ERR_ACCESS_DENIED, false},
        {404, "ResourceNotFoundException:", false, false, AWS_ERR_NOT_FOUND, false},
        {404, NULL, false, false, AWS_ERR_NOT_FOUND, false},
        {409, "ConflictException", false, false, AWS_ERR_CONFLICT, false},
        {409, NULL, false, false, AWS_ERR_CONFLICT, false},
        {418, NULL, false, false, AWS_ERR_VALIDATION, false},
        {429, NULL, false, false, AWS_ERR_THROTTLED, true},
        {429, "TooManyRequestsException", false, false, AWS_ERR_THROTTLED, true},
        {400, "ThrottlingException", false, false, AWS_ERR_THROTTLED, true},
        {400, "aws.protocol#ThrottlingException:x", false, false, AWS_ERR_THROTTLED, true},
        {500, "InternalServerException", false, false, AWS_ERR_SERVER, true},
        {500, NULL, false, false, AWS_ERR_SERVER, true},
        {503, NULL, false, false, AWS_ERR_SERVER, true},
        {504, NULL, false, false, AWS_ERR_SERVER, true},
        {0, NULL, true, false, AWS_ERR_TRANSPORT, true},
        {0, NULL, true, true, AWS_ERR_TIMEOUT, true},
        {403, "SomethingNew", false, false, AWS_ERR_ACCESS_DENIED, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct aws_verdict v =
            aws_classify(cases[i].status, cases[i].type, cases[i].transport, cases[i].timeout);
        if (v.error != cases[i].want || v.retry != cases[i].retry)
            print_error("case %zu: %ld %s → %s retry=%d\n", i, cases[i].status,
                        cases[i].type ? cases[i].type : "-", aws_error_name(v.error), v.retry);
        assert_int_equal(v.error, cases[i].want);
        assert_int_equal(v.retry, cases[i].retry);
    }
}

static void test_error_code(void **state)
{
    (void)state;
    char code[32];
    aws_error_code("ConflictException:http://internal.amazon.com/x", code, sizeof code);
    assert_string_equal(code, "ConflictException");
    aws_error_code("ns#ValidationException", code, sizeof code);
    assert_string_equal(code, "ValidationException");
    aws_error_code(NULL, code, sizeof code);
    assert_string_equal(code, "");
    aws_error_code("AVeryLongErrorTypeThatDoesNotFitAtAllHere", code, 8);
    assert_string_equal(code, "AVeryLo");
    assert_string_equal(aws_error_name(AWS_ERR_QUOTA_EXCEEDED), "quota_exceeded");
    for (int e = 0; e < AWS_ERR__COUNT; e++)
        assert_non_null(aws_error_name((enum aws_error)e));
}

static void test_backoff_bounds(void **state)
{
    (void)state;
    int64_t prev_max = 0;
    for (int attempt = 1; attempt <= 12; attempt++) {
        int64_t d = AWS_RETRY_BASE_MS << attempt;
        if (d > AWS_RETRY_CAP_MS)
            d = AWS_RETRY_CAP_MS;
        int64_t lo = aws_backoff_ms(attempt, 0), hi = aws_backoff_ms(attempt, UINT32_MAX);
        assert_true(lo >= d / 2 && lo <= d);
        assert_true(hi >= d / 2 && hi <= d);
        for (uint32_t r = 0; r < 5000; r += 7) {
            int64_t x = aws_backoff_ms(attempt, r * 2654435761u);
            assert_true(x >= d / 2 && x <= d && x <= AWS_RETRY_CAP_MS);
        }
        assert_true(d >= prev_max);
        prev_max = d;
    }
    assert_int_equal(aws_backoff_ms(1, 0), 100);   /* d = 200: [100, 200] */
    assert_int_equal(aws_backoff_ms(1, 100), 200);
}

static void test_retry_budget(void **state)
{
    (void)state;
    assert_true(aws_retry_allowed(1, 0, 200));
    assert_true(aws_retry_allowed(AWS_RETRY_MAX_ATTEMPTS - 1, 1000, 1000));
    assert_false(aws_retry_allowed(AWS_RETRY_MAX_ATTEMPTS, 0, 0));
    assert_false(aws_retry_allowed(1, AWS_RETRY_BUDGET_MS - 100, 100));
    assert_true(aws_retry_allowed(1, AWS_RETRY_BUDGET_MS - 101, 100));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classification_table),
        cmocka_unit_test(test_error_code),
        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_retry_budget),
    };
    return cmocka_run_group_tests_name("aws_retry", tests, NULL, NULL);
}
