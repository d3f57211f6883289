/* sim_audience.c — the virtual viewers: when each acts, what it asks,
 * what the answer means, and the truth of who is seated.
 *
 * Viewers live in one array of 32-byte structs. A viewer's next action
 * (join, heartbeat, fate, end of expiry grace, rejoin, retry) is its due
 * time in a hashed timer wheel of WHEEL_SLOTS slots of TICK_MS each: a slot
 * is a singly linked list threaded through the viewers themselves, so a
 * tick costs what is due, not what is seated. A viewer sits in the wheel
 * at most once; moving its time later just rewrites due_ms (the entry is
 * put back when its old slot comes round), moving it earlier is never needed.
 *
 * A viewer has at most one request queued or in flight (VF_BUSY). That
 * keeps its own requests in order — a heartbeat can never overtake its
 * leave — and makes the truth simple:
 *
 *   seated for sure    SEATED (join answered 200, no leave decided yet),
 *                      LEAVING whose leave is still queued (not sent)
 *   maybe seated       JOINING once its join is sent, until it is answered
 *                      (or longer, when the answer left it unsure),
 *                      LEAVING once its leave is sent, until answered 200,
 *                      VANISHED (silent; usher should expire it by gone_ms)
 *
 * so usher's count must lie in that range at any moment (see truth_range),
 * and once nothing is in flight and every grace has run out, it must equal
 * SEATED exactly. A join still waiting in the queue cannot have been
 * applied, so the range stays narrow even with thousands queued.
 *
 * A request given up on (never answered after retries) may still have been
 * applied. Such a viewer is made VANISHED: it sends nothing more, so any seat
 * usher holds for it expires within the grace, which keeps the truth exact. */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the timer wheel --------------------------------------------------- */

static void schedule(struct sim *s, uint32_t idx, uint32_t due_ms)
{
    struct viewer *v = &s->v[idx];
    v->due_ms = due_ms;
    if (v->flags & VF_WHEEL)
        return;   /* its entry is moved on when its old slot comes round */
    uint32_t tick = due_ms / TICK_MS;
    if (tick < s->wheel_tick)
        tick = s->wheel_tick;
    uint32_t slot = tick % WHEEL_SLOTS;
    v->next = s->wheel[slot];
    s->wheel[slot] = idx;
    v->flags |= VF_WHEEL;
}

static uint32_t min_u32(uint32_t a, uint32_t b) { return a < b ? a : b; }

static uint32_t backoff_ms(struct sim *s, int tries)
{
    uint32_t base = 500u << (tries < 4 ? tries : 4);    /* 0.5 s .. 8 s */
    return base + (uint32_t)(sim_rand(s) * base / 2);   /* jitter spreads retries */
}

static bool active(const struct sim *s) { return s->phase == P_ACTIVE; }

/* VF_SENT and its counter (n_join_sent or n_leave_sent) move together. */
static void mark_sent(struct viewer *v, int64_t *counter)
{
    if (!(v->flags & VF_SENT)) {
        v->flags |= VF_SENT;
        (*counter)++;
    }
}

static void clear_sent(struct viewer *v, int64_t *counter)
{
    if (v->flags & VF_SENT) {
        v->flags &= (uint16_t)~VF_SENT;
        (*counter)--;
    }
}

/* No answer, or usher gave up waiting on Redis (the script may still run):
 * the request may have been applied. A refusal (4xx, STAGE_FULL) changed nothing. */
static bool unsure_failure(int status, const char *body, size_t len)
{
    return status == 0 || (status >= 500 && !memmem(body, len, "STAGE_FULL", 10));
}

/* ---- starting things ------------------------------------------------------ */

static void start_join(struct sim *s, uint32_t idx, uint32_t want_ms)
{
    struct viewer *v = &s->v[idx];
    v->state = V_JOINING;
    v->tries = 0;
    v->want_ms = want_ms;
    v->flags |= VF_BUSY;
    s->n_joining++;
    if (v->flags & VF_MAYBE_SEATED)
        mark_sent(v, &s->n_join_sent);   /* its old seat may still be there */
    http_enqueue(s, idx, false);
}

