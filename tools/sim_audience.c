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
 * usher holds for it expires within the grace, which keeps the truth exact.
 *
 * The audience writes the truth (sim_truth.c), its counters and tallies
 * (sim_report.c), and talks to usher only through its http_client's two
 * callbacks (sim_http.c); it never calls a check. */
#include "sim_audience.h"

#include <ctype.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_TIME UINT32_MAX     /* "never" for the ms fields of a viewer */
#define NIL UINT32_MAX         /* end of a wheel list */
#define LEAVE_TRIES 10

/* A viewer's life. Only SEATED, JOINING, LEAVING and VANISHED count in
 * the truth (see sim_truth.c). */
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
    VF_HAS_PID = 64,     /* its participant id is kept */
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

/* ---- the timer wheel --------------------------------------------------- */

static void schedule(struct audience *a, uint32_t idx, uint32_t due_ms)
{
    struct viewer *v = &a->v[idx];
    v->due_ms = due_ms;
    if (v->flags & VF_WHEEL)
        return;   /* its entry is moved on when its old slot comes round */
    uint32_t tick = due_ms / TICK_MS;
    if (tick < a->wheel_tick)
        tick = a->wheel_tick;
    uint32_t slot = tick % WHEEL_SLOTS;
    v->next = a->wheel[slot];
    a->wheel[slot] = idx;
    v->flags |= VF_WHEEL;
}

static uint32_t min_u32(uint32_t a, uint32_t b) { return a < b ? a : b; }

static uint32_t backoff_ms(struct audience *a, int tries)
{
    uint32_t base = 500u << (tries < 4 ? tries : 4);    /* 0.5 s .. 8 s */
    return base + (uint32_t)(dice(a->clock) * base / 2);   /* jitter spreads retries */
}

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

static void start_join(struct audience *a, uint32_t idx, uint32_t want_ms)
{
    struct viewer *v = &a->v[idx];
    v->state = V_JOINING;
    v->tries = 0;
    v->want_ms = want_ms;
    v->flags |= VF_BUSY;
    a->truth->joining++;
    if (v->flags & VF_MAYBE_SEATED)
        mark_sent(v, &a->truth->join_sent);   /* its old seat may still be there */
    http_enqueue(a->http, &a->client, idx, false);
}

/* Its one rejoin: through POST /api/viewer/rejoin when so drawn, which
 * the tally T_REJOIN_API then expects to see re-seated. */
static void start_rejoin(struct audience *a, uint32_t idx, uint32_t now)
{
    struct viewer *v = &a->v[idx];
    v->flags |= VF_REJOINED;
    a->rep->c.rejoins++;
    if (v->flags & VF_REJOIN_API)
        a->rep->tally[T_REJOIN_API].planned++;
    start_join(a, idx, now);
}

static void become_vanished(struct audience *a, uint32_t idx, uint32_t now)
{
    struct viewer *v = &a->v[idx];
    v->state = V_VANISHED;
    v->gone_ms = now + a->grace_ms;
    a->truth->vanished++;
    uint32_t due = v->gone_ms;
    if (a->active && !(v->flags & VF_REJOINED) && v->rejoin_ms != NO_TIME)
        due = min_u32(due, v->rejoin_ms);
    schedule(a, idx, due);
}

/* A seated viewer goes, cleanly or silently. */
static void go_away(struct audience *a, uint32_t idx, uint32_t now, bool leave)
{
    struct viewer *v = &a->v[idx];
    a->truth->seated--;
    truth_seat(a->truth, idx, NO_SEAT);
    if (leave) {
        v->state = V_LEAVING;
        v->tries = 0;
        v->flags |= VF_BUSY;
        a->truth->leaving++;
        a->rep->tally[T_LEAVE].planned++;
        http_enqueue(a->http, &a->client, idx, true);
    } else {
        a->rep->c.vanishes++;
        become_vanished(a, idx, now);
    }
}

