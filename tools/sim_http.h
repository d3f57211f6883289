/* sim_http.h — a pool of keep-alive connections and two queues (see sim_http.c). */
#ifndef USHER_SIM_HTTP_H
#define USHER_SIM_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>
#include <jansson.h>

#include "sim_clock.h"

#define HTTP_NET_ERRORS 8   /* why no answer came: HTTP_NET_ERROR_NAMES */

/* A request, filled in by its client when a connection takes the job. */
struct http_req {
    bool get;               /* GET, else POST with body as JSON */
    int tag;                /* the client's own mark, handed back with the answer */
    char path[64];
    char body[1024];        /* "" = no body */
};

/* An answer: status 0 = none came (net_error says why: 1 + the index of
 * its name in HTTP_NET_ERROR_NAMES). body is valid only
 * during the callback. Times are µs on the pool's clock. */
struct http_answer {
    int status, tag, net_error;
    const char *body;
    size_t len;
    int64_t queued_us, sent_us, answered_us;   /* queued: when http_enqueue took it */
};

/* Fills req for queued item; false when the item needs no request now
 * (then no answer comes for it). */
typedef bool (*http_prepare_fn)(void *arg, uint32_t item, struct http_req *req);
/* Called exactly once for each prepared request. */
typedef void (*http_answer_fn)(void *arg, uint32_t item, const struct http_answer *a);

struct http_client {
    http_prepare_fn prepare;
    http_answer_fn answer;
    void *arg;
};

struct http_pool;

/* A pool of `connections` keep-alive connections to host:port on base;
 * every request gets X-API-Key api_key when it is not empty, and counts as
 * unanswered after timeout_s. At most low_cap (>= 1) of the low queue's
 * requests are in flight at once. NULL when out of memory. */
struct http_pool *http_pool_new(struct event_base *base, const struct sim_clock *clock,
                                const char *host, int port, const char *api_key,
                                int connections, int low_cap, double timeout_s);
void http_pool_free(struct http_pool *p);
/* Queues item for client (which must outlive the pool): high before low,
 * and low only while fewer than low_cap low requests are in flight.
 * Exits the process when out of memory (a lost request would falsify the truth). */
void http_enqueue(struct http_pool *p, const struct http_client *client, uint32_t item, bool high);
/* Starts queued work on free connections; call from outside answer callbacks. */
void http_pump(struct http_pool *p);
/* One request made synchronously (runs the loop until it is answered);
 * returns the status (0 = no answer) and the parsed body in *doc (caller
 * frees, NULL when not JSON). */
int http_sync(struct http_pool *p, const char *method, const char *path, const char *body,
              json_t **doc);
size_t http_queued(const struct http_pool *p);
size_t http_inflight(const struct http_pool *p);
/* Unanswered requests by cause, and the causes' names. */
const uint64_t *http_net_errors(const struct http_pool *p);
extern const char *const HTTP_NET_ERROR_NAMES[HTTP_NET_ERRORS];

#endif
