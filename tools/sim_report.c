/* sim_report.c — what the simulator tells its operator: counters of
 * answers by request kind and HTTP status, latency percentiles, a progress
 * line every few seconds, and the summary at the end.
 *
 * Latencies are kept whole (4 bytes each) and sorted once for the summary:
 * exact percentiles cost less memory than the viewers themselves. */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LAT_MAX_SAMPLES (32u << 20)   /* 128 MB; beyond it samples are dropped */

static const char *const KIND_NAMES[K_KINDS] = {"join", "rejoin", "heartbeat", "leave", "stats", "setup"};
static const char *const NET_ERRORS[] = {"timeout", "eof", "connect", "buffer", "cancelled", "header", "body", "?"};

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

void lat_free(struct lat *l)
{
    free(l->v);
    memset(l, 0, sizeof *l);
}

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

void count_status(struct sim *s, int kind, int status)
{
    if (status < 0 || status >= STATUS_SLOTS)
        status = STATUS_SLOTS - 1;
    s->c.status[kind][status]++;
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

static const char *const PHASE_NAMES[] = {"setup", "active", "settle", "check", "finale", "check", "done"};

void report_progress(struct sim *s)
{
    int64_t now_us = sim_now_us(s);
    double dt = (now_us - s->last_report_us) / 1e6;
    if (dt <= 0)
        dt = 1;
    const struct counters *c = &s->c, *l = &s->c_last;
    int64_t min, max;
    truth_range(s, &min, &max);
    struct memsample m;
    mem_sample(s, &m);
    printf("[%6.1fs] %-6s seated %lld, usher may show %lld..%lld  join/s %.0f  hb/s %.0f  leave/s %.0f  "
           "vanished %lld  queue %zu  inflight %zu",
           now_us / 1e6, PHASE_NAMES[s->phase], (long long)s->n_seated, (long long)min, (long long)max,
           (ok_count(c, K_JOIN) + ok_count(c, K_REJOIN) - ok_count(l, K_JOIN) - ok_count(l, K_REJOIN)) / dt,
           (ok_count(c, K_HEARTBEAT) - ok_count(l, K_HEARTBEAT)) / dt,
           (ok_count(c, K_LEAVE) - ok_count(l, K_LEAVE)) / dt, (long long)s->n_vanished,
           http_queued(s), http_inflight(s));
    if (m.usher_kb >= 0)
        printf("  usher %.0f MiB", m.usher_kb / 1024.0);
    if (m.redis_bytes >= 0)
        printf("  redis %.0f MiB", m.redis_bytes / 1048576.0);
    printf("  errors: ");
    print_errors(c);
    printf("\n");
    fflush(stdout);
    s->c_last = s->c;
    s->last_report_us = now_us;
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

static void print_fates(const struct sim *s)
{
    uint64_t n[5] = {0};
    for (uint32_t i = 0; i < s->o.viewers; i++)
        n[s->v[i].fate]++;
    printf("fates: stay %llu, leave %llu, vanish %llu, leave+rejoin %llu, vanish+rejoin %llu\n",
           (unsigned long long)n[F_STAY], (unsigned long long)n[F_LEAVE],
           (unsigned long long)n[F_VANISH], (unsigned long long)n[F_LEAVE_REJOIN],
           (unsigned long long)n[F_VANISH_REJOIN]);
}

static void print_requests(const struct sim *s)
{
    const struct counters *c = &s->c;
    printf("requests answered 2xx: join %llu, rejoin (POST /api/viewer/rejoin) %llu, heartbeat %llu, "
           "leave %llu, stats %llu\n",
           (unsigned long long)ok_count(c, K_JOIN), (unsigned long long)ok_count(c, K_REJOIN),
           (unsigned long long)ok_count(c, K_HEARTBEAT), (unsigned long long)ok_count(c, K_LEAVE),
           (unsigned long long)ok_count(c, K_STATS));
    printf("errors by request and status (0 = no answer): ");
    print_errors(c);
    printf("\nno answer: ");
    for (size_t i = 0; i < 8; i++)
        printf("%s%s %llu", i ? ", " : "", NET_ERRORS[i], (unsigned long long)c->net_errors[i]);
    printf("\nviewers: rejoins started %llu (refused rejoins retried as token joins %llu), vanished %llu,\n"
           "         moved by usher on heartbeat %llu, never joined %llu, joins refused for good %llu\n",
           (unsigned long long)c->rejoins, (unsigned long long)c->rejoin_fallbacks,
           (unsigned long long)c->vanishes, (unsigned long long)c->moves,
           (unsigned long long)c->never_joined, (unsigned long long)c->failed);
}

static void print_anomalies(const struct sim *s)
{
    const struct counters *c = &s->c;
    printf("anomalies: seat dropped though heartbeating in time %llu; seat lost to our own late "
           "heartbeat %llu;\n           heartbeat skipped (previous still queued) %llu; isNewViewer=false "
           "for a viewer usher should not seat %llu;\n           leave found no seat %llu; rejoin seated "
           "in another stage %llu\n",
           (unsigned long long)c->lost_unexpected, (unsigned long long)c->lost_late,
           (unsigned long long)c->hb_skipped, (unsigned long long)c->stale_seats,
           (unsigned long long)c->leave_no_seat, (unsigned long long)c->wrong_stage);
}

void report_summary(struct sim *s)
{
    const struct opts *o = &s->o;
    printf("\n== summary ==\n");
    printf("run: %u viewers, ramp", o->viewers);
    for (int i = 0; i < o->nramp; i++)
        printf("%s%.0f@%g", i ? "," : " ", o->ramp[i].n, o->ramp[i].t);
    printf(", heartbeat %g s, timeout %g s, cleanup %g s, duration %g s, %d connections, seed %llu\n",
           o->heartbeat, o->timeout, o->cleanup, o->duration, o->connections,
           (unsigned long long)o->seed);
    print_fates(s);
    print_requests(s);
    print_anomalies(s);
    char burst[80];
    snprintf(burst, sizeof burst, "join latency, burst (first %.0f s):", s->burst_end_ms / 1000.0);
    print_lat(burst, &s->join_wire_burst);
    snprintf(burst, sizeof burst, "time to seat, burst (wanted -> answered):");
    print_lat(burst, &s->seat_delay_burst);
    print_lat("join latency, all joins and rejoins:", &s->join_wire);
    print_lat("heartbeat latency:", &s->hb_wire);
    printf("peak seated: %lld\n", (long long)s->peak_seated);
    print_memory("at peak", &s->mem_base, &s->mem_peak);
    if (s->mem_settled_set)
        print_memory("settled", &s->mem_base, &s->mem_settled);
    printf("checks: %d run, %llu mismatches\n", s->chk.checks_done,
           (unsigned long long)s->c.check_mismatches);
}
