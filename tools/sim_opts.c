/* sim_opts.c — the simulator's flags, its --help, and the join curve.
 *
 * Every flag is one row of FLAGS: its name, the word shown for its value,
 * where it lands, and its help line; parsing and --help both walk the
 * table, so a knob cannot be parsed without being explained. Flags take
 * `--name value` or `--name=value`.
 *
 * The join curve is a list of points "N@S": N viewers have asked to join
 * S seconds after the start, linear in between and from (0 s, 0). Viewer i
 * (0-based) asks at the moment the curve reaches i + 1.
 *
 * A leaf: the rest of the simulator reads struct opts, nothing here reads
 * the rest. */
#include "sim_opts.h"
#include "sim_truth.h"   /* MAX_STAGES_SEEN */

#include <stdbool.h>

#include <ctype.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <event2/http.h>

/* Flags given as text and turned into opts after parsing. */
struct raw {
    char url[256], redis_url[512], ramp[1024], finale[16];
    double viewers;        /* -1 = not given */
};

enum fkind { F_TEXT, F_INT, F_NUM, F_U64 };

struct flag {
    const char *name, *arg;
    enum fkind kind;
    bool raw;              /* offset is into struct raw, not struct opts */
    size_t offset, size;   /* size: buffer size of a F_TEXT */
    const char *help;
};

#define O(field) false, offsetof(struct opts, field), sizeof(((struct opts *)0)->field)
#define R(field) true, offsetof(struct raw, field), sizeof(((struct raw *)0)->field)

static const struct flag FLAGS[] = {
    {"url", "URL", F_TEXT, R(url), "usher's base URL, http://HOST:PORT (default http://127.0.0.1:3000)"},
    {"api-key", "KEY", F_TEXT, O(api_key), "sent as X-API-Key (default: none; fine with SKIP_AUTH or loopback)"},
    {"redis-url", "URL", F_TEXT, R(redis_url), "the Redis usher uses, redis://[[user]:pass@]HOST[:PORT][/DB] (default redis://127.0.0.1:6379)"},
    {"prefix", "P", F_TEXT, O(prefix), "usher's REDIS_KEY_PREFIX (default ivs:prod:)"},
    {"user-prefix", "P", F_TEXT, O(user_prefix), "viewer ids are P0, P1, ...; [A-Za-z0-9._:-] (default sim-<time>-, new each run)"},
    {"viewers", "N", F_NUM, R(viewers), "virtual viewers (default 10000, or the last point of --ramp)"},
    {"ramp", "N@S,...", F_TEXT, R(ramp), "join curve: N viewers joined by second S, linear between points, e.g. 20000@10,100000@60; the first segment is 'the burst' (default N@ceil(N/1000): 1000 joins/s)"},
    {"heartbeat", "S", F_NUM, O(heartbeat), "seconds between a viewer's heartbeats (default 30)"},
    {"timeout", "S", F_NUM, O(timeout), "usher's HEARTBEAT_TIMEOUT (default 60)"},
    {"cleanup", "S", F_NUM, O(cleanup), "usher's HEARTBEAT_CLEANUP_INTERVAL (default 30)"},
    {"slack", "S", F_NUM, O(slack), "extra seconds allowed for a sweep to finish (default 1)"},
    {"leave", "PCT", F_NUM, O(leave_pct), "percent of viewers who leave cleanly at a random time (default 10)"},
    {"vanish", "PCT", F_NUM, O(vanish_pct), "percent who stop heartbeating without a word, for expiry to remove (default 10)"},
    {"rejoin", "PCT", F_NUM, O(rejoin_pct), "percent who leave or vanish (half each) and join again later (default 10); the rest stay"},
    {"rejoin-api", "PCT", F_NUM, O(rejoin_api_pct), "percent of rejoins that use POST /api/viewer/rejoin with their old stage and participant id; the others ask for a new token (default 50). When >0 with --rejoin >0, at least one such rejoin must happen and each must be re-seated, or the run fails"},
    {"rejoin-gap", "S", F_NUM, O(rejoin_gap), "a rejoin comes 1..S seconds after leaving or vanishing (default 2 x --timeout, so some land inside the expiry grace)"},
    {"duration", "S", F_NUM, O(duration), "seconds of activity (joins, leaves, vanishes) from the start (default ramp end + max(30, 2 x --timeout))"},
    {"connections", "N", F_INT, O(connections), "keep-alive HTTP connections (default 64)"},
    {"join-inflight", "N", F_INT, O(join_inflight), "at most N joins in flight at once, so the rest of the connections stay free for heartbeats (default 128, at most --connections)"},
    {"request-timeout", "S", F_NUM, O(request_timeout), "seconds before a request counts as unanswered (default 10)"},
    {"join-retries", "N", F_INT, O(join_retries), "retries of a join refused with 429/5xx or unanswered, with backoff (default 5)"},
    {"stages", "N", F_INT, O(stages), "before starting, create stages (POST /api/stage) until N exist (default 0: use what is there)"},
    {"capacity", "N", F_INT, O(capacity), "usher's MAX_VIEWERS_PER_STAGE: checkpoints then check no stage holds more (default 0: not checked)"},
    {"finale", "WORD", F_TEXT, R(finale), "at the end, after the settled check: leave (all leave, expect 0), vanish (all go silent, expect 0 after expiry) or stay (default leave)"},
    {"usher-pid", "PID", F_INT, O(usher_pid), "usher's process id, for its RSS per seated viewer (default: not measured)"},
    {"report", "S", F_NUM, O(report_every), "seconds between progress lines (default 5)"},
    {"checkpoint", "S", F_NUM, O(checkpoint_every), "seconds between checkpoints during the run; 0 = none (default 15). When >0, at least one must run, or the run fails"},
    {"max-run", "S", F_NUM, O(max_run), "hard limit on the whole run, after which it stops and fails (default: computed from the others)"},
    {"seed", "N", F_U64, O(seed), "random seed: fates and times repeat with it (default 1)"},
};
#define NFLAGS (sizeof FLAGS / sizeof FLAGS[0])

