/* test_policy.c — unit tests for src/scaler/policy.c, the scaler's pure
 * decisions:
 *  - stages_needed: 0 viewers → 1; the spare rule (one stage's worth of
 *    free seats ahead of demand); the load rule (SCALE_UP_THRESHOLD); the
 *    MAX_STAGES cap; and an exhaustive comparison with exact integer ceils.
 *  - scale_decide, creating: the missing count, limited by the room left
 *    under MAX_STAGES (draining stages still count), by creations already
 *    in flight and by the creation budget; nothing when enough.
 *  - replication: started for waiting / never-replicated stages only while
 *    the publisher is live and the retry time has come; ACT_OPEN for a
 *    waiting stage whose replication runs; never for the master or a
 *    draining stage.
 *  - draining: the least loaded added stage at or under the down threshold
 *    (the newest on ties), one per decision, never the master, never a
 *    stage with children, never while creating, never within the cooldown,
 *    never when the others would not meet the need.
 *  - one action per stage per decision (never drain a stage and start its
 *    replication at once: the replication's answer would reopen it).
 *  - removing: a draining stage once empty or after DRAIN_TIMEOUT, not
 *    before; never the master.
 *  - hysteresis: a simulated audience hovering around a boundary for 200
 *    one-second ticks, with the decisions applied to a simulated stage list
 *    (creation → waiting stage next tick, replication → running, open,
 *    drain → draining with moves on heartbeat, remove → gone): the stage
 *    changes stay few, no stage exceeds capacity and no join is refused;
 *    both with random viewers leaving and with the last joiner leaving
 *    (one viewer coming and going); and a slow wide swing.
 *  - the stage ceiling (stage_ceiling_of): 1 + REPLICATION_MAX with IVS's
 *    replication quota and no chaining, else MAX_STAGES; at the ceiling no
 *    creation is planned, below it only up to it (creations in flight
 *    counted), and a ramp to 10,000 viewers stops at the ceiling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "scaler/policy.h"

#define C 20
#define NOW 10000000LL

/* ---- helpers ------------------------------------------------------------ */

static struct stage_view master(long viewers)
{
    return (struct stage_view){.arn = "master", .viewers = viewers, .master = true,
                               .mode = MODE_OPEN, .replication = REPL_NONE};
}

/* A stage the scaler added, open and replicated. */
static struct stage_view added(const char *arn, long viewers)
{
    return (struct stage_view){.arn = arn, .viewers = viewers, .auto_scaled = true,
                               .mode = MODE_OPEN, .replication = REPL_RUNNING};
}

/* Capacity 20, thresholds 0.8 / 0.2 (4 viewers), 25 stages at most,
 * publisher live, cooldown 30 s long past, drain timeout 120 s, budget 5. */
static struct scale_input input(const struct stage_view *stages, size_t n)
{
    return (struct scale_input){
        .stages = stages, .nstages = n, .capacity = C, .up = 0.8, .down = 0.2,
        .max_stages = 25, .publisher_live = true, .now_ms = NOW, .last_change_ms = 0,
        .cooldown_ms = 30000, .drain_timeout_ms = 120000, .creating = 0, .create_budget = 5,
    };
}

struct decision {
    struct scale_action a[64];
    size_t n;
};

static struct decision decide(const struct scale_input *in)
{
    struct decision d;
    memset(&d, 0, sizeof d);
    d.n = scale_decide(in, d.a, 64);
    assert_true(d.n <= 64);
    for (size_t i = 0; i < d.n; i++)
        if (d.a[i].kind != ACT_CREATE)
            assert_true(d.a[i].stage < in->nstages);
    return d;
}

static size_t count(const struct decision *d, enum action_kind kind)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n; i++)
        n += d->a[i].kind == kind;
    return n;
}

/* Whether the decision holds `kind` for stage index `stage`. */
static bool has(const struct decision *d, enum action_kind kind, size_t stage)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->a[i].kind == kind && d->a[i].stage == stage)
            return true;
    return false;
}

/* The stage index of the only action of `kind`; fails unless exactly one. */
static size_t only(const struct decision *d, enum action_kind kind)
{
    assert_int_equal(count(d, kind), 1);
    for (size_t i = 0; i < d->n; i++)
        if (d->a[i].kind == kind)
            return d->a[i].stage;
    return (size_t)-1;
}

/* ---- stages_needed -------------------------------------------------------- */

static void test_needed_zero_viewers_is_one(void **state)
{
    (void)state;
    assert_int_equal(stages_needed(0, 20, 0.8, 25), 1);
    assert_int_equal(stages_needed(0, 1, 1.0, 25), 1);
    assert_int_equal(stages_needed(0, 25000, 0.5, 1000), 1);
    assert_int_equal(stages_needed(0, 20, 0.8, 1), 1);
}

