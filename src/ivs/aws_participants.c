/* aws_participants.c — who is in an IVS stage: ListParticipants of a
 * session, page by page, for the caller (list_participants) and for the
 * publisher search that find_publisher and the replication operations
 * start with; DisconnectParticipant. IVS facts used here
 * (../shared/aws/README.md and the API model): ListParticipants needs the
 * stage's activeSessionId (GetStage) and takes one filter; a replica keeps
 * the source's participant id and is most likely no source itself (taken
 * for one only with REPLICATION_CHAINING, in a stage fed by replication). */
#include "ivs/aws_op.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "http/fields.h"
#include "util/clock.h"

#define EPOCH_S_MAX 1e11             /* a time IVS sends in epoch seconds: before year 5138 */

/* ------------------------------------------------------------------------
 * The publisher
 * --------------------------------------------------------------------- */

static void publisher_found(struct op *o);

/* The first participant in participants that is connected, published and
 * a replica (replica) or no replica (!replica); NULL when none. */
static const char *publisher_in(const json_t *participants, bool replica)
{
    const json_t *pt;
    size_t i;
    json_array_foreach(participants, i, pt) {
        const char *state = json_string_value(json_object_get(pt, "state"));
        const char *type = json_string_value(json_object_get(pt, "replicationType"));
        const char *id = json_string_value(json_object_get(pt, "participantId"));
        bool is_replica = type && strcmp(type, "REPLICA") == 0;
        if (id && state && strcmp(state, "CONNECTED") == 0 && json_is_true(json_object_get(pt, "published")) &&
            is_replica == replica && valid_participant_id(id))
            return id;
    }
    return NULL;
}

/* Whether a replica in o->source may stand for the publisher: a start or
 * stop of a replication out of a stage that is itself fed by replication
 * (REPLICATION_CHAINING: the scaler picks such a parent). The replica
 * keeps the publisher's participant id; whether IVS takes it as a source
 * is not documented (../shared/aws/README.md), so IVS is asked and its
 * refusal is the start's error. find_publisher (the master) never takes
 * one. */
static bool replica_may_source(const struct op *o)
{
    return o->step != STEP_FIND && o->ap->base.cfg->replication_chaining;
}

static void participants_listed(void *arg, const struct aws_result *r);

static void list_participants(struct op *o, const char *session, const char *next)
{
    json_t *body = json_pack("{s:s, s:s, s:b, s:i}", "stageArn", o->source, "sessionId", session,
                             "filterByPublished", 1, "maxResults", PAGE_MAX);
    if (session != o->session)
        snprintf(o->session, sizeof o->session, "%s", session);
    op_call(o, "ListParticipants", op_member(body, "nextToken", next), participants_listed);
}

static void participants_listed(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    const char *error, *next;
    const json_t *list = op_page(o, r, "participants", PAGE_MAX, PAGES_MAX, &next, &error);
    if (error) {
        op_end(o, error, NULL, NULL);
        return;
    }
    const char *id = publisher_in(list, false);
    const char *replica = !id && !o->participant[0] && replica_may_source(o)
                              ? publisher_in(list, true) : NULL;
    if (replica) {                   /* kept while later pages may name the publisher */
        snprintf(o->participant, sizeof o->participant, "%s", replica);
        o->replica = true;
    }
    if (!id && next) {
        list_participants(o, o->session, next);
        return;
    }
    if (id) {
        snprintf(o->participant, sizeof o->participant, "%s", id);
        o->replica = false;
    }
    publisher_found(o);
}

/* The active session of the stage GetStage answered ("" when none), or
 * NULL with o ended: the call failed, or the session is one IVS would not
 * give. */
static const char *session_answered(struct op *o, const struct aws_result *r)
{
    const char *error, *fault = NULL;
    const json_t *stage = op_answered(o, r, "stage", &error);
    const char *session = error ? NULL : stage_session(stage, &fault);
    if (!session)
        op_end(o, fault ? op_refused(o, r, fault) : error, NULL, NULL);
    return session;
}

/* GetStage for the active session, then ListParticipants in it. */
static void source_read(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    const char *session = session_answered(o, r);
    if (!session)
        return;
    if (!*session) {
        o->participant[0] = '\0';   /* no session: nobody is there */
        publisher_found(o);
        return;
    }
    list_participants(o, session, NULL);
}

/* The publisher is known (o->participant, "" for nobody): find_publisher
 * ends with it; a start or stop of a replication goes on. */
static void publisher_found(struct op *o)
{
    if (o->step == STEP_FIND)
        op_end(o, NULL, NULL, o->participant);
    else
        publisher_known(o);
}

void publisher_find(struct op *o, const char *source, const char *dest)
{
    if (op_arns(o, source, dest))
        op_call(o, "GetStage", json_pack("{s:s}", "arn", source), source_read);
}

