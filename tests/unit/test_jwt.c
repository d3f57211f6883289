/* test_jwt.c — unit tests for tokens/jwt.c: base64url against RFC 4648,
 * the exact header and claims a signing input decodes to, and the SPEC §5
 * limits that make jwt_signing_input() refuse. The decoder below exists
 * only here, so the encoder is checked against an independent inverse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tokens/jwt.h"

#define STAGE_ARN "arn:aws:ivs:us-west-2:123456789012:stage/AbCdEf123456"

static int b64url_value(char c)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *p = c ? strchr(alphabet, c) : NULL;
    return p ? (int)(p - alphabet) : -1;
}

/* Decodes unpadded base64url s[0..len) into a malloc'd NUL-terminated
 * buffer; fails the test on a character outside the alphabet. */
static char *b64url_decode(const char *s, size_t len, size_t *outlen)
{
    assert_int_not_equal(len % 4, 1);
    char *out = malloc(len * 3 / 4 + 1);
    assert_non_null(out);
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value(s[i]);
        assert_true(v >= 0);
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)(acc >> bits & 0xff);
        }
    }
    out[o] = '\0';
    if (outlen)
        *outlen = o;
    return out;
}

static void check_encode(const char *in, size_t len, const char *expected)
{
    char out[64];
    memset(out, 'x', sizeof out);
    size_t n = base64url_encode((const unsigned char *)in, len, out, sizeof out);
    assert_int_equal(n, strlen(expected));
    assert_string_equal(out, expected);

    size_t back_len;
    char *back = b64url_decode(out, n, &back_len);
    assert_int_equal(back_len, len);
    assert_memory_equal(back, in, len);
    free(back);
}

static void test_base64url_rfc4648(void **state)
{
    (void)state;
    check_encode("", 0, "");
    check_encode("f", 1, "Zg");
    check_encode("fo", 2, "Zm8");
    check_encode("foo", 3, "Zm9v");
    check_encode("foob", 4, "Zm9vYg");
    check_encode("fooba", 5, "Zm9vYmE");
    check_encode("foobar", 6, "Zm9vYmFy");
}

static void test_base64url_url_alphabet(void **state)
{
    (void)state;
    /* Standard base64 would give "+/8=", "++++" and "////". */
    check_encode("\xfb\xff", 2, "-_8");
    check_encode("\xfb\xef\xbe", 3, "----");
    check_encode("\xff\xff\xff", 3, "____");
}

static void test_base64url_output_too_small(void **state)
{
    (void)state;
    char out[9];
    /* "foobar" needs 8 characters and the NUL. */
    assert_int_equal(base64url_encode((const unsigned char *)"foobar", 6, out, 8), 0);
    assert_int_equal(base64url_encode((const unsigned char *)"foobar", 6, out, 9), 8);
    assert_string_equal(out, "Zm9vYmFy");
    assert_int_equal(base64url_encode((const unsigned char *)"", 0, out, 0), 0);
}

static struct token_claims sample_claims(void)
{
    struct token_claims c = {
        .participant_id = "0123456789abcdef0123456789abcdef",
        .user_id = "alice",
        .stage_arn = STAGE_ARN,
        .events_url = "wss://global.events.live-video.net",
        .whip_url = "https://AbCdEf123456.global-bm.whip.live-video.net",
        .allow_publish = true,
        .iat = 1760000000,
        .exp = 1760000000 + 14400,
        .attributes = NULL,
    };
    return c;
}

/* Splits "header.claims" and returns both parts decoded. */
static void decode_input(const char *input, char **header, char **claims)
{
    const char *dot = strchr(input, '.');
    assert_non_null(dot);
    assert_null(strchr(dot + 1, '.'));
    *header = b64url_decode(input, (size_t)(dot - input), NULL);
    *claims = b64url_decode(dot + 1, strlen(dot + 1), NULL);
}

static void assert_claims(const char *claims_text, json_t *expected)
{
    json_error_t error;
    json_t *claims = json_loads(claims_text, 0, &error);
    assert_non_null(claims);
    if (!json_equal(claims, expected)) {
        char *want = json_dumps(expected, JSON_COMPACT | JSON_SORT_KEYS);
        char *got = json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS);
        print_error("claims differ\n want %s\n got  %s\n", want, got);
        free(want);
        free(got);
        fail();
    }
    json_decref(claims);
}

