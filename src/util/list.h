/* list.h — comma lists: the one form that TRUST_PROXY, CORS_ORIGINS,
 * WEBHOOK_URLS and WEBHOOK_VIEWER_THRESHOLDS take, and that the HTTP
 * headers Connection and Upgrade use (RFC 9110 §5.6.1). One walk over
 * such a list, so that every reader splits and trims it alike. */
#ifndef USHER_UTIL_LIST_H
#define USHER_UTIL_LIST_H

#include <stddef.h>

/* Told one item: item points into the list (not NUL-terminated), len
 * bytes, white space already trimmed from both ends. NULL to go on, or a
 * problem (a string the caller owns, usually a constant) to stop. */
typedef const char *(*list_item_fn)(const char *item, size_t len, void *arg);

/* Calls fn on each item of the comma list `list`, in order, empty items
 * included ("a,,b" and "" have one with len 0; the caller decides whether
 * that is an error or nothing). White space is what isspace() says.
 * Returns the first problem fn returned, or NULL when fn took them all.
 * list is only read; a NULL list has no items. */
const char *list_each(const char *list, list_item_fn fn, void *arg);

#endif
