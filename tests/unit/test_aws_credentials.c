/* test_aws_credentials.c — the pure parts of src/aws/credentials.c: the
 * JSON of the container endpoint and of IMDS (good answers, with and
 * without Token, Expiration with fractions, and hostile ones: not JSON,
 * not an object, missing or non-string keys, Code other than Success, a
 * bad Expiration — each refused with a reason that names no secret), and
 * when credentials are fetched again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "aws/credentials.h"

static int parse(const char *json, struct aws_credentials *c, char *err, size_t errlen)
{
    return aws_credentials_parse(json, strlen(json), c, err, errlen);
}

static void test_container_answer(void **state)
{
    (void)state;
    struct aws_credentials c;
    char err[128];
    assert_int_equal(parse("{\"AccessKeyId\":\"ASIAX\",\"SecretAccessKey\":\"s3cr3t\","
                           "\"Token\":\"tok\",\"Expiration\":\"2026-11-30T12:00:00Z\"}",
                           &c, err, sizeof err), 0);
    assert_string_equal(c.access_key_id, "ASIAX");
    assert_string_equal(c.secret_access_key, "s3cr3t");
    assert_string_equal(c.session_token, "tok");
    assert_int_equal(c.expires_ms, 1796040000000LL);    /* date -d 2026-11-30T12:00:00Z +%s */
    aws_credentials_clear(&c);
    assert_null(c.access_key_id);
}

static void test_imds_answer(void **state)
{
    (void)state;
    struct aws_credentials c;
    char err[128];
    assert_int_equal(parse("{\"Code\":\"Success\",\"LastUpdated\":\"2026-11-30T05:00:00Z\","
                           "\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\","
                           "\"Token\":\"T\",\"Expiration\":\"2026-11-30T12:00:00.123Z\"}",
                           &c, err, sizeof err), 0);
    assert_int_equal(c.expires_ms, 1796040000000LL);
    aws_credentials_clear(&c);
    /* no Token, no Expiration: long-term keys */
    assert_int_equal(parse("{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\"}", &c, err,
                           sizeof err), 0);
    assert_null(c.session_token);
    assert_int_equal(c.expires_ms, 0);
    aws_credentials_clear(&c);
}

static void test_hostile_answers(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "not json", "[]", "\"x\"", "{}",
        "{\"AccessKeyId\":\"A\"}",
        "{\"AccessKeyId\":1,\"SecretAccessKey\":\"S3CRETVALUE\"}",
        "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"\"}",
        "{\"Code\":\"Failure\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S3CRETVALUE\"}",
        "{\"Code\":7,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S3CRETVALUE\"}",
        "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S3CRETVALUE\",\"Expiration\":\"soon\"}",
        "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S3CRETVALUE\",\"Expiration\":5}",
        "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S3CRETVALUE\","
        "\"Expiration\":\"2026-11-30T12:00:00+09:00\"}",
        /* control characters would split the request's headers */
        "{\"AccessKeyId\":\"A\\r\\nX-Injected: 1\",\"SecretAccessKey\":\"S3CRETVALUE\"}",
        "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S3CRETVALUE\",\"Token\":\"t\\nX: 1\"}",
        "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S3CRET\\u0000VALUE\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct aws_credentials c;
        char err[128] = "";
        assert_int_equal(parse(bad[i], &c, err, sizeof err), -1);
        assert_true(err[0] != '\0');
        assert_null(strstr(err, "S3CRETVALUE"));
        assert_null(c.access_key_id);
    }
}

static void test_refresh_at(void **state)
{
    (void)state;
    const int64_t min = 60 * 1000;
    struct aws_credentials c = {.expires_ms = 0};
    assert_int_equal(aws_credentials_refresh_at(&c, 1000), 0);
    c.expires_ms = 60 * min;                /* 1 h: 5 min before expiry */
    assert_int_equal(aws_credentials_refresh_at(&c, 0), 55 * min);
    c.expires_ms = 6 * min;                 /* 6 min: half way (3 min) is later */
    assert_int_equal(aws_credentials_refresh_at(&c, 0), 3 * min);
    c.expires_ms = 10 * min;                /* the two agree at 10 min */
    assert_int_equal(aws_credentials_refresh_at(&c, 0), 5 * min);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_container_answer),
        cmocka_unit_test(test_imds_answer),
        cmocka_unit_test(test_hostile_answers),
        cmocka_unit_test(test_refresh_at),
    };
    return cmocka_run_group_tests_name("aws_credentials", tests, NULL, NULL);
}