/* ceil((S + C) / C): a whole stage's worth of free seats ahead of demand. */
static void test_needed_spare_rule(void **state)
{
    (void)state;
    assert_int_equal(stages_needed(1, 20, 0.8, 25), 2);    /* 19 free < 20 */
    assert_int_equal(stages_needed(16, 20, 0.8, 25), 2);   /* load says 1 */
    assert_int_equal(stages_needed(20, 20, 0.8, 25), 2);   /* load 2, spare 2 */
    assert_int_equal(stages_needed(21, 20, 0.8, 25), 3);   /* load says 2 */
    assert_int_equal(stages_needed(40, 20, 0.8, 25), 3);
    assert_int_equal(stages_needed(41, 20, 0.8, 25), 4);   /* load says 3 */
    /* With the threshold at 1 only the spare rule counts. */
    assert_int_equal(stages_needed(99, 100, 1.0, 25), 2);
    assert_int_equal(stages_needed(100, 100, 1.0, 25), 2);
    assert_int_equal(stages_needed(101, 100, 1.0, 25), 3);
}

/* ceil(S / (up × C)) once it is larger than the spare rule. */
static void test_needed_load_rule(void **state)
{
    (void)state;
    assert_int_equal(stages_needed(96, 20, 0.8, 25), 6);   /* 6 and 6 */
    assert_int_equal(stages_needed(97, 20, 0.8, 25), 7);   /* load 7, spare 6 */
    assert_int_equal(stages_needed(100, 20, 0.8, 25), 7);
    assert_int_equal(stages_needed(400, 20, 0.8, 25), 25); /* load 25, spare 21 */
    assert_int_equal(stages_needed(35, 20, 0.5, 25), 4);   /* load 4, spare 3 */
    assert_int_equal(stages_needed(30, 20, 0.5, 25), 3);   /* exactly 3 × 10 */
}

static void test_needed_capped_by_max_stages(void **state)
{
    (void)state;
    assert_int_equal(stages_needed(401, 20, 0.8, 25), 25);
    assert_int_equal(stages_needed(100000, 20, 0.8, 25), 25);
    assert_int_equal(stages_needed(21, 20, 0.8, 2), 2);
    assert_int_equal(stages_needed(5, 20, 0.8, 1), 1);
    assert_int_equal(stages_needed(1000000, 25000, 0.8, 1000), 50);  /* load 50, spare 41 */
    assert_int_equal(stages_needed(1000001, 25000, 0.8, 1000), 51);
}

/* Against exact integer arithmetic, for thresholds in whole percent. */
static void test_needed_matches_exact_ceils(void **state)
{
    (void)state;
    static const long pcts[] = {30, 50, 60, 70, 75, 80, 85, 90, 95, 100};
    for (long cap = 1; cap <= 60; cap++)
        for (size_t p = 0; p < sizeof pcts / sizeof *pcts; p++)
            for (long s = 0; s <= 1500; s++) {
                long by_load = (s * 100 + pcts[p] * cap - 1) / (pcts[p] * cap);
                long with_spare = (s + cap + cap - 1) / cap;
                long want = by_load > with_spare ? by_load : with_spare;
                if (want < 1)
                    want = 1;
                if (want > 1000)
                    want = 1000;
                long got = stages_needed(s, cap, (double)pcts[p] / 100.0, 1000);
                if (got != want)
                    fail_msg("stages_needed(%ld, %ld, %.2f) = %ld, want %ld", s, cap,
                             (double)pcts[p] / 100.0, got, want);
            }
}

/* ---- scale_decide: creating -------------------------------------------------- */

/* Joins refused for want of room are demand: 1 seated + 1 waiting at
 * capacity 1 needs 3 stages (issue 12: the second viewer of a burst). */
static void test_waiting_joins_count_as_demand(void **state)
{
    (void)state;
    struct stage_view v[] = {master(1)};
    struct scale_input in = input(v, 1);
    in.capacity = 1;
    in.max_stages = 3;
    struct decision d = decide(&in);
    assert_int_equal(count(&d, ACT_CREATE), 1);          /* 1 seated: need 2 */
    in.waiting = 1;
    d = decide(&in);
    assert_int_equal(count(&d, ACT_CREATE), 2);          /* 1 + 1 waiting: need 3 */

    /* Capacity 20, 20 seated, 480 waiting: the need is 25 + 1 spare → 26
     * stages, up to the room and this second's budget. */
    v[0].viewers = 20;
    in = input(v, 1);
    in.max_stages = 40;
    in.waiting = 480;
    in.create_budget = 100;
    d = decide(&in);
    assert_int_equal(count(&d, ACT_CREATE), stages_needed(500, 20, 0.8, 40) - 1);
    in.create_budget = 5;
    d = decide(&in);
    assert_int_equal(count(&d, ACT_CREATE), 5);
}

static void test_creates_the_missing_count(void **state)
{
    (void)state;
    struct stage_view v[] = {master(20)};                /* need max(2, 2) = 2 */
    struct scale_input in = input(v, 1);
    struct decision d = decide(&in);
    assert_int_equal(count(&d, ACT_CREATE), 1);

    v[0].viewers = 40;                                   /* need max(3, 3) = 3 */
    d = decide(&in);
    assert_int_equal(count(&d, ACT_CREATE), 2);
    assert_int_equal(count(&d, ACT_DRAIN), 0);
}

