/* test_store_decode.c — unit tests for src/store/decode.c: each reply
 * layout of the function library (store/lua/usher.lua) and of the plain
 * commands, built by hand as hiredis replies, decoded into the store's C
 * answers; refusals by their first word; and replies of the wrong shape,
 * which must give STORE_FAILED and never a half-filled answer. Also the
 * stage state model's JSON (stages/state.c), which the stats decoding uses.
 * No Redis here: the e2e tests run the library against a real one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "stages/state.h"
#include "store/decode.h"

#define ARN "arn:aws:ivs:ap-northeast-1:123456789012:stage/sWyAydfRqqF8"
#define ARN2 "arn:aws:ivs:ap-northeast-1:123456789012:stage/Other1234567"

/* ---- building replies ------------------------------------------------- */

static redisReply *text(const char *s)
{
    redisReply *r = calloc(1, sizeof *r);
    r->type = REDIS_REPLY_STRING;
    r->str = (char *)s;
    r->len = strlen(s);
    return r;
}

static redisReply *num(long long n)
{
    redisReply *r = calloc(1, sizeof *r);
    r->type = REDIS_REPLY_INTEGER;
    r->integer = n;
    return r;
}

static redisReply *nil(void)
{
    redisReply *r = calloc(1, sizeof *r);
    r->type = REDIS_REPLY_NIL;
    return r;
}

static redisReply *error(const char *s)
{
    redisReply *r = text(s);
    r->type = REDIS_REPLY_ERROR;
    return r;
}

/* An array of n elements (given as arguments), owning them. */
static redisReply *array(size_t n, ...)
{
    redisReply *r = calloc(1, sizeof *r);
    r->type = REDIS_REPLY_ARRAY;
    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof *r->element);
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        r->element[i] = va_arg(ap, redisReply *);
    va_end(ap);
    return r;
}

static void drop(redisReply *r)
{
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        drop(r->element[i]);
    if (r->type == REDIS_REPLY_ARRAY)
        free(r->element);
    free(r);
}

/* ---- errors ------------------------------------------------------------- */

static void test_error_words(void **state)
{
    (void)state;
    static const struct { const char *str; enum store_error want; } errors[] = {
        {"NOT_LIVE the publisher is not live", STORE_NOT_LIVE},
        {"NO_STAGE no such stage", STORE_NO_STAGE},
        {"STAGE_FULL no stage has room script: usher_seat, on @user_function:150.", STORE_STAGE_FULL},
        {"NO_ROOM_YET a stage is opening script: usher_seat, on @user_function:160.", STORE_NO_ROOM_YET},
        {"STAGE_LIMIT no more stages allowed", STORE_STAGE_LIMIT},
        {"NOT_LEADER the scaler lease is held elsewhere", STORE_NOT_LEADER},
        {"IS_MASTER the master stage is never removed", STORE_IS_MASTER},
        {"NOT_EMPTY viewers are still seated there", STORE_NOT_EMPTY},
        {"ERR NOT_LIVE the publisher is not live", STORE_NOT_LIVE},
        {"ERR Function not found", STORE_FAILED},
        {"LOADING Redis is loading the dataset in memory", STORE_FAILED},
        {"ERR user_function:3: attempt to compare nil with number", STORE_FAILED},
        {"", STORE_FAILED},
        {"NOT_LIVEX something", STORE_FAILED},        /* the word alone is no refusal */
        {"XNOT_LIVE something", STORE_FAILED},
    };
    int failures = 0;
    for (size_t i = 0; i < sizeof errors / sizeof *errors; i++) {
        redisReply *r = error(errors[i].str);
        enum store_error got = decode_error(r);
        if (got != errors[i].want) {
            print_error("decode_error(\"%s\"): want %d, got %d\n", errors[i].str, errors[i].want, got);
            failures++;
        }
        drop(r);
    }
    assert_int_equal(failures, 0);
    /* Not errors at all, even when the text looks like one. */
    redisReply *t = text("NOT_LIVE the publisher is not live");
    assert_int_equal(decode_error(t), STORE_OK);
    assert_int_equal(decode_error(NULL), STORE_OK);
    drop(t);
}

