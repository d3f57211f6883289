/* embedded.c — see embedded.h. */
#include "store/embedded.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define START_WAIT_MS 5000
#define STOP_WAIT_MS 5000

static void sleep_10ms(void) { nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL); }

/* Whether something accepts connections on the unix socket at path (a
 * file left by an earlier run refuses them). */
static bool socket_answers(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path)
        return false;
    memcpy(a.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* Waits up to START_WAIT_MS for redis-server to listen, so usher's first
 * connection finds it. Returns -1 with err filled when it exited first
 * (e.g. not installed); 0 when it listens, or still loads its data (the
 * connection retries). */
static int wait_listening(pid_t pid, const char *socket_path, char *err, size_t errlen)
{
    for (int waited = 0; waited < START_WAIT_MS; waited += 10) {
        int status;
        if (socket_answers(socket_path))
            return 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            snprintf(err, errlen, "the embedded redis-server exited (%s %d) before it listened on %s",
                     WIFEXITED(status) ? "status" : "signal",
                     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), socket_path);
            return -1;
        }
        sleep_10ms();
    }
    log_warn("embedded redis-server not listening after %d ms; connecting meanwhile", START_WAIT_MS);
    return 0;
}

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
        /* A process group of its own: a terminal's Ctrl-C (SIGINT to the
         * foreground group) reaches usher only, which stops this redis-server
         * itself after its own shutdown (the parent sets it too, so no
         * signal finds the child still in usher's group after fork returns). */
        setpgid(0, 0);
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
    setpgid(pid, pid);              /* fails (EACCES) once it ran exec: then it did it */
    if (wait_listening(pid, socket_path, err, errlen) != 0)
        return -1;
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
        sleep_10ms();
    }
    log_warn("embedded redis-server did not stop in time; killing it");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}