static void test_no_create_when_enough(void **state)
{
    (void)state;
    struct stage_view v[] = {master(12), added("a", 8)}; /* S=20: need 2 */
    struct scale_input in = input(v, 2);
    struct decision d = decide(&in);
    assert_int_equal(count(&d, ACT_CREATE), 0);
    assert_int_equal(count(&d, ACT_DRAIN), 0);

    /* A waiting stage counts as one about to open. */
    struct stage_view w[] = {master(20), added("a", 0)};
    w[1].mode = MODE_WAITING;
    w[1].replication = REPL_PENDING;
    w[1].retry_at_ms = NOW + 30000;
    in = input(w, 2);
    d = decide(&in);
    assert_int_equal(count(&d, ACT_CREATE), 0);

    /* No viewers at all: the master alone. */
    struct stage_view m[] = {master(0)};
    in = input(m, 1);
    d = decide(&in);
    assert_int_equal(d.n, 0);
}

static void test_create_limited_by_creating(void **state)
{
    (void)state;
    struct stage_view v[] = {master(40)};                /* need 3, have 1 */
    struct scale_input in = input(v, 1);
    in.creating = 1;
    struct decision d = decide(&in);
    assert_int_equal(count(&d, ACT_CREATE), 1);
    in.creating = 2;
    d = decide(&in);
    assert_int_equal(count(&d, ACT_CREATE), 0);
    in.creating = 5;                                     /* more in flight than needed */
    d = decide(&in);
    assert_int_equal(count(&d, ACT_CREATE), 0);
    assert_int_equal(count(&d, ACT_DRAIN), 0);
}

static void test_create_limited_by_room(void **state)
{
    (void)state;
    struct stage_view v[] = {master(40)};                /* need 3 */
    struct scale_input in = input(v, 1);
    in.max_stages = 2;                                   /* need capped to 2 */
    struct decision d = decide(&in);
    assert_int_equal(count(&d, ACT_CREATE), 1);

    /* A draining stage still takes a place under MAX_STAGES. */
    struct stage_view w[] = {master(20), added("old", 20)};
    w[1].mode = MODE_DRAINING;
    w[1].draining_since_ms = NOW - 1000;
    in = input(w, 2);                                    /* S=40: need 3, usable 1 */
    in.max_stages = 3;
    d = decide(&in);
    assert_int_equal(count(&d, ACT_CREATE), 1);
    in.max_stages = 2;
    d = decide(&in);
    assert_int_equal(count(&d, ACT_CREATE), 0);

    /* Room also counts creations in flight. */
    in.max_stages = 4;
    in.creating = 1;                                     /* room 4-2-1 = 1, missing 1 */
    d = decide(&in);
    assert_int_equal(count(&d, ACT_CREATE), 1);
    in.max_stages = 3;                                   /* room 0 */
    d = decide(&in);
    assert_int_equal(count(&d, ACT_CREATE), 0);
}

static void test_create_limited_by_budget(void **state)
{
    (void)state;
    struct stage_view v[] = {master(200)};               /* need 13, have 1 */
    struct scale_input in = input(v, 1);
    struct decision d = decide(&in);
    assert_int_equal(count(&d, ACT_CREATE), 5);
    in.create_budget = 2;
    d = decide(&in);
    assert_int_equal(count(&d, ACT_CREATE), 2);
    in.create_budget = 0;
    d = decide(&in);
    assert_int_equal(count(&d, ACT_CREATE), 0);
    in.create_budget = 100;
    d = decide(&in);
    assert_int_equal(count(&d, ACT_CREATE), 12);
}

/* ---- scale_decide: replication ----------------------------------------------- */

static void test_replication_starts_when_live_and_due(void **state)
{
    (void)state;
    struct stage_view v[] = {master(5), added("none", 0), added("pending", 0),
                             added("failed", 0), added("later", 0)};
    for (size_t i = 1; i < 5; i++)
        v[i].mode = MODE_WAITING;
    v[1].replication = REPL_NONE;
    v[2].replication = REPL_PENDING;
    v[3].replication = REPL_FAILED;
    v[3].retry_at_ms = NOW;                              /* due exactly now */
    v[4].replication = REPL_FAILED;
    v[4].retry_at_ms = NOW + 1;                          /* not yet */
    struct scale_input in = input(v, 5);
    struct decision d = decide(&in);
    assert_int_equal(count(&d, ACT_START_REPLICATION), 3);
    assert_true(has(&d, ACT_START_REPLICATION, 1));
    assert_true(has(&d, ACT_START_REPLICATION, 2));
    assert_true(has(&d, ACT_START_REPLICATION, 3));
    assert_false(has(&d, ACT_START_REPLICATION, 0));    /* the master is the source */
    assert_int_equal(count(&d, ACT_OPEN), 0);           /* nothing runs yet */

    in.now_ms = NOW + 1;
    in.last_change_ms = in.now_ms;                      /* a cooldown keeps drains out */
    d = decide(&in);
    assert_true(has(&d, ACT_START_REPLICATION, 4));

    /* Publisher offline: no replication starts at all. */
    in.publisher_live = false;
    in.now_ms = NOW + 60000;
    d = decide(&in);
    assert_int_equal(count(&d, ACT_START_REPLICATION), 0);
    assert_int_equal(count(&d, ACT_OPEN), 0);
}

