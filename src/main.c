/* main.c — usher's start and stop.
 *
 * Start: settings, the signing key, the stage provider and its checks
 * (with STAGE_PROVIDER=aws: the public key in IVS, MASTER_STAGE_ARN; a
 * failure stops the start), then the parts of struct app in the order they
 * depend on each other. The server listens at once; until Redis
 * answers, requests that need it get 503 and the Redis layer keeps retrying
 * (and says why in the log). Each time Redis becomes ready, and every few
 * seconds, the state in Redis is checked, since Redis may have lost its
 * data (stages/recovery.h).
 *
 * Stop (SIGTERM/SIGINT): close the listener, let requests in flight finish
 * (up to DRAIN_LIMIT_MS), then take the parts down in reverse, flushing the
 * loop between steps so every callback still queued runs exactly once. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "config/config.h"
#include "aws/client.h"
#include "http/server.h"
#include "ivs/provider.h"
#include "ivs/shared_limiter.h"
#include "live/live.h"
#include "metrics/metrics.h"
#include "routes/routes.h"
#include "scaler/scaler.h"
#include "stages/endpoints.h"
#include "stages/recovery.h"
#include "store/embedded.h"
#include "routes/stats_cache.h"
#include "store/read_batch.h"
#include "store/store.h"
#include "sweeper/sweeper.h"
#include "tokens/keypair.h"
#include "tokens/signer.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/waiters.h"
#include "webhooks/webhooks.h"

extern char **environ;

#define DRAIN_CHECK_MS 20
#define DRAIN_LIMIT_MS 10000

struct shutdown {
    struct app *app;
    struct event *check;
    int64_t began_ms;
};

static void on_redis_ready(void *arg)
{
    struct app *app = arg;
    if (app->recovery)
        recovery_check(app->recovery);
}

static void redis_observed(void *arg, double seconds, bool error)
{
    metrics_redis(arg, seconds, error);
}

static void drain_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct shutdown *sd = arg;
    int inflight = http_server_inflight(sd->app->http);
    if (inflight == 0 || clock_now_ms() - sd->began_ms > DRAIN_LIMIT_MS) {
        if (inflight)
            log_warn("%d requests still in flight after %d ms; stopping anyway", inflight, DRAIN_LIMIT_MS);
        event_base_loopexit(sd->app->base, NULL);
    }
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct shutdown *sd = arg;
    if (sd->check)
        return;
    log_info("signal %d: no new connections; finishing %d requests in flight", (int)sig,
             http_server_inflight(sd->app->http));
    http_server_stop_accepting(sd->app->http);
    sd->began_ms = clock_now_ms();
    sd->check = event_new(sd->app->base, -1, EV_PERSIST, drain_check, sd);
    struct timeval every = {0, DRAIN_CHECK_MS * 1000};
    event_add(sd->check, &every);
}

/* Runs what is queued on the loop without waiting for anything new. */
static void flush_loop(struct event_base *base)
{
    event_base_loop(base, EVLOOP_NONBLOCK);
}

static void lease_given_up(void *arg)
{
    event_base_loopbreak(arg);
}

static void take_down(struct app *app)
{
    if (app->scaler && app->store) {
        /* Give the scaler lease back so another process need not wait for
         * it to expire; Redis gets its deadline to answer. */
        scaler_stop(app->scaler, lease_given_up, app->base);
        event_base_dispatch(app->base);
    }
    flush_loop(app->base);
    waiters_free(app->waiters);     /* joins still waiting try once more, and are answered */
    app->waiters = NULL;
    if (app->limiter) {             /* before the client: its waiting calls fail next */
        aws_client_set_limiter(aws_provider_client(app->provider), NULL);
        app->limiter->free(app->limiter);
    }
    if (app->provider)              /* IVS calls still running end now, with an error; */
        app->provider->ops->free(app->provider);   /* their follow-ups meet the store */
    app->provider = NULL;
    flush_loop(app->base);
    store_free(app->store);         /* Redis callbacks still due run now, with an error */
    app->store = NULL;
    flush_loop(app->base);
    webhooks_free(app->webhooks);   /* after the store: its claims were answered */
    signer_free(app->signer);       /* and so do signatures not yet made */
    flush_loop(app->base);
    http_server_free(app->http);     /* streams end: their subscriptions too */
    live_free(app->live);
    read_batch_free(app->stats_batch);
    stats_cache_free(app->stats_cache);
    sweeper_free(app->sweeper);
    scaler_free(app->scaler);
    recovery_free(app->recovery);
    token_key_free(app->key);
    endpoints_cache_free(app->endpoints);
    metrics_free(app->metrics);
    free(app->routes);
}

