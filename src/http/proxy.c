/* proxy.c — see proxy.h. Addresses are compared as bytes (inet_pton), so
 * 10.0.0.1 and ::ffff:10.0.0.1 are different addresses, as in proxy-addr
 * without its IPv4-mapped folding: list both forms if a proxy uses both. */
#include "http/proxy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "util/list.h"

#define BAD_SPEC "is not true, false, a hop count (1-32) or a comma list of proxy " \
                 "addresses/CIDRs (loopback, linklocal, uniquelocal allowed), at most 32"

/* The names proxy-addr knows, as CIDR lists. */
static const struct {
    const char *name, *cidrs;
} NAMED[] = {
    {"loopback", "127.0.0.1/8,::1/128"},
    {"linklocal", "169.254.0.0/16,fe80::/10"},
    {"uniquelocal", "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"},
};

/* An IP address into family/bytes; false when s is none. */
static bool parse_ip(const char *s, int *family, unsigned char addr[16])
{
    if (inet_pton(AF_INET, s, addr) == 1) {
        *family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, s, addr) == 1) {
        *family = AF_INET6;
        return true;
    }
    return false;
}

static const char *add_cidr(struct trust_proxy *tp, const char *item)
{
    char ip[64];
    const char *slash = strchr(item, '/');
    size_t n = slash ? (size_t)(slash - item) : strlen(item);
    if (n == 0 || n >= sizeof ip || tp->ncidrs == TRUST_PROXY_MAX_CIDRS)
        return BAD_SPEC;
    memcpy(ip, item, n);
    ip[n] = '\0';
    struct trust_cidr *c = &tp->cidrs[tp->ncidrs];
    if (!parse_ip(ip, &c->family, c->addr))
        return BAD_SPEC;
    int max = c->family == AF_INET ? 32 : 128;
    c->bits = max;
    if (slash) {
        char *end;
        long bits = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end || bits < 0 || bits > max)
            return BAD_SPEC;
        c->bits = (int)bits;
    }
    tp->ncidrs++;
    return NULL;
}

/* One list item: a name, an address or a CIDR. */
static const char *add_item(const char *item, size_t len, void *arg)
{
    struct trust_proxy *tp = arg;
    char copy[96];
    if (len == 0 || len >= sizeof copy)
        return BAD_SPEC;
    memcpy(copy, item, len);
    copy[len] = '\0';
    for (size_t i = 0; i < sizeof NAMED / sizeof NAMED[0]; i++)
        if (strcasecmp(copy, NAMED[i].name) == 0)
            return list_each(NAMED[i].cidrs, add_item, tp);
    return add_cidr(tp, copy);
}

const char *trust_proxy_parse(const char *spec, struct trust_proxy *out)
{
    static const char *const no[] = {"", "false", "no", "off", "0"}, *const yes[] = {"true", "yes", "on"};
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (strcasecmp(spec, no[i]) == 0)
            return NULL;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (strcasecmp(spec, yes[i]) == 0) {
            out->mode = TRUST_ALL;
            return NULL;
        }
    if (strspn(spec, "0123456789") == strlen(spec)) {
        long hops = strtol(spec, NULL, 10);
        if (hops < 1 || hops > 32 || strlen(spec) > 2)
            return BAD_SPEC;
        out->mode = TRUST_HOPS;
        out->hops = (int)hops;
        return NULL;
    }
    out->mode = TRUST_CIDRS;
    return list_each(spec, add_item, out);
}

static bool in_cidr(const struct trust_cidr *c, int family, const unsigned char *addr)
{
    if (c->family != family)
        return false;
    int full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->addr, addr, (size_t)full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (c->addr[full] & mask) == (addr[full] & mask);
}

/* Is the address at this hop (0 = the socket's) a proxy we trust? */
static bool trusted(const struct trust_proxy *tp, int hop, const char *ip)
{
    switch (tp->mode) {
    case TRUST_ALL:
        return true;
    case TRUST_HOPS:
        return hop < tp->hops;
    case TRUST_CIDRS: {
        int family;
        unsigned char addr[16];
        if (!parse_ip(ip, &family, addr))
            return false;
        for (size_t i = 0; i < tp->ncidrs; i++)
            if (in_cidr(&tp->cidrs[i], family, addr))
                return true;
        return false;
    }
    default:
        return false;
    }
}

/* The entry of list that ends at *end (exclusive), trimmed, into buf; moves
 * *end left past it and its comma. False when it is no IP address. */
static bool take_entry(const char *list, const char **end, char *buf, size_t len)
{
    const char *e = *end, *s = e;
    while (s > list && s[-1] != ',')
        s--;
    *end = s > list ? s - 1 : list;
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    if (e == s || (size_t)(e - s) >= len)
        return false;
    memcpy(buf, s, (size_t)(e - s));
    buf[e - s] = '\0';
    int family;
    unsigned char addr[16];
    return parse_ip(buf, &family, addr);
}

void trust_proxy_client(const struct trust_proxy *tp, const char *peer, const char *xff,
                        char *out, size_t outlen)
{
    char cur[64], next[64];
    snprintf(cur, sizeof cur, "%s", peer);
    const char *end = xff ? xff + strlen(xff) : NULL;
    for (int hop = 0; xff && end > xff && trusted(tp, hop, cur); hop++) {
        if (!take_entry(xff, &end, next, sizeof next))
            break;
        memcpy(cur, next, sizeof cur);
    }
    snprintf(out, outlen, "%s", cur);
}
