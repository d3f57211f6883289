/* provider.h — where stages come from.
 *
 * usher asks a provider to create, read, rename and delete stages, to
 * replicate the publisher's video between them and to tell a stage's
 * endpoints; it records what the provider made in Redis itself (store/).
 * The local provider (the default) makes stages with ARNs of IVS's form
 * and no network at all; the AWS provider (aws_provider.c) implements the
 * same table of operations against the IVS Real-Time control plane. Every
 * operation is asynchronous, as an AWS call takes 200–500 ms, and calls
 * `done` exactly once, on the loop thread, never from inside the call
 * (save out of memory with no memory to answer later: then at once,
 * with the error). */
#ifndef USHER_IVS_PROVIDER_H
#define USHER_IVS_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <event2/event.h>
#include <jansson.h>

struct config;
struct stage_provider;
struct aws_client;

#define STAGE_ENDPOINT_MAX 255       /* bytes of one endpoint URL */

/* A stage as the provider knows it; strings borrowed for the callback. */
struct provider_stage {
    const char *arn;
    const char *name;
    const char *whip;                /* endpoints.whip, "" when unknown */
    const char *events;              /* endpoints.events, "" when unknown */
    const char *active_session;      /* activeSessionId, "" when none */
    const json_t *tags;              /* an object of strings, or NULL */
    const char *replicating_from;    /* list_stages of the local provider: the
                                      * replication into it runs from there;
                                      * NULL when none or unknown */
};

/* stage is NULL with error set on failure. */
typedef void (*provider_stage_fn)(void *arg, const struct provider_stage *stage,
                                  const char *error);
/* Every stage of the account and region (all pages), or NULL with error. */
typedef void (*provider_list_fn)(void *arg, const struct provider_stage *stages, size_t n,
                                 const char *error);
/* text as each operation says, or NULL with error. */
typedef void (*provider_text_fn)(void *arg, const char *text, const char *error);
/* error is NULL on success. */
typedef void (*provider_done_fn)(void *arg, const char *error);

/* A participant as IVS lists it (ListParticipants' ParticipantSummary);
 * strings borrowed for the callback. */
struct provider_participant {
    const char *id;                  /* participantId */
    const char *user_id;             /* "" when none */
    const char *state;               /* "CONNECTED" or "DISCONNECTED" */
    const char *first_join_time;     /* ISO 8601, "" when unknown */
    bool published;                  /* published during the session */
    bool replica;                    /* a replication's copy (replicationType REPLICA) */
};
/* Which participants of a stage to list. */
struct participant_query {
    const char *arn;
    const char *session;             /* NULL or "": the stage's active session (GetStage) */
    const char *next_token;          /* NULL or "": the first page */
    long max_results;                /* per page, 1-100 (IVS's maximum) */
    bool connected_only;             /* filterByState=CONNECTED */
    bool all_pages;                  /* follow nextToken to the end */
};
struct participant_page {
    const char *session;             /* the session listed, "" when the stage has none */
    const struct provider_participant *items;
    size_t count;
    const char *next_token;          /* "" after the last page */
};
/* page is NULL with error set on failure. */
typedef void (*provider_participants_fn)(void *arg, const struct participant_page *page,
                                         const char *error);

/* A replication of a participant out of a source stage, as IVS lists it
 * (ListParticipantReplicas' ParticipantReplica); strings borrowed for the
 * callback. */
struct provider_replica {
    const char *dest;                /* destinationStageArn */
    const char *dest_session;        /* destinationSessionId, "" when unknown */
    bool active;                     /* replicationState ACTIVE, else STOPPED */
};
/* items is NULL with error set on failure. */
typedef void (*provider_replicas_fn)(void *arg, const struct provider_replica *items, size_t n,
                                     const char *error);

