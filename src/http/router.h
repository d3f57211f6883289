/* router.h — mapping (method, path) to a handler.
 *
 * Routes are a plain table (src/routes/routes.c). A pattern is an exact
 * path, or a path with one "/:" + name segment, which matches one
 * non-empty segment (a percent-encoded stage ARN has no '/'), optionally
 * followed by a fixed tail ("/api/stage/:stageArn/participants"). The
 * first matching row wins, so exact paths go before patterns that could
 * swallow them. */
#ifndef USHER_HTTP_ROUTER_H
#define USHER_HTTP_ROUTER_H

#include <stddef.h>

struct request;
typedef void (*route_handler)(struct request *rq);

struct route {
    const char *method;             /* "GET", "POST", "PUT", "DELETE" */
    const char *pattern;
    route_handler handler;
};

enum route_match { ROUTE_FOUND, ROUTE_WRONG_METHOD, ROUTE_NOT_FOUND };

/* On ROUTE_FOUND sets *found and, for a pattern, the raw (still encoded)
 * segment in *param / *param_len (else NULL / 0). */
enum route_match route_find(const struct route *routes, size_t n,
                            const char *method, const char *path,
                            const struct route **found,
                            const char **param, size_t *param_len);

#endif
