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
 * truth, so a run against a Redis with other viewers still checks. */
#include "sim.h"

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

int check_connect_redis(struct sim *s)
{
    const struct opts *o = &s->o;
    struct timeval tv = {2, 0};
    if (s->redis)
        redisFree(s->redis);
    s->redis = redisConnectWithTimeout(o->redis_host, o->redis_port, tv);
    if (!s->redis || s->redis->err) {
        fprintf(stderr, "simulator: cannot reach Redis at %s:%d: %s\n", o->redis_host,
                o->redis_port, s->redis ? s->redis->errstr : "out of memory");
        return -1;
    }
    struct timeval io = {10, 0};
    redisSetTimeout(s->redis, io);
    redisReply *r = NULL;
    if (o->redis_pass[0])
        r = o->redis_user[0] ? redisCommand(s->redis, "AUTH %s %s", o->redis_user, o->redis_pass)
                             : redisCommand(s->redis, "AUTH %s", o->redis_pass);
    if (r && r->type == REDIS_REPLY_ERROR)
        fprintf(stderr, "simulator: Redis AUTH: %s\n", r->str);
    if (r)
        freeReplyObject(r);
    if (o->redis_db) {
        r = redisCommand(s->redis, "SELECT %d", o->redis_db);
        if (r)
            freeReplyObject(r);
    }
    return 0;
}

