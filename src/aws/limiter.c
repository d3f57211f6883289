/* limiter.c — IVS operation classes and the local, per-process limiter
 * (see limiter.h). */
#include "aws/limiter.h"

#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/waiters.h"

static const struct {
    const char *name;
    int rate;
} classes[AWS_OPS__COUNT] = {
    [AWS_OPS_STAGE] = {"stage", 5},
    [AWS_OPS_PARTICIPANT] = {"participant", 5},
    [AWS_OPS_REPLICATION] = {"replication", 5},
    [AWS_OPS_TOKEN] = {"token", 50},
    [AWS_OPS_KEY] = {"key", 3},
    [AWS_OPS_TAG] = {"tag", 10},
    [AWS_OPS_OTHER] = {"other", 5},
};

/* Every operation of ivs-realtime-service-2.json (API 2020-07-14). */
static const struct {
    const char *name;
    enum aws_op_class cls;
} ops[] = {
    {"CreateStage", AWS_OPS_STAGE}, {"GetStage", AWS_OPS_STAGE},
    {"ListStages", AWS_OPS_STAGE}, {"UpdateStage", AWS_OPS_STAGE},
    {"DeleteStage", AWS_OPS_STAGE}, {"GetStageSession", AWS_OPS_STAGE},
    {"ListStageSessions", AWS_OPS_STAGE},
    {"GetParticipant", AWS_OPS_PARTICIPANT}, {"ListParticipants", AWS_OPS_PARTICIPANT},
    {"ListParticipantEvents", AWS_OPS_PARTICIPANT},
    {"DisconnectParticipant", AWS_OPS_PARTICIPANT},
    {"StartParticipantReplication", AWS_OPS_REPLICATION},
    {"StopParticipantReplication", AWS_OPS_REPLICATION},
    {"ListParticipantReplicas", AWS_OPS_REPLICATION},
    {"CreateParticipantToken", AWS_OPS_TOKEN},
    {"ImportPublicKey", AWS_OPS_KEY}, {"GetPublicKey", AWS_OPS_KEY},
    {"ListPublicKeys", AWS_OPS_KEY}, {"DeletePublicKey", AWS_OPS_KEY},
    {"TagResource", AWS_OPS_TAG}, {"UntagResource", AWS_OPS_TAG},
    {"ListTagsForResource", AWS_OPS_TAG},
    {"StartComposition", AWS_OPS_OTHER}, {"StopComposition", AWS_OPS_OTHER},
    {"GetComposition", AWS_OPS_OTHER}, {"ListCompositions", AWS_OPS_OTHER},
    {"CreateEncoderConfiguration", AWS_OPS_OTHER},
    {"GetEncoderConfiguration", AWS_OPS_OTHER},
    {"ListEncoderConfigurations", AWS_OPS_OTHER},
    {"DeleteEncoderConfiguration", AWS_OPS_OTHER},
    {"CreateIngestConfiguration", AWS_OPS_OTHER},
    {"GetIngestConfiguration", AWS_OPS_OTHER},
    {"ListIngestConfigurations", AWS_OPS_OTHER},
    {"UpdateIngestConfiguration", AWS_OPS_OTHER},
    {"DeleteIngestConfiguration", AWS_OPS_OTHER},
    {"CreateStorageConfiguration", AWS_OPS_OTHER},
    {"GetStorageConfiguration", AWS_OPS_OTHER},
    {"ListStorageConfigurations", AWS_OPS_OTHER},
    {"DeleteStorageConfiguration", AWS_OPS_OTHER},
};

const char *aws_op_class_name(enum aws_op_class cls) { return classes[cls].name; }
int aws_op_class_rate(enum aws_op_class cls) { return classes[cls].rate; }
size_t aws_op_count(void) { return sizeof ops / sizeof ops[0]; }
const char *aws_op_name(size_t index) { return ops[index].name; }
enum aws_op_class aws_op_class_at(size_t index) { return ops[index].cls; }

bool aws_op_scaling(size_t index)
{
    static const char *const scaling[] = {"CreateStage", "DeleteStage",
                                          "StartParticipantReplication",
                                          "StopParticipantReplication"};
    for (size_t i = 0; i < sizeof scaling / sizeof *scaling; i++)
        if (strcmp(ops[index].name, scaling[i]) == 0)
            return true;
    return false;
}

int aws_op_index(const char *operation)
{
    for (size_t i = 0; operation && i < aws_op_count(); i++)
        if (strcmp(operation, ops[i].name) == 0)
            return (int)i;
    return -1;
}

int64_t aws_pace_reserve(struct aws_pace *p, int64_t now_ms)
{
    int64_t slot = p->next_ms > now_ms ? p->next_ms : now_ms;
    p->next_ms = slot + p->interval_ms;
    return slot - now_ms;
}

/* ------------------------------------------------------------------------
 * The local limiter
 * --------------------------------------------------------------------- */

struct local {
    struct aws_limiter base;    /* first: a struct aws_limiter * is a struct local * */
    aws_clock_fn now;
    void *clock_arg;
    struct aws_pace pace[AWS_OPS__COUNT];
    struct waiters *waiters;    /* the acquires waiting for their slot */
};

static int64_t mono_ms(void *arg)
{
    (void)arg;
    return clock_mono_us() / 1000;
}

static int local_acquire(struct aws_limiter *lim, enum aws_op_class cls,
                         aws_limiter_ready_fn ready, void *arg)
{
    struct local *l = (struct local *)lim;
    int64_t wait = aws_pace_reserve(&l->pace[cls], l->now(l->clock_arg));
    return waiters_add(l->waiters, (long)wait, ready, arg);
}

static void local_free(struct aws_limiter *lim)
{
    struct local *l = (struct local *)lim;
    waiters_drop(l->waiters);
    free(l);
}

struct aws_limiter *aws_local_limiter_new(struct event_base *base, aws_clock_fn now,
                                          void *clock_arg)
{
    struct local *l = calloc(1, sizeof *l);
    if (!l || !(l->waiters = waiters_new(base))) {
        free(l);
        return NULL;
    }
    l->base = (struct aws_limiter){local_acquire, local_free, NULL};
    l->now = now ? now : mono_ms;
    l->clock_arg = clock_arg;
    for (int c = 0; c < AWS_OPS__COUNT; c++)
        l->pace[c].interval_ms = (1000 + classes[c].rate - 1) / classes[c].rate;
    return &l->base;
}