/* Picks when a viewer's fate strikes, at its first seat. */
static void plan_fate(struct audience *a, struct viewer *v, uint32_t now)
{
    v->gone_ms = v->rejoin_ms = NO_TIME;
    if (v->fate == F_STAY || now + 1000 >= a->active_end_ms)
        return;
    double span = a->active_end_ms - now;
    if (v->fate == F_LEAVE || v->fate == F_VANISH) {
        v->gone_ms = now + (uint32_t)(dice(a->clock) * span);
        return;
    }
    /* Rejoiners go in the first half of what is left, to have time to return. */
    v->gone_ms = now + (uint32_t)(dice(a->clock) * span / 2);
    double gap_s = 1 + dice(a->clock) * (a->o->rejoin_gap - 1);
    uint64_t back = v->gone_ms + (uint64_t)(gap_s * 1000);
    v->rejoin_ms = back < a->active_end_ms ? (uint32_t)back : NO_TIME;
}

/* ---- what a due viewer does ------------------------------------------- */

static void seated_due(struct audience *a, uint32_t idx, uint32_t now)
{
    struct viewer *v = &a->v[idx];
    if (a->active && v->gone_ms <= now) {
        if (v->flags & VF_BUSY) {      /* let its heartbeat finish first */
            schedule(a, idx, now + TICK_MS);
            return;
        }
        go_away(a, idx, now, v->fate == F_LEAVE || v->fate == F_LEAVE_REJOIN);
        return;
    }
    if (v->flags & VF_BUSY) {
        a->rep->c.hb_skipped++;             /* the last one is still waiting */
    } else {
        v->flags |= VF_BUSY;
        http_enqueue(a->http, &a->client, idx, true);
    }
    /* Keep the rhythm from the due time, not from a late tick. */
    uint32_t next = v->due_ms + a->heartbeat_ms;
    if (next <= now)
        next = now + a->heartbeat_ms;
    if (a->active && v->gone_ms < next)
        next = v->gone_ms;
    schedule(a, idx, next);
}

static void vanished_due(struct audience *a, uint32_t idx, uint32_t now)
{
    struct viewer *v = &a->v[idx];
    bool rejoin = a->active && !(v->flags & VF_REJOINED) && v->rejoin_ms != NO_TIME;
    if (rejoin && v->rejoin_ms <= now) {
        a->truth->vanished--;
        if (now < v->gone_ms)
            v->flags |= VF_MAYBE_SEATED;   /* usher may not have expired it yet */
        start_rejoin(a, idx, now);
        return;
    }
    if (now >= v->gone_ms) {
        a->truth->vanished--;
        a->rep->tally[T_EXPIRY].ran++;   /* the exact check will see it gone */
        v->state = V_GONE;
        if (rejoin)
            schedule(a, idx, v->rejoin_ms);
        return;
    }
    schedule(a, idx, rejoin ? min_u32(v->gone_ms, v->rejoin_ms) : v->gone_ms);
}

static void due(struct audience *a, uint32_t idx, uint32_t now)
{
    struct viewer *v = &a->v[idx];
    switch (v->state) {
    case V_PENDING:
        if (a->active)
            start_join(a, idx, v->due_ms);
        else
            a->rep->c.never_joined++;
        return;
    case V_JOINING:                      /* a retry's time has come */
        if (!(v->flags & VF_BUSY)) {
            v->flags |= VF_BUSY;
            http_enqueue(a->http, &a->client, idx, false);
        }
        return;
    case V_LEAVING:
        if (!(v->flags & VF_BUSY)) {
            v->flags |= VF_BUSY;
            http_enqueue(a->http, &a->client, idx, true);
        }
        return;
    case V_SEATED:
        seated_due(a, idx, now);
        return;
    case V_VANISHED:
        vanished_due(a, idx, now);
        return;
    case V_GONE:
        if (a->active && !(v->flags & VF_REJOINED) && v->rejoin_ms != NO_TIME) {
            if (v->rejoin_ms > now) {
                schedule(a, idx, v->rejoin_ms);
                return;
            }
            start_rejoin(a, idx, now);
        }
        return;
    default:
        return;
    }
}