struct stage_provider_ops {
    const char *name;                /* "local", "aws" */
    /* Whether IVS's replication quota applies (5 per participant, no
     * replica as a source): the scaler then plans at most REPLICATION_MAX
     * added stages (scaler/policy.h, stage_ceiling). */
    bool replication_quota;
    /* Start-up checks before usher serves: the public key and
     * MASTER_STAGE_ARN. public_pem is the signing key's public half
     * (SPKI PEM). text: the key id tokens must carry (kid), or "" to
     * keep the local one. error names the setting to fix. */
    void (*prepare)(struct stage_provider *p, const char *public_pem,
                    provider_text_fn done, void *arg);
    /* tags: the stage's tags (an object of strings, or NULL); the
     * provider adds its own (usher:managed, usher:stream). */
    void (*create_stage)(struct stage_provider *p, const char *name, const json_t *tags,
                         provider_stage_fn done, void *arg);
    /* error when the stage does not exist or cannot be read. */
    void (*get_stage)(struct stage_provider *p, const char *arn,
                      provider_stage_fn done, void *arg);
    /* The stages this deployment made (tagged usher:managed=true and its
     * usher:stream), all pages; also how usher finds them again when Redis
     * lost its records (stages/recovery.h). */
    void (*list_stages)(struct stage_provider *p, provider_list_fn done, void *arg);
    void (*rename_stage)(struct stage_provider *p, const char *arn, const char *name,
                         provider_done_fn done, void *arg);
    void (*delete_stage)(struct stage_provider *p, const char *arn,
                         provider_done_fn done, void *arg);
    /* text: the participant id publishing in the stage now (connected,
     * published, not a replica), "" when nobody publishes. */
    void (*find_publisher)(struct stage_provider *p, const char *arn,
                           provider_text_fn done, void *arg);
    /* IVS participant replication: the publisher's video, present in
     * source, is also published into dest (StartParticipantReplication,
     * for the participant find_publisher names; with REPLICATION_CHAINING,
     * out of a stage fed by replication, for the publisher's replica
     * there, whose refusal by IVS is the error). text: that participant's
     * id ("" when the provider knows none: the local one without its
     * participant model). One running already (409) is started. */
    void (*start_replication)(struct stage_provider *p, const char *source,
                              const char *dest, provider_text_fn done, void *arg);
    /* StopParticipantReplication of participant_id (NULL: the one
     * publishing in source now; nobody publishing: nothing to stop). One
     * stopped already (404) is stopped. */
    void (*stop_replication)(struct stage_provider *p, const char *source, const char *dest,
                             const char *participant_id, provider_done_fn done, void *arg);
    /* ListParticipantReplicas: the replications of participant_id out of
     * source, all pages (IVS pages by 50 at most). */
    void (*list_replicas)(struct stage_provider *p, const char *source,
                          const char *participant_id, provider_replicas_fn done, void *arg);
    /* Whether list_participants tells who is connected (the aws provider;
     * the local one with its test model, LOCAL_PARTICIPANTS_API). */
    bool (*knows_participants)(struct stage_provider *p);
    /* ListParticipants of a session (GetStage first for the active one;
     * none: an empty page), one page or all pages. */
    void (*list_participants)(struct stage_provider *p, const struct participant_query *q,
                              provider_participants_fn done, void *arg);
    /* Whether list_participants can list the session id session (a
     * request's sessionId, 1-128 token bytes): the aws provider takes
     * IVS's only (valid_session_id), the local one any (its model has one
     * session, "local"). Another is the client's mistake (400), not the
     * provider's (503). */
    bool (*takes_session)(const char *session);
    /* DisconnectParticipant: the participant leaves the stage (its token
     * can no longer join it); reason 0-128 bytes, NULL for none. A
     * participant IVS does not know is no error (it left already). */
    void (*disconnect_participant)(struct stage_provider *p, const char *arn,
                                   const char *participant_id, const char *reason,
                                   provider_done_fn done, void *arg);
    /* What /health shows of the provider beyond name and region: a new
     * JSON object. */
    json_t *(*health)(struct stage_provider *p);
    void (*free)(struct stage_provider *p);

};

struct stage_provider {
    const struct stage_provider_ops *ops;
    const struct config *cfg;
    struct event_base *base;
};

/* The provider STAGE_PROVIDER names; NULL with the reason in err. */
struct stage_provider *provider_new(struct event_base *base, const struct config *cfg,
                                    char *err, size_t errlen);
struct stage_provider *local_provider_new(struct event_base *base,
                                          const struct config *cfg);
/* client: the IVS client the provider owns from now on (freed with it). */
struct stage_provider *aws_provider_new(struct event_base *base, const struct config *cfg,
                                        struct aws_client *client);

/* The IVS client of an aws provider (to plug a limiter into), NULL for
 * any other provider. */
struct aws_client *aws_provider_client(struct stage_provider *p);

/* The local provider's model of who is connected (LOCAL_PARTICIPANTS_API,
 * for tests): a participant connects (connected true) or disconnects in
 * a stage. Returns NULL, or why not (not the local provider, the model is
 * off, out of memory). */
const char *local_provider_participant(struct stage_provider *p, const char *arn,
                                       const char *participant_id, const char *user_id,
                                       bool published, bool connected);

/* The stage id: the ARN's last path segment (the JWT "topic"). */
const char *stage_id_of(const char *arn);

/* The endpoints of a local stage (SPEC §5's local mode): events
 * wss://global.events.live-video.net, whip https://{id}.global-bm.whip.live-video.net. */
void stage_endpoints(const char *arn, char *events_url, size_t events_len,
                     char *whip_url, size_t whip_len);

/* The tags usher puts on the stages it makes: usher:managed=true and
 * usher:stream=<STREAM_NAME, or REDIS_KEY_PREFIX when that is empty>. */
#define USHER_TAG_MANAGED "usher:managed"
#define USHER_TAG_STREAM "usher:stream"
/* And usher:role=master on the master stage it makes, so it can be found
 * again when Redis lost its record. */
#define USHER_TAG_ROLE "usher:role"
#define USHER_ROLE_MASTER "master"
const char *provider_stream_name(const struct config *cfg);
/* Whether tags mark a stage as made by this deployment. */
bool provider_tags_ours(const struct config *cfg, const json_t *tags);
/* Fills list[0 .. size of items) from items, a JSON array of participants
 * as the providers keep them ({id, userId, state, firstJoinTime, published,
 * replica}, each optional). The strings stay owned by items. */
void provider_participants_of(const json_t *items, struct provider_participant *list);

#endif
