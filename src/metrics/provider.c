/* provider.c — a stage provider that counts: it wraps another (local or
 * AWS) and adds each operation's outcome to usher_provider_calls_total,
 * under the IVS operation's name. Outcomes come from the provider's error
 * text: one naming throttling is "throttled", one naming a quota "quota"
 * (as the AWS client's messages do, aws/client.h), any other "error". */
#include "metrics/provider.h"

#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"

struct metered {
    struct stage_provider base;      /* first: the provider callers see */
    struct stage_provider_ops ops;
    struct stage_provider *inner;
    struct metrics *metrics;
};

struct metered_call {
    struct metered *p;
    const char *operation;
    provider_stage_fn stage_done;    /* one of the two */
    provider_done_fn done;
    void *arg;
};

static const char *outcome_of(const char *error)
{
    if (!error)
        return "ok";
    if (strcasestr(error, "throttl") || strcasestr(error, "too many"))
        return "throttled";
    if (strcasestr(error, "quota"))
        return "quota";
    return "error";
}

static struct metered_call *call_new(struct stage_provider *p, const char *operation,
                                     provider_stage_fn stage_done, provider_done_fn done, void *arg)
{
    struct metered_call *c = malloc(sizeof *c);
    if (c)
        *c = (struct metered_call){(struct metered *)p, operation, stage_done, done, arg};
    return c;
}

static void stage_answered(void *arg, const char *arn, const char *error)
{
    struct metered_call c = *(struct metered_call *)arg;
    free(arg);
    metrics_provider(c.p->metrics, c.operation, outcome_of(error));
    c.stage_done(c.arg, arn, error);
}

static void answered(void *arg, const char *error)
{
    struct metered_call c = *(struct metered_call *)arg;
    free(arg);
    metrics_provider(c.p->metrics, c.operation, outcome_of(error));
    c.done(c.arg, error);
}

static void create_stage(struct stage_provider *p, const char *name, const json_t *tags,
                         provider_stage_fn done, void *arg)
{
    struct metered_call *c = call_new(p, "CreateStage", done, NULL, arg);
    struct stage_provider *in = ((struct metered *)p)->inner;
    if (c)
        in->ops->create_stage(in, name, tags, stage_answered, c);
    else
        in->ops->create_stage(in, name, tags, done, arg);
}

/* The three operations that answer with provider_done_fn. */
#define METERED(fname, operation, ...)                                        \
    {                                                                         \
        struct metered_call *c = call_new(p, operation, NULL, done, arg);     \
        struct stage_provider *in = ((struct metered *)p)->inner;            \
        if (c)                                                                \
            in->ops->fname(in, __VA_ARGS__, answered, c);                     \
        else                                                                  \
            in->ops->fname(in, __VA_ARGS__, done, arg);                       \
    }

static void delete_stage(struct stage_provider *p, const char *arn, provider_done_fn done, void *arg)
    METERED(delete_stage, "DeleteStage", arn)

static void start_replication(struct stage_provider *p, const char *source, const char *dest,
                              provider_done_fn done, void *arg)
    METERED(start_replication, "StartParticipantReplication", source, dest)

static void stop_replication(struct stage_provider *p, const char *source, const char *dest,
                             provider_done_fn done, void *arg)
    METERED(stop_replication, "StopParticipantReplication", source, dest)

static void metered_free(struct stage_provider *p)
{
    struct metered *m = (struct metered *)p;
    m->inner->ops->free(m->inner);
    free(m);
}

struct stage_provider *metered_provider_new(struct stage_provider *inner, struct metrics *metrics)
{
    if (!inner)
        return NULL;
    struct metered *m = calloc(1, sizeof *m);
    if (!m) {
        inner->ops->free(inner);
        return NULL;
    }
    m->ops = (struct stage_provider_ops){inner->ops->name, create_stage, delete_stage,
                                         start_replication, stop_replication, metered_free};
    m->base = (struct stage_provider){&m->ops, inner->cfg, inner->base};
    m->inner = inner;
    m->metrics = metrics;
    return &m->base;
}
