/* aws_replication.c — IVS participant replication for the AWS provider:
 * StartParticipantReplication and StopParticipantReplication of the
 * publisher (found first in aws_participants.c, unless a stop names the
 * participant; with REPLICATION_CHAINING, out of a stage fed by
 * replication, the publisher's replica there), and
 * ListParticipantReplicas, where a participant is replicated to. IVS facts
 * used here (the API model): a replication running already answers 409,
 * one stopped already 404; ListParticipantReplicas pages by 1-50. */
#include "ivs/aws_op.h"

#include <stdio.h>
#include <string.h>

#include "util/log.h"

#define REPLICAS_PAGE_MAX 50         /* ListParticipantReplicas' maxResults: 1-50 */

/* IVS's words for a failed start from a replica, kept in o->error: a 400
 * says more, and is logged: whether IVS takes a replica as a source is not
 * documented (REPLICATION_CHAINING is the operator's bet), and a 400 most
 * likely says the bet is lost. */
static const char *replica_failed(struct op *o, const struct aws_result *r)
{
    size_t n = strlen(op_describe(o, r));
    if (r->error != AWS_ERR_VALIDATION)
        return o->error;
    snprintf(o->error + n, sizeof o->error - n, " (participant %s is a replica in %s: IVS may not "
             "take a replica as a source; if so, set REPLICATION_CHAINING=false)",
             o->participant, o->source);
    log_warn("aws provider: replication of %s from %s into %s refused: %s", o->participant,
             o->source, o->dest, o->error);
    return o->error;
}

/* A start's or stop's answer. */
static void replication_answered(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    /* 409: this replication runs already (a start whose answer was lost);
     * 404 on a stop: it had stopped. */
    bool starting = o->step == STEP_START;
    bool fine = r->error == AWS_OK || r->error == (starting ? AWS_ERR_CONFLICT : AWS_ERR_NOT_FOUND);
    const char *error = fine ? NULL : starting && o->replica ? replica_failed(o, r)
                                                             : op_describe(o, r);
    op_end(o, error, NULL, o->participant);
}

/* Starts or stops the replication of o->participant from o->source to o->dest. */
static void replicate(struct op *o)
{
    op_call(o, o->step == STEP_START ? "StartParticipantReplication" : "StopParticipantReplication",
            json_pack("{s:s, s:s, s:s}", "sourceStageArn", o->source, "destinationStageArn",
                      o->dest, "participantId", o->participant),
            replication_answered);
}

void publisher_known(struct op *o)
{
    if (!o->participant[0]) {        /* a stop has nothing to stop */
        bool starting = o->step == STEP_START;
        if (starting)
            snprintf(o->error, sizeof o->error, "nobody is publishing in %s", o->source);
        op_end(o, starting ? o->error : NULL, NULL, NULL);
        return;
    }
    replicate(o);
}

/* Copies participant_id into o->participant; false (o ended, later) when
 * it is longer than IVS allows. */
static bool participant_set(struct op *o, const char *participant_id)
{
    if (strlen(participant_id) > PARTICIPANT_ID_MAX) {
        op_fail_later(o, "participant id longer than IVS allows");
        return false;
    }
    snprintf(o->participant, sizeof o->participant, "%s", participant_id);
    return true;
}

void aws_start_replication(struct stage_provider *p, const char *source, const char *dest,
                           provider_text_fn done, void *arg)
{
    struct op *o = OP(OP_TEXT, done);
    if (!o)
        return;
    o->step = STEP_START;
    publisher_find(o, source, dest);
}

void aws_stop_replication(struct stage_provider *p, const char *source, const char *dest,
                          const char *participant_id, provider_done_fn done, void *arg)
{
    struct op *o = OP(OP_DONE, done);
    if (!o)
        return;
    o->step = STEP_STOP;
    if (!participant_id) {
        publisher_find(o, source, dest);
        return;
    }
    if (participant_set(o, participant_id) && op_arns(o, source, dest))
        replicate(o);
}

/* ------------------------------------------------------------------------
 * Replicas: where a participant is replicated to
 * --------------------------------------------------------------------- */

static void replicas_listed(void *arg, const struct aws_result *r);

/* One ListParticipantReplicas call, from page token next (NULL: the first). */
static void replicas_ask(struct op *o, const char *next)
{
    json_t *body = json_pack("{s:s, s:s, s:i}", "sourceStageArn", o->source, "participantId",
                             o->participant, "maxResults", REPLICAS_PAGE_MAX);
    op_call(o, "ListParticipantReplicas", op_member(body, "nextToken", next), replicas_listed);
}

/* What is wrong with a ParticipantReplica, or NULL: a destinationStageArn
 * or destinationSessionId (when given) outside ivs/ids.h's grammar. */
static const char *replica_fault(const json_t *rp)
{
    const char *dest = json_string_value(json_object_get(rp, "destinationStageArn"));
    const char *session = json_string_value(json_object_get(rp, "destinationSessionId"));
    if (!dest || !valid_stage_arn(dest))
        return "a replica whose destinationStageArn is no stage ARN";
    if (session && *session && !valid_session_id(session))
        return "a replica whose destinationSessionId is no session id (" SESSION_ID_FORM ")";
    return NULL;
}

/* One page: each ParticipantReplica kept as {dest, session, active}. */
static void replicas_listed(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    const char *error, *next;
    const json_t *list = op_page(o, r, "replicas", REPLICAS_PAGE_MAX, PAGES_MAX, &next, &error), *rp;
    if (error) {
        op_end(o, error, NULL, NULL);
        return;
    }
    size_t i;
    json_array_foreach(list, i, rp) {
        const char *dest = json_string_value(json_object_get(rp, "destinationStageArn"));
        const char *session = json_string_value(json_object_get(rp, "destinationSessionId"));
        const char *state = json_string_value(json_object_get(rp, "replicationState"));
        const char *fault = replica_fault(rp);
        if (fault) {
            op_end(o, op_refused(o, r, fault), NULL, NULL);
            return;
        }
        if (!op_keep(o, r, json_pack("{s:s, s:s, s:b}", "dest", dest, "session",
                                     session ? session : "", "active",
                                     state && strcmp(state, "ACTIVE") == 0)))
            return;
    }
    if (next)
        replicas_ask(o, next);
    else
        op_end(o, NULL, NULL, NULL);
}

void aws_list_replicas(struct stage_provider *p, const char *source, const char *participant_id,
                       provider_replicas_fn done, void *arg)
{
    struct op *o = OP(OP_REPLICAS, done);
    if (!o)
        return;
    if (!participant_set(o, participant_id))
        return;
    if (!(o->found = json_array())) {
        op_fail_later(o, "out of memory");
        return;
    }
    if (op_arns(o, source, NULL))
        replicas_ask(o, NULL);
}
