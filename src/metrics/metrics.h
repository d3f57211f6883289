/* metrics.h — this process's counters and histograms, for GET /metrics
 * (routes/metrics.c writes them with the gauges it reads from Redis).
 *
 * Counters are per process, as Prometheus expects (it sums them across
 * processes); they start at zero with the process. One struct metrics
 * lives in struct app: there are no globals. Label values given here
 * (routes) must be strings that outlive the struct (constants), which
 * keeps every series' labels bounded. The IVS calls' counts are the AWS
 * client's own (aws/client.h), written by routes/metrics.c. */
#ifndef USHER_METRICS_METRICS_H
#define USHER_METRICS_METRICS_H

#include <stdbool.h>
#include <stdio.h>

enum metric_count {
    METRIC_JOINS,                    /* a viewer seated who held no seat */
    METRIC_LEAVES,                   /* a seat freed by a leave */
    METRIC_EXPIRIES,                 /* a seat freed by the heartbeat sweep */
    METRIC_MOVES,                    /* a viewer moved to another stage */
    METRIC__COUNT
};

struct metrics;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

void metrics_add(struct metrics *m, enum metric_count which, long long n);
/* One HTTP answer: route is the matched route's pattern ("none" when no
 * route matched), status the HTTP status, seconds from request to answer. */
void metrics_http(struct metrics *m, const char *route, int status, double seconds);
/* One Redis call: its round trip in seconds; error when Redis was
 * unreachable, too slow or answered nonsense (a refusal is no error). */
void metrics_redis(struct metrics *m, double seconds, bool error);

/* Writes every series above in the Prometheus text format 0.0.4. */
void metrics_write(const struct metrics *m, FILE *out);
/* Writes a label value with \, " and newline escaped (text format 0.0.4). */
void metrics_label(FILE *out, const char *value);

#endif