void audience_tick(struct audience *a, uint32_t now)
{
    while ((uint64_t)a->wheel_tick * TICK_MS <= now) {
        uint32_t slot = a->wheel_tick % WHEEL_SLOTS;
        uint32_t idx = a->wheel[slot];
        a->wheel[slot] = NIL;
        a->wheel_tick++;   /* whatever is scheduled now lands in a later slot */
        while (idx != NIL) {
            struct viewer *v = &a->v[idx];
            uint32_t next = v->next;
            v->flags &= (uint16_t)~VF_WHEEL;
            /* Not yet due: a later turn, a time moved later, or later in this tick. */
            if (v->due_ms > now)
                schedule(a, idx, v->due_ms);
            else
                due(a, idx, now);
            idx = next;
        }
    }
}

/* The finale: every seated viewer leaves, or goes silent, as soon as it has
 * nothing in flight. Scanning the array costs a few ms per tick and only
 * runs while viewers remain seated. */
void audience_finale_scan(struct audience *a, bool leave)
{
    if (a->truth->seated == 0)
        return;
    uint32_t now = clock_ms(a->clock);
    for (uint32_t i = 0; i < a->o->viewers; i++) {
        struct viewer *v = &a->v[i];
        if (v->state == V_SEATED && !(v->flags & VF_BUSY))
            go_away(a, i, now, leave);
    }
}

/* ---- participant ids ------------------------------------------------------ */

/* SPEC §5: a participant id is 1..PID_MAX characters of [A-Za-z0-9-]. */
static bool valid_pid(const char *pid)
{
    size_t n = pid ? strlen(pid) : 0;
    if (n == 0 || n > PID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)pid[i]) && pid[i] != '-')
            return false;
    return true;
}

static int cmp_u32(const void *x, const void *y)
{
    uint32_t p = *(const uint32_t *)x, q = *(const uint32_t *)y;
    return p < q ? -1 : p > q;
}

/* The slot keeping viewer idx's participant id, or NULL when its rejoin
 * does not use the API (only those keep one). */
static char *pid_slot(const struct audience *a, uint32_t idx)
{
    const uint32_t *at = a->npids ? bsearch(&idx, a->pid_of, a->npids, sizeof idx, cmp_u32) : NULL;
    return at ? a->pid[at - a->pid_of] : NULL;
}

/* ---- requests ------------------------------------------------------------ */

static bool viewer_prepare(void *arg, uint32_t idx, struct http_req *req)
{
    struct audience *a = arg;
    struct viewer *v = &a->v[idx];
    const char *user = a->o->user_prefix;
    const char *arn = a->truth->stages[v->stage];
    req->get = false;
    switch (v->state) {
    case V_JOINING:
        mark_sent(v, &a->truth->join_sent);
        if ((v->flags & VF_REJOINED) && (v->flags & VF_REJOIN_API) && (v->flags & VF_HAS_PID)) {
            req->tag = K_REJOIN;
            snprintf(req->path, sizeof req->path, "/api/viewer/rejoin");
            snprintf(req->body, sizeof req->body,
                     "{\"userId\":\"%s%u\",\"stageArn\":\"%s\",\"participantId\":\"%s\"}", user, idx,
                     arn, pid_slot(a, idx));
            return true;
        }
        req->tag = K_JOIN;
        snprintf(req->path, sizeof req->path, "/api/token/viewer");
        snprintf(req->body, sizeof req->body, "{\"userId\":\"%s%u\"}", user, idx);
        return true;
    case V_SEATED:
        req->tag = K_HEARTBEAT;
        snprintf(req->path, sizeof req->path, "/api/viewer/heartbeat");
        snprintf(req->body, sizeof req->body, "{\"userId\":\"%s%u\",\"stageArn\":\"%s\"}", user, idx, arn);
        return true;
    case V_LEAVING:
        mark_sent(v, &a->truth->leave_sent);
        req->tag = K_LEAVE;
        snprintf(req->path, sizeof req->path, "/api/viewer/leave");
        snprintf(req->body, sizeof req->body, "{\"userId\":\"%s%u\",\"stageArn\":\"%s\"}", user, idx, arn);
        return true;
    default:
        v->flags &= (uint16_t)~VF_BUSY;
        return false;
    }
}

