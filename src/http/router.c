/* router.c — see router.h. Linear over a table of a few dozen rows: cheaper
 * than any index at this size, and the table stays readable. */
#include "http/router.h"

#include <string.h>

/* Does path match pattern? Sets the parameter segment for "/:" patterns. */
static int path_matches(const char *pattern, const char *path,
                        const char **param, size_t *param_len)
{
    const char *colon = strstr(pattern, "/:");
    if (!colon)
        return strcmp(pattern, path) == 0;
    size_t head = (size_t)(colon - pattern) + 1;          /* keeps the '/' */
    if (strncmp(pattern, path, head) != 0)
        return 0;
    const char *tail = strchr(colon + 1, '/');             /* the pattern after the name */
    const char *seg = path + head;
    const char *seg_end = strchr(seg, '/');
    size_t len = seg_end ? (size_t)(seg_end - seg) : strlen(seg);
    if (len == 0 || strcmp(seg + len, tail ? tail : "") != 0)
        return 0;
    *param = seg;
    *param_len = len;
    return 1;
}

enum route_match route_find(const struct route *routes, size_t n,
                            const char *method, const char *path,
                            const struct route **found,
                            const char **param, size_t *param_len)
{
    enum route_match result = ROUTE_NOT_FOUND;
    for (size_t i = 0; i < n; i++) {
        const char *p = NULL;
        size_t plen = 0;
        if (!path_matches(routes[i].pattern, path, &p, &plen))
            continue;
        if (strcmp(routes[i].method, method) != 0) {
            result = ROUTE_WRONG_METHOD;
            continue;
        }
        *found = &routes[i];
        *param = p;
        *param_len = plen;
        return ROUTE_FOUND;
    }
    return result;
}
