/* list.c — see list.h. */
#include "util/list.h"

#include <ctype.h>
#include <string.h>

const char *list_each(const char *list, list_item_fn fn, void *arg)
{
    for (const char *p = list; p;) {
        size_t n = strcspn(p, ",");
        const char *start = p, *end = p + n;
        while (start < end && isspace((unsigned char)*start))
            start++;
        while (end > start && isspace((unsigned char)end[-1]))
            end--;
        const char *problem = fn(start, (size_t)(end - start), arg);
        if (problem)
            return problem;
        p = p[n] == ',' ? p + n + 1 : NULL;
    }
    return NULL;
}