static void become_vanished(struct sim *s, uint32_t idx, uint32_t now)
{
    struct viewer *v = &s->v[idx];
    v->state = V_VANISHED;
    v->gone_ms = now + s->grace_ms;
    s->n_vanished++;
    uint32_t due = v->gone_ms;
    if (active(s) && !(v->flags & VF_REJOINED) && v->rejoin_ms != NO_TIME)
        due = min_u32(due, v->rejoin_ms);
    schedule(s, idx, due);
}

/* A seated viewer goes, cleanly or silently. */
static void go_away(struct sim *s, uint32_t idx, uint32_t now, bool leave)
{
    struct viewer *v = &s->v[idx];
    s->n_seated--;
    if (leave) {
        v->state = V_LEAVING;
        v->tries = 0;
        v->flags |= VF_BUSY;
        s->n_leaving++;
        http_enqueue(s, idx, true);
    } else {
        s->c.vanishes++;
        become_vanished(s, idx, now);
    }
}

/* Picks when a viewer's fate strikes, at its first seat. */
static void plan_fate(struct sim *s, struct viewer *v, uint32_t now)
{
    v->gone_ms = v->rejoin_ms = NO_TIME;
    if (v->fate == F_STAY || now + 1000 >= s->active_end_ms)
        return;
    double span = s->active_end_ms - now;
    if (v->fate == F_LEAVE || v->fate == F_VANISH) {
        v->gone_ms = now + (uint32_t)(sim_rand(s) * span);
        return;
    }
    /* Rejoiners go in the first half of what is left, to have time to return. */
    v->gone_ms = now + (uint32_t)(sim_rand(s) * span / 2);
    double gap_s = 1 + sim_rand(s) * (s->o.rejoin_gap - 1);
    uint64_t back = v->gone_ms + (uint64_t)(gap_s * 1000);
    v->rejoin_ms = back < s->active_end_ms ? (uint32_t)back : NO_TIME;
}

/* ---- what a due viewer does ------------------------------------------- */

static void seated_due(struct sim *s, uint32_t idx, uint32_t now)
{
    struct viewer *v = &s->v[idx];
    if (active(s) && v->gone_ms <= now) {
        if (v->flags & VF_BUSY) {      /* let its heartbeat finish first */
            schedule(s, idx, now + TICK_MS);
            return;
        }
        go_away(s, idx, now, v->fate == F_LEAVE || v->fate == F_LEAVE_REJOIN);
        return;
    }
    if (v->flags & VF_BUSY) {
        s->c.hb_skipped++;             /* the last one is still waiting */
    } else {
        v->flags |= VF_BUSY;
        http_enqueue(s, idx, true);
    }
    /* Keep the rhythm from the due time, not from a late tick. */
    uint32_t next = v->due_ms + s->heartbeat_ms;
    if (next <= now)
        next = now + s->heartbeat_ms;
    if (active(s) && v->gone_ms < next)
        next = v->gone_ms;
    schedule(s, idx, next);
}

static void vanished_due(struct sim *s, uint32_t idx, uint32_t now)
{
    struct viewer *v = &s->v[idx];
    bool rejoin = active(s) && !(v->flags & VF_REJOINED) && v->rejoin_ms != NO_TIME;
    if (rejoin && v->rejoin_ms <= now) {
        s->n_vanished--;
        if (now < v->gone_ms)
            v->flags |= VF_MAYBE_SEATED;   /* usher may not have expired it yet */
        v->flags |= VF_REJOINED;
        s->c.rejoins++;
        start_join(s, idx, now);
        return;
    }
    if (now >= v->gone_ms) {
        s->n_vanished--;
        v->state = V_GONE;
        if (rejoin)
            schedule(s, idx, v->rejoin_ms);
        return;
    }
    schedule(s, idx, rejoin ? min_u32(v->gone_ms, v->rejoin_ms) : v->gone_ms);
}