static void test_signing_input_publisher(void **state)
{
    (void)state;
    struct token_claims c = sample_claims();
    c.attributes = json_pack("{s:s}", "role", "publisher");
    char *input = jwt_signing_input("usher-0011223344556677", &c);
    assert_non_null(input);

    char *header, *claims;
    decode_input(input, &header, &claims);
    assert_string_equal(header,
        "{\"alg\":\"ES384\",\"typ\":\"JWT\",\"kid\":\"usher-0011223344556677\"}");

    json_t *expected = json_pack(
        "{s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:b,s:b},s:{s:s},s:s}",
        "exp", (json_int_t)1760014400, "iat", (json_int_t)1760000000,
        "jti", "0123456789abcdef0123456789abcdef",
        "user_id", "alice",
        "resource", STAGE_ARN,
        "topic", "AbCdEf123456",
        "events_url", "wss://global.events.live-video.net",
        "whip_url", "https://AbCdEf123456.global-bm.whip.live-video.net",
        "capabilities", "allow_publish", 1, "allow_subscribe", 1,
        "attributes", "role", "publisher",
        "version", "1.0");
    assert_claims(claims, expected);

    json_decref(expected);
    json_decref(c.attributes);
    free(header);
    free(claims);
    free(input);
}

static void test_signing_input_viewer(void **state)
{
    (void)state;
    struct token_claims c = sample_claims();
    c.allow_publish = false;
    c.exp = c.iat + 14 * 24 * 3600;     /* the longest allowed */
    char *input = jwt_signing_input("arn:aws:ivs:us-west-2:123456789012:public-key/k1", &c);
    assert_non_null(input);

    char *header, *claims;
    decode_input(input, &header, &claims);
    assert_string_equal(header, "{\"alg\":\"ES384\",\"typ\":\"JWT\","
                        "\"kid\":\"arn:aws:ivs:us-west-2:123456789012:public-key/k1\"}");
    json_t *parsed = json_loads(claims, 0, NULL);
    assert_non_null(parsed);
    json_t *caps = json_pack("{s:b}", "allow_subscribe", 1);
    assert_true(json_equal(json_object_get(parsed, "capabilities"), caps));
    json_t *attrs = json_object_get(parsed, "attributes");
    assert_true(attrs == NULL || (json_is_object(attrs) && json_object_size(attrs) == 0));
    assert_int_equal(json_integer_value(json_object_get(parsed, "exp")) -
                     json_integer_value(json_object_get(parsed, "iat")), 1209600);

    json_decref(caps);
    json_decref(parsed);
    free(header);
    free(claims);
    free(input);
}

static char *topic_of(const char *arn)
{
    struct token_claims c = sample_claims();
    c.stage_arn = arn;
    char *input = jwt_signing_input("kid", &c);
    if (!input)
        return NULL;
    char *header, *claims;
    decode_input(input, &header, &claims);
    json_t *parsed = json_loads(claims, 0, NULL);
    assert_non_null(parsed);
    char *topic = strdup(json_string_value(json_object_get(parsed, "topic")));
    json_decref(parsed);
    free(header);
    free(claims);
    free(input);
    return topic;
}

static void test_topic_is_last_path_segment(void **state)
{
    (void)state;
    char *t = topic_of("arn:aws:ivs:eu-west-1:111122223333:stage/Xy9");
    assert_string_equal(t, "Xy9");
    free(t);
    t = topic_of("arn:aws:ivs:eu-west-1:111122223333:stage/a/b/last");
    assert_string_equal(t, "last");
    free(t);
    t = topic_of("local-stage-7");
    assert_string_equal(t, "local-stage-7");
    free(t);
    /* An ARN ending in '/' names no stage. */
    assert_null(topic_of("arn:aws:ivs:eu-west-1:111122223333:stage/"));
}

static void test_rejects_long_or_inverted_lifetime(void **state)
{
    (void)state;
    struct token_claims c = sample_claims();
    c.exp = c.iat + 15 * 24 * 3600;
    assert_null(jwt_signing_input("kid", &c));
    c.exp = c.iat + 14 * 24 * 3600 + 1;
    assert_null(jwt_signing_input("kid", &c));
    c.exp = c.iat;
    assert_null(jwt_signing_input("kid", &c));
    c.exp = c.iat - 10;
    assert_null(jwt_signing_input("kid", &c));
    c.iat = INT64_MIN;
    c.exp = INT64_MAX;
    assert_null(jwt_signing_input("kid", &c));
}

