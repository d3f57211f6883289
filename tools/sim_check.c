/* sim_check.c — comparing usher with the simulator's truth, and measuring
 * what the audience costs in memory.
 *
 * A check asks GET /api/stats through the normal request queue (so it waits
 * its turn like any client), and when the answer comes reads the Redis keys
 * of SPEC §3 directly with a synchronous hiredis connection. The Redis read
 * is one MULTI/EXEC, so total_viewers, every viewers:{arn}, every HLEN
 * viewer:heartbeat:{arn} (and usher's own expiry index) come from a single
 * instant and must agree with each other exactly even while the audience is
 * busy. Against the truth:
 *
 *   checkpoint   /api/stats and Redis within the truth range (joins and
 *                leaves in flight, vanished viewers inside their grace);
 *                /api/stats against the range seen while it was in flight,
 *                Redis against the range at the instant it is read (the
 *                event loop is stopped while hiredis waits, so the truth
 *                cannot move, and all that usher can still apply is in it).
 *   exact        nothing in flight and every grace run out: every count
 *                equals the truth, per stage too, and the heartbeat hashes
 *                hold exactly the seated viewers, each in its stage.
 *
 * Seats that were there before the run (the baseline) are added to the
 * truth, so a run against a Redis with other viewers still checks.
 *
 * It reads the truth (sim_truth.c), never a viewer: the audience and the
 * checks meet only there. A read that fails is asked again a second later
 * (an exact check CHECK_TRIES times, a checkpoint until it reads or the
 * run ends); a check counts in its tally only once it has read both
 * sources, so a run whose checks could not read fails (sim_report.c). */
#include "sim_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_TRIES 5

struct snap {
    redisReply *stages;          /* ZRANGE reply: owns the ARNs */
    long long total;
    long long *viewers, *hlen, *zcard;
    size_t n;
};

static void snap_free(struct snap *sn)
{
    if (sn->stages)
        freeReplyObject(sn->stages);
    free(sn->viewers);
    free(sn->hlen);
    free(sn->zcard);
    memset(sn, 0, sizeof *sn);
}

static long long reply_num(const redisReply *r)
{
    if (!r)
        return -1;
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtoll(r->str, NULL, 10);
    return r->type == REDIS_REPLY_NIL ? 0 : -1;
}

static int connect_redis(struct checker *k)
{
    const struct opts *o = k->o;
    struct timeval tv = {2, 0};
    if (k->redis)
        redisFree(k->redis);
    k->redis = redisConnectWithTimeout(o->redis_host, o->redis_port, tv);
    if (!k->redis || k->redis->err) {
        fprintf(stderr, "simulator: cannot reach Redis at %s:%d: %s\n", o->redis_host,
                o->redis_port, k->redis ? k->redis->errstr : "out of memory");
        return -1;
    }
    struct timeval io = {10, 0};
    redisSetTimeout(k->redis, io);
    redisReply *r = NULL;
    if (o->redis_pass[0])
        r = o->redis_user[0] ? redisCommand(k->redis, "AUTH %s %s", o->redis_user, o->redis_pass)
                             : redisCommand(k->redis, "AUTH %s", o->redis_pass);
    if (r && r->type == REDIS_REPLY_ERROR)
        fprintf(stderr, "simulator: Redis AUTH: %s\n", r->str);
    if (r)
        freeReplyObject(r);
    if (o->redis_db) {
        r = redisCommand(k->redis, "SELECT %d", o->redis_db);
        if (r)
            freeReplyObject(r);
    }
    return 0;
}

