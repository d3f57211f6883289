/* sim_report.c — what the simulator tells its operator: counters of
 * answers by request kind and HTTP status, the tallies of what each check
 * ran on, latency percentiles, a progress line every few seconds, the
 * summary and the verdict at the end.
 *
 * It is a leaf: the audience and the checks write its counters, and the
 * simulator hands it the few numbers it shows that live elsewhere (struct
 * progress, struct summary). Latencies are kept whole (4 bytes each) and
 * sorted once for the summary: exact percentiles cost less memory than
 * the viewers themselves.
 *
 * The verdict holds every check to what it ran on: a check the options
 * plan that ran on no case, or on fewer cases than planned, fails the run
 * as surely as a mismatch does (a check that did not run proves nothing). */
#include "sim_report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LAT_MAX_SAMPLES (32u << 20)   /* 128 MB; beyond it samples are dropped */
#define ANOMALIES_SHOWN 10

static const char *const KIND_NAMES[K_KINDS] = {"join", "rejoin", "heartbeat", "leave", "stats"};

static const char *const TALLY_NAMES[T_TALLIES] = {
    "joins answered 200 (seat and isNewViewer judged)",
    "heartbeats answered 200/404 (seat kept in time judged)",
    "leaves answered 200 (wasSeated judged)",
    "vanished viewers whose expiry grace ran out",
    "rejoins through POST /api/viewer/rejoin re-seated (stage judged)",
    "checkpoints read (/api/stats and Redis in range)",
    "exact checks read (/api/stats and Redis equal the truth)",
};