static void usage(FILE *out)
{
    fprintf(out,
        "usage: simulator [--flag VALUE | --flag=VALUE]...\n"
        "Plays an audience against a running usher over HTTP keep-alive and checks\n"
        "that /api/stats and the Redis keys of SPEC 3 agree with its own truth.\n"
        "\n"
        "A run: POST /api/token/publisher; viewers join along --ramp, heartbeat every\n"
        "--heartbeat s, and meet their fate (stay, leave, vanish, rejoin) at a random\n"
        "time before --duration. Then joins and fates stop (heartbeats go on), the\n"
        "simulator waits --timeout + 2 x --cleanup, and requires exact equality of\n"
        "its truth, /api/stats, total_viewers, the sum of viewers:{arn} and the sum of\n"
        "HLEN viewer:heartbeat:{arn}; then the --finale, and the same check again.\n"
        "Checkpoints during the run accept a range: joins and leaves in flight and\n"
        "vanished viewers inside their expiry grace may or may not be counted yet.\n"
        "Exit status: 0 all MATCH, 1 a mismatch, an anomaly, or a check that ran on no\n"
        "case or on fewer than it planned, 2 bad flags or setup.\n"
        "\n");
    for (size_t i = 0; i < NFLAGS; i++) {
        char left[48];
        snprintf(left, sizeof left, "--%s %s", FLAGS[i].name, FLAGS[i].arg);
        fprintf(out, "  %-24s %s\n", left, FLAGS[i].help);
    }
    fprintf(out,
        "  %-24s %s\n\n"
        "Time compression: give usher short HEARTBEAT_TIMEOUT and\n"
        "HEARTBEAT_CLEANUP_INTERVAL, and the same values here with a shorter\n"
        "--heartbeat, e.g. --heartbeat 2 --timeout 6 --cleanup 2. Keep\n"
        "viewers / heartbeat within what usher serves (heartbeats go first, joins wait).\n",
        "--help", "this text");
}

