/* test_aws_op.c — src/ivs/aws_op.c: every operation of the AWS provider
 * calls its caller back exactly once, with an error, when there is no
 * memory for the operation itself (op_new fails). calloc is wrapped at
 * link time (-Wl,--wrap=calloc, Makefile) so that it fails while the test
 * says so; no IVS client is needed, as no call is made. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "config/config.h"
#include "ivs/provider.h"

#define ARN "arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234"
#define ARN2 "arn:aws:ivs:us-east-1:123456789012:stage/efghEFGH5678"

static bool calloc_fails;
void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size)
{
    return calloc_fails ? NULL : __real_calloc(n, size);
}

/* What the callbacks heard: how often, and the last error. */
struct heard {
    int calls;
    bool had_result;                 /* a stage, list or text came with it */
    char error[200];
};

static void heard(struct heard *h, const char *error, bool result)
{
    h->calls++;
    h->had_result |= result;
    snprintf(h->error, sizeof h->error, "%s", error ? error : "");
}
static void on_done(void *arg, const char *error) { heard(arg, error, false); }
static void on_stage(void *arg, const struct provider_stage *s, const char *error)
{
    heard(arg, error, s != NULL);
}
static void on_list(void *arg, const struct provider_stage *s, size_t n, const char *error)
{
    heard(arg, error, s != NULL || n);
}
static void on_text(void *arg, const char *text, const char *error) { heard(arg, error, text != NULL); }
static void on_page(void *arg, const struct participant_page *page, const char *error)
{
    heard(arg, error, page != NULL);
}
static void on_replicas(void *arg, const struct provider_replica *r, size_t n, const char *error)
{
    heard(arg, error, r != NULL || n);
}

#define OPS 12

/* Starts every operation of p, operation i hearing into h[i]. */
static void start_all(struct stage_provider *p, struct heard *h)
{
    const struct stage_provider_ops *o = p->ops;
    const struct participant_query q = {.arn = ARN, .max_results = 100};
    o->prepare(p, "pem", on_text, &h[0]);
    o->create_stage(p, "name", NULL, on_stage, &h[1]);
    o->get_stage(p, ARN, on_stage, &h[2]);
    o->list_stages(p, on_list, &h[3]);
    o->rename_stage(p, ARN, "name", on_done, &h[4]);
    o->delete_stage(p, ARN, on_done, &h[5]);
    o->find_publisher(p, ARN, on_text, &h[6]);
    o->start_replication(p, ARN, ARN2, on_text, &h[7]);
    o->stop_replication(p, ARN, ARN2, "p1", on_done, &h[8]);
    o->list_replicas(p, ARN, "p1", on_replicas, &h[9]);
    o->list_participants(p, &q, on_page, &h[10]);
    o->disconnect_participant(p, ARN, "p1", NULL, on_done, &h[11]);
}

static void test_no_memory_for_the_op(void **state)
{
    (void)state;
    struct config cfg;
    memset(&cfg, 0, sizeof cfg);
    struct event_base *base = event_base_new();
    assert_non_null(base);
    struct stage_provider *p = aws_provider_new(base, &cfg, NULL);
    assert_non_null(p);
    struct heard h[OPS];
    memset(h, 0, sizeof h);
    calloc_fails = true;
    start_all(p, h);
    calloc_fails = false;
    for (int turn = 0; turn < 3; turn++)    /* nothing more comes later */
        event_base_loop(base, EVLOOP_NONBLOCK);
    for (int i = 0; i < OPS; i++) {
        if (h[i].calls != 1 || strcmp(h[i].error, "out of memory") != 0 || h[i].had_result)
            print_error("operation %d: %d calls, error \"%s\"\n", i, h[i].calls, h[i].error);
        assert_int_equal(h[i].calls, 1);
        assert_string_equal(h[i].error, "out of memory");
        assert_false(h[i].had_result);
    }
    p->ops->free(p);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_memory_for_the_op),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