static void test_replication_for_operator_stage(void **state)
{
    (void)state;
    /* An operator's stage is open at once, but still gets replication. */
    struct stage_view v[] = {master(5), added("op", 5)};
    v[1].replication = REPL_NONE;
    struct scale_input in = input(v, 2);
    struct decision d = decide(&in);
    assert_int_equal(only(&d, ACT_START_REPLICATION), 1);
    assert_int_equal(count(&d, ACT_OPEN), 0);
    in.publisher_live = false;
    d = decide(&in);
    assert_int_equal(count(&d, ACT_START_REPLICATION), 0);
}

static void test_open_when_replication_runs(void **state)
{
    (void)state;
    struct stage_view v[] = {master(5), added("w", 0), added("o", 5)};
    v[1].mode = MODE_WAITING;                            /* running, still waiting */
    struct scale_input in = input(v, 3);
    struct decision d = decide(&in);
    assert_int_equal(only(&d, ACT_OPEN), 1);             /* not the open one */
    assert_int_equal(count(&d, ACT_START_REPLICATION), 0);
}

static void test_no_replication_for_draining_or_master(void **state)
{
    (void)state;
    struct stage_view v[] = {master(5), added("d", 3)};
    v[1].mode = MODE_DRAINING;
    v[1].replication = REPL_FAILED;
    v[1].draining_since_ms = NOW - 1000;
    struct scale_input in = input(v, 2);
    struct decision d = decide(&in);
    assert_int_equal(count(&d, ACT_START_REPLICATION), 0);
    assert_int_equal(count(&d, ACT_OPEN), 0);
    assert_int_equal(count(&d, ACT_REMOVE), 0);
}

/* ---- scale_decide: draining ---------------------------------------------------- */

/* S=22 → need 3 (spare), with master + 3 added = 4 usable: one too many. */
/* S=18: need 2, and four usable stages are two beyond it, so one may go
 * (draining needs the others to exceed the need by a whole stage). */
static void four_stages(struct stage_view *v)
{
    v[0] = master(6);
    v[1] = added("a", 3);
    v[2] = added("b", 1);
    v[3] = added("c", 8);
}

static void test_drain_least_loaded_under_threshold(void **state)
{
    (void)state;
    struct stage_view v[4];
    four_stages(v);
    struct scale_input in = input(v, 4);
    struct decision d = decide(&in);
    assert_int_equal(only(&d, ACT_DRAIN), 2);
    assert_int_equal(count(&d, ACT_CREATE), 0);

    /* At the threshold (4 = 0.2 × 20) still a candidate, above it not. */
    v[1].viewers = 4, v[2].viewers = 5, v[3].viewers = 5;   /* S=20: need 2 */
    d = decide(&in);
    assert_int_equal(only(&d, ACT_DRAIN), 1);
    v[0].viewers = 5, v[1].viewers = 5;                 /* S=20: need 2, none ≤ 4 */
    d = decide(&in);
    assert_int_equal(count(&d, ACT_DRAIN), 0);
}

static void test_drain_newest_on_ties(void **state)
{
    (void)state;
    struct stage_view v[4];
    four_stages(v);
    v[1].viewers = 2, v[2].viewers = 2;                 /* stages are oldest first */
    struct scale_input in = input(v, 4);
    struct decision d = decide(&in);
    assert_int_equal(only(&d, ACT_DRAIN), 2);
    v[3].viewers = 2;                                   /* S=16: need 2, three tie */
    d = decide(&in);
    assert_int_equal(only(&d, ACT_DRAIN), 3);           /* one per decision */
}

static void test_drain_never_master(void **state)
{
    (void)state;
    /* The master is the emptiest and the audience is tiny: still kept. */
    struct stage_view v[] = {master(0), added("a", 5), added("b", 5), added("c", 6)};
    struct scale_input in = input(v, 4);                 /* S=16: need 2 */
    in.down = 0.2;
    struct decision d = decide(&in);
    assert_int_equal(count(&d, ACT_DRAIN), 0);
    v[3].viewers = 0;                                    /* now c qualifies */
    d = decide(&in);
    assert_int_equal(only(&d, ACT_DRAIN), 3);
}

static void test_drain_never_one_with_children(void **state)
{
    (void)state;
    struct stage_view v[4];
    four_stages(v);
    v[2].children = 1;                                   /* b feeds another stage */
    struct scale_input in = input(v, 4);
    struct decision d = decide(&in);
    assert_int_equal(only(&d, ACT_DRAIN), 1);            /* a instead */
    v[1].children = 2;
    d = decide(&in);
    assert_int_equal(count(&d, ACT_DRAIN), 0);
}

static void test_drain_never_while_creating(void **state)
{
    (void)state;
    struct stage_view v[4];
    four_stages(v);
    struct scale_input in = input(v, 4);
    in.creating = 1;
    struct decision d = decide(&in);
    assert_int_equal(count(&d, ACT_DRAIN), 0);
    assert_int_equal(count(&d, ACT_CREATE), 0);
}

static void test_drain_never_within_cooldown(void **state)
{
    (void)state;
    struct stage_view v[4];
    four_stages(v);
    struct scale_input in = input(v, 4);
    in.last_change_ms = NOW - 29999;
    struct decision d = decide(&in);
    assert_int_equal(count(&d, ACT_DRAIN), 0);
    in.last_change_ms = NOW;
    d = decide(&in);
    assert_int_equal(count(&d, ACT_DRAIN), 0);
    in.last_change_ms = NOW - 30000;
    d = decide(&in);
    assert_int_equal(only(&d, ACT_DRAIN), 2);
}