static void set_defaults(struct opts *o, struct raw *r)
{
    memset(o, 0, sizeof *o);
    memset(r, 0, sizeof *r);
    snprintf(r->url, sizeof r->url, "http://127.0.0.1:3000");
    snprintf(r->redis_url, sizeof r->redis_url, "redis://127.0.0.1:6379");
    snprintf(r->finale, sizeof r->finale, "leave");
    r->viewers = -1;
    snprintf(o->prefix, sizeof o->prefix, "ivs:prod:");
    /* A new id space each run, so seats left by an earlier run are not ours. */
    snprintf(o->user_prefix, sizeof o->user_prefix, "sim-%lx-", (unsigned long)time(NULL) % 0xfffffful);
    o->heartbeat = 30, o->timeout = 60, o->cleanup = 30, o->slack = 1;
    o->leave_pct = 10, o->vanish_pct = 10, o->rejoin_pct = 10, o->rejoin_api_pct = 50;
    o->rejoin_gap = -1, o->duration = -1, o->max_run = -1;
    o->connections = 64, o->join_inflight = 128, o->request_timeout = 10, o->join_retries = 5;
    o->report_every = 5, o->checkpoint_every = 15, o->seed = 1;
}

static int store_value(const struct flag *f, void *base, const char *val)
{
    char *end = NULL;
    void *at = (char *)base + f->offset;
    switch (f->kind) {
    case F_TEXT:
        if (strlen(val) >= f->size)
            return -1;
        memcpy(at, val, strlen(val) + 1);
        return 0;
    case F_INT: {
        long n = strtol(val, &end, 10);
        if (end == val || *end || n < 0 || n > 1000000000)
            return -1;
        *(int *)at = (int)n;
        return 0;
    }
    case F_NUM: {
        double d = strtod(val, &end);
        if (end == val || *end || !isfinite(d) || d < 0)
            return -1;
        *(double *)at = d;
        return 0;
    }
    case F_U64: {
        unsigned long long n = strtoull(val, &end, 10);
        if (end == val || *end)
            return -1;
        *(uint64_t *)at = n;
        return 0;
    }
    }
    return -1;
}

static const struct flag *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < NFLAGS; i++)
        if (strlen(FLAGS[i].name) == len && strncmp(FLAGS[i].name, name, len) == 0)
            return &FLAGS[i];
    return NULL;
}

/* Reads argv into o and r; 1 on --help, -1 on a bad flag. */
static int read_flags(struct opts *o, struct raw *r, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return 1;
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "simulator: unexpected argument '%s' (see --help)\n", a);
            return -1;
        }
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        const struct flag *f = find_flag(a + 2, len);
        if (!f) {
            fprintf(stderr, "simulator: unknown flag '%s' (see --help)\n", a);
            return -1;
        }
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!val || store_value(f, f->raw ? (void *)r : (void *)o, val) != 0) {
            fprintf(stderr, "simulator: --%s needs %s, not '%s'\n", f->name, f->arg,
                    val ? val : "(nothing)");
            return -1;
        }
    }
    return 0;
}

static int parse_url(struct opts *o, const char *url)
{
    struct evhttp_uri *u = evhttp_uri_parse(url);
    const char *scheme = u ? evhttp_uri_get_scheme(u) : NULL;
    const char *host = u ? evhttp_uri_get_host(u) : NULL;
    int ok = scheme && strcmp(scheme, "http") == 0 && host && host[0] &&
             strlen(host) < sizeof o->host;
    if (ok) {
        snprintf(o->host, sizeof o->host, "%s", host);
        o->port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 80;
    }
    if (u)
        evhttp_uri_free(u);
    if (!ok)
        fprintf(stderr, "simulator: --url must be http://HOST[:PORT], not '%s'\n", url);
    return ok ? 0 : -1;
}

