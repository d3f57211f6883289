/* simulator.c — plays a live-event audience against a running usher and
 * checks usher's counts against the audience's own truth.
 *
 * A run goes through phases, all driven by one 100 ms tick:
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
 * second stops at once. Sources are listed in sim.h. */
#include "sim.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t sim_now_us(const struct sim *s) { return mono_us() - s->t0_us; }

uint32_t sim_now_ms(const struct sim *s) { return (uint32_t)(sim_now_us(s) / 1000); }

/* splitmix64: small, fast, and the same sequence for the same --seed. */
double sim_rand(struct sim *s)
{
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

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
    int st = http_sync(s, "POST", "/api/token/publisher", body, &doc);
    const char *arn = json_string_value(json_object_get(json_object_get(doc, "data"), "stageArn"));
    if (st != 200 || !arn) {
        print_refusal("POST /api/token/publisher", st, doc);
        json_decref(doc);
        return -1;
    }
    stage_index(s, arn);
    printf("publisher live; master stage %s\n", arn);
    json_decref(doc);
    return 0;
}

/* Learns the stages there are and creates more up to --stages. */
static int ensure_stages(struct sim *s)
{
    json_t *doc;
    int st = http_sync(s, "GET", "/api/stage/list", NULL, &doc);
    json_t *list = json_object_get(json_object_get(doc, "data"), "stages");
    if (st != 200 || !json_is_array(list)) {
        print_refusal("GET /api/stage/list", st, doc);
        json_decref(doc);
        return -1;
    }
    size_t i;
    json_t *stage;
    json_array_foreach(list, i, stage)
        stage_index(s, json_string_value(json_object_get(stage, "stageArn")));
    int have = (int)json_array_size(list);
    json_decref(doc);
    for (int made = 0; have < s->o.stages; made++) {
        char body[200];
        snprintf(body, sizeof body, "{\"name\":\"%sstage-%d\"}", s->o.user_prefix, made);
        st = http_sync(s, "POST", "/api/stage", body, &doc);
        if (st != 201) {
            print_refusal("POST /api/stage", st, doc);
            json_decref(doc);
            break;   /* run with what there is; STAGE_FULL answers will show it */
        }
        stage_index(s, json_string_value(json_object_get(
                              json_object_get(json_object_get(doc, "data"), "stage"), "stageArn")));
        json_decref(doc);
        have++;
    }
    printf("stages: %d\n", have);
    return 0;
}

static int setup(struct sim *s)
{
    json_t *doc;
    int st = http_sync(s, "GET", "/api/health", NULL, &doc);
    json_decref(doc);
    if (st != 200) {
        fprintf(stderr, "simulator: usher at %s is not healthy (GET /api/health answered %d)\n",
                s->host_header, st);
        return -1;
    }
    if (publisher_live(s) || ensure_stages(s) || check_baseline(s))
        return -1;
    mem_sample(s, &s->mem_base);
    return 0;
}

/* ---- phases ---------------------------------------------------------------- */

static void enter(struct sim *s, enum phase p, uint32_t now)
{
    s->phase = p;
    s->phase_start_ms = now;
}

static uint32_t settle_ms(const struct sim *s)
{
    return (uint32_t)((s->o.timeout + 2 * s->o.cleanup) * 1000);
}

static bool quiet(const struct sim *s)
{
    return s->n_joining == 0 && s->n_leaving == 0 && s->n_vanished == 0 && !s->chk.pending;
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
        if (now >= s->active_end_ms || s->sigints > 0) {
            printf("== activity stopped at %.1f s; settling at least %.0f s (heartbeats go on)\n",
                   now / 1000.0, settle_ms(s) / 1000.0);
            enter(s, P_SETTLE, now);
        }
        return;
    case P_SETTLE:
        if (now - s->phase_start_ms >= settle_ms(s) && quiet(s)) {
            mem_sample(s, &s->mem_settled);
            s->mem_settled_set = true;
            check_start(s, "settled", true);
            enter(s, P_CHECK_SETTLED, now);
        }
        return;
    case P_CHECK_SETTLED:
        if (!s->chk.pending)
            after_settled_check(s, now);
        return;
    case P_FINALE:
        if (s->n_seated == 0 && quiet(s) &&
            (s->o.finale == FINALE_LEAVE || now - s->phase_start_ms >= settle_ms(s))) {
            check_start(s, "after the finale", true);
            enter(s, P_CHECK_END, now);
        }
        return;
    case P_CHECK_END:
        if (!s->chk.pending)
            enter(s, P_DONE, now);
        return;
    default:
        return;
    }
}