/* ---- viewers -------------------------------------------------------------- */

static void test_seat(void **state)
{
    (void)state;
    struct seat seat;
    redisReply *r = array(5, text(ARN), text("pid-1"), num(7), num(1), text(""));
    assert_int_equal(decode_seat(r, &seat), STORE_OK);
    assert_string_equal(seat.stage_arn, ARN);
    assert_string_equal(seat.participant_id, "pid-1");
    assert_int_equal(seat.stage_viewers, 7);
    assert_true(seat.is_new);
    assert_string_equal(seat.moved_from, "");
    drop(r);

    r = array(5, text(ARN), text("pid-1"), num(3), num(0), text(ARN2));
    assert_int_equal(decode_seat(r, &seat), STORE_OK);
    assert_false(seat.is_new);
    assert_string_equal(seat.moved_from, ARN2);
    drop(r);

    /* Wrong shapes: too short, a count that is text, a nil ARN, no array. */
    redisReply *bad[] = {
        array(4, text(ARN), text("p"), num(1), num(1)),
        array(5, text(ARN), text("p"), text("many"), num(1), text("")),
        array(5, nil(), text("p"), num(1), num(1), text("")),
        text(ARN),
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(decode_seat(bad[i], &seat), STORE_FAILED);
        drop(bad[i]);
    }
}

static void test_heartbeat(void **state)
{
    (void)state;
    struct heartbeat hb;
    redisReply *r = array(1, num(1));
    assert_int_equal(decode_heartbeat(r, &hb), STORE_OK);
    assert_false(hb.moved);
    drop(r);

    r = array(1, num(0));
    assert_int_equal(decode_heartbeat(r, &hb), STORE_NO_SEAT);
    drop(r);

    r = array(1, num(3));
    assert_int_equal(decode_heartbeat(r, &hb), STORE_NO_STAGE);
    drop(r);

    r = array(3, num(2), text(ARN2), text("pid-9"));
    assert_int_equal(decode_heartbeat(r, &hb), STORE_OK);
    assert_true(hb.moved);
    assert_string_equal(hb.stage_arn, ARN2);
    assert_string_equal(hb.participant_id, "pid-9");
    drop(r);

    /* Since library version 10 the outcomes but a move are plain numbers. */
    r = num(1);
    assert_int_equal(decode_heartbeat(r, &hb), STORE_OK);
    assert_false(hb.moved);
    drop(r);
    r = num(0);
    assert_int_equal(decode_heartbeat(r, &hb), STORE_NO_SEAT);
    drop(r);
    r = num(3);
    assert_int_equal(decode_heartbeat(r, &hb), STORE_NO_STAGE);
    drop(r);

    redisReply *bad[] = {array(1, num(2)), array(1, num(4)), array(0), num(2), num(4), nil(),
                         text("x"), array(1, text("x")), array(1, array(1, num(1)))};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(decode_heartbeat(bad[i], &hb), STORE_FAILED);
        drop(bad[i]);
    }
}

static void test_text_and_number(void **state)
{
    (void)state;
    const char *t = NULL;
    long long n = -1;
    redisReply *r = text(ARN);
    assert_int_equal(decode_text(r, &t), STORE_OK);
    assert_string_equal(t, ARN);
    drop(r);
    r = nil();
    assert_int_equal(decode_text(r, &t), STORE_OK);
    assert_string_equal(t, "");
    assert_int_equal(decode_number(r, &n), STORE_OK);
    assert_int_equal(n, 0);
    drop(r);
    r = text("1729356123456");
    assert_int_equal(decode_number(r, &n), STORE_OK);
    assert_true(n == 1729356123456LL);
    drop(r);
    r = num(-3);
    assert_int_equal(decode_number(r, &n), STORE_OK);
    assert_int_equal(n, -3);
    assert_int_equal(decode_text(r, &t), STORE_FAILED);
    drop(r);
    r = text("12abc");
    assert_int_equal(decode_number(r, &n), STORE_FAILED);
    drop(r);
    r = array(0);
    assert_int_equal(decode_number(r, &n), STORE_FAILED);
    assert_int_equal(decode_text(r, &t), STORE_FAILED);
    drop(r);
}

