/* log.h — one line per event on stderr, with level and UTC time.
 * The level is set once at start (LOG_LEVEL); lines below it cost one
 * comparison. */
#ifndef USHER_LOG_H
#define USHER_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Returns 0 and sets the level for a known name, -1 otherwise. */
int log_set_level_name(const char *name);
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
