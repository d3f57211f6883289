/* limiter.h — pacing IVS calls under the account's call-rate quotas.
 *
 * IVS limits calls per account and region, by kind of operation (facts in
 * ../shared/aws/README.md, "Quotas", from the IVS Real-Time service quotas
 * page): stage and participant operations 5/s each, CreateParticipantToken
 * 50/s, public-key operations 3/s, tag operations 10/s; no published figure
 * for the replication operations (assumed 5/s). The client asks a limiter
 * before every attempt. The interface lets a limiter shared by every usher
 * process (kept in Redis) be plugged in; the local one here paces one
 * process only and is what the client uses when none is plugged. */
#ifndef USHER_AWS_LIMITER_H
#define USHER_AWS_LIMITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

enum aws_op_class {
    AWS_OPS_STAGE,
    AWS_OPS_PARTICIPANT,
    AWS_OPS_REPLICATION,
    AWS_OPS_TOKEN,
    AWS_OPS_KEY,
    AWS_OPS_TAG,
    AWS_OPS_OTHER,              /* compositions, encoder/ingest/storage configs */
    AWS_OPS__COUNT
};

/* "stage", "participant", ... */
const char *aws_op_class_name(enum aws_op_class cls);
/* Calls per second the class allows (the quotas above; OTHER: 5). */
int aws_op_class_rate(enum aws_op_class cls);

/* The IVS Real-Time operations (every one in the API model), by index. */
size_t aws_op_count(void);
const char *aws_op_name(size_t index);
/* Index of an operation name, or -1 when it is not an IVS operation. */
int aws_op_index(const char *operation);
enum aws_op_class aws_op_class_at(size_t index);
/* Whether the operation at index scales the audience's stages
 * (CreateStage, DeleteStage, Start/StopParticipantReplication): a limiter
 * may let these go before the others of their class. */
bool aws_op_scaling(size_t index);

typedef void (*aws_limiter_ready_fn)(void *arg);

/* A limiter. acquire returns 0 and calls ready exactly once, from the loop
 * and never from inside acquire, when one call of class cls may be sent;
 * or returns -1 (out of memory) and never calls it. acquire_op, when not
 * NULL, is used instead and is told the operation (index as in
 * aws_op_name), so it can give priority (aws_op_scaling). free drops
 * the acquires still waiting without calling them, so the user must fail
 * those calls itself (aws_client_free does). */
struct aws_limiter {
    int (*acquire)(struct aws_limiter *l, enum aws_op_class cls,
                   aws_limiter_ready_fn ready, void *arg);
    void (*free)(struct aws_limiter *l);
    int (*acquire_op)(struct aws_limiter *l, size_t op, aws_limiter_ready_fn ready, void *arg);
};

/* Even spacing: one call every interval_ms, no burst. */
struct aws_pace {
    int64_t next_ms;            /* earliest time the next call may go */
    int64_t interval_ms;
};

/* Reserves the next slot at or after now_ms (both ms on any one clock);
 * returns how long the caller must wait first, in ms (0 = go now). */
int64_t aws_pace_reserve(struct aws_pace *p, int64_t now_ms);

/* A clock in ms, injectable for tests; NULL means clock_mono_us()/1000. */
typedef int64_t (*aws_clock_fn)(void *arg);

/* The local limiter: one aws_pace per class, one call every
 * ceil(1000 / rate) ms. NULL when out of memory. */
struct aws_limiter *aws_local_limiter_new(struct event_base *base, aws_clock_fn now,
                                          void *clock_arg);

#endif