/* redis://[[user]:password@]host[:port][/db] */
static int parse_redis_url(struct opts *o, const char *url)
{
    const char *p = url;
    if (strncmp(p, "redis://", 8) != 0)
        goto bad;
    p += 8;
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon || (size_t)(colon - p) >= sizeof o->redis_user ||
            (size_t)(at - colon - 1) >= sizeof o->redis_pass)
            goto bad;
        snprintf(o->redis_user, sizeof o->redis_user, "%.*s", (int)(colon - p), p);
        snprintf(o->redis_pass, sizeof o->redis_pass, "%.*s", (int)(at - colon - 1), colon + 1);
        p = at + 1;
    }
    size_t hostlen = strcspn(p, ":/");
    if (hostlen == 0 || hostlen >= sizeof o->redis_host)
        goto bad;
    snprintf(o->redis_host, sizeof o->redis_host, "%.*s", (int)hostlen, p);
    p += hostlen;
    o->redis_port = 6379;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (port < 1 || port > 65535)
            goto bad;
        o->redis_port = (int)port;
        p = end;
    }
    if (*p == '/' && p[1]) {
        char *end;
        long db = strtol(p + 1, &end, 10);
        if (db < 0 || db > 15 || *end)
            goto bad;
        o->redis_db = (int)db;
    } else if (*p && strcmp(p, "/") != 0) {
        goto bad;
    }
    return 0;
bad:
    fprintf(stderr, "simulator: --redis-url must be redis://[[user]:pass@]HOST[:PORT][/DB], not '%s'\n", url);
    return -1;
}

static int parse_ramp(struct opts *o, const char *text)
{
    const char *p = text;
    o->nramp = 0;
    while (*p) {
        char *end;
        double n = strtod(p, &end);
        if (end == p || *end != '@' || o->nramp == MAX_RAMP_POINTS)
            goto bad;
        p = end + 1;
        double t = strtod(p, &end);
        if (end == p || (*end && *end != ','))
            goto bad;
        p = *end ? end + 1 : end;
        double prev_t = o->nramp ? o->ramp[o->nramp - 1].t : 0;
        double prev_n = o->nramp ? o->ramp[o->nramp - 1].n : 0;
        if (!(n >= prev_n) || n != floor(n) || !(t >= 0) || (o->nramp && !(t > prev_t)))
            goto bad;
        o->ramp[o->nramp].n = n;
        o->ramp[o->nramp].t = t;
        o->nramp++;
    }
    if (o->nramp == 0 || o->ramp[o->nramp - 1].n < 1 || o->ramp[o->nramp - 1].n > 50e6)
        goto bad;
    return 0;
bad:
    fprintf(stderr, "simulator: --ramp must be N@S[,N@S]... with S rising and N not falling, not '%s'\n", text);
    return -1;
}

