/* sim.h — the live-event simulator's shared types.
 *
 * The simulator plays an audience against a running usher: every virtual
 * viewer is one compact `struct viewer` in an array, its next action is
 * found by a timer wheel ticking every TICK_MS, and every request goes
 * through one queue to a pool of keep-alive HTTP connections. The simulator
 * keeps its own truth of who is seated and compares it with /api/stats and
 * with the Redis keys of SPEC §3.
 *
 * The files:
 *   simulator.c     main: setup, the phases of a run, the tick
 *   sim_opts.c      flags, --help, the join curve
 *   sim_http.c      connection pool, request queues, answers
 *   sim_audience.c  viewers: timer wheel, fates, the truth
 *   sim_check.c     checkpoints: /api/stats and Redis against the truth; memory
 *   sim_report.c    counters, latency percentiles, progress and summary
 *
 * There are no globals: everything lives in one struct sim passed around. */
#ifndef USHER_SIM_H
#define USHER_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>
#include <event2/http.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#define TICK_MS 100            /* resolution of every scheduled action */
#define WHEEL_SLOTS 8192       /* 819 s per turn; later actions wait a turn */
#define NO_TIME UINT32_MAX     /* "never" for the ms fields of a viewer */
#define NIL UINT32_MAX         /* end of a wheel list */
#define STATS_ITEM (UINT32_MAX - 1) /* queue item: a checkpoint's /api/stats */
#define MAX_STAGES_SEEN 256
#define MAX_RAMP_POINTS 64
#define ARN_MAX 256
#define PID_BYTES 16           /* usher's participant ids: 32 hex characters */
#define STATUS_SLOTS 600       /* HTTP status counters; 0 = no answer */
#define LEAVE_TRIES 10

/* What a request does; also the rows of the status counters. */
enum kind { K_JOIN, K_REJOIN, K_HEARTBEAT, K_LEAVE, K_STATS, K_SETUP, K_KINDS };

/* A viewer's life. Only SEATED, JOINING, LEAVING and VANISHED
 * count in the truth (see truth_range in sim_audience.c). */
enum vstate {
    V_PENDING,   /* not joined yet; due = its place on the join curve */
    V_JOINING,   /* join queued, in flight, or waiting to retry */
    V_SEATED,    /* join answered 200; heartbeating */
    V_LEAVING,   /* leave queued or in flight (or waiting to retry) */
    V_VANISHED,  /* went silent; usher should expire it by gone_ms */
    V_GONE,      /* left or expired; may rejoin at rejoin_ms */
    V_FAILED,    /* a join was refused for good */
    V_LOST,      /* a heartbeat found no seat: usher dropped it */
};

enum fate { F_STAY, F_LEAVE, F_VANISH, F_LEAVE_REJOIN, F_VANISH_REJOIN };

enum vflag {
    VF_BUSY = 1,         /* a request is queued or in flight for it */
    VF_WHEEL = 2,        /* it sits in the timer wheel */
    VF_MAYBE_SEATED = 4, /* rejoining inside its expiry grace: the old seat may be there */
    VF_REJOINED = 8,     /* its one rejoin has started */
    VF_BURST = 16,       /* its first join was scheduled inside the burst */
    VF_REJOIN_API = 32,  /* its rejoin goes through POST /api/viewer/rejoin */
    VF_HAS_PID = 64,     /* pids[] holds its participant id */
    VF_FIRST_DONE = 128, /* its first join has been answered 200 */
    VF_UNSURE = 256,     /* a join or leave failed in a way that may have been applied (no answer, 5xx) */
    VF_SENT = 512,       /* a join or leave was sent and its effect is not known yet */
};

/* One virtual viewer: 32 bytes. Times are ms since the run started. */
struct viewer {
    uint32_t next;        /* wheel list link */
    uint32_t due_ms;      /* next action */
    uint32_t gone_ms;     /* SEATED: planned leave/vanish; VANISHED: expiry deadline */
    uint32_t rejoin_ms;   /* planned rejoin, or NO_TIME */
    uint32_t want_ms;     /* when the current join was wanted (time to seat) */
    uint32_t last_ok_ms;  /* send time of the last join/heartbeat answered 200 */
    uint8_t state, fate, stage, tries;
    uint16_t flags;
};

enum finale { FINALE_LEAVE, FINALE_VANISH, FINALE_STAY };

struct ramp_point { double t, n; };  /* n viewers joined by second t */

struct opts {
    char host[128];
    int port;
    char api_key[256];
    char redis_host[128];
    int redis_port, redis_db;
    char redis_user[128], redis_pass[256];
    char prefix[128];
    char user_prefix[64];
    uint32_t viewers;
    struct ramp_point ramp[MAX_RAMP_POINTS];
    int nramp;
    double heartbeat, timeout, cleanup, slack;
    double leave_pct, vanish_pct, rejoin_pct, rejoin_api_pct, rejoin_gap;
    double duration, report_every, checkpoint_every, request_timeout, max_run;
    int connections, usher_pid, stages, capacity, join_retries;
    uint64_t seed;
    enum finale finale;
};

/* A growable array of latencies (µs), sorted only for the summary. */
struct lat { uint32_t *v; size_t n, cap; };

struct ring { uint32_t *items; size_t cap, head, len; };

