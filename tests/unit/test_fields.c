/* test_fields.c — unit tests for src/http/fields.c: valid_user_id (length
 * bounds, multi-byte UTF-8, every kind of invalid UTF-8, C0/DEL/C1 control
 * characters), valid_stage_arn (the SPEC's ARN shape and each way to break
 * it), valid_participant_id, valid_session_id, the check_* wrappers (embedded NUL), and
 * field_string (absent / null / wrong type / bad / good, and what it adds to
 * the list of bad fields). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "http/fields.h"

/* ---- valid_user_id ---------------------------------------------------- */

struct uid_case {
    const char *what;
    const char *s;
    size_t len;                     /* 0 = strlen(s) */
    bool want;
};

/* L(x): the literal with its exact byte count, so embedded NULs count. */
#define L(x) x, sizeof(x) - 1

static const struct uid_case uid_cases[] = {
    {"one byte", L("a"), true},
    {"ascii with space and punctuation", L("user 42.x@y"), true},
    {"empty", "", 0, false},
    {"katakana (3-byte)", L("\xe3\x83\xa6\xe3\x83\xbc\xe3\x82\xb6\xe3\x83\xbc"), true}, /* ユーザー */
    {"emoji (4-byte)", L("\xf0\x9f\x98\x80"), true},                 /* U+1F600 */
    {"2-byte latin", L("caf\xc3\xa9"), true},                         /* café */
    {"U+00A0 first non-C1 after C1", L("\xc2\xa0"), true},
    {"U+FFFD", L("\xef\xbf\xbd"), true},
    {"U+10FFFF highest code point", L("\xf4\x8f\xbf\xbf"), true},
    {"U+D7FF just below surrogates", L("\xed\x9f\xbf"), true},
    {"U+E000 just above surrogates", L("\xee\x80\x80"), true},
    {"U+0800 smallest 3-byte", L("\xe0\xa0\x80"), true},
    {"U+10000 smallest 4-byte", L("\xf0\x90\x80\x80"), true},

    {"lone continuation byte", L("\x80"), false},
    {"continuation byte after ascii", L("ab\xbf"), false},
    {"truncated 2-byte", L("\xc3"), false},
    {"truncated 3-byte", L("\xe3\x83"), false},
    {"truncated 4-byte", L("\xf0\x9f\x98"), false},
    {"truncated 3-byte then ascii", L("\xe3\x83" "a"), false},
    {"overlong '/' (c0 af)", L("\xc0\xaf"), false},
    {"overlong c1 bf", L("\xc1\xbf"), false},
    {"overlong 3-byte (e0 80 af)", L("\xe0\x80\xaf"), false},
    {"overlong 4-byte (f0 80 80 af)", L("\xf0\x80\x80\xaf"), false},
    {"surrogate U+D800", L("\xed\xa0\x80"), false},
    {"surrogate U+DFFF", L("\xed\xbf\xbf"), false},
    {"above U+10FFFF (f4 90 80 80)", L("\xf4\x90\x80\x80"), false},
    {"lead byte f5", L("\xf5\x80\x80\x80"), false},
    {"lead byte f5, 3 bytes", L("\xf5\x80\x80"), false},
    {"lead byte f8, 3 bytes", L("\xf8\x80\x80"), false},
    {"lead byte ff, 3 bytes", L("\xff\x80\x80"), false},
    {"lead byte fe alone", L("\xfe"), false},

    {"newline", L("a\nb"), false},
    {"tab", L("a\tb"), false},
    {"NUL inside, counted in len", L("a\0b"), false},
    {"ESC", L("\x1b[31m"), false},
    {"DEL", L("a\x7f"), false},
    {"C1 NEL (c2 85)", L("a\xc2\x85"), false},
    {"C1 U+0080", L("\xc2\x80"), false},
    {"C1 U+009F", L("\xc2\x9f"), false},
};