/* ---- answers ------------------------------------------------------------- */

/* Names the first few viewers usher surprised, so they can be looked up. */
static void anomaly(struct audience *a, uint32_t idx, uint32_t now, const char *what)
{
    const struct viewer *v = &a->v[idx];
    if (!report_anomaly_shown(a->rep))
        return;
    printf("ANOMALY  %.1fs %s%u: %s (fate %d, flags 0x%x, last heartbeat sent %.1f s ago, "
           "gone/grace mark %+.1f s)\n", now / 1000.0, a->o->user_prefix, idx, what, v->fate,
           v->flags, (now - v->last_ok_ms) / 1000.0,
           v->gone_ms == NO_TIME ? 0.0 : ((double)v->gone_ms - now) / 1000.0);
}

/* Keeps the participant id an answer gave; one not as SPEC §5 says is an
 * anomaly (and leaves the viewer unable to rejoin through the API, which
 * its tally then shows). */
static void note_pid(struct audience *a, uint32_t idx, const char *pid, uint32_t now)
{
    if (!valid_pid(pid)) {
        a->rep->c.bad_pid++;
        anomaly(a, idx, now, "its participantId is not 1-64 of [A-Za-z0-9-] (SPEC 5)");
        return;
    }
    char *slot = pid_slot(a, idx);
    if (slot) {
        memcpy(slot, pid, strlen(pid) + 1);
        a->v[idx].flags |= VF_HAS_PID;
    }
}

static json_t *answer_data(const char *body, size_t len, json_t **doc)
{
    *doc = json_loadb(body, len, 0, NULL);
    json_t *data = json_object_get(*doc, "data");
    return json_is_object(data) ? data : NULL;
}

/* The latencies and the fate of a join answered 200. */
static void join_timing(struct audience *a, uint32_t idx, const struct http_answer *ans, uint32_t now)
{
    struct viewer *v = &a->v[idx];
    int64_t wire = ans->answered_us - ans->sent_us;
    lat_add(&a->rep->join_wire, wire);
    if (!(v->flags & VF_FIRST_DONE)) {
        v->flags |= VF_FIRST_DONE;
        if (v->flags & VF_BURST) {
            lat_add(&a->rep->join_wire_burst, wire);
            lat_add(&a->rep->seat_delay_burst, ((int64_t)now - v->want_ms) * 1000);
        }
        plan_fate(a, v, now);
    } else if (v->flags & VF_REJOINED) {
        v->gone_ms = v->rejoin_ms = NO_TIME;    /* one rejoin, then it stays */
    }
    uint32_t next = now + a->heartbeat_ms;
    schedule(a, idx, a->active ? min_u32(next, v->gone_ms) : next);
}