struct prepared {
    struct app *app;
    bool done;
    char *err;
    size_t errlen;
};

static void provider_prepared(void *arg, const char *kid, const char *error)
{
    struct prepared *pr = arg;
    pr->done = true;
    if (error)
        snprintf(pr->err, pr->errlen, "%s", error);
    else if (kid[0] && token_key_set_id(pr->app->key, kid) != 0)
        snprintf(pr->err, pr->errlen, "out of memory");
    event_base_loopbreak(pr->app->base);
}

/* The provider's start-up checks (the public key, MASTER_STAGE_ARN: see
 * ivs/provider.h), run to the end before anything is served. Returns 0,
 * or -1 with the reason in err. */
static int prepare_provider(struct app *app, char *err, size_t errlen)
{
    struct prepared pr = {app, false, err, errlen};
    err[0] = '\0';
    app->provider->ops->prepare(app->provider, token_key_public_pem(app->key), provider_prepared, &pr);
    while (!pr.done && event_base_dispatch(app->base) == 0)
        ;
    return pr.done && !err[0] ? 0 : -1;
}

/* The parts that serve, once the provider is ready; -1 with err set when
 * one cannot be made. */
static int make_parts(struct app *app, char *err, size_t errlen)
{
    const struct config *cfg = app->cfg;
    struct aws_client *client = aws_provider_client(app->provider);
    app->signer = signer_new(app->base, app->key, cfg->signer_threads, (size_t)cfg->signer_precompute);
    app->store = store_new(app->base, cfg, on_redis_ready, app);
    app->metrics = metrics_new();
    if (app->store && app->metrics)
        store_observe(app->store, redis_observed, app->metrics);
    if ((app->routes = malloc(usher_route_count * sizeof *app->routes)))
        app->nroutes = usher_routes_served(cfg, app->routes);
    app->http = app->routes ? http_server_new(app, app->routes, app->nroutes, err, errlen) : NULL;
    app->sweeper = sweeper_new(app);
    app->scaler = scaler_new(app);
    app->waiters = waiters_new(app->base);
    app->recovery = recovery_new(app);
    app->stats_batch = app->store ? read_batch_new(app->store, NULL) : NULL;
    app->stats_cache = stats_cache_new();
    app->endpoints = endpoints_cache_new(2 * (size_t)cfg->max_stages + 16);
    /* IVS calls are paced with every other process, through Redis. */
    if (client && app->store &&
        (app->limiter = shared_limiter_new(app->base, app->store, cfg->aws_pace_margin_ms)))
        aws_client_set_limiter(client, app->limiter);
    app->live = live_new(app);
    int webhooks_failed = 0;
    app->webhooks = webhooks_new(app, &webhooks_failed);
    if (!app->http) {
        if (!app->routes)
            snprintf(err, errlen, "out of memory");
        return -1;                  /* err says why */
    }
    if (!app->signer || !app->store || !app->sweeper || !app->scaler || !app->waiters ||
        !app->recovery || !app->stats_batch || !app->stats_cache || !app->endpoints ||
        (client && !app->limiter) || !app->metrics || !app->live || webhooks_failed) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int key_path(const struct config *cfg, char *out, size_t len)
{
    int n = cfg->token_key_file[0] ? snprintf(out, len, "%s", cfg->token_key_file)
                                   : snprintf(out, len, "%s/token-key.pem", cfg->data_dir);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

/* With REDIS_EMBEDDED, starts our own redis-server and points the settings
 * at its socket. Returns its pid, 0 when not embedded, -1 on failure. */
static pid_t start_embedded_redis(struct config *cfg, char *err, size_t errlen)
{
    if (!cfg->redis_embedded)
        return 0;
    /* redis-server changes to its --dir before it binds, so the socket path
     * must not be relative. */
    char socket_path[4096], *dir = realpath(cfg->data_dir, NULL);
    if (!dir && mkdir(cfg->data_dir, 0700) == 0)
        dir = realpath(cfg->data_dir, NULL);
    if (!dir) {
        snprintf(err, errlen, "DATA_DIR: cannot use %s: %s", cfg->data_dir, strerror(errno));
        return -1;
    }
    snprintf(socket_path, sizeof socket_path, "%s/redis.sock", dir);
    free(dir);
    free(cfg->redis_socket);
    cfg->redis_socket = strdup(socket_path);
    return cfg->redis_socket ? embedded_redis_start(cfg->data_dir, socket_path, err, errlen) : -1;
}

static int run(struct config *cfg)
{
    char err[512];
    struct app app = {.cfg = cfg, .started_ms = clock_now_ms()};
    struct shutdown sd = {.app = &app};
    int status = 1;
    pid_t redis_pid = start_embedded_redis(cfg, err, sizeof err);
    char path[4096];
    if (redis_pid < 0 || key_path(cfg, path, sizeof path) != 0) {
        fprintf(stderr, "usher: %s\n", redis_pid < 0 ? err : "TOKEN_PRIVATE_KEY_FILE: path too long");
        embedded_redis_stop(redis_pid);
        return 1;
    }
    app.key = token_key_open(path, !cfg->token_key_file[0], cfg->public_key_arn, err, sizeof err);
    app.base = event_base_new();
    if (!app.key || !app.base) {
        fprintf(stderr, "usher: %s\n", app.key ? "cannot make an event loop" : err);
        goto out;
    }
    app.provider = provider_new(app.base, cfg, err, sizeof err);
    if (!app.provider || prepare_provider(&app, err, sizeof err) != 0) {
        fprintf(stderr, "usher: %s\n", err);
        goto out;
    }
    if (make_parts(&app, err, sizeof err) != 0) {
        fprintf(stderr, "usher: %s\n", err);
        goto out;
    }
    struct event *sigterm = evsignal_new(app.base, SIGTERM, on_signal, &sd);
    struct event *sigint = evsignal_new(app.base, SIGINT, on_signal, &sd);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    log_info("usher %s listening on %s:%d (stage provider %s, key %s)", USHER_VERSION,
             cfg->api_host, cfg->api_port, app.provider->ops->name, token_key_id(app.key));
    if (!cfg->skip_auth && !cfg->api_secret_key[0])
        log_warn("no API_SECRET_KEY set: only loopback clients are served");
    event_base_dispatch(app.base);
    event_free(sigterm);
    event_free(sigint);
    if (sd.check)
        event_free(sd.check);
    status = 0;
out:
    take_down(&app);
    if (app.base)
        event_base_free(app.base);
    embedded_redis_stop(redis_pid);
    log_info("usher stopped");
    return status;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    struct config cfg;
    char err[512];
    int loaded = config_load(&cfg, argc, argv, environ, err, sizeof err);
    if (loaded != 0) {
        if (loaded < 0)
            fprintf(stderr, "usher: %s\n", err);
        config_free(&cfg);
        return loaded < 0 ? 2 : 0;
    }
    log_set_level_name(cfg.log_level);
    int status = run(&cfg);
    config_free(&cfg);
    return status;
}
