/* sim_opts.h — the simulator's options and its join curve (see sim_opts.c). */
#ifndef USHER_SIM_OPTS_H
#define USHER_SIM_OPTS_H

#include <stdint.h>

#define MAX_RAMP_POINTS 64

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
    double heartbeat, timeout, cleanup, slack;                   /* s */
    double leave_pct, vanish_pct, rejoin_pct, rejoin_api_pct, rejoin_gap;
    double duration, report_every, checkpoint_every, request_timeout, max_run;  /* s */
    int connections, join_inflight, usher_pid, stages, capacity, join_retries;
    uint64_t seed;
    enum finale finale;
};

/* Parses argv into o: 0 ok, 1 --help (printed), -1 bad (message printed). */
int opts_parse(struct opts *o, int argc, char **argv);
/* When viewer i (0-based) asks to join, ms after the start. */
uint32_t ramp_time_ms(const struct opts *o, uint32_t i);
/* The second the ramp ends. */
double ramp_end_s(const struct opts *o);

#endif