static void join_seated(struct audience *a, uint32_t idx, const struct http_answer *ans,
                        json_t *data, uint32_t now)
{
    struct viewer *v = &a->v[idx];
    int stage = truth_stage(a->truth, json_string_value(json_object_get(data, "stageArn")));
    if (stage < 0) {
        /* Only with more than MAX_STAGES_SEEN stages over one run. */
        anomaly(a, idx, now, "its stage does not fit the simulator's stage table");
        stage = 0;
    }
    if (ans->tag == K_REJOIN) {
        a->rep->tally[T_REJOIN_API].ran++;
        if (stage != v->stage) {
            a->rep->c.wrong_stage++;
            anomaly(a, idx, now, "rejoin seated it in another stage than asked");
        }
    }
    /* A seat we did not know of: usher kept one past its expiry, or gave one twice. */
    if (!json_is_true(json_object_get(data, "isNewViewer")) &&
        !(v->flags & (VF_MAYBE_SEATED | VF_UNSURE))) {
        a->rep->c.stale_seats++;
        anomaly(a, idx, now, "join answered isNewViewer=false, but it held no seat");
    }
    a->rep->tally[T_JOIN].ran++;
    note_pid(a, idx, json_string_value(json_object_get(data, "participantId")), now);
    v->stage = (uint8_t)stage;
    v->state = V_SEATED;
    v->flags &= (uint16_t)~(VF_MAYBE_SEATED | VF_UNSURE);
    v->last_ok_ms = (uint32_t)(ans->sent_us / 1000);
    clear_sent(v, &a->truth->join_sent);
    a->truth->joining--;
    a->truth->seated++;
    truth_seat(a->truth, idx, stage);
    join_timing(a, idx, ans, now);
}

static void join_failed(struct audience *a, uint32_t idx, int tag, int status, const char *body,
                        size_t len, uint32_t now)
{
    struct viewer *v = &a->v[idx];
    if (unsure_failure(status, body, len))
        v->flags |= VF_UNSURE;
    bool unsure = v->flags & (VF_UNSURE | VF_MAYBE_SEATED);
    if (!unsure)
        clear_sent(v, &a->truth->join_sent);
    /* A refused rejoin (its stage full, draining or gone) falls back to
     * asking for a new token, as an app would; its tally counts it as
     * answered but not re-seated. */
    if (tag == K_REJOIN && (status == 404 || status == 503) && a->active) {
        v->flags &= (uint16_t)~VF_REJOIN_API;
        a->rep->c.rejoin_fallbacks++;
        a->rep->tally[T_REJOIN_API].ran++;
        a->rep->tally[T_REJOIN_API].refused++;
        schedule(a, idx, now + TICK_MS);
        return;
    }
    bool retryable = status == 0 || status == 429 || status >= 500;
    /* After the activity, retry only to learn the fate of an unsure seat. */
    if (retryable && v->tries < a->o->join_retries && (a->active || unsure)) {
        v->tries++;
        schedule(a, idx, now + backoff_ms(a, v->tries));
        return;
    }
    a->truth->joining--;
    clear_sent(v, &a->truth->join_sent);
    v->flags &= (uint16_t)~(VF_MAYBE_SEATED | VF_UNSURE);
    if (unsure) {
        become_vanished(a, idx, now);   /* any seat it may hold expires */
    } else {
        v->state = V_FAILED;
        a->rep->c.failed++;
    }
}

/* usher drains a stage by moving its viewers on their next heartbeat: the
 * answer names the new stage (and a token with the participant id). */
static void heartbeat_moved(struct audience *a, uint32_t idx, const char *body, size_t len,
                            uint32_t now)
{
    struct viewer *v = &a->v[idx];
    json_t *doc, *data = answer_data(body, len, &doc);
    int stage = truth_stage(a->truth, json_string_value(json_object_get(data, "stageArn")));
    const char *pid = json_string_value(json_object_get(data, "participantId"));
    if (stage >= 0 && stage != v->stage) {
        v->stage = (uint8_t)stage;
        truth_seat(a->truth, idx, stage);
        a->rep->c.moves++;
    }
    if (pid)
        note_pid(a, idx, pid, now);
    json_decref(doc);
}

