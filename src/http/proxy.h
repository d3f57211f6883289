/* proxy.h — which address is the client's behind proxies (TRUST_PROXY).
 *
 * The setting reads as Express's `trust proxy` (the proxy-addr module):
 *   false / no / off / "" / 0   the socket's address; X-Forwarded-For ignored
 *   true / yes / on             the leftmost X-Forwarded-For entry
 *   N (a hop count, 1-32)       N proxies in front: the Nth entry from the
 *                               right of X-Forwarded-For (1 = the rightmost)
 *   a comma list of addresses, CIDRs and the names loopback, linklocal,
 *   uniquelocal                 walking from the socket's address leftwards
 *                               through X-Forwarded-For, the first address
 *                               that is not a trusted proxy
 * A walk stops at the leftmost entry, and at an entry that is not an IP
 * address (the address right of it is then the client's). Entries a client
 * wrote itself stand left of those the trusted proxies appended, so they
 * are never chosen unless every proxy is trusted (true). */
#ifndef USHER_HTTP_PROXY_H
#define USHER_HTTP_PROXY_H

#include <stdbool.h>
#include <stddef.h>

#define TRUST_PROXY_MAX_CIDRS 32

struct trust_cidr {
    int family;                     /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int bits;
};

struct trust_proxy {
    enum { TRUST_NONE, TRUST_ALL, TRUST_HOPS, TRUST_CIDRS } mode;
    int hops;
    size_t ncidrs;
    struct trust_cidr cidrs[TRUST_PROXY_MAX_CIDRS];
};

/* Parses a TRUST_PROXY value into *out. Returns NULL, or a message saying
 * what the value should be (a static string). */
const char *trust_proxy_parse(const char *spec, struct trust_proxy *out);

/* The client's address from the socket's (peer) and the X-Forwarded-For
 * header (NULL when absent), written to out (NUL-terminated, cut to
 * outlen). */
void trust_proxy_client(const struct trust_proxy *tp, const char *peer, const char *xff,
                        char *out, size_t outlen);

#endif