static void test_user_id_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof uid_cases / sizeof *uid_cases; i++) {
        const struct uid_case *c = &uid_cases[i];
        size_t len = c->len ? c->len : strlen(c->s);
        bool got = valid_user_id(c->s, len);
        if (got != c->want) {
            print_error("valid_user_id(%s): want %d, got %d\n", c->what, c->want, got);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_user_id_length_bounds(void **state)
{
    (void)state;
    char buf[USER_ID_MAX + 2];
    memset(buf, 'x', sizeof buf);
    assert_int_equal(USER_ID_MAX, 128);
    assert_true(valid_user_id(buf, 1));
    assert_true(valid_user_id(buf, 127));
    assert_true(valid_user_id(buf, 128));
    assert_false(valid_user_id(buf, 129));
    assert_false(valid_user_id(buf, 0));

    /* 42 katakana × 3 bytes = 126 ok; a 43rd = 129 bytes, refused. */
    char mb[3 * 43];
    for (int i = 0; i < 43; i++)
        memcpy(mb + 3 * i, "\xe3\x83\xa6", 3);
    assert_true(valid_user_id(mb, 126));
    assert_false(valid_user_id(mb, 129));
    /* 126 + "ab" = 128 bytes, ok. */
    char mix[128];
    memcpy(mix, mb, 126);
    mix[126] = 'a';
    mix[127] = 'b';
    assert_true(valid_user_id(mix, 128));
    /* Cutting a 3-byte character in the middle with len is invalid. */
    assert_false(valid_user_id(mb, 125));
}

static void test_check_user_id_is_valid_user_id(void **state)
{
    (void)state;
    assert_true(check_user_id("alice", 5));
    assert_false(check_user_id("a\0b", 3));
    assert_false(check_user_id("", 0));
}

/* valid_text: 0-max bytes (empty allowed, unlike a user id), the same
 * UTF-8 and control character rules. */
static void test_text(void **state)
{
    (void)state;
    assert_true(valid_text("", 0, 128));
    assert_true(valid_text("bye", 3, 3));
    assert_false(valid_text("bye", 3, 2));
    assert_true(valid_text("caf\xc3\xa9", 5, 128));
    assert_false(valid_text("a\xff" "b", 3, 128));          /* not UTF-8 */
    assert_false(valid_text("caf\xc3", 4, 128));            /* cut short */
    assert_false(valid_text("a\nb", 3, 128));               /* C0 */
    assert_false(valid_text("a\xc2\x85" "b", 4, 128));     /* C1 (NEL) */
}

/* ---- valid_stage_arn -------------------------------------------------- */

#define GOOD_ARN "arn:aws:ivs:ap-northeast-1:123456789012:stage/sWyAydfRqqF8"

struct arn_case {
    const char *what;
    const char *s;
    bool want;
};

static const struct arn_case arn_cases[] = {
    {"good", GOOD_ARN, true},
    {"good us-east-1, 1-char id", "arn:aws:ivs:us-east-1:000000000000:stage/a", true},
    {"good 64-char id",
     "arn:aws:ivs:eu-west-1:123456789012:stage/"
     "0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789ABCDEF", true},
    {"wrong partition prefix", "arn:aws-cn:ivs:ap-northeast-1:123456789012:stage/abc", false},
    {"wrong service", "arn:aws:ivx:ap-northeast-1:123456789012:stage/abc", false},
    {"no prefix", "ap-northeast-1:123456789012:stage/abc", false},
    {"uppercase prefix", "ARN:AWS:IVS:ap-northeast-1:123456789012:stage/abc", false},
    {"uppercase region", "arn:aws:ivs:AP-NORTHEAST-1:123456789012:stage/abc", false},
    {"empty region", "arn:aws:ivs::123456789012:stage/abc", false},
    {"region with '_'", "arn:aws:ivs:ap_northeast_1:123456789012:stage/abc", false},
    {"11-digit account", "arn:aws:ivs:ap-northeast-1:12345678901:stage/abc", false},
    {"13-digit account", "arn:aws:ivs:ap-northeast-1:1234567890123:stage/abc", false},
    {"non-digit in account", "arn:aws:ivs:ap-northeast-1:12345678901a:stage/abc", false},
    {"missing stage/", "arn:aws:ivs:ap-northeast-1:123456789012:abc", false},
    {"channel/ instead of stage/", "arn:aws:ivs:ap-northeast-1:123456789012:channel/abc", false},
    {"stage without slash", "arn:aws:ivs:ap-northeast-1:123456789012:stageabc", false},
    {"empty id", "arn:aws:ivs:ap-northeast-1:123456789012:stage/", false},
    {"65-char id",
     "arn:aws:ivs:eu-west-1:123456789012:stage/"
     "0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789ABCDEFx", false},
    {"id with '-'", "arn:aws:ivs:ap-northeast-1:123456789012:stage/abc-def", false},
    {"id with '/'", "arn:aws:ivs:ap-northeast-1:123456789012:stage/abc/def", false},
    {"trailing space", GOOD_ARN " ", false},
    {"trailing newline", GOOD_ARN "\n", false},
    {"trailing :x", GOOD_ARN ":x", false},
    {"percent-encoded", "arn%3Aaws%3Aivs%3Aap-northeast-1%3A123456789012%3Astage%2Fabc", false},
    {"empty", "", false},
    {"truncated after account", "arn:aws:ivs:ap-northeast-1:123456789012", false},
    {"truncated in account", "arn:aws:ivs:ap-northeast-1:1234", false},
};

static void test_stage_arn_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof arn_cases / sizeof *arn_cases; i++) {
        const struct arn_case *c = &arn_cases[i];
        bool got = valid_stage_arn(c->s);
        if (got != c->want) {
            print_error("valid_stage_arn(%s: \"%s\"): want %d, got %d\n",
                        c->what, c->s, c->want, got);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_check_stage_arn_len(void **state)
{
    (void)state;
    assert_true(check_stage_arn(GOOD_ARN, strlen(GOOD_ARN)));
    /* A JSON string with an embedded NUL: strlen stops early, refused. */
    static const char nul[] = GOOD_ARN "\0junk";
    assert_false(check_stage_arn(nul, sizeof nul - 1));
}

/* ---- valid_session_id (ivs/ids.h) ------------------------------------- */

static void test_session_id(void **state)
{
    (void)state;
    assert_true(valid_session_id("st-a1B2c3D4e5F6g"));        /* 16: st- and 13 */
    assert_true(valid_session_id("st-0000000000000"));
    assert_false(valid_session_id(""));
    assert_false(valid_session_id("st-a1B2c3D4e5F6"));        /* 15 */
    assert_false(valid_session_id("st-a1B2c3D4e5F6gh"));      /* 17 */
    assert_false(valid_session_id("ST-a1B2c3D4e5F6g"));
    assert_false(valid_session_id("xx-a1B2c3D4e5F6g"));
    assert_false(valid_session_id("st-a/../bbbbbbbb"));
    assert_false(valid_session_id("st-a1B2c3D4e5F-g"));
    assert_false(valid_session_id("st-a1B2c3D4e5F g"));
    char long_id[200];
    memset(long_id, 'a', sizeof long_id - 1);
    memcpy(long_id, "st-", 3);
    long_id[sizeof long_id - 1] = '\0';
    assert_false(valid_session_id(long_id));
}

/* ---- valid_participant_id --------------------------------------------- */

static void test_participant_id(void **state)
{
    (void)state;
    char id[PARTICIPANT_ID_MAX + 2];
    memset(id, 'a', sizeof id);

    id[64] = '\0';
    assert_true(valid_participant_id(id));              /* 64 */
    id[64] = 'a';
    id[65] = '\0';
    assert_false(valid_participant_id(id));             /* 65 */

    assert_true(valid_participant_id("a"));
    assert_true(valid_participant_id("0"));
    assert_true(valid_participant_id("-"));
    assert_true(valid_participant_id("AbC-123-xyz"));
    assert_true(valid_participant_id("6f1c2a4e-9b7d-4c1e-8a2f-0d3b5e7c9a11"));
    assert_false(valid_participant_id(""));
    assert_false(valid_participant_id("abc_def"));
    assert_false(valid_participant_id("abc def"));
    assert_false(valid_participant_id("abc/def"));
    assert_false(valid_participant_id("abc.def"));
    assert_false(valid_participant_id("abc\n"));
    assert_false(valid_participant_id("\xc3\xa9"));

    assert_true(check_participant_id("abc", 3));
    assert_false(check_participant_id("abc\0d", 5));
}

/* ---- field_string ----------------------------------------------------- */

static json_t *bad;

static int setup_bad(void **state)
{
    (void)state;
    bad = json_array();
    return bad ? 0 : -1;
}

static int teardown_bad(void **state)
{
    (void)state;
    json_decref(bad);
    bad = NULL;
    return 0;
}

static json_t *parse(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    if (!j)
        fail_msg("bad test JSON %s: %s", text, err.text);
    return j;
}

/* bad must be exactly the names given (NULL-terminated). */
static void assert_bad_is(const char *const *names)
{
    size_t n = 0;
    while (names[n])
        n++;
    assert_int_equal(json_array_size(bad), n);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(bad, i);
        assert_true(json_is_string(e));
        assert_string_equal(json_string_value(e), names[i]);
    }
}
#define BAD_IS(...) assert_bad_is((const char *const[]){__VA_ARGS__, NULL})
#define BAD_EMPTY() assert_bad_is((const char *const[]){NULL})

static void test_field_absent_required(void **state)
{
    (void)state;
    json_t *body = parse("{\"other\": \"x\"}");
    assert_null(field_string(body, "userId", true, check_user_id, bad));
    BAD_IS("userId");
    json_decref(body);
}

static void test_field_absent_optional(void **state)
{
    (void)state;
    json_t *body = parse("{\"other\": \"x\"}");
    assert_null(field_string(body, "stageArn", false, check_stage_arn, bad));
    BAD_EMPTY();
    json_decref(body);
}

static void test_field_null_is_absent(void **state)
{
    (void)state;
    json_t *body = parse("{\"userId\": null, \"stageArn\": null}");
    assert_null(field_string(body, "stageArn", false, check_stage_arn, bad));
    BAD_EMPTY();
    assert_null(field_string(body, "userId", true, check_user_id, bad));
    BAD_IS("userId");
    json_decref(body);
}

static void test_field_no_body(void **state)
{
    (void)state;
    assert_null(field_string(NULL, "userId", true, check_user_id, bad));
    assert_null(field_string(NULL, "stageArn", false, check_stage_arn, bad));
    BAD_IS("userId");
}

static void test_field_wrong_types(void **state)
{
    (void)state;
    json_t *body = parse("{\"a\": 42, \"b\": true, \"c\": [\"x\"], \"d\": {\"x\": 1}, \"e\": 1.5}");
    /* Wrong type is bad whether or not the field is required. */
    assert_null(field_string(body, "a", true, check_user_id, bad));
    assert_null(field_string(body, "b", false, check_user_id, bad));
    assert_null(field_string(body, "c", true, check_user_id, bad));
    assert_null(field_string(body, "d", false, check_user_id, bad));
    assert_null(field_string(body, "e", true, check_user_id, bad));
    BAD_IS("a", "b", "c", "d", "e");
    json_decref(body);
}

static void test_field_bad_values(void **state)
{
    (void)state;
    json_t *body = json_pack("{s:s, s:s, s:s%, s:s}",
                             "userId", "",
                             "stageArn", "arn:aws:ivs:x:1:stage/a",
                             "nul", "ab\0c", (size_t)4,
                             "participantId", "a_b");
    assert_non_null(body);
    assert_null(field_string(body, "userId", true, check_user_id, bad));
    assert_null(field_string(body, "stageArn", false, check_stage_arn, bad));
    assert_null(field_string(body, "nul", true, check_user_id, bad));
    assert_null(field_string(body, "participantId", true, check_participant_id, bad));
    BAD_IS("userId", "stageArn", "nul", "participantId");
    json_decref(body);
}

static void test_field_good_values(void **state)
{
    (void)state;
    json_t *body = parse("{\"userId\": \"\\u30e6\\u30fc\\u30b6\\u30fc\","
                         " \"stageArn\": \"" GOOD_ARN "\","
                         " \"participantId\": \"abc-123\"}");
    const char *u = field_string(body, "userId", true, check_user_id, bad);
    const char *a = field_string(body, "stageArn", false, check_stage_arn, bad);
    const char *p = field_string(body, "participantId", true, check_participant_id, bad);
    assert_non_null(u);
    assert_string_equal(u, "\xe3\x83\xa6\xe3\x83\xbc\xe3\x82\xb6\xe3\x83\xbc");
    assert_non_null(a);
    assert_string_equal(a, GOOD_ARN);
    assert_non_null(p);
    assert_string_equal(p, "abc-123");
    /* It hands back the body's own string, not a copy. */
    assert_ptr_equal(u, json_string_value(json_object_get(body, "userId")));
    BAD_EMPTY();
    json_decref(body);
}

static void test_field_collects_all_bad(void **state)
{
    (void)state;
    json_t *body = parse("{\"userId\": 7, \"participantId\": \"ok-1\"}");
    assert_null(field_string(body, "userId", true, check_user_id, bad));
    assert_null(field_string(body, "stageArn", true, check_stage_arn, bad));
    assert_non_null(field_string(body, "participantId", true, check_participant_id, bad));
    BAD_IS("userId", "stageArn");
    json_decref(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_id_table),
        cmocka_unit_test(test_user_id_length_bounds),
        cmocka_unit_test(test_check_user_id_is_valid_user_id),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_stage_arn_table),
        cmocka_unit_test(test_check_stage_arn_len),
        cmocka_unit_test(test_participant_id),
        cmocka_unit_test(test_session_id),
        cmocka_unit_test_setup_teardown(test_field_absent_required, setup_bad, teardown_bad),
        cmocka_unit_test_setup_teardown(test_field_absent_optional, setup_bad, teardown_bad),
        cmocka_unit_test_setup_teardown(test_field_null_is_absent, setup_bad, teardown_bad),
        cmocka_unit_test_setup_teardown(test_field_no_body, setup_bad, teardown_bad),
        cmocka_unit_test_setup_teardown(test_field_wrong_types, setup_bad, teardown_bad),
        cmocka_unit_test_setup_teardown(test_field_bad_values, setup_bad, teardown_bad),
        cmocka_unit_test_setup_teardown(test_field_good_values, setup_bad, teardown_bad),
        cmocka_unit_test_setup_teardown(test_field_collects_all_bad, setup_bad, teardown_bad),
    };
    return cmocka_run_group_tests_name("fields", tests, NULL, NULL);
}
