/* local_provider.c — stages without AWS: the default, for development,
 * tests and benchmarks. A stage is an ARN of IVS's form,
 * arn:aws:ivs:{region}:{account}:stage/{12 random letters and digits}; the
 * caller records it in Redis. Replications are kept in a small list, as the
 * record of what IVS would be doing. LOCAL_REPLICATION_FAILURES makes the
 * first N replication starts fail, so the retry path can be tested.
 *
 * Every answer comes on a later loop turn, as a real provider's would. */
#include "ivs/provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>

#include "config/config.h"
#include "util/log.h"

#define STAGE_ID_LEN 12
#define ARN_MAX 256

struct replication {
    struct replication *next;
    char source[ARN_MAX], dest[ARN_MAX];
};

struct local_provider {
    struct stage_provider base;      /* first: the interface */
    struct replication *replications;
    long failures_left;
};

/* One deferred answer, for any of the operations. */
struct answer {
    provider_stage_fn stage_done;
    provider_done_fn done;
    void *arg;
    char arn[ARN_MAX];
    const char *error;
};

static void deliver(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct answer *a = arg;
    if (a->stage_done)
        a->stage_done(a->arg, a->error ? NULL : a->arn, a->error);
    else
        a->done(a->arg, a->error);
    free(a);
}

static void answer_later(struct stage_provider *p, struct answer *a)
{
    struct timeval now = {0, 0};
    if (event_base_once(p->base, -1, EV_TIMEOUT, deliver, a, &now) != 0) {
        a->error = "cannot schedule the answer";
        deliver(-1, 0, a);
    }
}

static struct answer *answer_new(provider_stage_fn stage_done, provider_done_fn done, void *arg)
{
    struct answer *a = calloc(1, sizeof *a);
    if (!a) {
        if (stage_done)
            stage_done(arg, NULL, "out of memory");
        else
            done(arg, "out of memory");
        return NULL;
    }
    a->stage_done = stage_done;
    a->done = done;
    a->arg = arg;
    return a;
}

static int random_stage_id(char *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char bytes[STAGE_ID_LEN];
    if (RAND_bytes(bytes, sizeof bytes) != 1)
        return -1;
    for (int i = 0; i < STAGE_ID_LEN; i++)
        out[i] = alphabet[bytes[i] % (sizeof alphabet - 1)];
    out[STAGE_ID_LEN] = '\0';
    return 0;
}

/* Local stages live only in usher's records: name and tags are kept there
 * (stage_info), not here. */
static void local_create(struct stage_provider *p, const char *name, const json_t *tags,
                         provider_stage_fn done, void *arg)
{
    (void)name, (void)tags;
    struct answer *a = answer_new(done, NULL, arg);
    if (!a)
        return;
    char id[STAGE_ID_LEN + 1];
    if (random_stage_id(id) != 0)
        a->error = "no random bytes for a stage id";
    else
        snprintf(a->arn, sizeof a->arn, "arn:aws:ivs:%s:%s:stage/%s",
                 p->cfg->aws_region, p->cfg->aws_account_id, id);
    answer_later(p, a);
}

static void local_delete(struct stage_provider *p, const char *arn,
                         provider_done_fn done, void *arg)
{
    (void)arn;
    struct answer *a = answer_new(NULL, done, arg);
    if (a)
        answer_later(p, a);
}

static void local_start_replication(struct stage_provider *p, const char *source,
                                    const char *dest, provider_done_fn done, void *arg)
{
    struct local_provider *lp = (struct local_provider *)p;
    struct answer *a = answer_new(NULL, done, arg);
    if (!a)
        return;
    struct replication *r = NULL;
    if (lp->failures_left > 0) {
        lp->failures_left--;
        a->error = "replication refused (LOCAL_REPLICATION_FAILURES)";
    } else if (!(r = calloc(1, sizeof *r))) {
        a->error = "out of memory";
    } else {
        snprintf(r->source, sizeof r->source, "%s", source);
        snprintf(r->dest, sizeof r->dest, "%s", dest);
        r->next = lp->replications;
        lp->replications = r;
        log_debug("local provider: replicating %s -> %s", source, dest);
    }
    answer_later(p, a);
}

static void local_stop_replication(struct stage_provider *p, const char *source,
                                   const char *dest, provider_done_fn done, void *arg)
{
    struct local_provider *lp = (struct local_provider *)p;
    for (struct replication **r = &lp->replications; *r; r = &(*r)->next) {
        if (strcmp((*r)->source, source) == 0 && strcmp((*r)->dest, dest) == 0) {
            struct replication *gone = *r;
            *r = gone->next;
            free(gone);
            break;
        }
    }
    struct answer *a = answer_new(NULL, done, arg);
    if (a)
        answer_later(p, a);
}

static void local_free(struct stage_provider *p)
{
    struct local_provider *lp = (struct local_provider *)p;
    while (lp->replications) {
        struct replication *next = lp->replications->next;
        free(lp->replications);
        lp->replications = next;
    }
    free(lp);
}

static const struct stage_provider_ops local_ops = {
    .name = "local",
    .create_stage = local_create,
    .delete_stage = local_delete,
    .start_replication = local_start_replication,
    .stop_replication = local_stop_replication,
    .free = local_free,
};

struct stage_provider *local_provider_new(struct event_base *base,
                                          const struct config *cfg)
{
    struct local_provider *lp = calloc(1, sizeof *lp);
    if (!lp)
        return NULL;
    lp->base.ops = &local_ops;
    lp->base.cfg = cfg;
    lp->base.base = base;
    lp->failures_left = cfg->local_replication_failures;
    return &lp->base;
}
