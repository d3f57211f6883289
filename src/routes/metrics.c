/* metrics.c — GET /metrics in the Prometheus text exposition format 0.0.4.
 *
 * The viewer and stage gauges come from Redis, one store_stats() call per
 * scrape, and are the same whichever process is scraped; the counters and
 * histograms are this process's (metrics/metrics.h), and so are the signer
 * and scaler-lease gauges. When Redis cannot be read, usher_redis_up is 0
 * and the Redis gauges are left out rather than reported as zero. */
#include "routes/routes.h"

#include <stdio.h>
#include <stdlib.h>

#include "app.h"
#include "aws/client.h"
#include "aws/limiter.h"
#include "aws/retry.h"
#include "http/request.h"
#include "ivs/provider.h"
#include "metrics/metrics.h"
#include "scaler/scaler.h"
#include "tokens/signer.h"

#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

static void gauge(FILE *out, const char *name, const char *help, long long value)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name, value);
}

/* What Redis holds: viewers in all, per stage (at most MAX_STAGES series),
 * stages by mode. */
static void write_audience(FILE *out, const struct stats_view *view)
{
    gauge(out, "usher_viewers", "Viewers seated now, in all stages (from Redis).", view->total_viewers);
    fputs("# HELP usher_stage_viewers Viewers seated now in one stage (from Redis).\n"
          "# TYPE usher_stage_viewers gauge\n", out);
    long long modes[3] = {0, 0, 0};
    for (size_t i = 0; i < view->count; i++) {
        fputs("usher_stage_viewers{stage=\"", out);
        metrics_label(out, stage_id_of(view->stages[i].arn));
        fprintf(out, "\"} %lld\n", view->stages[i].viewers);
        modes[view->stages[i].mode]++;
    }
    fputs("# HELP usher_stages Live stages by seating mode (from Redis).\n"
          "# TYPE usher_stages gauge\n", out);
    for (enum stage_mode m = MODE_OPEN; m <= MODE_DRAINING; m++)
        fprintf(out, "usher_stages{mode=\"%s\"} %lld\n", stage_mode_name(m), modes[m]);
}

/* IVS calls by operation and outcome (aws/retry.h's names: ok, throttled,
 * quota_exceeded, server, ...), from the AWS client's counters; none with
 * the local provider, which calls nothing. */
static void write_provider_calls(FILE *out, struct stage_provider *provider)
{
    struct aws_client *client = aws_provider_client(provider);
    fputs("# HELP usher_provider_calls_total IVS control-plane calls, by operation and outcome.\n"
          "# TYPE usher_provider_calls_total counter\n", out);
    for (size_t op = 0; client && op < aws_op_count(); op++) {
        const struct aws_op_stats *st = aws_client_op_stats(client, op);
        for (int e = 0; e < AWS_ERR__COUNT; e++)
            if (st->outcomes[e])
                fprintf(out, "usher_provider_calls_total{operation=\"%s\",outcome=\"%s\"} %llu\n",
                        aws_op_name(op), aws_error_name((enum aws_error)e),
                        (unsigned long long)st->outcomes[e]);
    }
}

static void scraped(void *arg, enum store_error err, const char *detail,
                    const struct stats_view *view)
{
    (void)detail;
    struct request *rq = arg;
    struct app *app = rq->app;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) {
        respond_error(rq, 500, "INTERNAL_ERROR", "out of memory", NULL);
        return;
    }
    gauge(out, "usher_redis_up", "1 when this scrape could read Redis.", err == STORE_OK);
    if (err == STORE_OK)
        write_audience(out, view);
    struct signer_gauges sg = signer_gauges(app->signer);
    gauge(out, "usher_signer_queue_depth", "Tokens waiting for a signer thread.", (long long)sg.queued);
    gauge(out, "usher_signer_precomputed_nonces", "ECDSA nonces computed ahead, ready for tokens.",
          (long long)sg.precomputed);
    gauge(out, "usher_scaler_lease_holder", "1 while this process holds the scaler lease.",
          scaler_is_leader(app->scaler));
    metrics_write(app->metrics, out);
    write_provider_calls(out, app->provider);
    if (fclose(out) != 0 || !text) {
        free(text);
        respond_error(rq, 500, "INTERNAL_ERROR", "out of memory", NULL);
        return;
    }
    respond_raw(rq, 200, METRICS_TYPE, text, len);
    free(text);
}

void route_metrics(struct request *rq)
{
    store_stats(rq->app->store, scraped, rq);
}