/* One consistent read of the SPEC §3 counts; -1 when Redis failed. */
static int snapshot(struct checker *k, struct snap *sn)
{
    const char *P = k->o->prefix;
    memset(sn, 0, sizeof *sn);
    if (!k->redis || k->redis->err)
        if (connect_redis(k) != 0)
            return -1;
    sn->stages = redisCommand(k->redis, "ZRANGE %sstages 0 -1", P);
    if (!sn->stages || sn->stages->type != REDIS_REPLY_ARRAY)
        goto fail;
    sn->n = sn->stages->elements;
    sn->viewers = calloc(sn->n + 1, sizeof *sn->viewers);
    sn->hlen = calloc(sn->n + 1, sizeof *sn->hlen);
    sn->zcard = calloc(sn->n + 1, sizeof *sn->zcard);
    if (!sn->viewers || !sn->hlen || !sn->zcard)
        goto fail;
    redisAppendCommand(k->redis, "MULTI");
    redisAppendCommand(k->redis, "GET %stotal_viewers", P);
    for (size_t i = 0; i < sn->n; i++) {
        const char *arn = sn->stages->element[i]->str;
        redisAppendCommand(k->redis, "GET %sviewers:%s", P, arn);
        redisAppendCommand(k->redis, "HLEN %sviewer:heartbeat:%s", P, arn);
        redisAppendCommand(k->redis, "ZCARD %sviewer:expiry:%s", P, arn);
    }
    redisAppendCommand(k->redis, "EXEC");
    redisReply *r = NULL;
    for (size_t i = 0; i < 3 * sn->n + 2; i++) {      /* OK and QUEUED */
        if (redisGetReply(k->redis, (void **)&r) != REDIS_OK)
            goto fail;
        freeReplyObject(r);
    }
    if (redisGetReply(k->redis, (void **)&r) != REDIS_OK)
        goto fail;
    bool ok = r->type == REDIS_REPLY_ARRAY && r->elements == 3 * sn->n + 1;
    if (ok) {
        sn->total = reply_num(r->element[0]);
        for (size_t i = 0; i < sn->n; i++) {
            sn->viewers[i] = reply_num(r->element[1 + 3 * i]);
            sn->hlen[i] = reply_num(r->element[2 + 3 * i]);
            sn->zcard[i] = reply_num(r->element[3 + 3 * i]);
        }
    }
    freeReplyObject(r);
    if (ok)
        return 0;
fail:
    fprintf(stderr, "simulator: reading Redis failed: %s\n",
            k->redis && k->redis->err ? k->redis->errstr : "unexpected reply");
    snap_free(sn);
    if (k->redis && k->redis->err) {
        redisFree(k->redis);
        k->redis = NULL;
    }
    return -1;
}

static void snap_sums(const struct snap *sn, long long *viewers, long long *hlen, long long *zcard)
{
    *viewers = *hlen = *zcard = 0;
    for (size_t i = 0; i < sn->n; i++) {
        *viewers += sn->viewers[i];
        *hlen += sn->hlen[i];
        *zcard += sn->zcard[i];
    }
}

static long long snap_max_stage(const struct snap *sn)
{
    long long m = 0;
    for (size_t i = 0; i < sn->n; i++)
        if (sn->hlen[i] > m)
            m = sn->hlen[i];
    return m;
}

int check_baseline(struct checker *k)
{
    struct snap sn;
    if (snapshot(k, &sn) != 0)
        return -1;
    long long v, h, z;
    snap_sums(&sn, &v, &h, &z);
    k->truth->baseline = sn.total;
    printf("redis: %zu stages; total_viewers %lld, sum viewers:{arn} %lld, sum HLEN %lld before the run\n",
           sn.n, sn.total, v, h);
    if (sn.total != 0)
        printf("redis: warning: %lld viewers are seated already; they count as a baseline that must not move\n",
               sn.total);
    if (sn.total != v || v != h)
        printf("redis: warning: the counts disagree before the run has started\n");
    snap_free(&sn);
    return 0;
}

void check_start(struct checker *k, const char *label, bool exact)
{
    k->pending = true;
    k->exact = exact;
    k->tries = 0;
    k->retry_ms = 0;
    snprintf(k->label, sizeof k->label, "%s", label);
    if (!exact)
        k->rep->tally[T_CHECKPOINT].planned++;   /* the exact checks are planned at the start */
    truth_watch(k->truth);
    http_enqueue(k->http, &k->client, 0, true);
}

void check_retry_due(struct checker *k, uint32_t now)
{
    if (k->pending && k->retry_ms && now >= k->retry_ms) {
        k->retry_ms = 0;
        truth_watch(k->truth);   /* a new window for the new read */
        http_enqueue(k->http, &k->client, 0, true);
    }
}

/* ---- /api/stats ---------------------------------------------------------- */

struct api_stats { long long total; json_t *stages; json_t *doc; };

static int parse_stats(int status, const char *body, size_t len, struct api_stats *a)
{
    a->doc = status == 200 ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *data = json_object_get(a->doc, "data");
    json_t *total = json_object_get(data, "totalViewers");
    a->stages = json_object_get(data, "stages");
    a->total = json_is_integer(total) ? json_integer_value(total) : -1;
    if (a->total < 0 || !json_is_array(a->stages)) {
        fprintf(stderr, "simulator: GET /api/stats answered %d without the SPEC shape\n", status);
        return -1;
    }
    return 0;
}