static void due(struct sim *s, uint32_t idx, uint32_t now)
{
    struct viewer *v = &s->v[idx];
    switch (v->state) {
    case V_PENDING:
        if (active(s))
            start_join(s, idx, v->due_ms);
        else
            s->c.never_joined++;
        return;
    case V_JOINING:                      /* a retry's time has come */
        if (!(v->flags & VF_BUSY)) {
            v->flags |= VF_BUSY;
            http_enqueue(s, idx, false);
        }
        return;
    case V_LEAVING:
        if (!(v->flags & VF_BUSY)) {
            v->flags |= VF_BUSY;
            http_enqueue(s, idx, true);
        }
        return;
    case V_SEATED:
        seated_due(s, idx, now);
        return;
    case V_VANISHED:
        vanished_due(s, idx, now);
        return;
    case V_GONE:
        if (active(s) && !(v->flags & VF_REJOINED) && v->rejoin_ms != NO_TIME) {
            if (v->rejoin_ms > now) {
                schedule(s, idx, v->rejoin_ms);
                return;
            }
            v->flags |= VF_REJOINED;
            s->c.rejoins++;
            start_join(s, idx, now);
        }
        return;
    default:
        return;
    }
}

void audience_tick(struct sim *s, uint32_t now)
{
    while ((uint64_t)s->wheel_tick * TICK_MS <= now) {
        uint32_t slot = s->wheel_tick % WHEEL_SLOTS;
        uint32_t idx = s->wheel[slot];
        s->wheel[slot] = NIL;
        s->wheel_tick++;   /* whatever is scheduled now lands in a later slot */
        while (idx != NIL) {
            struct viewer *v = &s->v[idx];
            uint32_t next = v->next;
            v->flags &= (uint16_t)~VF_WHEEL;
            /* Not yet due: a later turn, a time moved later, or later in this tick. */
            if (v->due_ms > now)
                schedule(s, idx, v->due_ms);
            else
                due(s, idx, now);
            idx = next;
        }
    }
}

/* The finale: every seated viewer leaves, or goes silent, as soon as it has
 * nothing in flight. Scanning the array costs a few ms per tick and only
 * runs while viewers remain seated. */
void audience_finale_scan(struct sim *s)
{
    if (s->n_seated == 0)
        return;
    uint32_t now = sim_now_ms(s);
    for (uint32_t i = 0; i < s->o.viewers; i++) {
        struct viewer *v = &s->v[i];
        if (v->state == V_SEATED && !(v->flags & VF_BUSY))
            go_away(s, i, now, s->o.finale == FINALE_LEAVE);
    }
}

/* ---- requests ------------------------------------------------------------ */

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static bool hex_decode(const char *in, uint8_t *out, size_t n)
{
    if (strlen(in) != 2 * n)
        return false;
    for (size_t i = 0; i < 2 * n; i++) {
        char ch = in[i];
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (d < 0)
            return false;
        out[i / 2] = (uint8_t)(i % 2 ? out[i / 2] | d : d << 4);
    }
    return true;
}

int audience_request(struct sim *s, uint32_t idx, char *path, size_t pathlen,
                     char *body, size_t bodylen)
{
    struct viewer *v = &s->v[idx];
    const char *user = s->o.user_prefix;
    const char *arn = s->stages[v->stage];
    switch (v->state) {
    case V_JOINING:
        if ((v->flags & VF_REJOINED) && (v->flags & VF_REJOIN_API) && (v->flags & VF_HAS_PID)) {
            char pid[2 * PID_BYTES + 1];
            hex_encode(s->pids[idx], PID_BYTES, pid);
            mark_sent(v, &s->n_join_sent);
            snprintf(path, pathlen, "/api/viewer/rejoin");
            snprintf(body, bodylen, "{\"userId\":\"%s%u\",\"stageArn\":\"%s\",\"participantId\":\"%s\"}",
                     user, idx, arn, pid);
            return K_REJOIN;
        }
        mark_sent(v, &s->n_join_sent);
        snprintf(path, pathlen, "/api/token/viewer");
        snprintf(body, bodylen, "{\"userId\":\"%s%u\"}", user, idx);
        return K_JOIN;
    case V_SEATED:
        snprintf(path, pathlen, "/api/viewer/heartbeat");
        snprintf(body, bodylen, "{\"userId\":\"%s%u\",\"stageArn\":\"%s\"}", user, idx, arn);
        return K_HEARTBEAT;
    case V_LEAVING:
        mark_sent(v, &s->n_leave_sent);
        snprintf(path, pathlen, "/api/viewer/leave");
        snprintf(body, bodylen, "{\"userId\":\"%s%u\",\"stageArn\":\"%s\"}", user, idx, arn);
        return K_LEAVE;
    default:
        v->flags &= (uint16_t)~VF_BUSY;
        return -1;
    }
}