void lat_add(struct lat *l, int64_t us)
{
    if (l->n == l->cap) {
        if (l->cap >= LAT_MAX_SAMPLES)
            return;
        size_t cap = l->cap ? l->cap * 2 : 4096;
        uint32_t *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return;
        l->v = v, l->cap = cap;
    }
    l->v[l->n++] = us < 0 ? 0 : us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void lat_free(struct lat *l)
{
    free(l->v);
    memset(l, 0, sizeof *l);
}

void report_free(struct report *r)
{
    lat_free(&r->join_wire);
    lat_free(&r->join_wire_burst);
    lat_free(&r->seat_delay_burst);
    lat_free(&r->hb_wire);
    lat_free(&r->hb_wait);
}

bool report_anomaly_shown(struct report *r) { return r->anomalies_shown++ < ANOMALIES_SHOWN; }

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(const struct lat *l, double p)
{
    size_t i = (size_t)(p / 100 * (double)(l->n - 1) + 0.5);
    return l->v[i] / 1000.0;
}

static void print_lat(const char *what, struct lat *l)
{
    if (l->n == 0) {
        printf("%-44s none\n", what);
        return;
    }
    qsort(l->v, l->n, sizeof *l->v, cmp_u32);
    printf("%-44s n=%-7zu p50 %8.1f ms  p90 %8.1f ms  p99 %8.1f ms  max %8.1f ms\n", what, l->n,
           pct_ms(l, 50), pct_ms(l, 90), pct_ms(l, 99), l->v[l->n - 1] / 1000.0);
}

void count_status(struct report *r, int kind, int status)
{
    if (status < 0 || status >= STATUS_SLOTS)
        status = STATUS_SLOTS - 1;
    r->c.status[kind][status]++;
}

static uint64_t ok_count(const struct counters *c, int kind)
{
    return c->status[kind][200] + c->status[kind][201];
}

/* "join 503x12 0x3, heartbeat 404x1" — every answer that was not a success. */
static void print_errors(const struct counters *c)
{
    bool any = false;
    for (int k = 0; k < K_KINDS; k++) {
        bool named = false;
        for (int st = 0; st < STATUS_SLOTS; st++) {
            if (st == 200 || st == 201 || !c->status[k][st])
                continue;
            if (!named)
                printf("%s%s", any ? ", " : "", KIND_NAMES[k]);
            printf(" %dx%llu", st, (unsigned long long)c->status[k][st]);
            any = named = true;
        }
    }
    if (!any)
        printf("none");
}

void report_progress(struct report *r, const struct progress *p)
{
    double dt = (p->now_us - r->last_report_us) / 1e6;
    if (dt <= 0)
        dt = 1;
    const struct counters *c = &r->c, *l = &r->c_last;
    printf("[%6.1fs] %-6s seated %lld, usher may show %lld..%lld  join/s %.0f  hb/s %.0f  leave/s %.0f  "
           "vanished %lld  queue %zu  inflight %zu",
           p->now_us / 1e6, p->phase, (long long)p->seated, (long long)p->min, (long long)p->max,
           (ok_count(c, K_JOIN) + ok_count(c, K_REJOIN) - ok_count(l, K_JOIN) - ok_count(l, K_REJOIN)) / dt,
           (ok_count(c, K_HEARTBEAT) - ok_count(l, K_HEARTBEAT)) / dt,
           (ok_count(c, K_LEAVE) - ok_count(l, K_LEAVE)) / dt, (long long)p->vanished,
           p->queued, p->inflight);
    if (p->usher_kb >= 0)
        printf("  usher %.0f MiB", p->usher_kb / 1024.0);
    if (p->redis_bytes >= 0)
        printf("  redis %.0f MiB", p->redis_bytes / 1048576.0);
    printf("  errors: ");
    print_errors(c);
    printf("\n");
    fflush(stdout);
    r->c_last = r->c;
    r->last_report_us = p->now_us;
}

static void print_memory(const char *when, const struct memsample *base, const struct memsample *m)
{
    if (m->seated <= 0) {
        printf("memory %-9s no viewer seated\n", when);
        return;
    }
    printf("memory %-9s %lld seated:", when, (long long)m->seated);
    if (m->usher_kb >= 0 && base->usher_kb >= 0) {
        double d = (m->usher_kb - base->usher_kb) * 1024.0;
        printf("  usher RSS %+.1f MiB = %.0f B/viewer", d / 1048576, d / m->seated);
    } else {
        printf("  usher RSS not measured (--usher-pid)");
    }
    if (m->redis_bytes >= 0 && base->redis_bytes >= 0) {
        double d = (double)(m->redis_bytes - base->redis_bytes);
        printf("  redis used_memory %+.1f MiB = %.0f B/viewer", d / 1048576, d / m->seated);
    }
    printf("\n");
}

static void print_requests(const struct report *r, const struct summary *s)
{
    const struct counters *c = &r->c;
    printf("requests answered 2xx: join %llu, rejoin (POST /api/viewer/rejoin) %llu, heartbeat %llu, "
           "leave %llu, stats %llu\n",
           (unsigned long long)ok_count(c, K_JOIN), (unsigned long long)ok_count(c, K_REJOIN),
           (unsigned long long)ok_count(c, K_HEARTBEAT), (unsigned long long)ok_count(c, K_LEAVE),
           (unsigned long long)ok_count(c, K_STATS));
    printf("errors by request and status (0 = no answer): ");
    print_errors(c);
    printf("\nno answer: ");
    for (size_t i = 0; i < s->n_net_errors; i++)
        printf("%s%s %llu", i ? ", " : "", s->net_error_names[i], (unsigned long long)s->net_errors[i]);
    printf("\nviewers: rejoins started %llu (refused rejoins retried as token joins %llu), vanished %llu,\n"
           "         moved by usher on heartbeat %llu, never joined %llu, joins refused for good %llu\n",
           (unsigned long long)c->rejoins, (unsigned long long)c->rejoin_fallbacks,
           (unsigned long long)c->vanishes, (unsigned long long)c->moves,
           (unsigned long long)c->never_joined, (unsigned long long)c->failed);
}

static void print_anomalies(const struct counters *c)
{
    printf("anomalies: seat dropped though heartbeating in time %llu; seat lost to our own late "
           "heartbeat %llu;\n           heartbeat skipped (previous still queued) %llu; isNewViewer=false "
           "for a viewer usher should not seat %llu;\n           leave found no seat %llu; rejoin seated "
           "in another stage %llu; participantId not as SPEC 5 says %llu\n",
           (unsigned long long)c->lost_unexpected, (unsigned long long)c->lost_late,
           (unsigned long long)c->hb_skipped, (unsigned long long)c->stale_seats,
           (unsigned long long)c->leave_no_seat, (unsigned long long)c->wrong_stage,
           (unsigned long long)c->bad_pid);
}

/* A check that is on and judged nothing (no case, or every case refused),
 * or ran on fewer cases than planned. */
static bool tally_short(const struct tally *t)
{
    return t->on && (t->ran <= t->refused || (t->has_plan && t->ran < t->planned));
}

static void print_tallies(const struct report *r)
{
    printf("checks, by the cases each ran on:\n");
    for (int i = 0; i < T_TALLIES; i++) {
        const struct tally *t = &r->tally[i];
        if (!t->on) {
            printf("  %-4s %s: not planned by the options\n", "--", TALLY_NAMES[i]);
            continue;
        }
        printf("  %-4s %s: ran on %llu", tally_short(t) ? "FAIL" : "ok", TALLY_NAMES[i],
               (unsigned long long)t->ran);
        if (t->has_plan)
            printf(" of %llu planned", (unsigned long long)t->planned);
        if (t->refused)
            printf(", %llu refused by usher", (unsigned long long)t->refused);
        if (tally_short(t))
            printf(t->ran == 0             ? " -- the check did not run"
                   : t->ran <= t->refused ? " -- the check did not run: usher refused every case"
                                          : " -- fewer than planned");
        printf("\n");
    }
}

void report_summary(struct report *r, const struct summary *s)
{
    printf("\n== summary ==\n%s\n", s->run);
    printf("fates: stay %llu, leave %llu, vanish %llu, leave+rejoin %llu, vanish+rejoin %llu\n",
           (unsigned long long)s->fates[0], (unsigned long long)s->fates[1],
           (unsigned long long)s->fates[2], (unsigned long long)s->fates[3],
           (unsigned long long)s->fates[4]);
    print_requests(r, s);
    print_anomalies(&r->c);
    char burst[80];
    snprintf(burst, sizeof burst, "join latency, burst (first %.0f s):", s->burst_s);
    print_lat(burst, &r->join_wire_burst);
    print_lat("time to seat, burst (wanted -> answered):", &r->seat_delay_burst);
    print_lat("join latency, all joins and rejoins:", &r->join_wire);
    print_lat("heartbeat latency:", &r->hb_wire);
    print_lat("heartbeat wait in our queue (due -> sent):", &r->hb_wait);
    printf("peak seated: %lld\n", (long long)s->peak_seated);
    print_memory("at peak", &s->mem_base, &s->mem_peak);
    if (s->mem_settled_set)
        print_memory("settled", &s->mem_base, &s->mem_settled);
    print_tallies(r);
    printf("check mismatches: %llu\n", (unsigned long long)r->c.check_mismatches);
}

int report_verdict(const struct report *r, bool timed_out)
{
    const struct counters *c = &r->c;
    int short_checks = 0;
    for (int i = 0; i < T_TALLIES; i++)
        short_checks += tally_short(&r->tally[i]);
    bool fail = c->check_mismatches || c->lost_unexpected || c->lost_late || c->stale_seats ||
                c->leave_no_seat || c->wrong_stage || c->bad_pid || short_checks || timed_out;
    printf("RESULT: %s", fail ? "FAIL" : "PASS");
    if (fail)
        printf(" (%llu mismatches, %llu seats dropped, %llu lost to lag, %llu stale seats, "
               "%llu leaves without seat, %llu misplaced rejoins, %llu bad participant ids, "
               "%d checks that did not run on all they planned%s)",
               (unsigned long long)c->check_mismatches, (unsigned long long)c->lost_unexpected,
               (unsigned long long)c->lost_late, (unsigned long long)c->stale_seats,
               (unsigned long long)c->leave_no_seat, (unsigned long long)c->wrong_stage,
               (unsigned long long)c->bad_pid, short_checks, timed_out ? ", did not finish" : "");
    printf("\n");
    return fail ? 1 : 0;
}