void aws_find_publisher(struct stage_provider *p, const char *arn, provider_text_fn done,
                        void *arg)
{
    struct op *o = OP(OP_TEXT, done);
    if (o)
        publisher_find(o, arn, NULL);
}

/* ------------------------------------------------------------------------
 * Participants: who is in a stage, and disconnecting one
 * --------------------------------------------------------------------- */

/* IVS's ParticipantSummary pt, whose participantId is valid, kept as {id,
 * userId, state, firstJoinTime, published, replica} (firstJoinTime as ISO
 * 8601 text whether IVS sent a string or epoch seconds). NULL when out of
 * memory. */
static json_t *participant_kept(const json_t *pt)
{
    const char *id = json_string_value(json_object_get(pt, "participantId"));
    const char *user = json_string_value(json_object_get(pt, "userId"));
    const char *state = json_string_value(json_object_get(pt, "state"));
    const char *type = json_string_value(json_object_get(pt, "replicationType"));
    const json_t *first = json_object_get(pt, "firstJoinTime");
    char when[40] = "";
    if (json_is_string(first))
        snprintf(when, sizeof when, "%s", json_string_value(first));
    else if (json_is_number(first) && json_number_value(first) >= 0 &&
             json_number_value(first) < EPOCH_S_MAX)
        clock_iso8601((int64_t)(json_number_value(first) * 1000), when, sizeof when);
    return json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}", "id", id, "userId", user ? user : "",
                     "state", state ? state : "", "firstJoinTime", when,
                     "published", json_is_true(json_object_get(pt, "published")),
                     "replica", type && strcmp(type, "REPLICA") == 0);
}

static void page_listed(void *arg, const struct aws_result *r);

/* One ListParticipants call for o->query in o->session from o->next. */
static void page_ask(struct op *o)
{
    const struct participant_query *q = &o->query;
    json_t *body = json_pack("{s:s, s:s, s:i}", "stageArn", o->source, "sessionId", o->session,
                             "maxResults", (int)q->max_results);
    body = op_member(body, "filterByState", q->connected_only ? "CONNECTED" : NULL);
    op_call(o, "ListParticipants", op_member(body, "nextToken", o->next), page_listed);
}

static void page_listed(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    const char *error, *next;
    const json_t *list = op_page(o, r, "participants", (size_t)o->query.max_results, PAGES_MAX,
                                 &next, &error), *pt;
    if (error) {
        op_end(o, error, NULL, NULL);
        return;
    }
    size_t i;
    json_array_foreach(list, i, pt) {    /* one without a participant id is no one's */
        const char *id = json_string_value(json_object_get(pt, "participantId"));
        if (id && valid_participant_id(id) && !op_keep(o, r, participant_kept(pt)))
            return;
    }
    free(o->next);
    o->next = NULL;
    if (next && !(o->next = strdup(next))) {    /* not the end of the list */
        op_end(o, op_short(o, r), NULL, NULL);
        return;
    }
    if (o->next && o->query.all_pages)
        page_ask(o);
    else
        op_end(o, NULL, NULL, NULL);
}

/* The stage read: its active session is listed (none: nobody is there). */
static void session_read(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    const char *session = session_answered(o, r);
    if (!session)
        return;
    if (!*session) {
        op_end(o, NULL, NULL, NULL);
        return;
    }
    snprintf(o->session, sizeof o->session, "%s", session);
    page_ask(o);
}

void aws_list_participants(struct stage_provider *p, const struct participant_query *q,
                           provider_participants_fn done, void *arg)
{
    struct op *o = OP(OP_PARTICIPANTS, done);
    if (!o)
        return;
    o->query = *q;
    o->query.max_results = q->max_results < 1 || q->max_results > PAGE_MAX ? PAGE_MAX : q->max_results;
    o->source = strdup(q->arn);
    o->next = q->next_token && *q->next_token ? strdup(q->next_token) : NULL;
    if (!o->source || !(o->found = json_array()) || (q->next_token && *q->next_token && !o->next)) {
        op_fail_later(o, "out of memory");
        return;
    }
    if (q->session && *q->session && !valid_session_id(q->session)) {
        op_fail_later(o, "sessionId: no IVS session id (" SESSION_ID_FORM ")");
        return;
    }
    if (q->session && *q->session) {
        snprintf(o->session, sizeof o->session, "%s", q->session);
        page_ask(o);
        return;
    }
    op_call(o, "GetStage", json_pack("{s:s}", "arn", q->arn), session_read);
}

/* 404: IVS does not know the participant (gone already): no error. */
void aws_disconnect_participant(struct stage_provider *p, const char *arn,
                                const char *participant_id, const char *reason,
                                provider_done_fn done, void *arg)
{
    struct op *o = OP(OP_DONE, done);
    if (!o)
        return;
    json_t *body = json_pack("{s:s, s:s}", "stageArn", arn, "participantId", participant_id);
    op_call(o, "DisconnectParticipant", op_member(body, "reason", reason && *reason ? reason : NULL),
            op_gone);
}