static bool valid_user_prefix(const char *p)
{
    for (; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._:-", *p))
            return false;
    return true;
}

/* Cross-flag rules and derived defaults; -1 with a message when bad. */
/* The join curve from --ramp, or from --viewers at 1,000 joins/s. */
static int settle_ramp(struct opts *o, struct raw *r)
{
    if (r->ramp[0]) {
        if (parse_ramp(o, r->ramp))
            return -1;
        if (r->viewers >= 0 && r->viewers != o->ramp[o->nramp - 1].n) {
            fprintf(stderr, "simulator: --viewers differs from the last point of --ramp\n");
            return -1;
        }
    } else {
        double n = r->viewers >= 0 ? r->viewers : 10000;
        if (n < 1 || n > 50e6 || n != floor(n)) {
            fprintf(stderr, "simulator: --viewers must be a whole number from 1 to 50000000\n");
            return -1;
        }
        o->ramp[0].n = n;
        o->ramp[0].t = ceil(n / 1000);
        o->nramp = 1;
    }
    o->viewers = (uint32_t)o->ramp[o->nramp - 1].n;
    return 0;
}

static int settle_opts(struct opts *o, struct raw *r)
{
    if (parse_url(o, r->url) || parse_redis_url(o, r->redis_url) || settle_ramp(o, r))
        return -1;
    if (strcmp(r->finale, "leave") == 0) o->finale = FINALE_LEAVE;
    else if (strcmp(r->finale, "vanish") == 0) o->finale = FINALE_VANISH;
    else if (strcmp(r->finale, "stay") == 0) o->finale = FINALE_STAY;
    else {
        fprintf(stderr, "simulator: --finale is leave, vanish or stay\n");
        return -1;
    }
    if (o->leave_pct + o->vanish_pct + o->rejoin_pct > 100 || o->rejoin_api_pct > 100) {
        fprintf(stderr, "simulator: --leave + --vanish + --rejoin must be at most 100, --rejoin-api at most 100\n");
        return -1;
    }
    if (o->heartbeat < 0.1 || o->timeout < 1 || o->cleanup < 1 || o->request_timeout < 1) {
        fprintf(stderr, "simulator: --heartbeat >= 0.1, --timeout, --cleanup and --request-timeout >= 1\n");
        return -1;
    }
    if (o->heartbeat >= o->timeout)
        fprintf(stderr, "simulator: warning: --heartbeat %.1f is not below --timeout %.1f: "
                        "seated viewers will expire\n", o->heartbeat, o->timeout);
    if (o->connections < 1 || o->connections > 4096 || o->stages > MAX_STAGES_SEEN ||
        o->join_retries > 50 || o->report_every < 0.5) {
        fprintf(stderr, "simulator: --connections 1-4096, --stages at most %d, --join-retries at most 50, --report >= 0.5\n",
                MAX_STAGES_SEEN);
        return -1;
    }
    if (o->join_inflight < 1) {
        fprintf(stderr, "simulator: --join-inflight is at least 1\n");
        return -1;
    }
    if (o->join_inflight > o->connections)
        o->join_inflight = o->connections;
    if (!o->user_prefix[0] || !valid_user_prefix(o->user_prefix) || strlen(o->user_prefix) > 100) {
        fprintf(stderr, "simulator: --user-prefix takes 1-100 of [A-Za-z0-9._:-]\n");
        return -1;
    }
    if (o->rejoin_gap < 0)
        o->rejoin_gap = 2 * o->timeout;
    if (o->rejoin_gap < 1)
        o->rejoin_gap = 1;
    double ramp_end = ramp_end_s(o);
    if (o->duration < 0)
        o->duration = ramp_end + fmax(30, 2 * o->timeout);
    if (o->duration < ramp_end) {
        fprintf(stderr, "simulator: --duration %.0f ends before the ramp (%.0f s)\n", o->duration, ramp_end);
        return -1;
    }
    if (o->duration > 7 * 86400) {
        fprintf(stderr, "simulator: --duration is at most a week\n");
        return -1;
    }
    if (o->max_run < 0)
        /* activity, two settles with their retries, and the finale's leaves */
        o->max_run = o->duration + 3 * (o->timeout + 2 * o->cleanup + o->slack) +
                     4 * o->request_timeout * (o->join_retries + 2) + o->viewers / 500.0 + 120;
    return 0;
}

int opts_parse(struct opts *o, int argc, char **argv)
{
    struct raw r;
    set_defaults(o, &r);
    int rc = read_flags(o, &r, argc, argv);
    if (rc == 1) {
        usage(stdout);
        return 1;
    }
    if (rc < 0 || settle_opts(o, &r) < 0)
        return -1;
    return 0;
}

double ramp_end_s(const struct opts *o)
{
    return o->ramp[o->nramp - 1].t;
}

uint32_t ramp_time_ms(const struct opts *o, uint32_t i)
{
    double target = (double)i + 1, prev_t = 0, prev_n = 0;
    for (int k = 0; k < o->nramp; k++) {
        const struct ramp_point *p = &o->ramp[k];
        if (target <= p->n) {
            double dn = p->n - prev_n;
            double t = dn > 0 ? prev_t + (target - prev_n) / dn * (p->t - prev_t) : p->t;
            return (uint32_t)(t * 1000);
        }
        prev_t = p->t, prev_n = p->n;
    }
    return (uint32_t)(prev_t * 1000);
}