static long long api_stage_count(const struct api_stats *a, const char *arn)
{
    size_t i;
    json_t *st;
    json_array_foreach(a->stages, i, st) {
        const char *id = json_string_value(json_object_get(st, "stageId"));
        if (id && strcmp(id, arn) == 0) {
            json_t *n = json_object_get(st, "viewerCount");
            return json_is_integer(n) ? json_integer_value(n) : -1;
        }
    }
    return -1;
}

/* ---- verdicts ------------------------------------------------------------ */

static bool verdict(struct checker *k, bool ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%-8s ", ok ? "MATCH" : "MISMATCH");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (!ok)
        k->rep->c.check_mismatches++;
    return ok;
}

/* Every field of every heartbeat hash is a viewer the truth has seated in
 * that stage, and they are all there: the sets are equal, not just counted. */
static void check_seats(struct checker *k, const struct snap *sn)
{
    struct truth *t = k->truth;
    long long good = 0, bad = 0, foreign = 0;
    for (size_t i = 0; i < sn->n; i++) {
        const char *arn = sn->stages->element[i]->str;
        int stage = truth_stage(t, arn);
        redisReply *r = redisCommand(k->redis, "HKEYS %sviewer:heartbeat:%s", k->o->prefix, arn);
        for (size_t j = 0; r && r->type == REDIS_REPLY_ARRAY && j < r->elements; j++) {
            uint32_t idx;
            if (!truth_user(t, r->element[j]->str, &idx)) {
                foreign++;
                continue;
            }
            if (stage >= 0 && t->seat[idx] == stage) {
                good++;
            } else if (bad++ < 5) {
                printf("         %s is in the hash of %s but the truth has it %s%s\n",
                       r->element[j]->str, arn, t->seat[idx] == NO_SEAT ? "not seated" : "in ",
                       t->seat[idx] == NO_SEAT ? "" : t->stages[t->seat[idx]]);
            }
        }
        if (r)
            freeReplyObject(r);
    }
    verdict(k, good == t->seated && bad == 0 && foreign == t->baseline,
            "seats: the heartbeat hashes hold exactly the %lld seated viewers, each in its stage"
            " (%lld found, %lld misplaced or unseated, %lld not ours)",
            (long long)t->seated, good, bad, foreign);
}

static void check_per_stage(struct checker *k, const struct api_stats *a, const struct snap *sn)
{
    size_t agree = 0;
    for (size_t i = 0; i < sn->n; i++) {
        long long api = api_stage_count(a, sn->stages->element[i]->str);
        if (api == sn->viewers[i] && sn->viewers[i] == sn->hlen[i])
            agree++;
        else
            printf("         stage %s: /api/stats %lld, viewers %lld, HLEN %lld\n",
                   sn->stages->element[i]->str, api, sn->viewers[i], sn->hlen[i]);
    }
    printf("         viewers per stage:");
    for (size_t i = 0; i < sn->n; i++)
        printf(" %lld", sn->hlen[i]);
    printf("\n");
    /* The publisher is live, so there is a master stage: none listed means
     * the per-stage comparison compared nothing. */
    verdict(k, sn->n > 0 && agree == sn->n && json_array_size(a->stages) == sn->n,
            "per stage: /api/stats viewerCount == viewers:{arn} == HLEN in %zu of %zu stages "
            "(at least the master stage)", agree, sn->n);
}

static void check_exact(struct checker *k, const struct api_stats *a, const struct snap *sn)
{
    const struct truth *t = k->truth;
    long long v, h, z, want = t->baseline + t->seated;
    int64_t min, max;
    truth_range(t, &min, &max);
    snap_sums(sn, &v, &h, &z);
    printf("-- exact check: %s (truth %lld seated%s)\n", k->label, (long long)t->seated,
           t->baseline ? ", plus the baseline" : "");
    verdict(k, t->wmin == t->wmax && min == max,
            "truth settled: nothing in flight, no grace running (range [%lld..%lld])",
            (long long)t->wmin, (long long)t->wmax);
    verdict(k, a->total == want, "/api/stats totalViewers          %8lld == truth %lld", a->total, want);
    verdict(k, sn->total == want, "redis total_viewers              %8lld == truth %lld", sn->total, want);
    verdict(k, v == want, "sum of viewers:{arn}, %2zu stages   %8lld == truth %lld", sn->n, v, want);
    verdict(k, h == want, "sum of HLEN viewer:heartbeat:{arn} %6lld == truth %lld", h, want);
    check_per_stage(k, a, sn);
    verdict(k, z == h, "usher's expiry index: sum of ZCARD viewer:expiry:{arn} %lld == sum of HLEN %lld", z, h);
    if (k->o->capacity > 0)
        verdict(k, snap_max_stage(sn) <= k->o->capacity, "no stage above capacity %d (fullest %lld)",
                k->o->capacity, snap_max_stage(sn));
    check_seats(k, sn);
}