static void heartbeat_answered(struct audience *a, uint32_t idx, const struct http_answer *ans,
                               uint32_t now)
{
    struct viewer *v = &a->v[idx];
    if (ans->status == 200) {
        a->rep->tally[T_HEARTBEAT].ran++;
        v->last_ok_ms = (uint32_t)(ans->sent_us / 1000);
        lat_add(&a->rep->hb_wire, ans->answered_us - ans->sent_us);
        lat_add(&a->rep->hb_wait, ans->sent_us - ans->queued_us);
        if (memmem(ans->body, ans->len, "\"moved\":true", 12))
            heartbeat_moved(a, idx, ans->body, ans->len, now);
        return;
    }
    if (ans->status != 404 || v->state != V_SEATED)
        return;
    a->rep->tally[T_HEARTBEAT].ran++;
    /* usher no longer seats it. Only a sweep removes a seat, and a sweep
     * removes only viewers silent for HEARTBEAT_TIMEOUT: if our last
     * heartbeat answered was sent more recently than that, usher is wrong. */
    if ((double)(now - v->last_ok_ms) >= a->o->timeout * 1000) {
        a->rep->c.lost_late++;
        anomaly(a, idx, now, "heartbeat 404 after our own heartbeats came late");
    } else {
        a->rep->c.lost_unexpected++;
        anomaly(a, idx, now, "heartbeat 404 though it heartbeated within the timeout");
    }
    v->state = V_LOST;
    a->truth->seated--;
    truth_seat(a->truth, idx, NO_SEAT);
}

static void leave_failed(struct audience *a, uint32_t idx, const struct http_answer *ans, uint32_t now)
{
    struct viewer *v = &a->v[idx];
    if (unsure_failure(ans->status, ans->body, ans->len))
        v->flags |= VF_UNSURE;
    else
        clear_sent(v, &a->truth->leave_sent);
    if (++v->tries < LEAVE_TRIES) {
        schedule(a, idx, now + backoff_ms(a, v->tries));
        return;
    }
    clear_sent(v, &a->truth->leave_sent);
    v->flags &= (uint16_t)~VF_UNSURE;
    a->truth->leaving--;
    become_vanished(a, idx, now);   /* it stopped heartbeating: it expires */
}

static void leave_answered(struct audience *a, uint32_t idx, const struct http_answer *ans, uint32_t now)
{
    struct viewer *v = &a->v[idx];
    if (ans->status != 200) {
        leave_failed(a, idx, ans, now);
        return;
    }
    json_t *doc, *data = answer_data(ans->body, ans->len, &doc);
    /* After an unanswered attempt, the seat may rightly be gone already. */
    if (json_is_false(json_object_get(data, "wasSeated")) && !(v->flags & VF_UNSURE)) {
        a->rep->c.leave_no_seat++;
        anomaly(a, idx, now, "leave answered wasSeated=false");
    }
    json_decref(doc);
    a->rep->tally[T_LEAVE].ran++;
    v->flags &= (uint16_t)~VF_UNSURE;
    clear_sent(v, &a->truth->leave_sent);
    a->truth->leaving--;
    v->state = V_GONE;
    if (a->active && !(v->flags & VF_REJOINED) && v->rejoin_ms != NO_TIME)
        schedule(a, idx, v->rejoin_ms > now ? v->rejoin_ms : now);
}

static void viewer_answer(void *arg, uint32_t idx, const struct http_answer *ans)
{
    struct audience *a = arg;
    struct viewer *v = &a->v[idx];
    uint32_t now = clock_ms(a->clock);
    v->flags &= (uint16_t)~VF_BUSY;
    count_status(a->rep, ans->tag, ans->status);
    switch (ans->tag) {
    case K_JOIN:
    case K_REJOIN: {
        json_t *doc = NULL, *data = ans->status == 200 ? answer_data(ans->body, ans->len, &doc) : NULL;
        if (data && json_is_string(json_object_get(data, "stageArn")))
            join_seated(a, idx, ans, data, now);
        else
            join_failed(a, idx, ans->tag, ans->status == 200 ? 500 : ans->status, ans->body,
                        ans->len, now);
        json_decref(doc);
        break;
    }
    case K_HEARTBEAT:
        heartbeat_answered(a, idx, ans, now);
        break;
    case K_LEAVE:
        leave_answered(a, idx, ans, now);
        break;
    default:
        break;
    }
    truth_changed(a->truth);
}

