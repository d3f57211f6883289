/* store.h — usher's state in Redis, and the only way into it.
 *
 * One function per operation. Each takes C values, runs one atomic step in
 * Redis (a function of the library store/lua/usher.lua, or one command)
 * and calls back exactly once, on the loop and never from inside the call
 * (only when memory for the call itself runs out is the STORE_FAILED
 * answer given at once), with one enum store_error and, when that is
 * STORE_OK, the answer decoded into a C struct. Strings in an answer belong to the store and are valid
 * only during the callback: copy what you keep. `detail` is a message for
 * logs and 503 answers (never NULL; "" on success).
 *
 * Key names and reply layouts live only here (store.c, decode.c) and in
 * the library; README "Redis keys" lists the keys, SPEC §3 fixes some. */
#ifndef USHER_STORE_STORE_H
#define USHER_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>

#include "stages/state.h"

struct config;
struct store;

#define STAGE_KEY_TTL_S 3600          /* stage:{arn}, SPEC §3 */
#define PUBLISHER_STATUS_TTL_S 86400  /* publisher:status, SPEC §3 */

enum store_error {
    STORE_OK,
    STORE_UNAVAILABLE,   /* Redis unreachable, too slow, or lost our library:
                          * the outcome is unknown, the step safe to retry */
    STORE_NOT_LIVE,      /* a join while the publisher is not live */
    STORE_NO_STAGE,      /* no such live stage */
    STORE_NO_SEAT,       /* the user holds no seat in that stage */
    STORE_STAGE_FULL,    /* no room in the stage asked for, or in any, and
                          * no stage can be added */
    STORE_NO_ROOM_YET,   /* no room in any stage now, but a stage is
                          * opening or can be added: worth waiting for */
    STORE_STAGE_LIMIT,   /* MAX_STAGES stages exist */
    STORE_NOT_LEADER,    /* a scaler write without the lease */
    STORE_IS_MASTER,     /* the master stage is never removed */
    STORE_NOT_EMPTY,     /* an operator cannot remove a stage with viewers */
    STORE_FAILED         /* an answer of an unexpected shape: a bug */
};

/* Called each time the connection becomes ready (library loaded). */
typedef void (*store_ready_fn)(void *arg);

struct store *store_new(struct event_base *base, const struct config *cfg,
                        store_ready_fn on_ready, void *ready_arg);
/* Waiting callbacks are called now, with STORE_UNAVAILABLE. */
void store_free(struct store *s);
/* Whether calls can go to Redis now. False for NULL too: at shut-down
 * (main.c take_down) the store is freed and the loop flushed while the
 * periodic duties' timers (scaler, sweeper, webhooks, recovery) may still
 * fire; each asks this before calling the store. */
bool store_ready(const struct store *s);
/* Why the store is not ready ("" when it is), for logs and /health. */
const char *store_last_error(const struct store *s);
/* fn(arg, seconds, error) is called for every call's answer, before its
 * callback: the round trip, and whether Redis failed (unreachable, too
 * slow, an unexpected reply; a refusal is no failure). For metrics. */
typedef void (*store_observe_fn)(void *arg, double seconds, bool error);
void store_observe(struct store *s, store_observe_fn fn, void *arg);

/* ---- answers ------------------------------------------------------------ */

typedef void (*store_done_fn)(void *arg, enum store_error err, const char *detail);
/* n: a count, a time or a flag, as each operation says. */
typedef void (*store_number_fn)(void *arg, enum store_error err, const char *detail, long long n);
/* text: an ARN ("" when none), as each operation says. */
typedef void (*store_text_fn)(void *arg, enum store_error err, const char *detail, const char *text);

/* ---- viewers ------------------------------------------------------------ */

struct seat_request {
    const char *user_id;
    const char *stage_arn;           /* NULL: the least-loaded open stage with room */
    const char *participant_id;      /* for a new seat (and for a rejoin, always) */
    int64_t now_ms;
    long capacity;                   /* MAX_VIEWERS_PER_STAGE */
    long max_stages;                 /* stages that may exist (MAX_STAGES), 0 when
                                      * none may be added (auto-scaling off) */
    bool rejoin;                     /* no live publisher needed; keeps the given id */
};
struct seat {
    const char *stage_arn;
    const char *participant_id;
    long long stage_viewers;         /* in that stage, after this seat */
    bool is_new;                     /* the user held no seat before */
    const char *moved_from;          /* the stage left, "" when none */
};
typedef void (*store_seat_fn)(void *arg, enum store_error err, const char *detail,
                              const struct seat *seat);
/* Seats a viewer (join, same-seat refresh, move, rejoin). Errors:
 * NOT_LIVE (join only), NO_STAGE, STAGE_FULL, NO_ROOM_YET (a join without
 * a stage asked for; the refusal is counted as demand, see stats_view). */
