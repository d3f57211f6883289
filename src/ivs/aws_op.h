/* aws_op.h — what the parts of the AWS provider share: the provider's own
 * state, one provider operation in flight (`struct op`) and the steps
 * every operation takes (make it, call IVS, read an answer or a page of
 * one, end it). The parts, one concern each: aws_provider.c (the table of
 * operations, health, life), aws_op.c (these steps), aws_stages.c,
 * aws_participants.c (and the publisher), aws_replication.c, aws_keys.c
 * (start-up). Internal to them: the public interface is provider.h. */
#ifndef USHER_IVS_AWS_OP_H
#define USHER_IVS_AWS_OP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "aws/client.h"
#include "ivs/ids.h"
#include "ivs/provider.h"

#define PAGE_MAX 100                 /* maxResults of the List operations */
#define ERROR_MAX 400
/* Pages one List operation may take before it is called endless: 20,000
 * stages or participants at 100 a page (a region's default subscriptions
 * quota), 10,000 replicas at 50. */
#define PAGES_MAX 200

struct aws_provider {
    struct stage_provider base;      /* first: the interface */
    struct aws_client *client;
    char quota[3 * ERROR_MAX];         /* the last 402's words, "" when none */
    int64_t quota_at_ms;
};

enum op_kind { OP_DONE, OP_STAGE, OP_LIST, OP_TEXT, OP_PARTICIPANTS, OP_REPLICAS };
/* What an operation that looks for the publisher does with it. */
enum op_step { STEP_FIND, STEP_START, STEP_STOP };

/* One provider operation in flight. */
struct op {
    struct aws_provider *ap;
    enum op_kind kind;
    void (*fn)(void);                /* the caller's callback, of kind's type */
    void *arg;
    char *source, *dest;             /* ARNs the steps need */
    char *pem;                       /* prepare: our public key */
    json_t *found;                   /* list_stages: stages so far; prepare: key ARNs;
                                      * list_replicas: replicas so far */
    size_t next_key;                 /* prepare: the next key of `found` to read */
    enum op_step step;               /* find_publisher, start or stop a replication */
    char session[SESSION_ID_LEN + 1];  /* the session listed (valid_session_id), "" when none */
    char participant[PARTICIPANT_ID_MAX + 1];
    bool replica;                    /* participant is a replica in source (REPLICATION_CHAINING) */
    char kid[STAGE_ENDPOINT_MAX + 1];
    char error[3 * ERROR_MAX];       /* the words of a failure */
    struct participant_query query;  /* list_participants (strings: source, next) */
    char *next;                      /* list_participants: the page token, NULL at the end */
    char *token;                     /* the last nextToken IVS gave, NULL before */
    int pages;                       /* pages answered so far */
};

/* A new operation of kind for provider p whose caller hears fn(arg, ...)
 * (fn of kind's type); NULL when out of memory (logged; fn has then heard
 * "out of memory" already, at once: there is no memory to answer later). */
struct op *op_new(struct stage_provider *p, enum op_kind kind, void (*fn)(void), void *arg);
#define OP(kind, fn) op_new(p, kind, (void (*)(void))(fn), arg)

/* Calls the caller back: error, or on success the stage (OP_STAGE), the
 * list in o->found (OP_LIST, OP_PARTICIPANTS, OP_REPLICAS) or text
 * (OP_TEXT). Frees o. */
void op_end(struct op *o, const char *error, const json_t *stage, const char *text);

/* Ends o with error on a later loop turn (a failure before any call went). */
void op_fail_later(struct op *o, const char *error);

/* Copies the ARNs o needs (dest may be NULL); false (o ended, later) when
 * out of memory. */
bool op_arns(struct op *o, const char *source, const char *dest);

/* Starts IVS call operation with body (stolen; NULL: out of memory); next
 * hears the answer with o. Returns 0, or -1 with o ended (later). */
int op_call(struct op *o, const char *operation, json_t *body, aws_call_fn next);

/* body (stolen) with member name set to the string value, when value is
 * not NULL; NULL (body freed) when out of memory or body is NULL. A body
 * short of a member must never be sent: a page asked without its
 * nextToken is the first page again. (jansson's "s*" drops a member whose
 * string it had no memory for, so it is not used for these.) */
json_t *op_member(json_t *body, const char *name, const char *value);

/* Words for a failed call, kept in o->error: "CreateStage:
 * ServiceQuotaExceededException (quota_exceeded): stages per region: 1000
 * reached" (IVS names the quota in a 402's message). A 402 is also kept
 * for /health. */
