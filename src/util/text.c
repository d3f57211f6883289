/* text.c — see text.h. */
#include "util/text.h"

#include <stdlib.h>
#include <string.h>

void text_add(struct text *t, const char *p, size_t n)
{
    if (t->failed)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *s = realloc(t->s, cap);
        if (!s) {
            t->failed = true;
            return;
        }
        t->s = s, t->cap = cap;
    }
    memcpy(t->s + t->len, p, n);
    t->len += n;
    t->s[t->len] = '\0';
}

void text_str(struct text *t, const char *p) { text_add(t, p, strlen(p)); }

char *text_take(struct text *t)
{
    if (t->failed || !t->s) {
        free(t->s);
        return t->failed ? NULL : strdup("");
    }
    return t->s;
}