static void test_joined(void **state)
{
    (void)state;
    long long joined = 0;
    redisReply *r = text("{\"timestamp\":1700000005000,\"participantId\":\"p\",\"joinedAt\":1700000000000}");
    assert_int_equal(decode_joined(r, &joined), STORE_OK);
    assert_true(joined == 1700000000000LL);
    drop(r);
    r = nil();
    assert_int_equal(decode_joined(r, &joined), STORE_NO_SEAT);
    drop(r);
    r = text("{\"timestamp\":1}");
    assert_int_equal(decode_joined(r, &joined), STORE_NO_SEAT);
    drop(r);
    r = text("not json");
    assert_int_equal(decode_joined(r, &joined), STORE_NO_SEAT);
    drop(r);
    r = num(5);
    assert_int_equal(decode_joined(r, &joined), STORE_FAILED);
    drop(r);
}

static void test_viewer_list(void **state)
{
    (void)state;
    struct viewer_list list;
    redisReply *r = array(5, num(1), num(10), num(8), text("u2"), text("u1"));
    assert_int_equal(decode_viewer_list(r, &list), STORE_OK);
    assert_int_equal(list.total, 10);
    assert_int_equal(list.active, 8);
    assert_int_equal(list.count, 2);
    assert_string_equal(list.user_ids[0], "u2");
    assert_string_equal(list.user_ids[1], "u1");
    viewer_list_clear(&list);
    drop(r);

    r = array(3, num(1), num(0), num(0));
    assert_int_equal(decode_viewer_list(r, &list), STORE_OK);
    assert_int_equal(list.count, 0);
    viewer_list_clear(&list);
    drop(r);

    r = array(3, num(0), num(0), num(0));
    assert_int_equal(decode_viewer_list(r, &list), STORE_NO_STAGE);
    drop(r);
    r = array(4, num(1), num(1), num(1), num(7));           /* an id that is no text */
    assert_int_equal(decode_viewer_list(r, &list), STORE_FAILED);
    assert_null(list.user_ids);
    drop(r);
    r = array(2, num(1), num(1));
    assert_int_equal(decode_viewer_list(r, &list), STORE_FAILED);
    drop(r);
}

static void test_live_updated_info(void **state)
{
    (void)state;
    long long live = -1;
    redisReply *r = text("live");
    assert_int_equal(decode_live(r, &live), STORE_OK);
    assert_int_equal(live, 1);
    drop(r);
    r = text("offline");
    assert_int_equal(decode_live(r, &live), STORE_OK);
    assert_int_equal(live, 0);
    drop(r);
    r = nil();
    assert_int_equal(decode_live(r, &live), STORE_OK);
    assert_int_equal(live, 0);
    drop(r);

    r = num(1);
    assert_int_equal(decode_updated(r), STORE_OK);
    drop(r);
    r = num(0);
    assert_int_equal(decode_updated(r), STORE_NO_STAGE);
    drop(r);
    r = array(0);
    assert_int_equal(decode_updated(r), STORE_FAILED);
    drop(r);

    struct stage_info info;
    r = text("{\"name\":\"ops\",\"arn\":\"" ARN "\",\"autoScaled\":false,\"createdAt\":\"t\"}");
    assert_int_equal(decode_stage_info(r, &info), STORE_OK);
    assert_string_equal(info.name, "ops");
    assert_string_equal(info.arn, ARN);
    assert_false(info.auto_scaled);
    stage_info_clear(&info);
    drop(r);
    r = text("not json");
    assert_int_equal(decode_stage_info(r, &info), STORE_FAILED);
    drop(r);
}

/* ---- scaler and stages --------------------------------------------------- */

