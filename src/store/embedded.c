/* embedded.c — see embedded.h. */
#include "store/embedded.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define STOP_WAIT_MS 5000

pid_t embedded_redis_start(const char *dir, const char *socket_path,
                           char *err, size_t errlen)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "DATA_DIR: cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "cannot start redis-server: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", socket_path,
               "--unixsocketperm", "700", "--dir", dir, "--appendonly", "yes",
               "--daemonize", "no", "--loglevel", "warning", (char *)NULL);
        fprintf(stderr, "cannot run redis-server: %s (install the redis-server package)\n",
                strerror(errno));
        _exit(127);
    }
    log_info("embedded redis-server started (pid %d, socket %s)", (int)pid, socket_path);
    return pid;
}

void embedded_redis_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (int waited = 0; waited < STOP_WAIT_MS; waited += 10) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    log_warn("embedded redis-server did not stop in time; killing it");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}
