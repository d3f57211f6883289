/* clock.h — wall-clock time in the two forms the API and Redis use:
 * unix milliseconds and ISO-8601 UTC with milliseconds. */
#ifndef USHER_CLOCK_H
#define USHER_CLOCK_H

#include <stddef.h>
#include <stdint.h>

int64_t clock_now_ms(void);
/* Monotonic microseconds, for measuring durations. */
int64_t clock_mono_us(void);
/* "2025-10-19T11:30:00.000Z"; out needs 25 bytes. */
void clock_iso8601(int64_t ms, char *out, size_t outlen);

#endif