const char *op_describe(struct op *o, const struct aws_result *r);

/* Words for an answer IVS would not give, kept in o->error:
 * "<operation>: IVS answered <what>". */
const char *op_refused(struct op *o, const struct aws_result *r, const char *what);

/* The answer's member `name` (borrowed from r), or NULL with *error set to
 * the words of the failed call. */
const json_t *op_answered(struct op *o, const struct aws_result *r, const char *name,
                          const char **error);

/* One page of a List answer: its array `name` and, in *next, its
 * nextToken (NULL at the end; borrowed from o). NULL with *error set when
 * the call failed, or the answer is not a page IVS would give: no `name`
 * array, more than `asked` items, the nextToken of the page before again,
 * or more than max_pages pages (a list that never ends); or when there is
 * no memory to keep its nextToken (op_short: never the end of the list). */
const json_t *op_page(struct op *o, const struct aws_result *r, const char *name, size_t asked,
                      int max_pages, const char **next, const char **error);

/* Keeps one item of a page (item stolen; NULL: no memory to make it) at
 * the end of o->found. False, with o ended with op_short's words, when
 * there is no memory for it: a list short of an item must never pass for
 * the whole list, as callers stop or forget what a list does not name
 * (a replication, a stage). */
bool op_keep(struct op *o, const struct aws_result *r, json_t *item);

/* Words for a page usher had no memory to keep whole, kept in o->error:
 * "<operation>: out of memory keeping a page (...)". */
const char *op_short(struct op *o, const struct aws_result *r);

/* An aws_call_fn for a call whose target may be gone already (a stage
 * deleted, a participant disconnected): success or 404 end o without
 * error, any other failure with its words. */
void op_gone(void *arg, const struct aws_result *r);

/* The operator's tags plus usher's own (usher:managed, usher:stream), for
 * stages and the imported public key; a new reference, NULL when out of
 * memory (aws_stages.c). */
json_t *stage_tags(const struct config *cfg, const json_t *tags);

/* A stage's activeSessionId: "" when it has none (absent, null or ""),
 * NULL with *fault set when it is one IVS would not give (valid_session_id
 * in ids.h): no call carries such an id, whole or cut (aws_stages.c). */
const char *stage_session(const json_t *stage, const char **fault);

/* The publisher of source (connected, published, no replica) read into
 * o->participant ("" for nobody); then o ends with it (o->step STEP_FIND)
 * or goes on in publisher_known (aws_participants.c). A start or stop
 * with REPLICATION_CHAINING takes, where source has no such publisher
 * (a stage fed by replication), the publisher's replica there
 * (o->replica set). */
void publisher_find(struct op *o, const char *source, const char *dest);

/* A start or stop of a replication once its publisher is known: o->step
 * STEP_START or STEP_STOP (aws_replication.c). */
void publisher_known(struct op *o);

/* The provider's operations, as stage_provider_ops in provider.h says. */
void aws_create_stage(struct stage_provider *p, const char *name, const json_t *tags,
                      provider_stage_fn done, void *arg);
void aws_get_stage(struct stage_provider *p, const char *arn, provider_stage_fn done, void *arg);
void aws_list_stages(struct stage_provider *p, provider_list_fn done, void *arg);
void aws_rename_stage(struct stage_provider *p, const char *arn, const char *name,
                      provider_done_fn done, void *arg);
void aws_delete_stage(struct stage_provider *p, const char *arn, provider_done_fn done, void *arg);
void aws_find_publisher(struct stage_provider *p, const char *arn, provider_text_fn done,
                        void *arg);
void aws_start_replication(struct stage_provider *p, const char *source, const char *dest,
                           provider_text_fn done, void *arg);
void aws_stop_replication(struct stage_provider *p, const char *source, const char *dest,
                          const char *participant_id, provider_done_fn done, void *arg);
void aws_list_replicas(struct stage_provider *p, const char *source, const char *participant_id,
                       provider_replicas_fn done, void *arg);
void aws_list_participants(struct stage_provider *p, const struct participant_query *q,
                           provider_participants_fn done, void *arg);
void aws_disconnect_participant(struct stage_provider *p, const char *arn,
                                const char *participant_id, const char *reason,
                                provider_done_fn done, void *arg);
void aws_prepare(struct stage_provider *p, const char *public_pem, provider_text_fn done,
                 void *arg);

#endif
