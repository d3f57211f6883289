/* clock.h — wall-clock time in the two forms the API and Redis use:
 * unix milliseconds and ISO-8601 UTC with milliseconds. */
#ifndef USHER_CLOCK_H
#define USHER_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int64_t clock_now_ms(void);
/* Monotonic microseconds, for measuring durations. */
int64_t clock_mono_us(void);
/* "2025-10-19T11:30:00.000Z"; out needs 25 bytes. */
void clock_iso8601(int64_t ms, char *out, size_t outlen);
/* A periodic duty's rule, stated once: true when one is due at now_ms
 * (ms), that is interval_ms > 0 and *last_ms is 0 (never run) or
 * interval_ms old; then *last_ms becomes now_ms. interval_ms 0 = never. */
bool clock_due(int64_t *last_ms, int64_t now_ms, int64_t interval_ms);

#endif