static void test_drain_never_below_need(void **state)
{
    (void)state;
    /* S=11: need 2 = usable 2. */
    struct stage_view v[] = {master(10), added("a", 1)};
    struct scale_input in = input(v, 2);
    struct decision d = decide(&in);
    assert_int_equal(count(&d, ACT_DRAIN), 0);

    /* A waiting stage counts as usable: S=32 → need 3 = master + a + w. */
    struct stage_view w[] = {master(30), added("a", 2), added("w", 0)};
    w[2].mode = MODE_WAITING;
    w[2].replication = REPL_PENDING;
    w[2].retry_at_ms = NOW + 30000;
    in = input(w, 3);
    d = decide(&in);
    assert_int_equal(count(&d, ACT_DRAIN), 0);

    /* A stage already draining is not usable: S=22 → need 3, usable 3. */
    struct stage_view x[4];
    four_stages(x);
    x[3].mode = MODE_DRAINING;
    x[3].draining_since_ms = NOW - 1000;
    in = input(x, 4);
    d = decide(&in);
    assert_int_equal(count(&d, ACT_DRAIN), 0);
    assert_int_equal(count(&d, ACT_REMOVE), 0);
}

/* One decision never holds two actions for one stage: a stage being
 * drained must not also have its replication started (the replication's
 * answer would mark it open again, seating viewers in a closing stage). */
static const char *kind_name(enum action_kind k)
{
    static const char *names[] = {"ACT_CREATE", "ACT_START_REPLICATION", "ACT_OPEN", "ACT_DRAIN",
                                  "ACT_REMOVE"};
    return (unsigned)k < 5 ? names[k] : "?";
}

static void assert_one_action_per_stage(const struct decision *d)
{
    for (size_t i = 0; i < d->n; i++)
        for (size_t k = i + 1; k < d->n; k++)
            if (d->a[i].kind != ACT_CREATE && d->a[k].kind != ACT_CREATE &&
                d->a[i].stage == d->a[k].stage)
                fail_msg("stage %zu gets %s and %s in one decision", d->a[i].stage,
                         kind_name(d->a[i].kind), kind_name(d->a[k].kind));
}

static void test_no_drain_and_replication_together(void **state)
{
    (void)state;
    /* S=1 → need 2; four usable, so one may go. An added stage whose
     * replication never ran is the newest of the empty ones. */
    struct stage_view v[] = {master(1), added("a", 0), added("b", 0), added("r", 0)};
    v[3].replication = REPL_NONE;
    struct scale_input in = input(v, 4);
    struct decision d = decide(&in);
    assert_int_equal(count(&d, ACT_DRAIN), 1);
    assert_one_action_per_stage(&d);

    /* An added stage still waiting, its replication retry due. */
    struct stage_view w[] = {master(1), added("a", 0), added("b", 0), added("w", 0)};
    w[3].mode = MODE_WAITING;
    w[3].replication = REPL_FAILED;
    w[3].retry_at_ms = NOW - 1;
    in = input(w, 4);
    d = decide(&in);
    assert_int_equal(count(&d, ACT_DRAIN), 1);
    assert_one_action_per_stage(&d);
}

/* ---- scale_decide: removing ----------------------------------------------------- */

static void test_remove_draining_when_empty_or_timed_out(void **state)
{
    (void)state;
    struct stage_view v[] = {master(10), added("empty", 0), added("busy", 2)};
    v[1].mode = v[2].mode = MODE_DRAINING;
    v[1].draining_since_ms = v[2].draining_since_ms = NOW - 1000;
    struct scale_input in = input(v, 3);
    struct decision d = decide(&in);
    assert_int_equal(only(&d, ACT_REMOVE), 1);

    in.now_ms = v[2].draining_since_ms + 119999;         /* one ms before the timeout */
    d = decide(&in);
    assert_int_equal(only(&d, ACT_REMOVE), 1);
    in.now_ms = v[2].draining_since_ms + 120000;
    d = decide(&in);
    assert_int_equal(count(&d, ACT_REMOVE), 2);
    assert_true(has(&d, ACT_REMOVE, 2));
}

static void test_remove_never_master(void **state)
{
    (void)state;
    /* Even a master marked draining (by hand, by mistake) stays. */
    struct stage_view v[] = {master(0), added("a", 3)};
    v[0].mode = MODE_DRAINING;
    v[0].draining_since_ms = NOW - 10000000;
    struct scale_input in = input(v, 2);
    struct decision d = decide(&in);
    assert_false(has(&d, ACT_REMOVE, 0));
    assert_false(has(&d, ACT_DRAIN, 0));

    /* Open stages and waiting ones are never removed directly. */
    struct stage_view w[] = {master(0), added("o", 0), added("w", 0)};
    w[2].mode = MODE_WAITING;
    in = input(w, 3);
    d = decide(&in);
    assert_int_equal(count(&d, ACT_REMOVE), 0);
}

/* ---- hysteresis: a simulated audience over many ticks -------------------------- */

#define SIM_STAGES 64
#define SIM_VIEWERS 4096

