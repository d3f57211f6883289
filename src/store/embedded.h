/* embedded.h — a redis-server of usher's own, for the zero-set-up default
 * (REDIS_EMBEDDED=true, as `make run` uses): usher starts it on a unix
 * socket in DATA_DIR with its data and append-only file there, and stops it
 * on the way out. It runs in a process group of its own, so a terminal's
 * Ctrl-C stops usher only (which then stops it), and it dies with usher
 * (PR_SET_PDEATHSIG) even if usher is killed, so none is left behind. */
#ifndef USHER_STORE_EMBEDDED_H
#define USHER_STORE_EMBEDDED_H

#include <stddef.h>
#include <sys/types.h>

/* Starts redis-server with its socket at socket_path and files in dir, and
 * waits (up to 5 s) until it listens there. Returns its pid, or -1 with err
 * filled (the directory, fork, or redis-server exiting, e.g. not
 * installed). */
pid_t embedded_redis_start(const char *dir, const char *socket_path,
                           char *err, size_t errlen);
/* Asks it to stop (SIGTERM: it writes its files and exits) and waits. */
void embedded_redis_stop(pid_t pid);

#endif