/* ---- answers ------------------------------------------------------------- */

#define ANOMALIES_SHOWN 10

/* Names the first few viewers usher surprised, so they can be looked up. */
static void anomaly(struct sim *s, uint32_t idx, uint32_t now, const char *what)
{
    const struct viewer *v = &s->v[idx];
    if (s->anomalies_shown++ >= ANOMALIES_SHOWN)
        return;
    printf("ANOMALY  %.1fs %s%u: %s (fate %d, flags 0x%x, last heartbeat sent %.1f s ago, "
           "gone/grace mark %+.1f s)\n", now / 1000.0, s->o.user_prefix, idx, what, v->fate,
           v->flags, (now - v->last_ok_ms) / 1000.0,
           v->gone_ms == NO_TIME ? 0.0 : ((double)v->gone_ms - now) / 1000.0);
}

static json_t *answer_data(const char *body, size_t len, json_t **doc)
{
    *doc = json_loadb(body, len, 0, NULL);
    json_t *data = json_object_get(*doc, "data");
    return json_is_object(data) ? data : NULL;
}

static void join_seated(struct sim *s, const struct conn *c, json_t *data, uint32_t now)
{
    uint32_t idx = c->item;
    struct viewer *v = &s->v[idx];
    int stage = stage_index(s, json_string_value(json_object_get(data, "stageArn")));
    if (stage < 0) {
        /* Only with more than MAX_STAGES_SEEN stages over one run. */
        anomaly(s, idx, now, "its stage does not fit the simulator's stage table");
        stage = 0;
    }
    if (c->kind == K_REJOIN && stage != v->stage) {
        s->c.wrong_stage++;
        anomaly(s, idx, now, "rejoin seated it in another stage than asked");
    }
    /* A seat we did not know of: usher kept one past its expiry, or gave one twice. */
    if (!json_is_true(json_object_get(data, "isNewViewer")) &&
        !(v->flags & (VF_MAYBE_SEATED | VF_UNSURE))) {
        s->c.stale_seats++;
        anomaly(s, idx, now, "join answered isNewViewer=false, but it held no seat");
    }
    const char *pid = json_string_value(json_object_get(data, "participantId"));
    if (s->pids && pid && hex_decode(pid, s->pids[idx], PID_BYTES))
        v->flags |= VF_HAS_PID;
    v->stage = (uint8_t)stage;
    v->state = V_SEATED;
    v->flags &= (uint16_t)~(VF_MAYBE_SEATED | VF_UNSURE);
    v->last_ok_ms = (uint32_t)(c->sent_us / 1000);
    clear_sent(v, &s->n_join_sent);
    s->n_joining--;
    if (++s->n_seated > s->peak_seated)
        s->peak_seated = s->n_seated;

    int64_t wire = sim_now_us(s) - c->sent_us;
    lat_add(&s->join_wire, wire);
    if (!(v->flags & VF_FIRST_DONE)) {
        v->flags |= VF_FIRST_DONE;
        if (v->flags & VF_BURST) {
            lat_add(&s->join_wire_burst, wire);
            lat_add(&s->seat_delay_burst, ((int64_t)now - v->want_ms) * 1000);
        }
        plan_fate(s, v, now);
    } else if (v->flags & VF_REJOINED) {
        v->gone_ms = v->rejoin_ms = NO_TIME;    /* one rejoin, then it stays */
    }
    uint32_t next = now + s->heartbeat_ms;
    schedule(s, idx, active(s) ? min_u32(next, v->gone_ms) : next);
}