/* One consistent read of the SPEC §3 counts; -1 when Redis failed. */
static int snapshot(struct sim *s, struct snap *sn)
{
    const char *P = s->o.prefix;
    memset(sn, 0, sizeof *sn);
    if (!s->redis || s->redis->err)
        if (check_connect_redis(s) != 0)
            return -1;
    sn->stages = redisCommand(s->redis, "ZRANGE %sstages 0 -1", P);
    if (!sn->stages || sn->stages->type != REDIS_REPLY_ARRAY)
        goto fail;
    sn->n = sn->stages->elements;
    sn->viewers = calloc(sn->n + 1, sizeof *sn->viewers);
    sn->hlen = calloc(sn->n + 1, sizeof *sn->hlen);
    sn->zcard = calloc(sn->n + 1, sizeof *sn->zcard);
    if (!sn->viewers || !sn->hlen || !sn->zcard)
        goto fail;
    redisAppendCommand(s->redis, "MULTI");
    redisAppendCommand(s->redis, "GET %stotal_viewers", P);
    for (size_t i = 0; i < sn->n; i++) {
        const char *arn = sn->stages->element[i]->str;
        redisAppendCommand(s->redis, "GET %sviewers:%s", P, arn);
        redisAppendCommand(s->redis, "HLEN %sviewer:heartbeat:%s", P, arn);
        redisAppendCommand(s->redis, "ZCARD %sviewer:expiry:%s", P, arn);
    }
    redisAppendCommand(s->redis, "EXEC");
    redisReply *r = NULL;
    for (size_t i = 0; i < 3 * sn->n + 2; i++) {      /* OK and QUEUED */
        if (redisGetReply(s->redis, (void **)&r) != REDIS_OK)
            goto fail;
        freeReplyObject(r);
    }
    if (redisGetReply(s->redis, (void **)&r) != REDIS_OK)
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
            s->redis && s->redis->err ? s->redis->errstr : "unexpected reply");
    snap_free(sn);
    if (s->redis && s->redis->err) {
        redisFree(s->redis);
        s->redis = NULL;
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

int check_baseline(struct sim *s)
{
    struct snap sn;
    if (snapshot(s, &sn) != 0)
        return -1;
    long long v, h, z;
    snap_sums(&sn, &v, &h, &z);
    s->baseline = sn.total;
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

void check_start(struct sim *s, const char *label, bool exact)
{
    struct check *k = &s->chk;
    k->pending = true;
    k->exact = exact;
    k->tries = 0;
    k->retry_ms = 0;
    snprintf(k->label, sizeof k->label, "%s", label);
    truth_range(s, &k->wmin, &k->wmax);
    http_enqueue(s, STATS_ITEM, true);
}

void check_retry_due(struct sim *s, uint32_t now)
{
    struct check *k = &s->chk;
    if (k->pending && k->retry_ms && now >= k->retry_ms) {
        k->retry_ms = 0;
        truth_range(s, &k->wmin, &k->wmax);   /* a new window for the new read */
        http_enqueue(s, STATS_ITEM, true);
    }
}

void check_note_truth(struct sim *s)
{
    if (!s->chk.pending)
        return;
    int64_t min, max;
    truth_range(s, &min, &max);
    if (min < s->chk.wmin)
        s->chk.wmin = min;
    if (max > s->chk.wmax)
        s->chk.wmax = max;
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

static bool verdict(struct sim *s, bool ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%-8s ", ok ? "MATCH" : "MISMATCH");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (!ok)
        s->c.check_mismatches++;
    return ok;
}

/* Every field of every heartbeat hash is a viewer the truth has seated in
 * that stage, and they are all there: the sets are equal, not just counted. */
static void check_seats(struct sim *s, const struct snap *sn)
{
    long long good = 0, bad = 0, foreign = 0;
    for (size_t i = 0; i < sn->n; i++) {
        const char *arn = sn->stages->element[i]->str;
        int stage = stage_index(s, arn);
        redisReply *r = redisCommand(s->redis, "HKEYS %sviewer:heartbeat:%s", s->o.prefix, arn);
        for (size_t j = 0; r && r->type == REDIS_REPLY_ARRAY && j < r->elements; j++) {
            uint32_t idx;
            if (!user_index(s, r->element[j]->str, &idx)) {
                foreign++;
                continue;
            }
            const struct viewer *v = &s->v[idx];
            if (v->state == V_SEATED && v->stage == stage) {
                good++;
            } else if (bad++ < 5) {
                printf("         %s is in the hash of %s but the truth has state %d in %s\n",
                       r->element[j]->str, arn, v->state, s->stages[v->stage]);
            }
        }
        if (r)
            freeReplyObject(r);
    }
    verdict(s, good == s->n_seated && bad == 0 && foreign == s->baseline,
            "seats: the heartbeat hashes hold exactly the %lld seated viewers, each in its stage"
            " (%lld found, %lld misplaced or unseated, %lld not ours)",
            (long long)s->n_seated, good, bad, foreign);
}

static void check_exact(struct sim *s, const struct api_stats *a, const struct snap *sn)
{
    long long v, h, z, want = s->baseline + s->n_seated;
    int64_t min, max;
    truth_range(s, &min, &max);
    snap_sums(sn, &v, &h, &z);
    printf("-- exact check: %s (truth %lld seated%s)\n", s->chk.label, (long long)s->n_seated,
           s->baseline ? ", plus the baseline" : "");
    verdict(s, s->chk.wmin == s->chk.wmax && min == max,
            "truth settled: nothing in flight, no grace running (range [%lld..%lld])",
            (long long)s->chk.wmin, (long long)s->chk.wmax);
    verdict(s, a->total == want, "/api/stats totalViewers          %8lld == truth %lld", a->total, want);
    verdict(s, sn->total == want, "redis total_viewers              %8lld == truth %lld", sn->total, want);
    verdict(s, v == want, "sum of viewers:{arn}, %2zu stages   %8lld == truth %lld", sn->n, v, want);
    verdict(s, h == want, "sum of HLEN viewer:heartbeat:{arn} %6lld == truth %lld", h, want);
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
    verdict(s, agree == sn->n && json_array_size(a->stages) == sn->n,
            "per stage: /api/stats viewerCount == viewers:{arn} == HLEN in %zu of %zu stages", agree, sn->n);
    verdict(s, z == h, "usher's expiry index: sum of ZCARD viewer:expiry:{arn} %lld == sum of HLEN %lld", z, h);
    if (s->o.capacity > 0)
        verdict(s, snap_max_stage(sn) <= s->o.capacity, "no stage above capacity %d (fullest %lld)",
                s->o.capacity, snap_max_stage(sn));
    check_seats(s, sn);
}

static void check_range(struct sim *s, const struct api_stats *a, const struct snap *sn)
{
    long long v, h, z, b = s->baseline;
    int64_t min, max;
    truth_range(s, &min, &max);
    snap_sums(sn, &v, &h, &z);
    bool api_ok = a->total >= b + s->chk.wmin && a->total <= b + s->chk.wmax;
    bool redis_ok = sn->total >= b + min && sn->total <= b + max;
    bool sums_ok = sn->total == v && v == h && h == z;
    bool cap_ok = s->o.capacity <= 0 || snap_max_stage(sn) <= s->o.capacity;
    bool ok = api_ok && redis_ok && sums_ok && cap_ok;
    printf("CHECK %-9s api %lld in [%lld..%lld]%s  redis %lld in [%lld..%lld]%s  "
           "= sum viewers %lld = sum HLEN %lld = sum ZCARD %lld%s%s  %s\n",
           s->chk.label, a->total, b + s->chk.wmin, b + s->chk.wmax, api_ok ? "" : " (OUT)",
           sn->total, b + min, b + max, redis_ok ? "" : " (OUT)", v, h, z,
           sums_ok ? "" : " (DISAGREE)", cap_ok ? "" : " (STAGE OVER CAPACITY)",
           ok ? "ok" : "MISMATCH");
    if (!ok)
        s->c.check_mismatches++;
}

void check_on_stats(struct sim *s, int status, const char *body, size_t len)
{
    struct api_stats a = {0};
    struct snap sn;
    struct check *k = &s->chk;
    check_note_truth(s);
    if (parse_stats(status, body, len, &a) != 0 || snapshot(s, &sn) != 0) {
        json_decref(a.doc);
        a.doc = NULL;
        /* usher may rightly answer 503 while Redis is away: a checkpoint is
         * skipped, an exact check asked again a few times. */
        if (k->exact && k->tries++ < CHECK_TRIES) {
            k->retry_ms = sim_now_ms(s) + 1000;
            return;
        }
        if (k->exact) {
            printf("MISMATCH %s: could not read /api/stats (%d) or Redis\n", k->label, status);
            s->c.check_mismatches++;
        } else {
            printf("CHECK %-9s skipped: could not read /api/stats (%d) or Redis\n", k->label, status);
        }
    } else {
        if (s->chk.exact)
            check_exact(s, &a, &sn);
        else
            check_range(s, &a, &sn);
        snap_free(&sn);
    }
    json_decref(a.doc);
    fflush(stdout);
    s->chk.pending = false;
    s->chk.checks_done++;
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

static long long redis_used_memory(struct sim *s)
{
    if (!s->redis || s->redis->err)
        return -1;
    redisReply *r = redisCommand(s->redis, "INFO memory");
    long long bytes = -1;
    const char *at = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "used_memory:") : NULL;
    if (at)
        bytes = strtoll(at + strlen("used_memory:"), NULL, 10);
    if (r)
        freeReplyObject(r);
    return bytes;
}

void mem_sample(struct sim *s, struct memsample *m)
{
    m->usher_kb = usher_rss_kb(s->o.usher_pid);
    m->redis_bytes = redis_used_memory(s);
    m->seated = s->n_seated;
}