void store_seat(struct store *s, const struct seat_request *q, store_seat_fn fn, void *arg);

struct heartbeat {
    bool moved;                      /* off a draining stage, to stage_arn */
    const char *stage_arn;           /* the new stage when moved, else NULL */
    const char *participant_id;      /* when moved */
};
typedef void (*store_heartbeat_fn)(void *arg, enum store_error err, const char *detail,
                                   const struct heartbeat *hb);
/* Errors: NO_SEAT when the user holds no seat in that stage, NO_STAGE
 * when that stage is not live. */
void store_heartbeat(struct store *s, const char *user_id, const char *stage_arn,
                     int64_t now_ms, long capacity, store_heartbeat_fn fn, void *arg);

/* text: the stage whose seat was freed, "" when none was (a leave repeated).
 * A freed seat is noted as left at now_ms (unix ms), so reconciliation
 * does not seat the user again from an older look at IVS. */
void store_leave(struct store *s, const char *user_id, const char *stage_arn, int64_t now_ms,
                 store_text_fn fn, void *arg);

/* text: where the user sits, JSON {"stageArn","participantId"}, or ""
 * when it holds no seat. */
void store_seat_of(struct store *s, const char *user_id, store_text_fn fn, void *arg);

/* Removes at most `limit` viewers whose last heartbeat is at or before
 * cutoff_ms; n: how many. Call again while n == limit. */
void store_sweep(struct store *s, int64_t cutoff_ms, long limit, store_number_fn fn, void *arg);

struct viewer_list {
    long long total;                 /* seated */
    long long active;                /* heartbeat after the cutoff */
    size_t count;
    const char *const *user_ids;     /* most recent heartbeat first */
};
typedef void (*store_viewer_list_fn)(void *arg, enum store_error err, const char *detail,
                                     const struct viewer_list *list);
/* At most max user ids of a stage; active counts heartbeats after
 * active_after_ms. Error NO_STAGE. */
void store_viewer_list(struct store *s, const char *stage_arn, int64_t active_after_ms,
                       long max, store_viewer_list_fn fn, void *arg);

/* n: when the user's seat in that stage was taken (ms). Error NO_SEAT. */
void store_seat_joined(struct store *s, const char *user_id, const char *stage_arn,
                       store_number_fn fn, void *arg);

/* n: total_viewers. */
void store_total_viewers(struct store *s, store_number_fn fn, void *arg);

/* ---- publisher ------------------------------------------------------------ */

/* Writes publisher:status ("live"/"offline", a day's TTL). text: the
 * status it replaced, "" when none (SET ... GET). */
void store_publisher_set(struct store *s, bool live, store_text_fn fn, void *arg);
/* n: 1 when live, else 0. */
void store_publisher_get(struct store *s, store_number_fn fn, void *arg);

/* ---- stages --------------------------------------------------------------- */

struct stage_entry {
    const char *arn;
    long long viewers;
    bool master;
    enum stage_mode mode;
    struct stage_info info;          /* fields NULL when the record is missing */
    struct stage_state state;
};
struct stats_view {
    long long total_viewers;
    bool publisher_live;
    const char *master_arn;          /* "" when none */
    long long waiting;               /* joins refused for want of room in the
                                      * last 10 s and not seated since: demand */
    size_t count;
    struct stage_entry *stages;      /* oldest first */
};
typedef void (*store_stats_fn)(void *arg, enum store_error err, const char *detail,
                               const struct stats_view *view);
/* Everything /api/stats shows and the scaler decides from, in one call. */
void store_stats(struct store *s, store_stats_fn fn, void *arg);

enum master_choice {
    MASTER_NONE,                     /* an ordinary stage */
    MASTER_UNLESS_ONE,               /* the master, unless one is recorded */
    MASTER_FORCED                    /* the master, whatever was (MASTER_STAGE_ARN) */
};
struct stage_record {
    const char *arn;
    const char *info_json;           /* the stage's record (state.h) */
    int64_t created_ms;
    long max_stages;
    enum master_choice master;
    const char *lease_holder;        /* NULL: not a scaler action */
    enum stage_mode mode;
    const struct stage_state *state; /* NULL: none */
    const char *tags_json;           /* the stage's tags as a JSON object, NULL: none */
    /* The stage's endpoints from the provider, {"whip":…,"events":…}, kept
     * beside the record (`stage_endpoints`, as SPEC §3 fixes stage:{arn});
     * NULL: none. */
    const char *endpoints_json;
};
/* Records a stage the provider made. text: the master ARN when asked for
 * one (the one recorded first, with MASTER_UNLESS_ONE), else the ARN.
 * Errors: STAGE_LIMIT, NOT_LEADER. */
void store_stage_add(struct store *s, const struct stage_record *r, store_text_fn fn, void *arg);