static void test_lease_and_removed(void **state)
{
    (void)state;
    struct lease lease;
    redisReply *r = array(3, num(2), num(5), num(-1));
    assert_int_equal(decode_lease(r, &lease), STORE_OK);
    assert_true(lease.held && lease.taken);
    assert_int_equal(lease.epoch, 5);
    assert_int_equal(lease.since_change_ms, -1);
    drop(r);
    r = array(3, num(1), num(5), num(1200));
    assert_int_equal(decode_lease(r, &lease), STORE_OK);
    assert_true(lease.held && !lease.taken);
    assert_int_equal(lease.since_change_ms, 1200);
    drop(r);
    r = array(3, num(0), num(5), num(0));
    assert_int_equal(decode_lease(r, &lease), STORE_OK);
    assert_false(lease.held);
    assert_int_equal(lease.since_change_ms, 0);
    drop(r);
    r = array(3, num(3), num(5), num(0));
    assert_int_equal(decode_lease(r, &lease), STORE_FAILED);
    drop(r);
    /* The age of the last change: missing, or below -1. */
    r = array(2, num(1), num(5));
    assert_int_equal(decode_lease(r, &lease), STORE_FAILED);
    drop(r);
    r = array(3, num(1), num(5), num(-2));
    assert_int_equal(decode_lease(r, &lease), STORE_FAILED);
    drop(r);

    struct stage_removed removed;
    r = array(2, num(4), text(ARN2));
    assert_int_equal(decode_stage_removed(r, &removed), STORE_OK);
    assert_int_equal(removed.unseated, 4);
    assert_string_equal(removed.parent, ARN2);
    drop(r);
    r = array(1, num(4));
    assert_int_equal(decode_stage_removed(r, &removed), STORE_FAILED);
    drop(r);
}

#define INFO1 "{\"name\":\"master-stage\",\"arn\":\"" ARN "\",\"autoScaled\":false,\"createdAt\":\"c\"}"
#define INFO2 "{\"name\":\"auto-1\",\"arn\":\"" ARN2 "\",\"autoScaled\":true,\"createdAt\":\"x\"}"

/* A stats reply of the first n (1 or 2) of two stages with these records and states. */
static redisReply *two_stages(size_t n, const char *info1, const char *state1, const char *info2)
{
    redisReply *r = array(14, text("3"), text("live"), text(ARN), num(0),
                          text(ARN), text("1"), text(info1), text("open"), text(state1),
                          text(ARN2), text("2"), text(info2), text("open"), text(""));
    for (; r->elements > 4 + 5 * n; r->elements--)
        drop(r->element[r->elements - 1]);
    return r;
}

/* The stage record cache (store/records.c): a record is parsed once while
 * its text is the same, parsed again when it changes, and a view keeps its
 * documents after the cache moved on or was freed. */
static void test_stats_records(void **state)
{
    (void)state;
    struct stage_records *records = stage_records_new();
    struct stats_view a, b, c;
    redisReply *r1 = two_stages(2, INFO1, "{\"replication\":\"failed\",\"attempts\":1}", INFO2);
    redisReply *r2 = two_stages(2, INFO1, "{\"replication\":\"running\",\"attempts\":1}", INFO2);
    redisReply *r3 = two_stages(1, "{\"name\":\"renamed\",\"arn\":\"" ARN "\"}", "", INFO2);
    assert_int_equal(decode_stats(r1, records, &a), STORE_OK);
    assert_int_equal(decode_stats(r2, records, &b), STORE_OK);
    assert_ptr_equal(a.stages[0].info.doc, b.stages[0].info.doc);     /* not parsed again */
    assert_ptr_equal(a.stages[1].info.doc, b.stages[1].info.doc);
    assert_int_equal(a.stages[0].state.replication, REPL_FAILED);     /* the state changed */
    assert_int_equal(b.stages[0].state.replication, REPL_RUNNING);
    assert_string_equal(b.stages[1].info.name, "auto-1");
    stats_view_clear(&a);
    assert_int_equal(decode_stats(r3, records, &c), STORE_OK);
    assert_int_equal(c.count, 1);
    assert_string_equal(c.stages[0].info.name, "renamed");
    assert_int_equal(c.stages[0].state.replication, REPL_NONE);
    stage_records_free(records);
    assert_string_equal(b.stages[0].info.name, "master-stage");        /* b holds its own */
    assert_string_equal(b.stages[1].info.name, "auto-1");
    stats_view_clear(&b);
    stats_view_clear(&c);
    drop(r1);
    drop(r2);
    drop(r3);
}