struct conn {
    struct sim *sim;
    struct evhttp_connection *evcon;
    uint32_t item;        /* viewer index or STATS_ITEM */
    uint8_t kind;
    int net_error;        /* enum evhttp_request_error + 1, 0 = none */
    int64_t sent_us;
};

/* The answer of a setup call, made synchronously before the run. */
struct sync_call { bool done; int status; json_t *doc; };

struct counters {
    uint64_t status[K_KINDS][STATUS_SLOTS];
    uint64_t net_errors[8];           /* by enum evhttp_request_error */
    uint64_t hb_skipped;              /* previous heartbeat still queued */
    uint64_t lost_late, lost_unexpected; /* heartbeat 404: our lag / usher's */
    uint64_t stale_seats;             /* join said isNewViewer=false unexpectedly */
    uint64_t leave_no_seat;           /* leave said wasSeated=false */
    uint64_t wrong_stage;             /* rejoin seated elsewhere than asked */
    uint64_t moves;                   /* heartbeat answered moved: true */
    uint64_t rejoin_fallbacks;        /* refused rejoin retried as a token join */
    uint64_t vanishes, rejoins, never_joined, failed;
    uint64_t check_mismatches;
};

struct check {
    bool pending, exact;
    char label[32];
    int64_t wmin, wmax;       /* truth range seen while /api/stats was asked */
    int tries;                /* reads that failed, for an exact check */
    uint32_t retry_ms;        /* when to ask /api/stats again; 0 = not waiting */
    int checks_done;
};

struct memsample { long usher_kb; long long redis_bytes; int64_t seated; };

enum phase { P_SETUP, P_ACTIVE, P_SETTLE, P_CHECK_SETTLED, P_FINALE, P_CHECK_END, P_DONE };

struct sim {
    struct opts o;
    struct event_base *base;
    struct event *tick_ev, *pump_ev, *sigint_ev;
    int64_t t0_us;
    uint64_t rng;

    /* HTTP */
    char host_header[160];
    struct conn *conns;
    struct ring free_conns, high, low;  /* high: heartbeats, leaves, stats */
    struct sync_call *sync;
    bool pump_armed;

    /* audience */
    struct viewer *v;
    uint8_t (*pids)[PID_BYTES];
    uint32_t wheel[WHEEL_SLOTS];
    uint32_t wheel_tick;      /* next tick to process */
    char stages[MAX_STAGES_SEEN][ARN_MAX];
    int nstages;
    int64_t n_seated, n_joining, n_leaving, n_vanished, peak_seated;
    int64_t n_join_sent, n_leave_sent;   /* of those joining/leaving, sent and unsure */
    uint32_t active_end_ms, burst_end_ms, heartbeat_ms, grace_ms;

    /* phases */
    enum phase phase;
    uint32_t phase_start_ms, next_report_ms, next_check_ms, next_mem_ms;
    int sigints;
    bool timed_out;

    /* checks */
    redisContext *redis;
    int64_t baseline;
    struct check chk;
    struct memsample mem_base, mem_peak, mem_settled;
    bool mem_settled_set;

    /* reporting */
    struct counters c, c_last;
    int anomalies_shown;
    struct lat join_wire, join_wire_burst, seat_delay_burst, hb_wire;
    int64_t last_report_us;
};

/* sim_opts.c */
int opts_parse(struct opts *o, int argc, char **argv);   /* 0 ok, 1 help, -1 bad */
uint32_t ramp_time_ms(const struct opts *o, uint32_t i);  /* when viewer i joins */
double ramp_end_s(const struct opts *o);

/* simulator.c */
uint32_t sim_now_ms(const struct sim *s);
int64_t sim_now_us(const struct sim *s);
double sim_rand(struct sim *s);                           /* [0, 1) */

/* sim_http.c */
int http_init(struct sim *s);
void http_free(struct sim *s);
void http_enqueue(struct sim *s, uint32_t item, bool high);
void http_pump(struct sim *s);
int http_sync(struct sim *s, const char *method, const char *path, const char *body,
              json_t **doc);                               /* status, 0 on no answer */
size_t http_queued(const struct sim *s);
size_t http_inflight(const struct sim *s);

/* sim_audience.c */
int audience_init(struct sim *s);
void audience_free(struct sim *s);
void audience_tick(struct sim *s, uint32_t now_ms);
void audience_finale_scan(struct sim *s);
int audience_request(struct sim *s, uint32_t idx, char *path, size_t pathlen,
                     char *body, size_t bodylen);          /* enum kind, -1 = nothing */
void audience_answer(struct sim *s, const struct conn *c, int status, const char *body,
                     size_t len);
void truth_range(const struct sim *s, int64_t *min, int64_t *max);
int stage_index(struct sim *s, const char *arn);
bool user_index(const struct sim *s, const char *user, uint32_t *idx);

/* sim_check.c */
int check_connect_redis(struct sim *s);
int check_baseline(struct sim *s);
void check_start(struct sim *s, const char *label, bool exact);
void check_note_truth(struct sim *s);
void check_retry_due(struct sim *s, uint32_t now);
void check_on_stats(struct sim *s, int status, const char *body, size_t len);
void mem_sample(struct sim *s, struct memsample *m);

/* sim_report.c */
void lat_add(struct lat *l, int64_t us);
void lat_free(struct lat *l);
void count_status(struct sim *s, int kind, int status);
void report_progress(struct sim *s);
void report_summary(struct sim *s);

#endif