/* The scaler writes a stage's mode and bookkeeping, under its lease. A
 * draining stage stays draining (its drain start kept). Errors:
 * NOT_LEADER, NO_STAGE (gone meanwhile). */
void store_stage_update(struct store *s, const char *lease_holder, const char *stage_arn,
                        enum stage_mode mode, const struct stage_state *state,
                        store_done_fn fn, void *arg);

/* The replicas check (reconcile/replicas.h) records its judgement of a
 * stage's replication: state replaces the stage's bookkeeping (its mode
 * untouched), under the lease, only while the stage's mode is `mode` and
 * the replication, participant, running_since_ms and draining_since_ms of
 * its bookkeeping are still those of `seen` (what the check read):
 * otherwise another writer came between, and the judgement is void. n: 1
 * written, 0 not (the stage changed, or is gone). Error NOT_LEADER. */
void store_replica_record(struct store *s, const char *lease_holder, const char *stage_arn,
                          enum stage_mode mode, const struct stage_state *seen,
                          const struct stage_state *state, store_number_fn fn, void *arg);
/* How long a claimed stop of a replication keeps another from being made
 * (ms): longer than a stop takes to show in IVS's listing; a stop that
 * failed is tried again after it. */
#define STORE_STOP_CLAIM_MS 60000
/* The replicas check claims, under the lease, the stop of participant_id's
 * replication into dest_arn for ttl_ms: a stop still under way when the
 * next check lists IVS is not made again. n: 1 claimed, 0 claimed before
 * (by another check, or by the stage's removal: store_stage_remove).
 * Error NOT_LEADER. */
void store_replica_claim(struct store *s, const char *lease_holder, const char *dest_arn,
                         const char *participant_id, long ttl_ms, store_number_fn fn, void *arg);

struct stage_removed {
    long long unseated;              /* viewers who lost their seats */
    const char *parent;              /* the stage it replicated from, "" when none */
};
typedef void (*store_removed_fn)(void *arg, enum store_error err, const char *detail,
                                 const struct stage_removed *removed);
/* Removes a stage and all its keys. Without a lease holder (an operator)
 * a stage with viewers is refused. The caller stops the stage's
 * replication: its stop is claimed for STORE_STOP_CLAIM_MS in the same
 * step (store_replica_claim), so no replicas check makes it again.
 * Errors: NO_STAGE, IS_MASTER, NOT_EMPTY, NOT_LEADER. */
void store_stage_remove(struct store *s, const char *stage_arn, const char *lease_holder,
                        store_removed_fn fn, void *arg);

typedef void (*store_info_fn)(void *arg, enum store_error err, const char *detail,
                              const struct stage_info *info);
/* Renames a stage; answers its record. Error NO_STAGE. */
void store_stage_rename(struct store *s, const char *stage_arn, const char *name,
                        store_info_fn fn, void *arg);

/* Renews every live stage's stage:{arn} key; n: how many. */
void store_stage_renew(struct store *s, store_number_fn fn, void *arg);

/* text: the stage's endpoints JSON ({"whip","events"}), "" when none
 * are recorded. */
void store_stage_endpoints(struct store *s, const char *stage_arn, store_text_fn fn, void *arg);

/* ---- the state check ------------------------------------------------------- */

struct state_check {
    const char *state_id;            /* this life of the state; "" when no master
                                      * stage is recorded (never made, or lost) */
    const char *master_arn;          /* "" when none (or it named no live stage) */
    const char *publisher;           /* publisher:status ("live", "offline"), "" when none */
    size_t nproblems;
    const char *const *problems;     /* what was found and repaired, for the log */
};
typedef void (*store_check_fn)(void *arg, enum store_error err, const char *detail,
                               const struct state_check *check);
/* Checks that usher's keys hold usher's types and true counts, repairing
 * what it can (a foreign value is renamed to `foreign:{name}`, kept a day;
 * counts are recomputed from the seats; a master_stage naming no live
 * stage is removed), and sets `state_id` to new_state_id when a master is
 * recorded and no id is. */
void store_check(struct store *s, const char *new_state_id, store_check_fn fn, void *arg);

/* ---- scaler lease ------------------------------------------------------- */

struct lease {
    bool held;                       /* by the caller, after this call */
    bool taken;                      /* newly, by this call */
    long long epoch;                 /* how many times it changed hands */
    long long since_change_ms;       /* since the scaler's last change (a stage
                                      * added or drained under the lease, by any
                                      * process; Redis's clock), -1 when none */
};
typedef void (*store_lease_fn)(void *arg, enum store_error err, const char *detail,
                               const struct lease *lease);
/* Takes or renews the lease for ttl_ms; ttl_ms 0 gives it up. Stages the
 * scaler adds (store_stage_add with a lease holder) and drains
 * (store_stage_update to MODE_DRAINING) are noted as its last change in
 * the same step (`scaler:last_change`); the answer says how long ago. */
