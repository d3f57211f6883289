/* text.h — a string that grows as pieces are added, for text assembled
 * piece by piece (SigV4's canonical request and string to sign). A failed
 * allocation marks it and it takes no more, so a builder adds without
 * checking and looks once at the end. */
#ifndef USHER_UTIL_TEXT_H
#define USHER_UTIL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Start from {0}. s is NUL-terminated once anything was added (NULL
 * before); len excludes the NUL. failed: memory ran out. */
struct text {
    char *s;
    size_t len, cap;
    bool failed;
};

/* Appends n bytes of p (nothing once failed). */
void text_add(struct text *t, const char *p, size_t n);
/* Appends the NUL-terminated p. */
void text_str(struct text *t, const char *p);
/* The string, owned by the caller ("" when nothing was added), or NULL
 * when memory ran out (what was held is freed). t is spent. */
char *text_take(struct text *t);

#endif