struct sim_stage {
    int id;                          /* stable across removals */
    char arn[16];
    long viewers;
    bool master;
    enum stage_mode mode;
    enum replication_state replication;
    int64_t draining_since_ms;
};

struct sim {
    struct sim_stage st[SIM_STAGES];
    size_t n;
    int next_id;
    int seat[SIM_VIEWERS];           /* stage id of each seated viewer, in join order */
    long seated;
    long pending_creates;            /* created this tick: stages next tick */
    int64_t last_change_ms;
    long creates, drains, removes, refused, unseated, max_stages_seen;
    uint32_t rng;
    bool lifo;                       /* the last joiner leaves, else a random one */
};

static struct sim_stage *sim_find(struct sim *s, int id)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->st[i].id == id)
            return &s->st[i];
    return NULL;
}

static struct sim_stage *sim_add(struct sim *s, bool is_master)
{
    assert_true(s->n < SIM_STAGES);
    struct sim_stage *st = &s->st[s->n++];
    memset(st, 0, sizeof *st);
    st->id = s->next_id++;
    snprintf(st->arn, sizeof st->arn, "s%d", st->id);
    st->master = is_master;
    st->mode = is_master ? MODE_OPEN : MODE_WAITING;
    st->replication = is_master ? REPL_RUNNING : REPL_PENDING;
    return st;
}

/* Least-loaded open stage with room, oldest on ties (seat.lua's rule). */
static struct sim_stage *sim_least_loaded(struct sim *s, int except_id)
{
    struct sim_stage *best = NULL;
    for (size_t i = 0; i < s->n; i++) {
        struct sim_stage *st = &s->st[i];
        if (st->id == except_id || st->mode != MODE_OPEN || st->viewers >= C)
            continue;
        if (!best || st->viewers < best->viewers)
            best = st;
    }
    return best;
}

static void sim_join(struct sim *s)
{
    struct sim_stage *st = sim_least_loaded(s, -1);
    if (!st) {
        s->refused++;
        return;
    }
    st->viewers++;
    assert_true(s->seated < SIM_VIEWERS);
    s->seat[s->seated++] = st->id;
}

static uint32_t sim_rand(struct sim *s)
{
    s->rng = s->rng * 1664525u + 1013904223u;
    return s->rng >> 8;
}

static void sim_leave(struct sim *s)
{
    long k = s->lifo ? s->seated - 1 : (long)(sim_rand(s) % (uint32_t)s->seated);
    struct sim_stage *st = sim_find(s, s->seat[k]);
    assert_non_null(st);
    st->viewers--;
    memmove(&s->seat[k], &s->seat[k + 1], (size_t)(s->seated - k - 1) * sizeof *s->seat);
    s->seated--;
}

/* Every viewer of a draining stage heartbeats and is moved (heartbeat.lua). */
static void sim_heartbeats(struct sim *s)
{
    for (long k = 0; k < s->seated; k++) {
        struct sim_stage *from = sim_find(s, s->seat[k]);
        if (from->mode != MODE_DRAINING)
            continue;
        struct sim_stage *to = sim_least_loaded(s, from->id);
        if (!to)
            continue;
        from->viewers--;
        to->viewers++;
        s->seat[k] = to->id;
    }
}

static void sim_remove(struct sim *s, int id)
{
    for (long k = 0; k < s->seated;) {
        if (s->seat[k] == id) {
            memmove(&s->seat[k], &s->seat[k + 1], (size_t)(s->seated - k - 1) * sizeof *s->seat);
            s->seated--;
            s->unseated++;
        } else {
            k++;
        }
    }
    for (size_t i = 0; i < s->n; i++)
        if (s->st[i].id == id) {
            memmove(&s->st[i], &s->st[i + 1], (s->n - i - 1) * sizeof *s->st);
            s->n--;
            return;
        }
    fail_msg("removing unknown stage %d", id);
}

/* One tick at `now`: audience to `target`, heartbeats, decide, apply. */
static void sim_tick(struct sim *s, int64_t now, long target)
{
    /* Stages created last tick are recorded now, waiting for replication. */
    for (; s->pending_creates > 0; s->pending_creates--) {
        sim_add(s, false);
        s->last_change_ms = now;
    }
    while (s->seated < target) {
        long before = s->refused;
        sim_join(s);
        if (s->refused != before)
            break;
    }
    while (s->seated > target)
        sim_leave(s);
    sim_heartbeats(s);

    struct stage_view views[SIM_STAGES];
    int ids[SIM_STAGES];
    for (size_t i = 0; i < s->n; i++) {
        views[i] = (struct stage_view){.arn = s->st[i].arn, .viewers = s->st[i].viewers,
                                       .master = s->st[i].master, .mode = s->st[i].mode,
                                       .replication = s->st[i].replication,
                                       .draining_since_ms = s->st[i].draining_since_ms};
        /* Every added stage replicates from the master here. */
        if (!s->st[i].master)
            views[0].children++;
        ids[i] = s->st[i].id;
    }
    struct scale_input in = {
        .stages = views, .nstages = s->n, .capacity = C, .up = 0.8, .down = 0.2,
        .max_stages = 25, .publisher_live = true, .now_ms = now,
        .last_change_ms = s->last_change_ms, .cooldown_ms = 30000,
        .drain_timeout_ms = 120000, .creating = s->pending_creates, .create_budget = 5,
    };
    struct decision d = decide(&in);
    for (size_t i = 0; i < d.n; i++) {
        const struct scale_action *a = &d.a[i];
        struct sim_stage *st = a->kind == ACT_CREATE ? NULL : sim_find(s, ids[a->stage]);
        switch (a->kind) {
        case ACT_CREATE:
            s->creates++;
            s->pending_creates++;
            break;
        case ACT_START_REPLICATION:
            st->replication = REPL_RUNNING;
            break;
        case ACT_OPEN:
            st->mode = MODE_OPEN;
            break;
        case ACT_DRAIN:
            assert_false(st->master);
            st->mode = MODE_DRAINING;
            st->draining_since_ms = now;
            s->last_change_ms = now;
            s->drains++;
            break;
        case ACT_REMOVE:
            assert_false(st->master);
            s->removes++;
            sim_remove(s, ids[a->stage]);
            break;
        }
    }
    for (size_t i = 0; i < s->n; i++)
        if (s->st[i].viewers > C)
            fail_msg("stage %s holds %ld > %d", s->st[i].arn, s->st[i].viewers, C);
    if ((long)s->n > s->max_stages_seen)
        s->max_stages_seen = (long)s->n;
}