static void periodic(struct sim *s, uint32_t now)
{
    if (now >= s->next_mem_ms) {
        s->next_mem_ms = now + 1000;
        if (s->n_seated >= s->mem_peak.seated && s->n_seated > 0)
            mem_sample(s, &s->mem_peak);
    }
    if (now >= s->next_report_ms) {
        s->next_report_ms = now + (uint32_t)(s->o.report_every * 1000);
        report_progress(s);
    }
    if (s->phase == P_ACTIVE && s->o.checkpoint_every > 0 && now >= s->next_check_ms &&
        !s->chk.pending) {
        s->next_check_ms = now + (uint32_t)(s->o.checkpoint_every * 1000);
        char label[32];
        snprintf(label, sizeof label, "t=%.0fs", now / 1000.0);
        check_start(s, label, false);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct sim *s = arg;
    uint32_t now = sim_now_ms(s);
    audience_tick(s, now);
    if (s->phase == P_FINALE)
        audience_finale_scan(s);
    http_pump(s);   /* start what the tick queued (no evhttp callback is running) */
    step_phase(s, now);
    periodic(s, now);
    check_retry_due(s, now);
    check_note_truth(s);
    if (now >= s->o.max_run * 1000 && s->phase != P_DONE) {
        printf("== the run went past --max-run %.0f s in phase %d; stopping\n", s->o.max_run, s->phase);
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
    s->base = event_base_new();
    s->t0_us = mono_us();
    s->rng = o->seed * 0x2545f4914f6cdd1dull + 1;
    s->heartbeat_ms = (uint32_t)(o->heartbeat * 1000);
    s->grace_ms = (uint32_t)((o->timeout + o->cleanup + o->slack) * 1000);
    s->active_end_ms = (uint32_t)(o->duration * 1000);
    /* With one ramp point the whole ramp is the burst. */
    s->burst_end_ms = (uint32_t)(o->ramp[0].t * 1000);
    if (!s->base || audience_init(s) != 0 || http_init(s) != 0) {
        fprintf(stderr, "simulator: out of memory or no event base\n");
        return -1;
    }
    s->tick_ev = event_new(s->base, -1, EV_PERSIST, on_tick, s);
    s->sigint_ev = evsignal_new(s->base, SIGINT, on_sigint, s);
    if (!s->tick_ev || !s->sigint_ev || event_add(s->sigint_ev, NULL) != 0)
        return -1;
    return check_connect_redis(s);
}

static void run(struct sim *s)
{
    const struct opts *o = &s->o;
    printf("== %u viewers over %.0f s, burst %.0f s, heartbeat %g s, activity %g s, finale %s; users %s0..\n",
           o->viewers, ramp_end_s(o), s->burst_end_ms / 1000.0, o->heartbeat, o->duration,
           o->finale == FINALE_LEAVE ? "leave" : o->finale == FINALE_VANISH ? "vanish" : "stay",
           o->user_prefix);
    fflush(stdout);
    s->t0_us = mono_us();   /* the join curve starts now, not at setup */
    s->last_report_us = 0;
    s->next_report_ms = (uint32_t)(o->report_every * 1000);
    s->next_check_ms = (uint32_t)(o->checkpoint_every * 1000);
    enter(s, P_ACTIVE, 0);
    struct timeval tick = {0, TICK_MS * 1000};
    event_add(s->tick_ev, &tick);
    event_base_dispatch(s->base);
}

static int verdict(const struct sim *s)
{
    const struct counters *c = &s->c;
    bool fail = c->check_mismatches || c->lost_unexpected || c->lost_late || c->stale_seats ||
                c->leave_no_seat || c->wrong_stage || s->timed_out;
    printf("RESULT: %s", fail ? "FAIL" : "PASS");
    if (fail)
        printf(" (%llu mismatches, %llu seats dropped, %llu lost to lag, %llu stale seats, "
               "%llu leaves without seat, %llu misplaced rejoins%s)",
               (unsigned long long)c->check_mismatches, (unsigned long long)c->lost_unexpected,
               (unsigned long long)c->lost_late, (unsigned long long)c->stale_seats,
               (unsigned long long)c->leave_no_seat, (unsigned long long)c->wrong_stage,
               s->timed_out ? ", did not finish" : "");
    printf("\n");
    return fail ? 1 : 0;
}

static void cleanup(struct sim *s)
{
    http_free(s);
    audience_free(s);
    if (s->tick_ev)
        event_free(s->tick_ev);
    if (s->sigint_ev)
        event_free(s->sigint_ev);
    if (s->redis)
        redisFree(s->redis);
    if (s->base)
        event_base_free(s->base);
    lat_free(&s->join_wire);
    lat_free(&s->join_wire_burst);
    lat_free(&s->seat_delay_burst);
    lat_free(&s->hb_wire);
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
    report_summary(s);
    rc = verdict(s);
    cleanup(s);
    return rc;
}