static void check_range(struct checker *k, const struct api_stats *a, const struct snap *sn)
{
    const struct truth *t = k->truth;
    long long v, h, z, b = t->baseline;
    int64_t min, max;
    truth_range(t, &min, &max);
    snap_sums(sn, &v, &h, &z);
    bool api_ok = a->total >= b + t->wmin && a->total <= b + t->wmax;
    bool redis_ok = sn->total >= b + min && sn->total <= b + max;
    bool sums_ok = sn->total == v && v == h && h == z;
    bool cap_ok = k->o->capacity <= 0 || snap_max_stage(sn) <= k->o->capacity;
    bool ok = api_ok && redis_ok && sums_ok && cap_ok;
    printf("CHECK %-9s api %lld in [%lld..%lld]%s  redis %lld in [%lld..%lld]%s  "
           "= sum viewers %lld = sum HLEN %lld = sum ZCARD %lld%s%s  %s\n",
           k->label, a->total, b + t->wmin, b + t->wmax, api_ok ? "" : " (OUT)",
           sn->total, b + min, b + max, redis_ok ? "" : " (OUT)", v, h, z,
           sums_ok ? "" : " (DISAGREE)", cap_ok ? "" : " (STAGE OVER CAPACITY)",
           ok ? "ok" : "MISMATCH");
    if (!ok)
        k->rep->c.check_mismatches++;
}

/* A read failed: usher may rightly answer 503 while Redis is away. A
 * checkpoint is asked again until it reads (the run's --max-run bounds
 * it), an exact check CHECK_TRIES times, then it is a mismatch. */
static void read_failed(struct checker *k, int status)
{
    if (!k->exact || k->tries++ < CHECK_TRIES) {
        printf("CHECK %-9s could not read /api/stats (%d) or Redis; asking again in 1 s\n",
               k->label, status);
        k->retry_ms = clock_ms(k->clock) + 1000;
        return;
    }
    printf("MISMATCH %s: could not read /api/stats (%d) or Redis\n", k->label, status);
    k->rep->c.check_mismatches++;
    k->pending = false;
}

static bool stats_prepare(void *arg, uint32_t item, struct http_req *req)
{
    (void)arg, (void)item;
    req->get = true;
    req->tag = K_STATS;
    snprintf(req->path, sizeof req->path, "/api/stats");
    return true;
}

static void stats_answer(void *arg, uint32_t item, const struct http_answer *ans)
{
    (void)item;
    struct checker *k = arg;
    struct api_stats a = {0};
    struct snap sn;
    count_status(k->rep, K_STATS, ans->status);
    truth_changed(k->truth);
    if (parse_stats(ans->status, ans->body, ans->len, &a) != 0 || snapshot(k, &sn) != 0) {
        json_decref(a.doc);
        read_failed(k, ans->status);
        fflush(stdout);
        return;
    }
    if (k->exact)
        check_exact(k, &a, &sn);
    else
        check_range(k, &a, &sn);
    snap_free(&sn);
    json_decref(a.doc);
    fflush(stdout);
    k->rep->tally[k->exact ? T_EXACT : T_CHECKPOINT].ran++;
    k->pending = false;
}

/* ---- memory ----------------------------------------------------------- */

static long usher_rss_kb(int pid)
{
    char path[64], line[256];
    long kb = -1;
    if (pid <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static long long redis_used_memory(struct checker *k)
{
    if (!k->redis || k->redis->err)
        return -1;
    redisReply *r = redisCommand(k->redis, "INFO memory");
    long long bytes = -1;
    const char *at = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "used_memory:") : NULL;
    if (at)
        bytes = strtoll(at + strlen("used_memory:"), NULL, 10);
    if (r)
        freeReplyObject(r);
    return bytes;
}

void check_memory(struct checker *k, int usher_pid, struct memsample *m)
{
    m->usher_kb = usher_rss_kb(usher_pid);
    m->redis_bytes = redis_used_memory(k);
    m->seated = k->truth->seated;
}

int check_init(struct checker *k, const struct opts *o, const struct sim_clock *clock,
               struct http_pool *http, struct truth *truth, struct report *rep)
{
    *k = (struct checker){.o = o, .clock = clock, .http = http, .truth = truth, .rep = rep};
    k->client = (struct http_client){stats_prepare, stats_answer, k};
    return connect_redis(k);
}

void check_free(struct checker *k)
{
    if (k->redis)
        redisFree(k->redis);
    k->redis = NULL;
}