/* ---- life ---------------------------------------------------------------- */

static uint8_t draw_fate(struct audience *a)
{
    double r = dice(a->clock) * 100;
    const struct opts *o = a->o;
    if (r < o->leave_pct)
        return F_LEAVE;
    if (r < o->leave_pct + o->vanish_pct)
        return F_VANISH;
    if (r < o->leave_pct + o->vanish_pct + o->rejoin_pct)
        return dice(a->clock) < 0.5 ? F_LEAVE_REJOIN : F_VANISH_REJOIN;
    return F_STAY;
}

/* The checks these options plan (sim_report.h): each must then run. */
static void plan_tallies(struct audience *a)
{
    const struct opts *o = a->o;
    struct tally *t = a->rep->tally;
    t[T_JOIN].on = t[T_HEARTBEAT].on = true;
    t[T_LEAVE].on = o->leave_pct > 0 || o->rejoin_pct > 0 || o->finale == FINALE_LEAVE;
    t[T_LEAVE].has_plan = true;
    t[T_EXPIRY].on = o->vanish_pct > 0 || o->rejoin_pct > 0 || o->finale == FINALE_VANISH;
    t[T_REJOIN_API].on = o->rejoin_pct > 0 && o->rejoin_api_pct > 0;
    t[T_REJOIN_API].has_plan = true;
}

/* Draws one viewer's fate and whether its rejoin uses the API. */
static void draw_viewer(struct audience *a, uint32_t i)
{
    struct viewer *v = &a->v[i];
    v->state = V_PENDING;
    v->fate = draw_fate(a);
    v->gone_ms = v->rejoin_ms = NO_TIME;
    v->want_ms = ramp_time_ms(a->o, i);
    if (i < a->o->ramp[0].n)
        v->flags |= VF_BURST;
    if ((v->fate == F_LEAVE_REJOIN || v->fate == F_VANISH_REJOIN) &&
        dice(a->clock) * 100 < a->o->rejoin_api_pct) {
        v->flags |= VF_REJOIN_API;
        a->pid_of[a->npids++] = i;   /* ascending: pid_slot's bsearch needs it */
    }
    schedule(a, i, v->want_ms);
}

int audience_init(struct audience *a, const struct opts *o, struct sim_clock *clock,
                  struct http_pool *http, struct truth *truth, struct report *rep)
{
    uint32_t n = o->viewers;
    *a = (struct audience){.o = o, .clock = clock, .http = http, .truth = truth, .rep = rep,
                           .active = false};   /* until the run starts */
    a->client = (struct http_client){viewer_prepare, viewer_answer, a};
    a->heartbeat_ms = (uint32_t)(o->heartbeat * 1000);
    a->grace_ms = (uint32_t)((o->timeout + o->cleanup + o->slack) * 1000);
    a->active_end_ms = (uint32_t)(o->duration * 1000);
    a->burst_end_ms = (uint32_t)(o->ramp[0].t * 1000);   /* one ramp point: all of it */
    a->v = calloc(n, sizeof *a->v);
    a->pid_of = calloc(n, sizeof *a->pid_of);
    if (!a->v || !a->pid_of)
        return -1;
    for (size_t i = 0; i < WHEEL_SLOTS; i++)
        a->wheel[i] = NIL;
    for (uint32_t i = 0; i < n; i++)
        draw_viewer(a, i);
    if (a->npids && !(a->pid = calloc(a->npids, sizeof *a->pid)))
        return -1;
    plan_tallies(a);
    return 0;
}

void audience_fates(const struct audience *a, uint64_t out[5])
{
    memset(out, 0, 5 * sizeof *out);
    for (uint32_t i = 0; i < a->o->viewers; i++)
        out[a->v[i].fate]++;
}

void audience_free(struct audience *a)
{
    free(a->v);
    free(a->pid_of);
    free(a->pid);
}
