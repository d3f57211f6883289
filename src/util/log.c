/* log.c — see log.h. The level is process-wide state on purpose: every
 * module logs, and threading a logger through each call would buy nothing. */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/clock.h"

static enum log_level min_level = LOG_INFO;
static const char *const names[] = {"debug", "info", "warn", "error"};

int log_set_level_name(const char *name)
{
    for (int i = 0; i <= LOG_ERROR; i++) {
        if (strcmp(name, names[i]) == 0) {
            min_level = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char when[32];
    clock_iso8601(clock_now_ms(), when, sizeof when);
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s %-5s %s\n", when, names[level], line);
}
