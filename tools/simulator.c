/* simulator.c — plays a live-event audience against a running usher and
 * checks usher's counts against the audience's own truth.
 *
 * This file is the root of a tree; it owns one of each part and wires them:
 *
 *   simulator.c      phases of a run, the tick, setup calls
 *   ├─ sim_audience  the viewers: timer wheel, fates, their requests and answers
 *   ├─ sim_check     usher's /api/stats and Redis against the truth; memory
 *   └─ leaves used by both:
 *        sim_http    connection pool and queues; a callback per request
 *        sim_truth   who the simulator believes is seated
 *        sim_report  counters, tallies of what each check ran on, output
 *        sim_clock   the run's clock and dice
 *        sim_opts    flags, --help, the join curve
 *
 * The audience and the checks never call each other: they meet in the
 * truth. A run goes through phases, all driven by one 100 ms tick:
 *
 *   setup     (before the loop, synchronous) usher healthy, the publisher
 *             goes live (POST /api/token/publisher), stages created up to
 *             --stages, Redis baseline and memory baseline read.
 *   active    viewers join along the curve, heartbeat, meet their fates;
 *             a range checkpoint every --checkpoint seconds.
 *   settle    no more joins, leaves or vanishes; seated viewers keep
 *             heartbeating. Waits HEARTBEAT_TIMEOUT + 2 x CLEANUP_INTERVAL,
 *             and until nothing is in flight and every grace has run out.
 *   check     the exact check (sim_check.c).
 *   finale    everyone leaves (or goes silent), then the exact check again
 *             expecting none of ours seated.
 *
 * Every wait is bounded: --max-run stops a run that does not finish, and
 * the run then fails. The first Ctrl-C ends the active phase early; the
 * second stops at once. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_audience.h"
#include "sim_check.h"

enum phase { P_SETUP, P_ACTIVE, P_SETTLE, P_CHECK_SETTLED, P_FINALE, P_CHECK_END, P_DONE };

static const char *const PHASE_NAMES[] = {"setup", "active", "settle", "check", "finale", "check", "done"};

struct sim {
    struct opts o;
    struct sim_clock clock;
    struct event_base *base;
    struct event *tick_ev, *sigint_ev;
    struct http_pool *http;
    struct truth truth;
    struct report rep;
    struct audience aud;
    struct checker chk;
    enum phase phase;
    uint32_t phase_start_ms, next_report_ms, next_check_ms, next_mem_ms;
    int sigints;
    bool timed_out;
    struct memsample mem_base, mem_peak, mem_settled;
    bool mem_settled_set;
};

/* ---- setup --------------------------------------------------------------- */

static void print_refusal(const char *what, int status, json_t *doc)
{
    json_t *err = json_object_get(doc, "error");
    const char *code = json_string_value(json_object_get(err, "code"));
    const char *message = json_string_value(json_object_get(err, "message"));
    fprintf(stderr, "simulator: %s answered %d %s %s\n", what, status, code ? code : "",
            message ? message : status ? "" : "(no answer)");
}

static int publisher_live(struct sim *s)
{
    char body[256];
    json_t *doc;
    snprintf(body, sizeof body, "{\"userId\":\"%spublisher\"}", s->o.user_prefix);
    int st = http_sync(s->http, "POST", "/api/token/publisher", body, &doc);
    const char *arn = json_string_value(json_object_get(json_object_get(doc, "data"), "stageArn"));
    if (st != 200 || !arn) {
        print_refusal("POST /api/token/publisher", st, doc);
        json_decref(doc);
        return -1;
    }
    truth_stage(&s->truth, arn);
    printf("publisher live; master stage %s\n", arn);
    json_decref(doc);
    return 0;
}

/* Creates stages up to --stages; have is how many exist. */
static void add_stages(struct sim *s, int have)
{
    for (int made = 0; have < s->o.stages; made++) {
        char body[200];
        json_t *doc;
        snprintf(body, sizeof body, "{\"name\":\"%sstage-%d\"}", s->o.user_prefix, made);
        int st = http_sync(s->http, "POST", "/api/stage", body, &doc);
        if (st != 201) {
            print_refusal("POST /api/stage", st, doc);
            json_decref(doc);
            break;   /* run with what there is; STAGE_FULL answers will show it */
        }
        truth_stage(&s->truth, json_string_value(json_object_get(
                              json_object_get(json_object_get(doc, "data"), "stage"), "stageArn")));
        json_decref(doc);
        have++;
    }
    printf("stages: %d\n", have);
}

/* Learns the stages there are and creates more up to --stages. */
static int ensure_stages(struct sim *s)
{
    json_t *doc;
    int st = http_sync(s->http, "GET", "/api/stage/list", NULL, &doc);
    json_t *list = json_object_get(json_object_get(doc, "data"), "stages");
    if (st != 200 || !json_is_array(list)) {
        print_refusal("GET /api/stage/list", st, doc);
        json_decref(doc);
        return -1;
    }
    size_t i;
    json_t *stage;
    json_array_foreach(list, i, stage)
        truth_stage(&s->truth, json_string_value(json_object_get(stage, "stageArn")));
    int have = (int)json_array_size(list);
    json_decref(doc);
    add_stages(s, have);
    return 0;
}

