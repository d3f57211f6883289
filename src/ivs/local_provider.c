/* local_provider.c — stages without AWS: the default, for development,
 * tests and benchmarks. A stage is an ARN of IVS's form,
 * arn:aws:ivs:{region}:{account}:stage/{12 random letters and digits}; the
 * caller records it in Redis. Replications are kept in a small list, as the
 * record of what IVS would be doing. LOCAL_REPLICATION_FAILURES makes the
 * first N replication starts fail, so the retry path can be tested.
 *
 * It also remembers the stages it made (and did not delete), so that
 * usher can record them again when Redis loses its data (list_stages).
 * That memory is this process's only: a restarted process, or another
 * process, does not know them (with the local provider they exist nowhere
 * else); find_master is left out, the master's ARN is kept by
 * stages/recovery.c.
 *
 * Every answer comes on a later loop turn, as a real provider's would. */
#include "ivs/provider.h"

#include <stdbool.h>
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

struct made {
    struct made *next;
    char arn[ARN_MAX], name[ARN_MAX];
};

struct local_provider {
    struct stage_provider base;      /* first: the interface */
    struct replication *replications;
    struct made *made;               /* stages made and not deleted */
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
    (void)tags;
    struct local_provider *lp = (struct local_provider *)p;
    struct answer *a = answer_new(done, NULL, arg);
    if (!a)
        return;
    char id[STAGE_ID_LEN + 1];
    struct made *m = NULL;
    if (random_stage_id(id) != 0) {
        a->error = "no random bytes for a stage id";
    } else if (!(m = calloc(1, sizeof *m))) {
        a->error = "out of memory";
    } else {
        snprintf(a->arn, sizeof a->arn, "arn:aws:ivs:%s:%s:stage/%s",
                 p->cfg->aws_region, p->cfg->aws_account_id, id);
        snprintf(m->arn, sizeof m->arn, "%s", a->arn);
        snprintf(m->name, sizeof m->name, "%s", name ? name : "");
        m->next = lp->made;
        lp->made = m;
    }
    answer_later(p, a);
}

static void local_delete(struct stage_provider *p, const char *arn,
                         provider_done_fn done, void *arg)
{
    struct local_provider *lp = (struct local_provider *)p;
    for (struct made **m = &lp->made; *m; m = &(*m)->next) {
        if (strcmp((*m)->arn, arn) == 0) {
            struct made *gone = *m;
            *m = gone->next;
            free(gone);
            break;
        }
    }
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

/* The list as it is now, delivered on a later loop turn. */
struct listing {
    struct local_provider *lp;
    provider_list_fn done;
    void *arg;
    size_t n;
    struct provider_stage *stages;
};

static const char *replication_source(const struct local_provider *lp, const char *dest)
{
    for (const struct replication *r = lp->replications; r; r = r->next)
        if (strcmp(r->dest, dest) == 0)
            return r->source;
    return NULL;
}

static void listing_free(struct listing *l)
{
    for (size_t i = 0; l->stages && i < l->n; i++)
        free((char *)l->stages[i].arn), free((char *)l->stages[i].name);
    free(l->stages);
    free(l);
}

static void deliver_listing(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct listing *l = arg;
    /* Sources are looked up now: a replication may have stopped meanwhile. */
    for (size_t i = 0; i < l->n; i++)
        l->stages[i].replicating_from = replication_source(l->lp, l->stages[i].arn);
    l->done(l->arg, l->stages, l->n, NULL);
    listing_free(l);
}

static void local_list_stages(struct stage_provider *p, provider_list_fn done, void *arg)
{
    struct local_provider *lp = (struct local_provider *)p;
    struct listing *l = calloc(1, sizeof *l);
    size_t n = 0;
    for (const struct made *m = lp->made; m; m = m->next)
        n++;
    if (l)
        l->stages = calloc(n ? n : 1, sizeof *l->stages);
    for (const struct made *m = lp->made; l && l->stages && m; m = m->next, l->n++) {
        l->stages[l->n].arn = strdup(m->arn);
        l->stages[l->n].name = strdup(m->name);
    }
    bool whole = l && l->stages;
    for (size_t i = 0; whole && i < l->n; i++)
        whole = l->stages[i].arn && l->stages[i].name;
    struct timeval now = {0, 0};
    if (whole) {
        *l = (struct listing){lp, done, arg, l->n, l->stages};
        if (event_base_once(p->base, -1, EV_TIMEOUT, deliver_listing, l, &now) == 0)
            return;
    }
    if (l)
        listing_free(l);
    done(arg, NULL, 0, "out of memory");
}

static void local_free(struct stage_provider *p)
{
    struct local_provider *lp = (struct local_provider *)p;
    while (lp->made) {
        struct made *next = lp->made->next;
        free(lp->made);
        lp->made = next;
    }
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
    .list_stages = local_list_stages,
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