void store_lease(struct store *s, const char *holder, long ttl_ms, store_lease_fn fn, void *arg);

/* ---- IVS call rates ------------------------------------------------------ */

/* Reserves the next slot for one IVS call of class cls ("stage", ...),
 * calls of a class going interval_ms apart across every usher process
 * (Redis's clock decides). A call with priority (a scaling call) queues;
 * one without takes a slot only when none is queued. n >= 0: the slot is
 * taken, call in n ms (0: now); n < 0 (no priority): none taken, ask again
 * in -n ms. */
void store_rate_take(struct store *s, const char *cls, long interval_ms, bool priority,
                     store_number_fn fn, void *arg);

/* ---- reconciliation with IVS (reconcile/reconcile.h) --------------------- */

struct reconcile_participant {
    const char *participant_id;
    const char *user_id;
};
/* The subscribers IVS listed connected in a stage at read_at_ms, against
 * the seats, in one atomic step (usher.lua says each rule). text: JSON
 * {seated: [user…], moved: [[user, fromArn]…], unseated: [user…]} (an
 * empty list may come as {}), "" when the stage is gone. */
void store_reconcile_seat(struct store *s, const char *stage_arn, int64_t read_at_ms,
                          int64_t now_ms, long capacity, const struct reconcile_participant *list,
                          size_t n, store_text_fn fn, void *arg);
/* Removes, as leaves, the stage's seats neither joined nor seen connected
 * after cutoff_ms. text: JSON [user…] removed (empty: [] or {}). */
void store_reconcile_ghosts(struct store *s, const char *stage_arn, int64_t cutoff_ms,
                            store_text_fn fn, void *arg);
/* Keeps a stage's last reconciliation (a JSON object) for /api/stats/stages. */
void store_reconcile_note(struct store *s, const char *stage_arn, const char *note_json,
                          store_done_fn fn, void *arg);
/* text: JSON object arn → note, of every stage reconciled. */
void store_reconcile_notes(struct store *s, store_text_fn fn, void *arg);
/* Whether an IVS event (EventBridge envelope: time as ISO 8601
 * YYYY-MM-DDTHH:MM:SS[.f]Z, id) about a stage is news: none later, nor
 * the same, was taken for it. n: 1 news (now recorded), 0 not. */
void store_event_news(struct store *s, const char *stage_arn, const char *time, const char *id,
                      store_number_fn fn, void *arg);

/* ---- orphan stages (stages/orphans.h) ------------------------------------ */

/* The orphan sweep's candidates, arns_json a JSON array of ARNs: each is
 * noted by Redis's clock the first time any process gives it, and those
 * no longer given are forgotten (`orphan_seen`). text: JSON object arn →
 * ms since it was first given (0: noted now; an empty one may come as
 * {} or []). */
void store_orphan_seen(struct store *s, const char *arns_json, store_text_fn fn, void *arg);

/* ---- stage events ------------------------------------------------------- */

struct stage_event {
    const char *id, *type, *stage_arn, *detail, *at;
};
struct stage_events {
    size_t count;
    const struct stage_event *items; /* in the order the call says */
};
typedef void (*store_events_fn)(void *arg, enum store_error err, const char *detail,
                                const struct stage_events *events);
/* Appends to the capped stream stage_events (about `kept` entries kept). */
void store_events_append(struct store *s, const struct stage_event *e, long kept,
                         store_done_fn fn, void *arg);
/* The latest `limit` entries, newest first. */
void store_events_read(struct store *s, long limit, store_events_fn fn, void *arg);
/* At most `limit` entries after the stream id after_id ("<ms>-<seq>"; ""
 * for the first), oldest first (XRANGE with an exclusive start). */
void store_events_after(struct store *s, const char *after_id, long limit,
                        store_events_fn fn, void *arg);

/* ---- the live feed ------------------------------------------------------- */

struct live_read {
    struct stats_view stats;
    struct stage_events events;      /* oldest first */
};
typedef void (*store_live_fn)(void *arg, enum store_error err, const char *detail,
                              const struct live_read *read);
/* The stats view and at most `limit` stage events after the stream id
 * after_id ("": the latest `limit`), in one call (usher_live). */
void store_live(struct store *s, const char *after_id, long limit, store_live_fn fn, void *arg);

/* ---- webhooks ------------------------------------------------------------ */

/* Claims stage event event_id for delivery, for ttl_s seconds. n: its
 * sequence number (1, 2, ... across all processes) when this call claimed
 * it, 0 when another had. */
void store_webhook_claim(struct store *s, const char *event_id, long ttl_s, store_number_fn fn,
                         void *arg);

/* ---- health --------------------------------------------------------------- */

void store_ping(struct store *s, store_done_fn fn, void *arg);

#endif
