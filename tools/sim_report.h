/* sim_report.h — counters, tallies of checks, latencies, output (see sim_report.c). */
#ifndef USHER_SIM_REPORT_H
#define USHER_SIM_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATUS_SLOTS 600       /* HTTP status counters; 0 = no answer */

/* What a request does; the rows of the status counters. */
enum kind { K_JOIN, K_REJOIN, K_HEARTBEAT, K_LEAVE, K_STATS, K_KINDS };

/* The checks a run plans. Each counts the cases it ran on; one that is on
 * and ran on none, or on fewer than planned, fails the run. */
enum tally_id {
    T_JOIN,        /* join answers: seated where usher says, isNewViewer as expected */
    T_HEARTBEAT,   /* heartbeat answers: a seat kept while heartbeating in time */
    T_LEAVE,       /* leave answers: wasSeated for a seated viewer */
    T_EXPIRY,      /* vanished viewers whose expiry grace ran out (then checked exactly) */
    T_REJOIN_API,  /* POST /api/viewer/rejoin: re-seated in the stage asked */
    T_CHECKPOINT,  /* range checkpoints read from /api/stats and Redis */
    T_EXACT,       /* exact checks read from /api/stats and Redis */
    T_TALLIES
};

struct tally {
    bool on;            /* the options plan this check */
    bool has_plan;      /* planned is a count to reach, not just "at least one" */
    uint64_t planned, ran, refused;   /* refused: cases usher turned away */
};

/* A growable array of latencies (µs), sorted only for the summary. */
struct lat { uint32_t *v; size_t n, cap; };

struct counters {
    uint64_t status[K_KINDS][STATUS_SLOTS];
    uint64_t hb_skipped;              /* previous heartbeat still queued */
    uint64_t lost_late, lost_unexpected; /* heartbeat 404: our lag / usher's */
    uint64_t stale_seats;             /* join said isNewViewer=false unexpectedly */
    uint64_t leave_no_seat;           /* leave said wasSeated=false */
    uint64_t wrong_stage;             /* rejoin seated elsewhere than asked */
    uint64_t bad_pid;                 /* participantId not as SPEC §5 says */
    uint64_t moves;                   /* heartbeat answered moved: true */
    uint64_t rejoin_fallbacks;        /* refused rejoin retried as a token join */
    uint64_t vanishes, rejoins, never_joined, failed;
    uint64_t check_mismatches;
};

struct report {
    struct counters c, c_last;
    struct tally tally[T_TALLIES];
    struct lat join_wire, join_wire_burst, seat_delay_burst, hb_wire, hb_wait;
    int anomalies_shown;
    int64_t last_report_us;
};

/* What the progress line shows, gathered by its caller. */
struct progress {
    int64_t now_us, seated, min, max, vanished;
    const char *phase;
    size_t queued, inflight;
    long usher_kb;          /* -1 = not measured */
    long long redis_bytes;  /* -1 = not measured */
};

struct memsample { long usher_kb; long long redis_bytes; int64_t seated; };

/* What the summary shows beyond the report's own numbers. */
struct summary {
    const char *run;                  /* one line describing the options */
    uint64_t fates[5];                /* stay, leave, vanish, leave+rejoin, vanish+rejoin */
    const uint64_t *net_errors;       /* HTTP_NET_ERRORS of them */
    const char *const *net_error_names;
    size_t n_net_errors;
    double burst_s;
    int64_t peak_seated;
    struct memsample mem_base, mem_peak, mem_settled;
    bool mem_settled_set;
};

void lat_add(struct lat *l, int64_t us);
void report_free(struct report *r);
void count_status(struct report *r, int kind, int status);
/* Prints an ANOMALY line (the first few of a run) naming what surprised. */
bool report_anomaly_shown(struct report *r);
void report_progress(struct report *r, const struct progress *p);
void report_summary(struct report *r, const struct summary *s);
/* Prints the RESULT line; returns the exit status (0 pass, 1 fail). */
int report_verdict(const struct report *r, bool timed_out);

#endif