static void test_stats(void **state)
{
    (void)state;
    struct stats_view v;
    redisReply *r = array(14, text("12"), text("live"), text(ARN), num(3),
        text(ARN), text("10"),
        text("{\"name\":\"master-stage\",\"arn\":\"" ARN "\",\"autoScaled\":false,\"createdAt\":\"2026-01-01T00:00:00.000Z\"}"),
        text("open"), text(""),
        text(ARN2), text("2"),
        text("{\"name\":\"auto-1\",\"arn\":\"" ARN2 "\",\"autoScaled\":true,\"createdAt\":\"x\","
             "\"parentStage\":\"" ARN "\"}"),
        text("draining"),
        text("{\"replication\":\"running\",\"attempts\":2,\"drainingSince\":1700000000000}"));
    assert_int_equal(decode_stats(r, NULL, &v), STORE_OK);
    assert_int_equal(v.total_viewers, 12);
    assert_true(v.publisher_live);
    assert_string_equal(v.master_arn, ARN);
    assert_int_equal(v.waiting, 3);
    assert_int_equal(v.count, 2);
    assert_true(v.stages[0].master);
    assert_int_equal(v.stages[0].viewers, 10);
    assert_int_equal(v.stages[0].mode, MODE_OPEN);
    assert_int_equal(v.stages[0].state.replication, REPL_NONE);
    assert_string_equal(v.stages[0].info.name, "master-stage");
    assert_null(v.stages[0].info.parent);
    assert_false(v.stages[1].master);
    assert_int_equal(v.stages[1].mode, MODE_DRAINING);
    assert_int_equal(v.stages[1].state.replication, REPL_RUNNING);
    assert_int_equal(v.stages[1].state.attempts, 2);
    assert_true(v.stages[1].state.draining_since_ms == 1700000000000LL);
    assert_true(v.stages[1].info.auto_scaled);
    assert_string_equal(v.stages[1].info.parent, ARN);
    stats_view_clear(&v);
    drop(r);

    /* No stages, publisher offline, no master. */
    r = array(4, text("0"), text("offline"), text(""), num(0));
    assert_int_equal(decode_stats(r, NULL, &v), STORE_OK);
    assert_false(v.publisher_live);
    assert_int_equal(v.count, 0);
    assert_string_equal(v.master_arn, "");
    stats_view_clear(&v);
    drop(r);

    /* A stage cut short, a count that is no number. */
    r = array(8, text("0"), text("live"), text(""), num(0), text(ARN), text("1"), text(""), text("open"));
    assert_int_equal(decode_stats(r, NULL, &v), STORE_FAILED);
    drop(r);
    r = array(9, text("0"), text("live"), text(""), num(0), text(ARN), text("lots"), text(""), text("open"), text(""));
    assert_int_equal(decode_stats(r, NULL, &v), STORE_FAILED);
    assert_null(v.stages);
    drop(r);
}