static int setup(struct sim *s)
{
    json_t *doc;
    int st = http_sync(s->http, "GET", "/api/health", NULL, &doc);
    json_decref(doc);
    if (st != 200) {
        fprintf(stderr, "simulator: usher at %s:%d is not healthy (GET /api/health answered %d)\n",
                s->o.host, s->o.port, st);
        return -1;
    }
    if (publisher_live(s) || ensure_stages(s) || check_baseline(&s->chk))
        return -1;
    check_memory(&s->chk, s->o.usher_pid, &s->mem_base);
    return 0;
}

/* ---- phases ---------------------------------------------------------------- */

static void enter(struct sim *s, enum phase p, uint32_t now)
{
    s->phase = p;
    s->phase_start_ms = now;
    s->aud.active = p == P_ACTIVE;
}

static uint32_t settle_ms(const struct sim *s)
{
    return (uint32_t)((s->o.timeout + 2 * s->o.cleanup) * 1000);
}

static bool quiet(const struct sim *s)
{
    const struct truth *t = &s->truth;
    return t->joining == 0 && t->leaving == 0 && t->vanished == 0 && !s->chk.pending;
}

static void start_exact(struct sim *s, const char *label, enum phase next, uint32_t now)
{
    check_start(&s->chk, label, true);
    enter(s, next, now);
}

static void after_settled_check(struct sim *s, uint32_t now)
{
    if (s->o.finale == FINALE_STAY) {
        enter(s, P_DONE, now);
        return;
    }
    printf("== finale: every seated viewer %s\n",
           s->o.finale == FINALE_LEAVE ? "leaves" : "goes silent; waiting for expiry");
    enter(s, P_FINALE, now);
}

static void step_phase(struct sim *s, uint32_t now)
{
    switch (s->phase) {
    case P_ACTIVE:
        if (now >= s->aud.active_end_ms || s->sigints > 0) {
            printf("== activity stopped at %.1f s; settling at least %.0f s (heartbeats go on)\n",
                   now / 1000.0, settle_ms(s) / 1000.0);
            enter(s, P_SETTLE, now);
        }
        return;
    case P_SETTLE:
        if (now - s->phase_start_ms >= settle_ms(s) && quiet(s)) {
            check_memory(&s->chk, s->o.usher_pid, &s->mem_settled);
            s->mem_settled_set = true;
            start_exact(s, "settled", P_CHECK_SETTLED, now);
        }
        return;
    case P_CHECK_SETTLED:
        if (!s->chk.pending)
            after_settled_check(s, now);
        return;
    case P_FINALE:
        if (s->truth.seated == 0 && quiet(s) &&
            (s->o.finale == FINALE_LEAVE || now - s->phase_start_ms >= settle_ms(s)))
            start_exact(s, "after the finale", P_CHECK_END, now);
        return;
    case P_CHECK_END:
        if (!s->chk.pending)
            enter(s, P_DONE, now);
        return;
    default:
        return;
    }
}

static void report_now(struct sim *s)
{
    struct progress p = {.now_us = clock_us(&s->clock), .phase = PHASE_NAMES[s->phase],
                         .seated = s->truth.seated, .vanished = s->truth.vanished,
                         .queued = http_queued(s->http), .inflight = http_inflight(s->http)};
    struct memsample m;
    truth_range(&s->truth, &p.min, &p.max);
    check_memory(&s->chk, s->o.usher_pid, &m);
    p.usher_kb = m.usher_kb, p.redis_bytes = m.redis_bytes;
    report_progress(&s->rep, &p);
}