static void test_rejects_bad_attributes(void **state)
{
    (void)state;
    struct token_claims c = sample_claims();

    c.attributes = json_pack("{s:s,s:i}", "role", "viewer", "seat", 3);
    assert_null(jwt_signing_input("kid", &c));
    json_decref(c.attributes);

    c.attributes = json_pack("[s]", "role");
    assert_null(jwt_signing_input("kid", &c));
    json_decref(c.attributes);

    /* {"a":"<1016 x>"} is 1024 bytes: allowed. One more byte is not. */
    char big[1018];
    memset(big, 'x', sizeof big);
    big[1016] = '\0';
    c.attributes = json_pack("{s:s}", "a", big);
    char *input = jwt_signing_input("kid", &c);
    assert_non_null(input);
    free(input);
    json_decref(c.attributes);

    big[1016] = 'x';
    big[1017] = '\0';
    c.attributes = json_pack("{s:s}", "a", big);
    assert_null(jwt_signing_input("kid", &c));
    json_decref(c.attributes);
}

static void test_rejects_missing_fields(void **state)
{
    (void)state;
    struct token_claims c = sample_claims();
    c.user_id = NULL;
    assert_null(jwt_signing_input("kid", &c));
    c.user_id = "";
    assert_null(jwt_signing_input("kid", &c));

    c = sample_claims();
    c.participant_id = NULL;
    assert_null(jwt_signing_input("kid", &c));
    c = sample_claims();
    c.stage_arn = NULL;
    assert_null(jwt_signing_input("kid", &c));
    c = sample_claims();
    c.whip_url = "";
    assert_null(jwt_signing_input("kid", &c));
    c = sample_claims();
    assert_null(jwt_signing_input(NULL, &c));
    assert_null(jwt_signing_input("", &c));
}

static void test_rejects_bad_jti_and_long_user_id(void **state)
{
    (void)state;
    struct token_claims c = sample_claims();
    char text[300];
    char *input;

    memset(text, 'a', 64);
    text[64] = '\0';
    c.participant_id = text;
    assert_non_null(input = jwt_signing_input("kid", &c));
    free(input);
    c.participant_id = "has space";
    assert_null(jwt_signing_input("kid", &c));
    strcat(text, "a");
    c.participant_id = text;
    assert_null(jwt_signing_input("kid", &c));

    /* 128 characters pass even when they take 256 bytes of UTF-8. */
    c = sample_claims();
    text[0] = '\0';
    for (int i = 0; i < 128; i++)
        strcat(text, "\xc3\xa9");             /* U+00E9 */
    c.user_id = text;
    assert_non_null(input = jwt_signing_input("kid", &c));
    free(input);
    memset(text, 'u', 129);
    text[129] = '\0';
    assert_null(jwt_signing_input("kid", &c));
}

static void test_finish_appends_signature(void **state)
{
    (void)state;
    unsigned char sig[JWT_ES384_SIG_LEN];
    for (size_t i = 0; i < sizeof sig; i++)
        sig[i] = (unsigned char)(i * 7 + 1);
    char *token = jwt_finish("aGVhZA.Ym9keQ", sig);
    assert_non_null(token);
    assert_memory_equal(token, "aGVhZA.Ym9keQ.", 14);
    assert_int_equal(strlen(token + 14), 128);
    size_t len;
    char *back = b64url_decode(token + 14, 128, &len);
    assert_int_equal(len, sizeof sig);
    assert_memory_equal(back, sig, sizeof sig);
    free(back);
    free(token);
}

static void test_participant_id(void **state)
{
    (void)state;
    char a[PARTICIPANT_ID_LEN + 1], b[PARTICIPANT_ID_LEN + 1];
    assert_int_equal(participant_id_new(a), 0);
    assert_int_equal(participant_id_new(b), 0);
    assert_int_equal(strlen(a), PARTICIPANT_ID_LEN);
    assert_int_equal(strspn(a, "0123456789abcdef"), PARTICIPANT_ID_LEN);
    assert_int_equal(strspn(b, "0123456789abcdef"), PARTICIPANT_ID_LEN);
    assert_string_not_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64url_rfc4648),
        cmocka_unit_test(test_base64url_url_alphabet),
        cmocka_unit_test(test_base64url_output_too_small),
        cmocka_unit_test(test_signing_input_publisher),
        cmocka_unit_test(test_signing_input_viewer),
        cmocka_unit_test(test_topic_is_last_path_segment),
        cmocka_unit_test(test_rejects_long_or_inverted_lifetime),
        cmocka_unit_test(test_rejects_bad_attributes),
        cmocka_unit_test(test_rejects_missing_fields),
        cmocka_unit_test(test_rejects_bad_jti_and_long_user_id),
        cmocka_unit_test(test_finish_appends_signature),
        cmocka_unit_test(test_participant_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