/* Warms up to `low` (5 joins a second) for 90 s, then alternates
 * low/high every second for 200 s; returns the creates + drains of the
 * 200 s. */
static long hover(struct sim *s, long low, long high, bool lifo)
{
    memset(s, 0, sizeof *s);
    s->rng = 12345;
    s->lifo = lifo;
    s->last_change_ms = -1000000;
    sim_add(s, true);
    int64_t t = 0;
    for (int i = 0; i < 90; i++, t += 1000)
        sim_tick(s, t, low < (i + 1) * 5 ? low : (i + 1) * 5);
    assert_int_equal(s->seated, low);
    assert_int_equal(s->refused, 0);
    long creates0 = s->creates, drains0 = s->drains;
    for (int i = 0; i < 200; i++, t += 1000)
        sim_tick(s, t, i % 2 ? low : high);
    long changes = s->creates - creates0 + s->drains - drains0;
    print_message("hover %ld<->%ld (%s leaves): %ld creates, %ld drains in the 200 s; "
                  "%ld removes in all, %ld refused joins, %ld unseated, %zu stages at the end\n",
                  low, high, lifo ? "last joiner" : "random viewer", s->creates - creates0,
                  s->drains - drains0, s->removes, s->refused, s->unseated, s->n);
    return changes;
}

static void check_hover(long low, long high, bool lifo)
{
    struct sim s;
    long changes = hover(&s, low, high, lifo);
    assert_int_equal(s.refused, 0);                      /* the spare keeps joins seated */
    assert_int_equal(s.unseated, 0);                     /* moved, not dropped at timeout */
    if (changes > 2)
        fail_msg("audience hovering %ld<->%ld (%s leaves) flapped: %ld creates+drains in 200 s "
                 "with a 30 s cooldown", low, high, lifo ? "last joiner" : "random viewer", changes);
}

static void test_hysteresis_spare_boundary_random(void **state)
{
    (void)state;
    check_hover(20, 21, false);                          /* need 2 ↔ 3 (spare rule) */
}

static void test_hysteresis_spare_boundary_last_joiner(void **state)
{
    (void)state;
    check_hover(20, 21, true);
}

static void test_hysteresis_load_boundary_random(void **state)
{
    (void)state;
    check_hover(96, 97, false);                          /* need 6 ↔ 7 (load rule) */
}

static void test_hysteresis_load_boundary_last_joiner(void **state)
{
    (void)state;
    check_hover(96, 97, true);
}

/* A wide, slow swing (60 → 100 → 60 viewers, 5 a second, 200 s) crosses
 * several boundaries: the stages follow, bounded by the cooldown, never
 * over capacity, and no join is ever refused (steps stay under the spare). */
static void test_hysteresis_wide_swing(void **state)
{
    (void)state;
    struct sim s;
    (void)hover(&s, 60, 60, false);
    long creates0 = s.creates, drains0 = s.drains;
    int64_t t = 290000;
    long target = 60, step = 5;
    for (int i = 0; i < 200; i++, t += 1000) {
        target += step;
        if (target == 100 || target == 60)
            step = -step;
        sim_tick(&s, t, target);
        assert_int_equal(s.seated, target);
    }
    print_message("swing 60<->100: %ld creates, %ld drains, %ld refused, %ld stages at most\n",
                  s.creates - creates0, s.drains - drains0, s.refused, s.max_stages_seen);
    assert_int_equal(s.refused, 0);
    assert_int_equal(s.unseated, 0);
    assert_true(s.max_stages_seen <= 25);
    /* 200 s with a 30 s cooldown: at most 7 drains, creations follow them. */
    assert_true(s.drains - drains0 <= 7);
    assert_true(s.creates - creates0 <= 8);
}


/* ---- the replication ceiling ------------------------------------------- */