static void periodic(struct sim *s, uint32_t now)
{
    if (now >= s->next_mem_ms) {
        s->next_mem_ms = now + 1000;
        if (s->truth.seated >= s->mem_peak.seated && s->truth.seated > 0)
            check_memory(&s->chk, s->o.usher_pid, &s->mem_peak);
    }
    if (now >= s->next_report_ms) {
        s->next_report_ms = now + (uint32_t)(s->o.report_every * 1000);
        report_now(s);
    }
    if (s->phase == P_ACTIVE && s->o.checkpoint_every > 0 && now >= s->next_check_ms &&
        !s->chk.pending) {
        s->next_check_ms = now + (uint32_t)(s->o.checkpoint_every * 1000);
        char label[32];
        snprintf(label, sizeof label, "t=%.0fs", now / 1000.0);
        check_start(&s->chk, label, false);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct sim *s = arg;
    uint32_t now = clock_ms(&s->clock);
    audience_tick(&s->aud, now);
    if (s->phase == P_FINALE)
        audience_finale_scan(&s->aud, s->o.finale == FINALE_LEAVE);
    http_pump(s->http);   /* start what the tick queued (no answer callback is running) */
    step_phase(s, now);
    periodic(s, now);
    check_retry_due(&s->chk, now);
    truth_changed(&s->truth);
    if (now >= s->o.max_run * 1000 && s->phase != P_DONE) {
        printf("== the run went past --max-run %.0f s in phase %s; stopping\n", s->o.max_run,
               PHASE_NAMES[s->phase]);
        s->timed_out = true;
        enter(s, P_DONE, now);
    }
    if (s->phase == P_DONE)
        event_base_loopbreak(s->base);
}

static void on_sigint(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct sim *s = arg;
    if (++s->sigints >= 2) {
        printf("== interrupted\n");
        s->timed_out = true;
        event_base_loopbreak(s->base);
    }
}

/* ---- main ---------------------------------------------------------------- */

static int init(struct sim *s)
{
    const struct opts *o = &s->o;
    clock_restart(&s->clock);
    dice_seed(&s->clock, o->seed);
    s->base = event_base_new();
    if (s->base)
        s->http = http_pool_new(s->base, &s->clock, o->host, o->port, o->api_key, o->connections,
                                o->join_inflight, o->request_timeout);
    if (!s->http || truth_init(&s->truth, o->viewers, o->user_prefix) != 0 ||
        audience_init(&s->aud, o, &s->clock, s->http, &s->truth, &s->rep) != 0) {
        fprintf(stderr, "simulator: out of memory or no event base\n");
        return -1;
    }
    s->rep.tally[T_CHECKPOINT].on = o->checkpoint_every > 0;
    s->rep.tally[T_CHECKPOINT].has_plan = true;
    s->rep.tally[T_EXACT].on = s->rep.tally[T_EXACT].has_plan = true;
    s->tick_ev = event_new(s->base, -1, EV_PERSIST, on_tick, s);
    s->sigint_ev = evsignal_new(s->base, SIGINT, on_sigint, s);
    if (!s->tick_ev || !s->sigint_ev || event_add(s->sigint_ev, NULL) != 0)
        return -1;
    return check_init(&s->chk, o, &s->clock, s->http, &s->truth, &s->rep);
}

static void run(struct sim *s)
{
    const struct opts *o = &s->o;
    printf("== %u viewers over %.0f s, burst %.0f s, heartbeat %g s, activity %g s, finale %s; users %s0..\n",
           o->viewers, ramp_end_s(o), s->aud.burst_end_ms / 1000.0, o->heartbeat, o->duration,
           o->finale == FINALE_LEAVE ? "leave" : o->finale == FINALE_VANISH ? "vanish" : "stay",
           o->user_prefix);
    fflush(stdout);
    clock_restart(&s->clock);   /* the join curve starts now, not at setup */
    s->rep.last_report_us = 0;
    s->next_report_ms = (uint32_t)(o->report_every * 1000);
    s->next_check_ms = (uint32_t)(o->checkpoint_every * 1000);
    /* The settled check, and the one after the finale unless everyone stays. */
    s->rep.tally[T_EXACT].planned = o->finale == FINALE_STAY ? 1 : 2;
    enter(s, P_ACTIVE, 0);
    struct timeval tick = {0, TICK_MS * 1000};
    event_add(s->tick_ev, &tick);
    event_base_dispatch(s->base);
}

static void summarize(struct sim *s)
{
    const struct opts *o = &s->o;
    char line[600];
    int n = snprintf(line, sizeof line, "run: %u viewers, ramp", o->viewers);
    for (int i = 0; i < o->nramp && n < (int)sizeof line - 40; i++)
        n += snprintf(line + n, sizeof line - (size_t)n, "%s%.0f@%g", i ? "," : " ", o->ramp[i].n,
                      o->ramp[i].t);
    snprintf(line + n, sizeof line - (size_t)n,
             ", heartbeat %g s, timeout %g s, cleanup %g s, duration %g s, %d connections, seed %llu",
             o->heartbeat, o->timeout, o->cleanup, o->duration, o->connections,
             (unsigned long long)o->seed);
    struct summary sum = {.run = line, .net_errors = http_net_errors(s->http),
                          .net_error_names = HTTP_NET_ERROR_NAMES, .n_net_errors = HTTP_NET_ERRORS,
                          .burst_s = s->aud.burst_end_ms / 1000.0, .peak_seated = s->truth.peak,
                          .mem_base = s->mem_base, .mem_peak = s->mem_peak,
                          .mem_settled = s->mem_settled, .mem_settled_set = s->mem_settled_set};
    audience_fates(&s->aud, sum.fates);
    report_summary(&s->rep, &sum);
}

static void cleanup(struct sim *s)
{
    check_free(&s->chk);
    http_pool_free(s->http);
    audience_free(&s->aud);
    truth_free(&s->truth);
    report_free(&s->rep);
    if (s->tick_ev)
        event_free(s->tick_ev);
    if (s->sigint_ev)
        event_free(s->sigint_ev);
    if (s->base)
        event_base_free(s->base);
    free(s);
}

int main(int argc, char **argv)
{
    struct sim *s = calloc(1, sizeof *s);
    if (!s)
        return 2;
    int rc = opts_parse(&s->o, argc, argv);
    if (rc != 0) {
        free(s);
        return rc > 0 ? 0 : 2;
    }
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (init(s) != 0 || setup(s) != 0) {
        cleanup(s);
        return 2;
    }
    run(s);
    summarize(s);
    rc = report_verdict(&s->rep, s->timed_out);
    cleanup(s);
    return rc;
}
