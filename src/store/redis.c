/* redis.c — see redis.h.
 *
 * Life of the connection: connect → (AUTH) → SELECT → FCALL usher_version
 * → (FUNCTION LOAD REPLACE when the library is missing or older) → PING;
 * the PING's answer makes it ready. Those hand-shake commands are
 * pipelined right after the connect call and watched like any other, which
 * is also how a connect that hangs (a stopped Redis still completes TCP
 * hand-shakes from its backlog) gets noticed. Any failure
 * frees the context and arms the reconnect timer; the backoff doubles from
 * 100 ms to 2 s.
 *
 * Each command in flight is a `struct pending`, owned by hiredis's reply
 * queue. The deadline is watched per connection, not per command: a
 * watchdog drops the connection when commands are waiting and nothing has
 * come back from Redis for REDIS_TIMEOUT_MS, and freeing the context hands
 * every waiting command back with an error. Under a burst a command may
 * queue inside usher for longer than the deadline while Redis answers
 * steadily; that is progress, and no reason to give up the connection. */
#include "store/redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>

#include "config/config.h"
#include "util/clock.h"
#include "util/log.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define WATCHDOG_MS 50

struct redis {
    struct event_base *base;
    const struct config *cfg;
    redisAsyncContext *ac;          /* NULL while disconnected */
    bool ready;
    bool closing;
    const char *library;            /* the function library's code */
    long long version;              /* its version (usher_version) */
    redis_ready_fn on_ready;
    void *ready_arg;
    struct event *reconnect_timer;
    struct event *watchdog;
    size_t in_flight;               /* commands sent on this connection, unanswered */
    int64_t last_progress_us;       /* last reply, or first send into an idle connection */
    int backoff_ms;
    unsigned failures;              /* consecutive, for quieter logs */
    char last_error[160];
};

struct pending {
    struct redis *r;
    redis_reply_fn fn;
    void *arg;
    struct event *later;            /* for a command refused before sending */
    char why[160];
};

static void connect_now(struct redis *r);
static void drop_connection(struct redis *r, const char *why);

static void set_error(struct redis *r, const char *why)
{
    snprintf(r->last_error, sizeof r->last_error, "%s", why);
}

/* ---- pending commands ------------------------------------------------ */

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    struct pending *p = privdata;
    struct redis *owner = p->r;
    redisReply *r = reply;
    if (r) {
        owner->in_flight--;
        owner->last_progress_us = clock_mono_us();
    }
    /* Someone flushed the functions (FUNCTION FLUSH, or a failover to a
     * replica without them): this request fails like any Redis trouble,
     * and a fresh connection loads the library again. */
    bool library_lost = owner->ready && r && r->type == REDIS_REPLY_ERROR &&
                        strstr(r->str, "Function not found") != NULL;
    p->fn(p->arg, library_lost ? NULL : reply,
          library_lost ? "redis lost usher's functions" : reply ? NULL : "redis connection lost");
    free(p);
    if (library_lost)
        drop_connection(owner, "redis lost usher's functions; reloading");
}

/* Redis has had commands waiting and sent nothing back for the deadline:
 * drop the connection, which fails them all, and reconnect. Bytes already
 * in the socket count as progress (the loop may simply not have read them
 * yet, busy with a burst). */
static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct redis *r = arg;
    if (!r->ac || r->in_flight == 0)
        return;
    int unread = 0;
    int64_t now = clock_mono_us();
    if (ioctl(r->ac->c.fd, FIONREAD, &unread) == 0 && unread > 0)
        r->last_progress_us = now;
    if (now - r->last_progress_us >= r->cfg->redis_timeout_ms * 1000)
        drop_connection(r, "redis did not answer in time");
}

static void fail_later_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct pending *p = arg;
    p->fn(p->arg, NULL, p->why);
    event_free(p->later);
    free(p);
}

static void send_argv(struct redis *r, bool handshake, redis_reply_fn fn, void *arg,
                      int argc, const char **argv, const size_t *argvlen)
{
    struct pending *p = calloc(1, sizeof *p);
    if (!p) {
        fn(arg, NULL, "out of memory");
        return;
    }
    p->r = r;
    p->fn = fn;
    p->arg = arg;
    bool usable = r->ac && (r->ready || handshake);
    if (usable && redisAsyncCommandArgv(r->ac, on_reply, p, argc, argv, argvlen) == REDIS_OK) {
        if (r->in_flight++ == 0)
            r->last_progress_us = clock_mono_us();
        return;
    }
    /* Not connected: answer on the next loop turn, never from inside the
     * call. The message is copied, as the connection may be gone by then. */
    snprintf(p->why, sizeof p->why, "%s", r->last_error[0] ? r->last_error : "redis unavailable");
    p->later = evtimer_new(r->base, fail_later_cb, p);
    struct timeval now = {0, 0};
    evtimer_add(p->later, &now);
}

void redis_command(struct redis *r, redis_reply_fn fn, void *arg, int argc,
                   const char **argv, const size_t *argvlen)
{
    send_argv(r, false, fn, arg, argc, argv, argvlen);
}

/* ---- connection life --------------------------------------------------- */

static void reconnect_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    connect_now(arg);
}

