/* webhooks.h — stage and audience events POSTed to WEBHOOK_URLS.
 *
 * The source is the stage_events stream (stages/events.h): every process
 * with WEBHOOK_URLS reads the entries added after it started, claims each
 * in Redis (store_webhook_claim: the first claimer gets the event's
 * sequence number, the others skip it), and the claimer delivers it to
 * every URL. So an event is delivered at most once across all processes;
 * one whose claimer dies before delivering is lost.
 *
 * A delivery is `POST <url>` with the JSON body
 *   {"id":"<stream id>","sequence":n,"type":"stage.opened","time":"<ISO 8601>",
 *    "data":{"stageArn":...,"detail":...,"event":"<stage event type>"}}
 * and the headers Content-Type: application/json, X-Usher-Event: <type>,
 * X-Usher-Delivery: <id>, and X-Usher-Signature: sha256=<hex HMAC-SHA256 of
 * the body with WEBHOOK_SECRET>. Types: stage.opened, stage.draining,
 * stage.closed, replication.started, replication.failed, publisher.live,
 * publisher.offline, viewers.above and viewers.below (data.threshold: a
 * count of WEBHOOK_VIEWER_THRESHOLDS crossed; the process holding the
 * scaler lease watches the total), reconciliation.corrected (a stage of
 * this stream in IVS that Redis did not know, deleted: stages/orphans.c). A 2xx answer delivers; anything else is
 * tried again after WEBHOOK_RETRY_MS, doubling up to 60 s, up to
 * WEBHOOK_MAX_ATTEMPTS tries. Each URL gets one request at a time, in the
 * order this process claimed the events; across processes, `sequence`
 * gives the order. Requests run on libcurl's multi interface on the loop
 * (aws/http.h), so a slow receiver never blocks usher. */
#ifndef USHER_WEBHOOKS_WEBHOOKS_H
#define USHER_WEBHOOKS_WEBHOOKS_H

struct app;
struct webhooks;

/* NULL when WEBHOOK_URLS is empty (nothing to do) or on failure: *failed
 * tells the two apart. */
struct webhooks *webhooks_new(struct app *app, int *failed);
/* Deliveries not yet done are dropped (logged). */
void webhooks_free(struct webhooks *w);

/* For config.c: what is wrong with the list, or NULL when it is fine. */
const char *webhook_urls_check(const char *list);
const char *webhook_thresholds_check(const char *list);

#endif