static void join_failed(struct sim *s, const struct conn *c, int status, const char *body,
                        size_t len, uint32_t now)
{
    uint32_t idx = c->item;
    struct viewer *v = &s->v[idx];
    if (unsure_failure(status, body, len))
        v->flags |= VF_UNSURE;
    bool unsure = v->flags & (VF_UNSURE | VF_MAYBE_SEATED);
    if (!unsure)
        clear_sent(v, &s->n_join_sent);
    /* A refused rejoin (its stage full, draining or gone) falls back to
     * asking for a new token, as an app would. */
    if (c->kind == K_REJOIN && (status == 404 || status == 503) && active(s)) {
        v->flags &= (uint16_t)~VF_REJOIN_API;
        s->c.rejoin_fallbacks++;
        schedule(s, idx, now + TICK_MS);
        return;
    }
    bool retryable = status == 0 || status == 429 || status >= 500;
    /* After the activity, retry only to learn the fate of an unsure seat. */
    if (retryable && v->tries < s->o.join_retries && (active(s) || unsure)) {
        v->tries++;
        schedule(s, idx, now + backoff_ms(s, v->tries));
        return;
    }
    s->n_joining--;
    clear_sent(v, &s->n_join_sent);
    v->flags &= (uint16_t)~(VF_MAYBE_SEATED | VF_UNSURE);
    if (unsure) {
        become_vanished(s, idx, now);   /* any seat it may hold expires */
    } else {
        v->state = V_FAILED;
        s->c.failed++;
    }
}

/* usher drains a stage by moving its viewers on their next heartbeat: the
 * answer names the new stage (and a token with the participant id). */
static void heartbeat_moved(struct sim *s, uint32_t idx, const char *body, size_t len)
{
    struct viewer *v = &s->v[idx];
    json_t *doc, *data = answer_data(body, len, &doc);
    int stage = stage_index(s, json_string_value(json_object_get(data, "stageArn")));
    const char *pid = json_string_value(json_object_get(data, "participantId"));
    if (stage >= 0 && stage != v->stage) {
        v->stage = (uint8_t)stage;
        s->c.moves++;
    }
    if (s->pids && pid && hex_decode(pid, s->pids[idx], PID_BYTES))
        v->flags |= VF_HAS_PID;
    json_decref(doc);
}

static void heartbeat_answered(struct sim *s, const struct conn *c, int status,
                               const char *body, size_t len, uint32_t now)
{
    uint32_t idx = c->item;
    struct viewer *v = &s->v[idx];
    if (status == 200) {
        v->last_ok_ms = (uint32_t)(c->sent_us / 1000);
        lat_add(&s->hb_wire, sim_now_us(s) - c->sent_us);
        if (memmem(body, len, "\"moved\":true", 12))
            heartbeat_moved(s, c->item, body, len);
        return;
    }
    if (status != 404 || v->state != V_SEATED)
        return;
    /* usher no longer seats it. Only a sweep removes a seat, and a sweep
     * removes only viewers silent for HEARTBEAT_TIMEOUT: if our last
     * heartbeat answered was sent more recently than that, usher is wrong. */
    if ((double)(now - v->last_ok_ms) >= s->o.timeout * 1000) {
        s->c.lost_late++;
        anomaly(s, idx, now, "heartbeat 404 after our own heartbeats came late");
    } else {
        s->c.lost_unexpected++;
        anomaly(s, idx, now, "heartbeat 404 though it heartbeated within the timeout");
    }
    v->state = V_LOST;
    s->n_seated--;
}

static void leave_answered(struct sim *s, const struct conn *c, int status, const char *body,
                           size_t len, uint32_t now)
{
    uint32_t idx = c->item;
    struct viewer *v = &s->v[idx];
    if (status != 200) {
        if (unsure_failure(status, body, len))
            v->flags |= VF_UNSURE;
        else
            clear_sent(v, &s->n_leave_sent);
        if (++v->tries < LEAVE_TRIES) {
            schedule(s, idx, now + backoff_ms(s, v->tries));
            return;
        }
        clear_sent(v, &s->n_leave_sent);
        v->flags &= (uint16_t)~VF_UNSURE;
        s->n_leaving--;
        become_vanished(s, idx, now);   /* it stopped heartbeating: it expires */
        return;
    }
    json_t *doc, *data = answer_data(body, len, &doc);
    /* After an unanswered attempt, the seat may rightly be gone already. */
    if (json_is_false(json_object_get(data, "wasSeated")) && !(v->flags & VF_UNSURE)) {
        s->c.leave_no_seat++;
        anomaly(s, idx, now, "leave answered wasSeated=false");
    }
    json_decref(doc);
    v->flags &= (uint16_t)~VF_UNSURE;
    clear_sent(v, &s->n_leave_sent);
    s->n_leaving--;
    v->state = V_GONE;
    if (active(s) && !(v->flags & VF_REJOINED) && v->rejoin_ms != NO_TIME)
        schedule(s, idx, v->rejoin_ms > now ? v->rejoin_ms : now);
}

