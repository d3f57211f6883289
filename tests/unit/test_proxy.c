/* test_proxy.c — unit tests for src/http/proxy.c: which X-Forwarded-For
 * entry TRUST_PROXY picks as the client's address (false, true, hop
 * counts, CIDR lists and the named ranges, IPv6), spoofed entries left of
 * the trusted proxies' never chosen, entries that are not addresses, and
 * the values the setting refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/proxy.h"

/* The client address for spec, a socket peer and an X-Forwarded-For. */
static const char *client(const char *spec, const char *peer, const char *xff)
{
    static char out[64];
    struct trust_proxy tp;
    assert_null(trust_proxy_parse(spec, &tp));
    trust_proxy_client(&tp, peer, xff, out, sizeof out);
    return out;
}

static void test_false_ignores_header(void **state)
{
    (void)state;
    for (const char *const *s = (const char *const[]){"false", "", "no", "off", "0", NULL}; *s; s++)
        assert_string_equal(client(*s, "10.0.0.5", "1.2.3.4"), "10.0.0.5");
}

static void test_true_takes_leftmost(void **state)
{
    (void)state;
    assert_string_equal(client("true", "10.0.0.5", "1.2.3.4, 5.6.7.8"), "1.2.3.4");
    assert_string_equal(client("yes", "10.0.0.5", " 1.2.3.4 "), "1.2.3.4");
    assert_string_equal(client("true", "10.0.0.5", NULL), "10.0.0.5");
    assert_string_equal(client("true", "10.0.0.5", ""), "10.0.0.5");
}

static void test_hops(void **state)
{
    (void)state;
    /* One load balancer: it appended the client's address last. */
    assert_string_equal(client("1", "10.0.0.5", "6.6.6.6, 1.2.3.4"), "1.2.3.4");
    assert_string_equal(client("2", "10.0.0.5", "6.6.6.6, 1.2.3.4, 10.0.1.9"), "1.2.3.4");
    /* More hops than entries: the leftmost. */
    assert_string_equal(client("3", "10.0.0.5", "1.2.3.4"), "1.2.3.4");
    assert_string_equal(client("1", "10.0.0.5", NULL), "10.0.0.5");
}

static void test_cidrs(void **state)
{
    (void)state;
    const char *vpc = "10.0.0.0/16";
    assert_string_equal(client(vpc, "10.0.3.4", "6.6.6.6, 1.2.3.4"), "1.2.3.4");
    assert_string_equal(client(vpc, "10.0.3.4", "6.6.6.6, 1.2.3.4, 10.0.9.9"), "1.2.3.4");
    /* A peer that is no trusted proxy: its header means nothing. */
    assert_string_equal(client(vpc, "10.1.3.4", "1.2.3.4"), "10.1.3.4");
    /* Every entry trusted: the leftmost. */
    assert_string_equal(client(vpc, "10.0.3.4", "10.0.0.1"), "10.0.0.1");
    assert_string_equal(client("10.0.0.7, 192.168.1.0/24", "192.168.1.200", "10.0.0.7, 8.8.8.8"),
                        "8.8.8.8");
    assert_string_equal(client("uniquelocal", "172.20.0.2", "9.9.9.9, 172.31.255.1"), "9.9.9.9");
    assert_string_equal(client("loopback", "127.0.0.1", "9.9.9.9"), "9.9.9.9");
    assert_string_equal(client("loopback,linklocal", "169.254.1.1", "9.9.9.9"), "9.9.9.9");
    assert_string_equal(client("10.0.0.0/9", "10.127.0.1", "9.9.9.9"), "9.9.9.9");
    assert_string_equal(client("10.0.0.0/9", "10.128.0.1", "9.9.9.9"), "10.128.0.1");
    assert_string_equal(client("0.0.0.0/0", "4.4.4.4", "9.9.9.9"), "9.9.9.9");
}

static void test_ipv6(void **state)
{
    (void)state;
    assert_string_equal(client("fd00::/8", "fd12::1", "2001:db8::7"), "2001:db8::7");
    assert_string_equal(client("::1", "::1", "2001:db8::7, ::1"), "2001:db8::7");
    assert_string_equal(client("fd00::/8", "fe80::1", "2001:db8::7"), "fe80::1");
    /* An IPv4 rule does not match an IPv6 peer. */
    assert_string_equal(client("10.0.0.0/8", "::1", "1.2.3.4"), "::1");
}

static void test_not_addresses(void **state)
{
    (void)state;
    /* The walk stops at an entry that is no address: the one right of it. */
    assert_string_equal(client("true", "10.0.0.5", "evil, 1.2.3.4"), "1.2.3.4");
    assert_string_equal(client("true", "10.0.0.5", "1.2.3.4, unknown"), "10.0.0.5");
    assert_string_equal(client("1", "10.0.0.5", "1.2.3.4,"), "10.0.0.5");
    assert_string_equal(client("true", "10.0.0.5", ",,,"), "10.0.0.5");
    assert_string_equal(client("2", "10.0.0.5", "1.2.3.4:80, 5.6.7.8"), "5.6.7.8");
}

static void test_refused_values(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "maybe", "33", "100", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x", "10.0.0",
        "10.0.0.0/8,", ",10.0.0.0/8", "1.2.3.4, , 5.6.7.8", "-1", "1.5",
    };
    struct trust_proxy tp;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *err = trust_proxy_parse(bad[i], &tp);
        if (!err)
            fail_msg("TRUST_PROXY=%s was accepted", bad[i]);
    }
    char many[1024] = "";
    for (int i = 0; i < 33; i++)
        strcat(many, "10.0.0.1,");
    strcat(many, "10.0.0.2");
    assert_non_null(trust_proxy_parse(many, &tp));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_false_ignores_header),
        cmocka_unit_test(test_true_takes_leftmost),
        cmocka_unit_test(test_hops),
        cmocka_unit_test(test_cidrs),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_not_addresses),
        cmocka_unit_test(test_refused_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