static void schedule_reconnect(struct redis *r)
{
    if (r->closing || evtimer_pending(r->reconnect_timer, NULL))
        return;
    struct timeval tv = {r->backoff_ms / 1000, (r->backoff_ms % 1000) * 1000};
    evtimer_add(r->reconnect_timer, &tv);
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

static void note_failure(struct redis *r, const char *why)
{
    bool was_ready = r->ready;
    r->ready = false;
    set_error(r, why);
    /* Say it once when it starts, then every tenth try, so an outage does
     * not flood the log but a start-up without Redis still says why. */
    if (was_ready || r->failures % 10 == 0)
        log_warn("redis: %s; retrying", why);
    r->failures++;
    schedule_reconnect(r);
}

static void drop_connection(struct redis *r, const char *why)
{
    redisAsyncContext *ac = r->ac;
    if (!ac)
        return;
    r->ac = NULL;
    r->in_flight = 0;
    note_failure(r, why);
    redisAsyncFree(ac);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct redis *r = ac->data;
    if (status != REDIS_OK) {
        char why[160];
        snprintf(why, sizeof why, "cannot connect: %s", ac->errstr);
        r->ac = NULL;              /* hiredis frees the context itself */
        r->in_flight = 0;
        note_failure(r, why);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct redis *r = ac->data;
    if (r->ac != ac)                /* we freed it ourselves */
        return;
    r->ac = NULL;
    r->in_flight = 0;
    note_failure(r, status == REDIS_OK ? "connection closed" : ac->errstr);
}

static void handshake_reply(void *arg, redisReply *reply, const char *error)
{
    struct redis *r = arg;
    if (error)
        return;                     /* the failure path has already run */
    if (reply->type == REDIS_REPLY_ERROR) {
        char why[160];
        snprintf(why, sizeof why, "set-up refused: %s", reply->str);
        drop_connection(r, why);
    }
}

static void ping_reply(void *arg, redisReply *reply, const char *error)
{
    struct redis *r = arg;
    if (error || reply->type == REDIS_REPLY_ERROR)
        return;
    if (!r->ac)
        return;
    if (r->failures > 0)
        log_info("redis: connected");
    r->ready = true;
    r->failures = 0;
    r->backoff_ms = BACKOFF_MIN_MS;
    r->last_error[0] = '\0';
    if (r->on_ready)
        r->on_ready(r->ready_arg);
}

/* The library Redis has is missing (an error), older, ours or newer: load
 * ours unless it is ours or newer, then PING to become ready. A newer one
 * is kept (a process of a newer usher loaded it), with a warning. */
static void version_reply(void *arg, redisReply *reply, const char *error)
{
    struct redis *r = arg;
    if (error)
        return;                     /* the failure path has already run */
    long long loaded = reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
    if (loaded > r->version)
        log_warn("redis: function library version %lld is newer than this usher's %lld; kept",
                 loaded, r->version);
    if (loaded < r->version) {
        if (loaded > 0)
            log_info("redis: replacing function library version %lld with %lld", loaded, r->version);
        const char *load[] = {"FUNCTION", "LOAD", "REPLACE", r->library};
        send_argv(r, true, handshake_reply, r, 4, load, NULL);
    }
    const char *ping[] = {"PING"};
    send_argv(r, true, ping_reply, r, 1, ping, NULL);
}

static void send_handshake(struct redis *r)
{
    const struct config *c = r->cfg;
    if (c->redis_password[0]) {
        const char *av[] = {"AUTH", c->redis_user[0] ? c->redis_user : c->redis_password,
                            c->redis_password};
        send_argv(r, true, handshake_reply, r, c->redis_user[0] ? 3 : 2, av, NULL);
    }
    char db[16];
    snprintf(db, sizeof db, "%d", c->redis_db);
    const char *sel[] = {"SELECT", db};
    send_argv(r, true, handshake_reply, r, 2, sel, NULL);
    const char *version[] = {"FCALL", "usher_version", "0"};
    send_argv(r, true, version_reply, r, 3, version, NULL);
}

static void connect_now(struct redis *r)
{
    const struct config *c = r->cfg;
    redisAsyncContext *ac = c->redis_socket[0]
        ? redisAsyncConnectUnix(c->redis_socket)
        : redisAsyncConnect(c->redis_host, c->redis_port);
    if (!ac || ac->err) {
        char why[160];
        snprintf(why, sizeof why, "cannot connect: %s", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        note_failure(r, why);
        return;
    }
    ac->data = r;
    redisLibeventAttach(ac, r->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    send_handshake(r);
}

struct redis *redis_new(struct event_base *base, const struct config *cfg,
                        const char *library, long long version,
                        redis_ready_fn on_ready, void *ready_arg)
{
    struct redis *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->base = base;
    r->cfg = cfg;
    r->library = library;
    r->version = version;
    r->on_ready = on_ready;
    r->ready_arg = ready_arg;
    r->backoff_ms = BACKOFF_MIN_MS;
    set_error(r, "connecting");
    r->reconnect_timer = evtimer_new(base, reconnect_cb, r);
    r->watchdog = event_new(base, -1, EV_PERSIST, on_watchdog, r);
    if (!r->reconnect_timer || !r->watchdog) {
        redis_free(r);
        return NULL;
    }
    struct timeval every = {0, WATCHDOG_MS * 1000};
    event_add(r->watchdog, &every);
    connect_now(r);
    return r;
}

void redis_free(struct redis *r)
{
    if (!r)
        return;
    r->closing = true;
    if (r->ac) {
        redisAsyncContext *ac = r->ac;
        r->ac = NULL;
        redisAsyncFree(ac);
    }
    if (r->reconnect_timer)
        event_free(r->reconnect_timer);
    if (r->watchdog)
        event_free(r->watchdog);
    free(r);
}

bool redis_is_ready(const struct redis *r) { return r->ready; }

const char *redis_last_error(const struct redis *r)
{
    return r->ready ? "" : r->last_error;
}