static void test_ceiling_values(void **state)
{
    (void)state;
    struct stage_ceiling c = stage_ceiling_of(20, true, 5, false);
    assert_int_equal(c.stages, 6);                  /* the master + 5 fed */
    assert_non_null(strstr(c.reason, "REPLICATION_MAX"));
    assert_int_equal(stage_ceiling_of(20, true, 5, true).stages, 20);   /* chaining allowed */
    assert_int_equal(stage_ceiling_of(20, false, 5, false).stages, 20); /* no quota (local) */
    assert_int_equal(stage_ceiling_of(4, true, 5, false).stages, 4);    /* MAX_STAGES lower */
    assert_string_equal(stage_ceiling_of(4, true, 5, false).reason, "MAX_STAGES");
    assert_int_equal(stage_ceiling_of(20, true, 2, false).stages, 3);
    assert_int_equal(stage_ceiling_of(20, true, 0, false).stages, 1);   /* master only */
}

/* An audience far beyond what 6 stages seat: at the ceiling nothing more
 * is planned; below it only the stages up to it, creations in flight
 * counted. */
static void test_never_plans_beyond_ceiling(void **state)
{
    (void)state;
    long ceiling = stage_ceiling_of(25, true, 5, false).stages;
    struct stage_view full[6] = {master(C), added("a", C), added("b", C), added("c", C),
                                 added("d", C), added("e", C)};
    struct scale_input in = input(full, 6);
    in.max_stages = ceiling;
    struct decision d = decide(&in);
    assert_int_equal(count(&d, ACT_CREATE), 0);
    in.nstages = 5;                                 /* 100 seated: 7 stages needed */
    d = decide(&in);
    assert_int_equal(count(&d, ACT_CREATE), 1);     /* only up to the ceiling */
    in.nstages = 4;                                 /* 80 seated: 5 needed, 1 being made */
    in.creating = 1;
    in.stages = (struct stage_view[]){master(C), added("a", C), added("b", C), added("c", C)};
    d = decide(&in);
    assert_int_equal(count(&d, ACT_CREATE), 0);
    in.max_stages = 25;                             /* without the ceiling: 7 needed */
    in.nstages = 5;
    in.creating = 0;
    in.stages = full;
    d = decide(&in);
    assert_int_equal(count(&d, ACT_CREATE), 2);
}

/* A ramp from the master alone to 10,000 viewers, creations applied each
 * tick: the stage count climbs to the ceiling and never past it. */
static void test_ramp_stops_at_ceiling(void **state)
{
    (void)state;
    static const char *names[] = {"s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10"};
    struct stage_view v[32] = {master(0)};
    size_t n = 1;
    long most = 0;
    for (long viewers = 0; viewers <= 10000; viewers += 50) {
        for (size_t i = 0; i < n; i++)          /* seat up to capacity, least loaded first */
            v[i].viewers = viewers / (long)n > C ? C : viewers / (long)n;
        struct scale_input in = input(v, n);
        in.max_stages = stage_ceiling_of(25, true, 5, false).stages;
        struct decision d = decide(&in);
        for (size_t k = 0; k < count(&d, ACT_CREATE) && n < 32; k++, n++)
            v[n] = added(names[(n - 1) % 10], 0);
        most = (long)n > most ? (long)n : most;
    }
    assert_int_equal(most, 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_needed_zero_viewers_is_one),
        cmocka_unit_test(test_waiting_joins_count_as_demand),
        cmocka_unit_test(test_needed_spare_rule),
        cmocka_unit_test(test_needed_load_rule),
        cmocka_unit_test(test_needed_capped_by_max_stages),
        cmocka_unit_test(test_needed_matches_exact_ceils),
        cmocka_unit_test(test_creates_the_missing_count),
        cmocka_unit_test(test_no_create_when_enough),
        cmocka_unit_test(test_create_limited_by_creating),
        cmocka_unit_test(test_create_limited_by_room),
        cmocka_unit_test(test_create_limited_by_budget),
        cmocka_unit_test(test_replication_starts_when_live_and_due),
        cmocka_unit_test(test_replication_for_operator_stage),
        cmocka_unit_test(test_open_when_replication_runs),
        cmocka_unit_test(test_no_replication_for_draining_or_master),
        cmocka_unit_test(test_drain_least_loaded_under_threshold),
        cmocka_unit_test(test_drain_newest_on_ties),
        cmocka_unit_test(test_drain_never_master),
        cmocka_unit_test(test_drain_never_one_with_children),
        cmocka_unit_test(test_drain_never_while_creating),
        cmocka_unit_test(test_drain_never_within_cooldown),
        cmocka_unit_test(test_drain_never_below_need),
        cmocka_unit_test(test_no_drain_and_replication_together),
        cmocka_unit_test(test_remove_draining_when_empty_or_timed_out),
        cmocka_unit_test(test_remove_never_master),
        cmocka_unit_test(test_hysteresis_spare_boundary_random),
        cmocka_unit_test(test_hysteresis_spare_boundary_last_joiner),
        cmocka_unit_test(test_hysteresis_load_boundary_random),
        cmocka_unit_test(test_hysteresis_load_boundary_last_joiner),
        cmocka_unit_test(test_hysteresis_wide_swing),
        cmocka_unit_test(test_ceiling_values),
        cmocka_unit_test(test_never_plans_beyond_ceiling),
        cmocka_unit_test(test_ramp_stops_at_ceiling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
