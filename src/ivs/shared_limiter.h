/* shared_limiter.h — the pace of IVS calls kept in Redis, so that every
 * usher process of a deployment together stays under the account's call
 * rates (aws/limiter.h has the quotas: stage and participant operations
 * 5/s, key operations 3/s, ...). An implementation of struct aws_limiter
 * for the IVS client: each acquire reserves the class's next slot with one
 * store step (store_rate_take, Redis's clock) and waits for it. Scaling
 * calls (CreateStage, DeleteStage, replication: aws_op_scaling) queue;
 * others take a slot only when no scaling call is queued, so a sweep or a
 * look-up never delays a stage the audience is waiting for. When Redis
 * cannot be reached, the process paces itself alone (the local limiter),
 * so IVS calls never wait on Redis trouble. */
#ifndef USHER_IVS_SHARED_LIMITER_H
#define USHER_IVS_SHARED_LIMITER_H

#include "aws/limiter.h"

struct event_base;
struct store;

/* Calls of a class go margin_ms more than 1000 / rate ms apart
 * (AWS_PACE_MARGIN_MS), so that jitter between processes and IVS does not
 * make two calls land inside one of IVS's windows (how IVS counts is not
 * published). store is borrowed and must outlive the limiter's free. NULL
 * when out of memory. Freeing drops waiting acquires (aws/limiter.h); a
 * store step still under way ends quietly. */
struct aws_limiter *shared_limiter_new(struct event_base *base, struct store *store,
                                       long margin_ms);

#endif
