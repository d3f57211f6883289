/* provider.h — where stages come from.
 *
 * usher asks a provider to create and delete stages and to tell a stage's
 * endpoints; it records what the provider made in Redis itself (store/).
 * The local provider (the default) makes stages with ARNs of IVS's form
 * and no network at all; an AWS provider implements the same table of
 * operations against the IVS Real-Time control plane. Every operation is
 * asynchronous, as an AWS call takes 200–500 ms, and calls `done` exactly
 * once, on the loop thread, never from inside the call. */
#ifndef USHER_IVS_PROVIDER_H
#define USHER_IVS_PROVIDER_H

#include <stddef.h>
#include <event2/event.h>
#include <jansson.h>

struct config;
struct stage_provider;

/* arn is the new stage's ARN, or NULL with error set. */
typedef void (*provider_stage_fn)(void *arg, const char *arn, const char *error);
/* error is NULL on success. */
typedef void (*provider_done_fn)(void *arg, const char *error);

/* A stage the provider has, as list_stages tells it. */
struct provider_stage {
    const char *arn;
    const char *name;
    const char *replicating_from;    /* the replication into it runs from there; NULL: none */
};
/* stages (n of them) are valid during the call only; error non-NULL when
 * the provider could not tell (stages NULL, n 0). */
typedef void (*provider_list_fn)(void *arg, const struct provider_stage *stages, size_t n,
                                 const char *error);

struct stage_provider_ops {
    const char *name;                /* "local", "aws" */
    /* tags: the stage's tags (a JSON object of strings, or NULL), for
     * CreateStage's `tags`; the record in Redis keeps them too. */
    void (*create_stage)(struct stage_provider *p, const char *name, const json_t *tags,
                         provider_stage_fn done, void *arg);
    void (*delete_stage)(struct stage_provider *p, const char *arn,
                         provider_done_fn done, void *arg);
    /* IVS participant replication: the publisher's video, present in
     * source, is also published into dest (StartParticipantReplication). */
    void (*start_replication)(struct stage_provider *p, const char *source,
                              const char *dest, provider_done_fn done, void *arg);
    void (*stop_replication)(struct stage_provider *p, const char *source,
                             const char *dest, provider_done_fn done, void *arg);
    void (*free)(struct stage_provider *p);

    /* For rebuilding after Redis lost usher's state (stages/recovery.h).
     * Both are optional: NULL when the provider cannot tell. */
    /* The master stage this deployment made before, found at the provider
     * (AWS: by its tags): done gets its ARN, or NULL with error NULL when
     * there is none. */
    void (*find_master)(struct stage_provider *p, provider_stage_fn done, void *arg);
    /* The stages this deployment has at the provider, with the
     * replication into each. */
    void (*list_stages)(struct stage_provider *p, provider_list_fn done, void *arg);
};

struct stage_provider {
    const struct stage_provider_ops *ops;
    const struct config *cfg;
    struct event_base *base;
};

struct stage_provider *local_provider_new(struct event_base *base,
                                          const struct config *cfg);

/* The stage id: the ARN's last path segment (the JWT "topic"). */
const char *stage_id_of(const char *arn);

/* The stage's endpoints for a token's events_url / whip_url. */
void stage_endpoints(const char *arn, char *events_url, size_t events_len,
                     char *whip_url, size_t whip_len);

#endif