void audience_answer(struct sim *s, const struct conn *c, int status, const char *body,
                     size_t len)
{
    struct viewer *v = &s->v[c->item];
    uint32_t now = sim_now_ms(s);
    v->flags &= (uint16_t)~VF_BUSY;
    switch (c->kind) {
    case K_JOIN:
    case K_REJOIN: {
        json_t *doc = NULL, *data = status == 200 ? answer_data(body, len, &doc) : NULL;
        if (data && json_is_string(json_object_get(data, "stageArn")))
            join_seated(s, c, data, now);
        else
            join_failed(s, c, status == 200 ? 500 : status, body, len, now);
        json_decref(doc);
        break;
    }
    case K_HEARTBEAT:
        heartbeat_answered(s, c, status, body, len, now);
        break;
    case K_LEAVE:
        leave_answered(s, c, status, body, len, now);
        break;
    default:
        break;
    }
    check_note_truth(s);
}

/* ---- truth and names ----------------------------------------------------- */

void truth_range(const struct sim *s, int64_t *min, int64_t *max)
{
    *min = s->n_seated + (s->n_leaving - s->n_leave_sent);
    *max = s->n_seated + s->n_leaving + s->n_join_sent + s->n_vanished;
}

int stage_index(struct sim *s, const char *arn)
{
    if (!arn || !arn[0] || strlen(arn) >= ARN_MAX || strpbrk(arn, "\"\\"))
        return -1;
    for (int i = 0; i < s->nstages; i++)
        if (strcmp(s->stages[i], arn) == 0)
            return i;
    if (s->nstages == MAX_STAGES_SEEN)
        return -1;
    memcpy(s->stages[s->nstages], arn, strlen(arn) + 1);
    return s->nstages++;
}

bool user_index(const struct sim *s, const char *user, uint32_t *idx)
{
    size_t plen = strlen(s->o.user_prefix);
    if (strncmp(user, s->o.user_prefix, plen) != 0)
        return false;
    const char *p = user + plen;
    if (!*p || (p[0] == '0' && p[1]))
        return false;
    uint64_t n = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || (n = n * 10 + (uint64_t)(*p - '0')) >= s->o.viewers)
            return false;
    }
    *idx = (uint32_t)n;
    return true;
}

/* ---- life ---------------------------------------------------------------- */

static uint8_t draw_fate(struct sim *s)
{
    double r = sim_rand(s) * 100;
    const struct opts *o = &s->o;
    if (r < o->leave_pct)
        return F_LEAVE;
    if (r < o->leave_pct + o->vanish_pct)
        return F_VANISH;
    if (r < o->leave_pct + o->vanish_pct + o->rejoin_pct)
        return sim_rand(s) < 0.5 ? F_LEAVE_REJOIN : F_VANISH_REJOIN;
    return F_STAY;
}

int audience_init(struct sim *s)
{
    uint32_t n = s->o.viewers;
    s->v = calloc(n, sizeof *s->v);
    if (!s->v)
        return -1;
    if (s->o.rejoin_pct > 0 && s->o.rejoin_api_pct > 0) {
        s->pids = calloc(n, sizeof *s->pids);
        if (!s->pids)
            return -1;
    }
    for (size_t i = 0; i < WHEEL_SLOTS; i++)
        s->wheel[i] = NIL;
    for (uint32_t i = 0; i < n; i++) {
        struct viewer *v = &s->v[i];
        v->state = V_PENDING;
        v->fate = draw_fate(s);
        v->gone_ms = v->rejoin_ms = NO_TIME;
        v->want_ms = ramp_time_ms(&s->o, i);
        if (i < s->o.ramp[0].n)
            v->flags |= VF_BURST;
        if ((v->fate == F_LEAVE_REJOIN || v->fate == F_VANISH_REJOIN) &&
            sim_rand(s) * 100 < s->o.rejoin_api_pct)
            v->flags |= VF_REJOIN_API;
        schedule(s, i, v->want_ms);
    }
    return 0;
}

void audience_free(struct sim *s)
{
    free(s->v);
    free(s->pids);
}