static void test_check(void **state)
{
    (void)state;
    struct state_check c;
    redisReply *r = array(5, text("abc"), text(ARN), text("live"), text("stages held a string, moved"),
                          text("total_viewers held x, set to 0"));
    assert_int_equal(decode_check(r, &c), STORE_OK);
    assert_string_equal(c.state_id, "abc");
    assert_string_equal(c.master_arn, ARN);
    assert_string_equal(c.publisher, "live");
    assert_int_equal(c.nproblems, 2);
    assert_string_equal(c.problems[1], "total_viewers held x, set to 0");
    state_check_clear(&c);
    drop(r);
    r = array(3, text(""), text(""), text(""));
    assert_int_equal(decode_check(r, &c), STORE_OK);
    assert_int_equal(c.nproblems, 0);
    state_check_clear(&c);
    drop(r);
    redisReply *bad[] = {array(2, text("a"), text("b")), array(3, text("a"), text("b"), num(1)), num(1)};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(decode_check(bad[i], &c), STORE_FAILED);
        drop(bad[i]);
    }
}

static void test_events(void **state)
{
    (void)state;
    struct stage_events ev;
    redisReply *r = array(2,
        array(2, text("1-0"), array(8, text("type"), text("drain"), text("stageArn"), text(ARN),
                                    text("detail"), text(""), text("at"), text("2026"))),
        array(2, text("0-1"), array(2, text("type"), text("created"))));
    assert_int_equal(decode_events(r, &ev), STORE_OK);
    assert_int_equal(ev.count, 2);
    assert_string_equal(ev.items[0].id, "1-0");
    assert_string_equal(ev.items[0].type, "drain");
    assert_string_equal(ev.items[0].stage_arn, ARN);
    assert_string_equal(ev.items[1].stage_arn, "");        /* missing field */
    stage_events_clear(&ev);
    drop(r);
    r = array(1, array(1, text("1-0")));
    assert_int_equal(decode_events(r, &ev), STORE_FAILED);
    drop(r);
}

/* ---- the stage state model --------------------------------------------- */

static void test_state_json(void **state)
{
    (void)state;
    struct stage_state st = {.replication = REPL_FAILED, .attempts = 3, .retry_at_ms = 1234,
                             .error = "throttled"};
    char *json = stage_state_json(&st);
    assert_string_equal(json, "{\"replication\":\"failed\",\"attempts\":3,\"retryAt\":1234,\"error\":\"throttled\"}");
    struct stage_state back;
    stage_state_parse(json, &back);
    assert_int_equal(back.replication, REPL_FAILED);
    assert_int_equal(back.attempts, 3);
    assert_int_equal(back.retry_at_ms, 1234);
    assert_int_equal(back.draining_since_ms, 0);
    assert_string_equal(back.error, "throttled");
    free(json);
    stage_state_parse("", &back);
    assert_int_equal(back.replication, REPL_NONE);
    stage_state_parse("[1]", &back);
    assert_int_equal(back.replication, REPL_NONE);
    for (int m = MODE_OPEN; m <= MODE_DRAINING; m++)
        assert_int_equal(stage_mode_of(stage_mode_name((enum stage_mode)m)), m);
    assert_int_equal(stage_mode_of(NULL), MODE_OPEN);
    assert_int_equal(stage_mode_of("bogus"), MODE_OPEN);
    assert_string_equal(replication_name(REPL_NONE), "none");
    /* A running replication names the participant it copies, and since when. */
    struct stage_state run = {.replication = REPL_RUNNING, .participant = "pub-1", .running_since_ms = 5678};
    json = stage_state_json(&run);
    assert_string_equal(json, "{\"replication\":\"running\",\"attempts\":0,\"participant\":\"pub-1\","
                              "\"runningSince\":5678}");
    stage_state_parse(json, &back);
    assert_string_equal(back.participant, "pub-1");
    assert_int_equal(back.running_since_ms, 5678);
    free(json);
    stage_state_parse("{\"replication\":\"running\"}", &back);
    assert_string_equal(back.participant, "");
    assert_int_equal(back.running_since_ms, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_words),
        cmocka_unit_test(test_seat),
        cmocka_unit_test(test_heartbeat),
        cmocka_unit_test(test_text_and_number),
        cmocka_unit_test(test_joined),
        cmocka_unit_test(test_viewer_list),
        cmocka_unit_test(test_live_updated_info),
        cmocka_unit_test(test_lease_and_removed),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_stats_records),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_state_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
