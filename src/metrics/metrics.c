/* metrics.c — see metrics.h.
 *
 * Series are kept in small arrays searched linearly: their number is
 * bounded by the routes and the statuses usher answers with, a few dozen in
 * all. Histograms share one set of bucket
 * bounds, in seconds, from 1 ms to 10 s. */
#include "metrics/metrics.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const double BOUNDS[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                0.1, 0.25, 0.5, 1, 2.5, 10};
#define NBOUNDS (sizeof BOUNDS / sizeof BOUNDS[0])

struct histogram {
    uint64_t buckets[NBOUNDS];       /* observations <= BOUNDS[i], not cumulated */
    uint64_t count;
    double sum;
};

struct http_series {
    const char *route;
    int status;
    uint64_t count;
};
struct route_latency {
    const char *route;
    struct histogram h;
};

/* A growable array of one kind of series. */
#define SERIES(type) struct { type *items; size_t n, cap; }

struct metrics {
    uint64_t counts[METRIC__COUNT];
    SERIES(struct http_series) http;
    SERIES(struct route_latency) latency;
    struct histogram redis;
    uint64_t redis_errors;
};

/* Room for one more item; false when out of memory (the observation is
 * then lost, never the process). */
#define GROW(s) ((s).n < (s).cap || grow((void **)&(s).items, &(s).cap, sizeof *(s).items))
static bool grow(void **items, size_t *cap, size_t size)
{
    size_t want = *cap ? *cap * 2 : 16;
    void *more = realloc(*items, want * size);
    if (!more)
        return false;
    memset((char *)more + *cap * size, 0, (want - *cap) * size);
    *items = more;
    *cap = want;
    return true;
}

static void observe(struct histogram *h, double seconds)
{
    size_t i = 0;
    while (i < NBOUNDS && seconds > BOUNDS[i])
        i++;
    if (i < NBOUNDS)
        h->buckets[i]++;
    h->count++;
    h->sum += seconds;
}

struct metrics *metrics_new(void)
{
    return calloc(1, sizeof(struct metrics));
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    free(m->http.items);
    free(m->latency.items);
    free(m);
}

void metrics_add(struct metrics *m, enum metric_count which, long long n)
{
    if (n > 0)
        m->counts[which] += (uint64_t)n;
}

void metrics_http(struct metrics *m, const char *route, int status, double seconds)
{
    size_t i = 0;
    while (i < m->http.n && !(m->http.items[i].status == status &&
                              strcmp(m->http.items[i].route, route) == 0))
        i++;
    if (i == m->http.n && GROW(m->http))
        m->http.items[m->http.n++] = (struct http_series){route, status, 0};
    if (i < m->http.n)
        m->http.items[i].count++;
    for (i = 0; i < m->latency.n && strcmp(m->latency.items[i].route, route) != 0; i++)
        ;
    if (i == m->latency.n && GROW(m->latency))
        m->latency.items[m->latency.n++] = (struct route_latency){.route = route};
    if (i < m->latency.n)
        observe(&m->latency.items[i].h, seconds);
}

void metrics_redis(struct metrics *m, double seconds, bool error)
{
    observe(&m->redis, seconds);
    if (error)
        m->redis_errors++;
}

/* ---- writing ------------------------------------------------------------ */

void metrics_label(FILE *out, const char *value)
{
    for (const char *p = value; *p; p++) {
        if (*p == '\\' || *p == '"')
            fprintf(out, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", out);
        else
            fputc(*p, out);
    }
}

/* A series' labels: {label="value",le="le"}, either part optional. */
static void write_labels(FILE *out, const char *label, const char *value, const char *le)
{
    if (!label && !le)
        return;
    fputc('{', out);
    if (label) {
        fprintf(out, "%s=\"", label);
        metrics_label(out, value);
        fputs(le ? "\"," : "\"", out);
    }
    if (le)
        fprintf(out, "le=\"%s\"", le);
    fputc('}', out);
}

/* The series of one histogram; label NULL for none. */
static void write_histogram(FILE *out, const char *name, const char *label, const char *value,
                            const struct histogram *h)
{
    uint64_t cumulated = 0;
    char le[32];
    for (size_t i = 0; i < NBOUNDS; i++) {
        cumulated += h->buckets[i];
        snprintf(le, sizeof le, "%g", BOUNDS[i]);
        fprintf(out, "%s_bucket", name);
        write_labels(out, label, value, le);
        fprintf(out, " %llu\n", (unsigned long long)cumulated);
    }
    fprintf(out, "%s_bucket", name);
    write_labels(out, label, value, "+Inf");
    fprintf(out, " %llu\n%s_sum", (unsigned long long)h->count, name);
    write_labels(out, label, value, NULL);
    fprintf(out, " %.9g\n%s_count", h->sum, name);
    write_labels(out, label, value, NULL);
    fprintf(out, " %llu\n", (unsigned long long)h->count);
}

static void write_counts(const struct metrics *m, FILE *out)
{
    static const struct { const char *name, *help; } names[METRIC__COUNT] = {
        [METRIC_JOINS] = {"usher_joins_total", "Viewers seated who held no seat, by this process."},
        [METRIC_LEAVES] = {"usher_leaves_total", "Seats freed by a leave, by this process."},
        [METRIC_EXPIRIES] = {"usher_expiries_total", "Seats freed by this process's heartbeat sweep."},
        [METRIC_MOVES] = {"usher_moves_total", "Viewers moved to another stage, by this process."},
    };
    for (int i = 0; i < METRIC__COUNT; i++)
        fprintf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", names[i].name, names[i].help,
                names[i].name, names[i].name, (unsigned long long)m->counts[i]);
}

void metrics_write(const struct metrics *m, FILE *out)
{
    write_counts(m, out);
    fputs("# HELP usher_http_requests_total HTTP requests answered, by route and status.\n"
          "# TYPE usher_http_requests_total counter\n", out);
    for (size_t i = 0; i < m->http.n; i++) {
        fputs("usher_http_requests_total{route=\"", out);
        metrics_label(out, m->http.items[i].route);
        fprintf(out, "\",status=\"%d\"} %llu\n", m->http.items[i].status,
                (unsigned long long)m->http.items[i].count);
    }
    fputs("# HELP usher_http_request_duration_seconds Time from a request to its answer, by route.\n"
          "# TYPE usher_http_request_duration_seconds histogram\n", out);
    for (size_t i = 0; i < m->latency.n; i++)
        write_histogram(out, "usher_http_request_duration_seconds", "route",
                        m->latency.items[i].route, &m->latency.items[i].h);
    fputs("# HELP usher_redis_roundtrip_seconds Time from a Redis call to its reply.\n"
          "# TYPE usher_redis_roundtrip_seconds histogram\n", out);
    write_histogram(out, "usher_redis_roundtrip_seconds", NULL, NULL, &m->redis);
    fprintf(out, "# HELP usher_redis_errors_total Redis calls that failed (unreachable, too slow, "
                 "unexpected reply).\n# TYPE usher_redis_errors_total counter\n"
                 "usher_redis_errors_total %llu\n", (unsigned long long)m->redis_errors);
}
