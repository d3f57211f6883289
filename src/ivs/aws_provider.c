/* aws_provider.c — stages in Amazon IVS Real-Time: the provider interface
 * (provider.h) on the control-plane client (aws/client.h).
 *
 * Each provider operation is one `struct op` that runs one or more IVS
 * calls in turn (find the publisher, then replicate; page after page of a
 * list) and ends by calling the caller's callback once. IVS facts used here
 * (../shared/aws/README.md and the API model): stage names match
 * [a-zA-Z0-9-_]{0,128}; CreateStage and GetStage return the stage's
 * endpoints (the WHIP host is not the stage id); ListParticipants needs the
 * stage's activeSessionId and takes one filter; a replica keeps the
 * source's participant id and is no source itself; public keys are
 * imported as SPKI PEM, 3 per region; ServiceQuotaExceededException (402)
 * names the quota in its message. */
#include "ivs/provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "aws/client.h"
#include "config/config.h"
#include "http/fields.h"
#include "ivs/ids.h"
#include "util/clock.h"
#include "util/log.h"

#define PAGE_MAX 100                 /* maxResults of the List operations */
#define REPLICAS_PAGE_MAX 50         /* ListParticipantReplicas' maxResults: 1-50 */
#define STAGE_NAME_MAX 128           /* StageName */
#define ERROR_MAX 400
#define EPOCH_S_MAX 1e11             /* a time IVS sends in epoch seconds: before year 5138 */
/* Pages one List operation may take before it is called endless: 20,000
 * stages or participants at 100 a page (a region's default subscriptions
 * quota), 10,000 replicas at 50; public keys are 3 per region. */
#define PAGES_MAX 200
#define KEY_PAGES_MAX 10

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
    char session[128];               /* the source's active session */
    char participant[PARTICIPANT_ID_MAX + 1];
    char kid[STAGE_ENDPOINT_MAX + 1];
    char error[3 * ERROR_MAX];       /* the words of a failure */
    struct participant_query query;  /* list_participants (strings: source, next) */
    char *next;                      /* list_participants: the page token, NULL at the end */
    char *token;                     /* the last nextToken IVS gave, NULL before */
    int pages;                       /* pages answered so far */
};

/* ------------------------------------------------------------------------
 * Ending an operation
 * --------------------------------------------------------------------- */

/* A provider_stage view of an IVS Stage or StageSummary object. */
static struct provider_stage stage_view(const json_t *s)
{
    const json_t *ep = json_object_get(s, "endpoints");
    const char *whip = json_string_value(json_object_get(ep, "whip"));
    const char *events = json_string_value(json_object_get(ep, "events"));
    const char *session = json_string_value(json_object_get(s, "activeSessionId"));
    const char *name = json_string_value(json_object_get(s, "name"));
    return (struct provider_stage){
        .arn = json_string_value(json_object_get(s, "arn")), .name = name ? name : "",
        .whip = whip ? whip : "", .events = events ? events : "",
        .active_session = session ? session : "", .tags = json_object_get(s, "tags"),
    };
}

static void op_free(struct op *o)
{
    free(o->source), free(o->dest), free(o->pem), free(o->next), free(o->token);
    json_decref(o->found);
    free(o);
}

/* Hands list_participants' caller the participants kept in o->found. */
static void participants_end(struct op *o, const char *error)
{
    size_t n = error ? 0 : json_array_size(o->found);
    struct provider_participant *list = n ? calloc(n, sizeof *list) : NULL;
    if (n && !list)
        error = "out of memory", n = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *pt = json_array_get(o->found, i);
        list[i] = (struct provider_participant){
            .id = json_string_value(json_object_get(pt, "id")),
            .user_id = json_string_value(json_object_get(pt, "userId")),
            .state = json_string_value(json_object_get(pt, "state")),
            .first_join_time = json_string_value(json_object_get(pt, "firstJoinTime")),
            .published = json_is_true(json_object_get(pt, "published")),
            .replica = json_is_true(json_object_get(pt, "replica")),
        };
    }
    const struct participant_page page = {.session = o->session, .items = list, .count = n,
                                          .next_token = o->next ? o->next : ""};
    ((provider_participants_fn)o->fn)(o->arg, error ? NULL : &page, error);
    free(list);
}

/* Hands list_replicas' caller the replicas kept in o->found. */
static void replicas_end(struct op *o, const char *error)
{
    size_t n = error ? 0 : json_array_size(o->found);
    struct provider_replica *list = calloc(n + 1, sizeof *list);
    if (!list && !error)
        error = "out of memory";
    for (size_t i = 0; list && i < n; i++) {
        const json_t *r = json_array_get(o->found, i);
        list[i] = (struct provider_replica){
            .dest = json_string_value(json_object_get(r, "dest")),
            .dest_session = json_string_value(json_object_get(r, "session")),
            .active = json_is_true(json_object_get(r, "active")),
        };
    }
    ((provider_replicas_fn)o->fn)(o->arg, error ? NULL : list, error ? 0 : n, error);
    free(list);
}

/* Calls the caller back: error, or on success the stage (OP_STAGE), the
 * list in o->found (OP_LIST) or text (OP_TEXT). Frees o. */
static void op_end(struct op *o, const char *error, const json_t *stage, const char *text)
{
    if (error) {
        stage = NULL, text = NULL;
    }
    struct provider_stage one = stage ? stage_view(stage) : (struct provider_stage){0};
    switch (o->kind) {
    case OP_DONE: ((provider_done_fn)o->fn)(o->arg, error); break;
    case OP_STAGE: ((provider_stage_fn)o->fn)(o->arg, stage ? &one : NULL, error); break;
    case OP_TEXT: ((provider_text_fn)o->fn)(o->arg, error ? NULL : text, error); break;
    case OP_PARTICIPANTS: participants_end(o, error); break;
    case OP_REPLICAS: replicas_end(o, error); break;
    case OP_LIST: {
        size_t n = error ? 0 : json_array_size(o->found);
        struct provider_stage *list = n ? calloc(n, sizeof *list) : NULL;
        if (n && !list)
            error = "out of memory", n = 0;
        for (size_t i = 0; i < n; i++)
            list[i] = stage_view(json_array_get(o->found, i));
        ((provider_list_fn)o->fn)(o->arg, error ? NULL : list, n, error);
        free(list);
        break;
    }
    }
    op_free(o);
}

static void end_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct op *o = arg;
    op_end(o, o->error, NULL, NULL);
}

/* Ends o with error on a later loop turn (a failure before any call went). */
static void fail_later(struct op *o, const char *error)
{
    static const struct timeval now = {0, 0};
    snprintf(o->error, sizeof o->error, "%s", error);
    if (event_base_once(o->ap->base.base, -1, EV_TIMEOUT, end_later, o, &now) != 0)
        op_end(o, error, NULL, NULL);
}

/* Words for a failed call: "CreateStage: ServiceQuotaExceededException
 * (quota_exceeded): stages per region: 1000 reached". A 402 is also kept
 * for /health. */
static const char *describe(struct op *o, const struct aws_result *r)
{
    snprintf(o->error, ERROR_MAX, "%s: %s (%s): %.200s", r->operation,
             r->code ? r->code : "-", aws_error_name(r->error), r->message ? r->message : "-");
    if (r->error == AWS_ERR_QUOTA_EXCEEDED) {
        snprintf(o->ap->quota, sizeof o->ap->quota, "%s", o->error);
        o->ap->quota_at_ms = clock_now_ms();
    }
    return o->error;
}

/* Starts IVS call operation with body (stolen); next hears the answer.
 * Returns 0, or -1 with o ended (later). */
static int call(struct op *o, const char *operation, json_t *body, aws_call_fn next)
{
    int rc = body ? aws_call(o->ap->client, operation, body, next, o) : -1;
    json_decref(body);
    if (rc < 0)
        fail_later(o, "cannot call IVS: out of memory or shutting down");
    return rc;
}

static struct op *op_new(struct stage_provider *p, enum op_kind kind, void (*fn)(void), void *arg)
{
    struct op *o = calloc(1, sizeof *o);
    if (!o) {
        log_error("aws provider: out of memory");
        return NULL;
    }
    *o = (struct op){.ap = (struct aws_provider *)p, .kind = kind, .fn = fn, .arg = arg};
    return o;
}
#define OP(kind, fn) op_new(p, kind, (void (*)(void))(fn), arg)

/* The answer's member `name`, or the error words when the call failed. */
static const json_t *answered(struct op *o, const struct aws_result *r, const char *name,
                              const char **error)
{
    *error = r->error == AWS_OK ? NULL : describe(o, r);
    return *error ? NULL : json_object_get(r->json, name);
}

/* One page of a List answer: its array `name` and, in *next, its
 * nextToken (NULL at the end; borrowed from r). NULL with *error set when
 * the call failed, or the answer is not a page IVS would give: no `name`
 * array, more than `asked` items, the nextToken of the page before again,
 * or more than max_pages pages (a list that never ends). */
static const json_t *page_of(struct op *o, const struct aws_result *r, const char *name,
                             size_t asked, int max_pages, const char **next, const char **error)
{
    const json_t *list = answered(o, r, name, error);
    *next = NULL;
    if (*error)
        return NULL;
    const char *token = json_string_value(json_object_get(r->json, "nextToken"));
    bool more = token && *token;
    char what[200] = "";
    if (!json_is_array(list))
        snprintf(what, sizeof what, "an answer without a %s array", name);
    else if (json_array_size(list) > asked)
        snprintf(what, sizeof what, "%zu %s in one page, more than the %zu asked",
                 json_array_size(list), name, asked);
    else if (more && o->token && strcmp(token, o->token) == 0)
        snprintf(what, sizeof what, "the nextToken of the page before again (a list that never ends)");
    else if (more && ++o->pages >= max_pages)
        snprintf(what, sizeof what, "page %d with a nextToken still (a list that never ends)",
                 o->pages);
    free(o->token);
    o->token = more ? strdup(token) : NULL;
    if (!what[0] && more && !o->token)
        snprintf(what, sizeof what, "a nextToken usher had no memory to keep");
    if (what[0]) {
        snprintf(o->error, sizeof o->error, "%s: IVS answered %s", r->operation, what);
        *error = o->error;
        return NULL;
    }
    *next = o->token;
    return list;
}

/* ------------------------------------------------------------------------
 * Stages
 * --------------------------------------------------------------------- */

/* Whether url is scheme://host[...] of at most STAGE_ENDPOINT_MAX bytes,
 * without user info and without bytes a URL in a token must not hold. */
static bool url_ok(const char *url, const char *scheme)
{
    size_t n = strlen(scheme);
    if (strlen(url) > STAGE_ENDPOINT_MAX || strncmp(url, scheme, n) != 0 ||
        strncmp(url + n, "://", 3) != 0)
        return false;
    const char *host = url + n + 3;
    size_t hlen = strcspn(host, "/?#");
    if (hlen == 0 || memchr(host, '@', hlen))
        return false;
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f || strchr("\"<>\\^`{|}", *p))
            return false;
    return true;
}

/* What is wrong with an IVS Stage object, or NULL: an ARN outside
 * ivs/ids.h's grammar, endpoints that are not an https WHIP URL and a wss
 * or https events URL (an absent endpoints object or member is no fault:
 * usher asks GetStage for them when it needs them). */
static const char *stage_fault(const json_t *stage)
{
    const char *arn = json_string_value(json_object_get(stage, "arn"));
    const json_t *ep = json_object_get(stage, "endpoints");
    const json_t *whip = json_object_get(ep, "whip"), *events = json_object_get(ep, "events");
    if (!json_is_object(stage))
        return "no stage object";
    if (!arn || !valid_stage_arn(arn))
        return "a stage ARN outside arn:aws:ivs:{region}:{account}:stage/{id}";
    if (ep && !json_is_object(ep))
        return "stage endpoints that are no object";
    if (whip && !(json_is_string(whip) && url_ok(json_string_value(whip), "https")))
        return "a stage whip endpoint that is not an https URL";
    if (events && !(json_is_string(events) && (url_ok(json_string_value(events), "wss") ||
                                               url_ok(json_string_value(events), "https"))))
        return "a stage events endpoint that is not a wss or https URL";
    return NULL;
}

static void stage_answered(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    const char *error;
    const json_t *stage = answered(o, r, "stage", &error);
    const char *fault = error ? NULL : stage_fault(stage);
    if (!error && !fault && o->source &&
        strcmp(json_string_value(json_object_get(stage, "arn")), o->source) != 0)
        fault = "a stage other than the one asked for";
    if (fault) {
        snprintf(o->error, sizeof o->error, "%s: IVS answered %s", r->operation, fault);
        error = o->error;
    }
    op_end(o, error, stage, NULL);
}

/* IVS takes [a-zA-Z0-9-_]{0,128} as a name; usher keeps the name as given
 * in its own record, and gives IVS the name with other bytes as '-'. */
static json_t *ivs_name(const char *name)
{
    char out[STAGE_NAME_MAX + 1];
    size_t n = 0;
    for (; name && name[n] && n < STAGE_NAME_MAX; n++) {
        char c = name[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        out[n] = ok ? c : '-';
    }
    out[n] = '\0';
    return json_string(out);
}

/* The operator's tags plus usher's own; a new reference. */
static json_t *stage_tags(const struct config *cfg, const json_t *tags)
{
    json_t *all = tags ? json_deep_copy(tags) : json_object();
    if (all && (json_object_set_new(all, USHER_TAG_MANAGED, json_string("true")) < 0 ||
                json_object_set_new(all, USHER_TAG_STREAM,
                                    json_string(provider_stream_name(cfg))) < 0)) {
        json_decref(all);
        return NULL;
    }
    return all;
}

static void aws_create(struct stage_provider *p, const char *name, const json_t *tags,
                       provider_stage_fn done, void *arg)
{
    struct op *o = OP(OP_STAGE, done);
    json_t *all = o ? stage_tags(p->cfg, tags) : NULL;
    if (o)
        call(o, "CreateStage", all ? json_pack("{s:o, s:o}", "name", ivs_name(name), "tags", all) : NULL,
             stage_answered);
}

static bool op_arns(struct op *o, const char *source, const char *dest);

/* The answer must be the stage asked for (o->source). */
static void aws_get(struct stage_provider *p, const char *arn, provider_stage_fn done, void *arg)
{
    struct op *o = OP(OP_STAGE, done);
    if (o && op_arns(o, arn, NULL))
        call(o, "GetStage", json_pack("{s:s}", "arn", arn), stage_answered);
}

static void call_done(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    op_end(o, r->error == AWS_OK ? NULL : describe(o, r), NULL, NULL);
}

static void aws_rename(struct stage_provider *p, const char *arn, const char *name,
                       provider_done_fn done, void *arg)
{
    struct op *o = OP(OP_DONE, done);
    if (o)
        call(o, "UpdateStage", json_pack("{s:s, s:o}", "arn", arn, "name", ivs_name(name)), call_done);
}

/* A stage already gone is deleted. */
static void deleted(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    bool gone = r->error == AWS_OK || r->error == AWS_ERR_NOT_FOUND;
    op_end(o, gone ? NULL : describe(o, r), NULL, NULL);
}

static void aws_delete(struct stage_provider *p, const char *arn, provider_done_fn done, void *arg)
{
    struct op *o = OP(OP_DONE, done);
    if (o)
        call(o, "DeleteStage", json_pack("{s:s}", "arn", arn), deleted);
}

/* One page of ListStages: ours kept, then the next page or the end. */
static void stages_listed(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    const char *error, *next;
    const json_t *stages = page_of(o, r, "stages", PAGE_MAX, PAGES_MAX, &next, &error), *s;
    if (error) {
        op_end(o, error, NULL, NULL);
        return;
    }
    size_t i;
    json_array_foreach(stages, i, s) {
        if (!provider_tags_ours(o->ap->base.cfg, json_object_get(s, "tags")))
            continue;
        const char *fault = stage_fault(s);
        if (fault) {
            snprintf(o->error, sizeof o->error, "%s: IVS answered %s", r->operation, fault);
            op_end(o, o->error, NULL, NULL);
            return;
        }
        json_array_append(o->found, (json_t *)s);
    }
    if (!next) {
        op_end(o, NULL, NULL, NULL);
        return;
    }
    call(o, "ListStages", json_pack("{s:i, s:s}", "maxResults", PAGE_MAX, "nextToken", next),
         stages_listed);
}

static void aws_list(struct stage_provider *p, provider_list_fn done, void *arg)
{
    struct op *o = OP(OP_LIST, done);
    if (o && !(o->found = json_array())) {
        fail_later(o, "out of memory");
        return;
    }
    if (o)
        call(o, "ListStages", json_pack("{s:i}", "maxResults", PAGE_MAX), stages_listed);
}

/* ------------------------------------------------------------------------
 * The publisher and replication
 * --------------------------------------------------------------------- */

/* After the publisher is known (o->participant, "" for nobody). */
typedef void (*publisher_next_fn)(struct op *o);

static void publisher_found(struct op *o);

/* The publisher: connected, published, and no replica (a replica keeps the
 * source's id but cannot be a source). */
static const char *publisher_in(const json_t *participants)
{
    const json_t *pt;
    size_t i;
    json_array_foreach(participants, i, pt) {
        const char *state = json_string_value(json_object_get(pt, "state"));
        const char *type = json_string_value(json_object_get(pt, "replicationType"));
        const char *id = json_string_value(json_object_get(pt, "participantId"));
        if (id && state && strcmp(state, "CONNECTED") == 0 && json_is_true(json_object_get(pt, "published")) &&
            !(type && strcmp(type, "REPLICA") == 0) && valid_participant_id(id))
            return id;
    }
    return NULL;
}

static void participants_listed(void *arg, const struct aws_result *r);

static void list_participants(struct op *o, const char *session, const char *next)
{
    json_t *body = json_pack("{s:s, s:s, s:b, s:i}", "stageArn", o->source, "sessionId", session,
                             "filterByPublished", 1, "maxResults", PAGE_MAX);
    if (body && next)
        json_object_set_new(body, "nextToken", json_string(next));
    if (session != o->session)
        snprintf(o->session, sizeof o->session, "%s", session);
    call(o, "ListParticipants", body, participants_listed);
}

static void participants_listed(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    const char *error, *next;
    const json_t *list = page_of(o, r, "participants", PAGE_MAX, PAGES_MAX, &next, &error);
    if (error) {
        op_end(o, error, NULL, NULL);
        return;
    }
    const char *id = publisher_in(list);
    if (!id && next) {
        list_participants(o, o->session, next);
        return;
    }
    snprintf(o->participant, sizeof o->participant, "%s", id ? id : "");
    publisher_found(o);
}

/* GetStage for the active session, then ListParticipants in it. */
static void source_read(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    const char *error;
    const json_t *stage = answered(o, r, "stage", &error);
    if (error) {
        op_end(o, error, NULL, NULL);
        return;
    }
    const char *session = json_string_value(json_object_get(stage, "activeSessionId"));
    if (!session || !*session) {
        o->participant[0] = '\0';   /* no session: nobody is there */
        publisher_found(o);
        return;
    }
    list_participants(o, session, NULL);
}

/* What each operation does once the publisher is known. */
static void replication_answered(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    /* 409: this replication runs already (a start whose answer was lost);
     * 404 on a stop: it had stopped. */
    bool starting = o->step == STEP_START;
    bool fine = r->error == AWS_OK || r->error == (starting ? AWS_ERR_CONFLICT : AWS_ERR_NOT_FOUND);
    op_end(o, fine ? NULL : describe(o, r), NULL, o->participant);
}

/* Starts or stops the replication of o->participant from o->source to o->dest. */
static void replicate(struct op *o)
{
    call(o, o->step == STEP_START ? "StartParticipantReplication" : "StopParticipantReplication",
         json_pack("{s:s, s:s, s:s}", "sourceStageArn", o->source, "destinationStageArn", o->dest,
                   "participantId", o->participant),
         replication_answered);
}

static void publisher_found(struct op *o)
{
    if (o->step == STEP_FIND) {
        op_end(o, NULL, NULL, o->participant);
        return;
    }
    if (!o->participant[0]) {        /* a stop has nothing to stop */
        bool starting = o->step == STEP_START;
        if (starting)
            snprintf(o->error, sizeof o->error, "nobody is publishing in %s", o->source);
        op_end(o, starting ? o->error : NULL, NULL, NULL);
        return;
    }
    replicate(o);
}

/* Copies the ARNs o needs; false (o ended, later) when out of memory. */
static bool op_arns(struct op *o, const char *source, const char *dest)
{
    o->source = strdup(source);
    o->dest = dest ? strdup(dest) : NULL;
    if (!o->source || (dest && !o->dest)) {
        fail_later(o, "out of memory");
        return false;
    }
    return true;
}

/* Reads the publisher of source, then publisher_found. */
static void find_in(struct op *o, const char *source, const char *dest)
{
    if (op_arns(o, source, dest))
        call(o, "GetStage", json_pack("{s:s}", "arn", source), source_read);
}

static void aws_find_publisher(struct stage_provider *p, const char *arn, provider_text_fn done,
                               void *arg)
{
    struct op *o = OP(OP_TEXT, done);
    if (o)
        find_in(o, arn, NULL);
}

static void aws_start(struct stage_provider *p, const char *source, const char *dest,
                      provider_text_fn done, void *arg)
{
    struct op *o = OP(OP_TEXT, done);
    if (!o)
        return;
    o->step = STEP_START;
    find_in(o, source, dest);
}

static void aws_stop(struct stage_provider *p, const char *source, const char *dest,
                     const char *participant_id, provider_done_fn done, void *arg)
{
    struct op *o = OP(OP_DONE, done);
    if (!o)
        return;
    o->step = STEP_STOP;
    if (!participant_id) {
        find_in(o, source, dest);
        return;
    }
    if (strlen(participant_id) > PARTICIPANT_ID_MAX) {
        fail_later(o, "participant id longer than IVS allows");
        return;
    }
    snprintf(o->participant, sizeof o->participant, "%s", participant_id);
    if (op_arns(o, source, dest))
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
    if (body && next)
        json_object_set_new(body, "nextToken", json_string(next));
    call(o, "ListParticipantReplicas", body, replicas_listed);
}

/* One page: each ParticipantReplica kept as {dest, session, active}. */
static void replicas_listed(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    const char *error, *next;
    const json_t *list = page_of(o, r, "replicas", REPLICAS_PAGE_MAX, PAGES_MAX, &next, &error), *rp;
    if (error) {
        op_end(o, error, NULL, NULL);
        return;
    }
    size_t i;
    json_array_foreach(list, i, rp) {
        const char *dest = json_string_value(json_object_get(rp, "destinationStageArn"));
        const char *session = json_string_value(json_object_get(rp, "destinationSessionId"));
        const char *state = json_string_value(json_object_get(rp, "replicationState"));
        if (!dest || !valid_stage_arn(dest)) {
            snprintf(o->error, sizeof o->error, "%s: IVS answered a replica whose "
                     "destinationStageArn is no stage ARN", r->operation);
            op_end(o, o->error, NULL, NULL);
            return;
        }
            json_array_append_new(o->found, json_pack("{s:s, s:s, s:b}", "dest", dest, "session",
                                                      session ? session : "", "active",
                                                      state && strcmp(state, "ACTIVE") == 0));
    }
    if (next)
        replicas_ask(o, next);
    else
        op_end(o, NULL, NULL, NULL);
}

static void aws_list_replicas(struct stage_provider *p, const char *source,
                              const char *participant_id, provider_replicas_fn done, void *arg)
{
    struct op *o = OP(OP_REPLICAS, done);
    if (!o)
        return;
    if (strlen(participant_id) > PARTICIPANT_ID_MAX) {
        fail_later(o, "participant id longer than IVS allows");
        return;
    }
    snprintf(o->participant, sizeof o->participant, "%s", participant_id);
    if (!(o->found = json_array())) {
        fail_later(o, "out of memory");
        return;
    }
    if (op_arns(o, source, NULL))
        replicas_ask(o, NULL);
}

/* ------------------------------------------------------------------------
 * Participants: who is in a stage, and disconnecting one
 * --------------------------------------------------------------------- */

/* IVS's ParticipantSummary, kept as {id, userId, state, firstJoinTime,
 * published, replica} (firstJoinTime as ISO 8601 text whether IVS sent a
 * string or epoch seconds). NULL when it has no participant id. */
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
    if (!id || !valid_participant_id(id))
        return NULL;
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
    if (body && q->connected_only)
        json_object_set_new(body, "filterByState", json_string("CONNECTED"));
    if (body && o->next)
        json_object_set_new(body, "nextToken", json_string(o->next));
    call(o, "ListParticipants", body, page_listed);
}

static void page_listed(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    const char *error, *next;
    const json_t *list = page_of(o, r, "participants", (size_t)o->query.max_results, PAGES_MAX,
                                 &next, &error), *pt;
    if (error) {
        op_end(o, error, NULL, NULL);
        return;
    }
    size_t i;
    json_array_foreach(list, i, pt) {
        json_t *kept = participant_kept(pt);
        if (kept)
            json_array_append_new(o->found, kept);
    }
    free(o->next);
    o->next = next ? strdup(next) : NULL;
    if (o->next && o->query.all_pages)
        page_ask(o);
    else
        op_end(o, NULL, NULL, NULL);
}

/* The stage read: its active session is listed (none: nobody is there). */
static void session_read(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    const char *error;
    const json_t *stage = answered(o, r, "stage", &error);
    const char *session = json_string_value(json_object_get(stage, "activeSessionId"));
    if (error || !session || !*session) {
        op_end(o, error, NULL, NULL);
        return;
    }
    snprintf(o->session, sizeof o->session, "%s", session);
    page_ask(o);
}

static void aws_list_participants(struct stage_provider *p, const struct participant_query *q,
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
        fail_later(o, "out of memory");
        return;
    }
    if (q->session && *q->session) {
        snprintf(o->session, sizeof o->session, "%s", q->session);
        page_ask(o);
        return;
    }
    call(o, "GetStage", json_pack("{s:s}", "arn", q->arn), session_read);
}

/* 404: IVS does not know the participant (gone already): no error. */
static void disconnected(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    bool gone = r->error == AWS_OK || r->error == AWS_ERR_NOT_FOUND;
    op_end(o, gone ? NULL : describe(o, r), NULL, NULL);
}

static void aws_disconnect(struct stage_provider *p, const char *arn, const char *participant_id,
                           const char *reason, provider_done_fn done, void *arg)
{
    struct op *o = OP(OP_DONE, done);
    if (!o)
        return;
    json_t *body = json_pack("{s:s, s:s}", "stageArn", arn, "participantId", participant_id);
    if (body && reason && *reason)
        json_object_set_new(body, "reason", json_string(reason));
    call(o, "DisconnectParticipant", body, disconnected);
}

static bool aws_knows_participants(struct stage_provider *p)
{
    (void)p;
    return true;
}

/* ------------------------------------------------------------------------
 * Start-up: the public key, then MASTER_STAGE_ARN
 * --------------------------------------------------------------------- */

/* Whether two PEM public keys are the same key. */
static bool same_key(const char *a, const char *b)
{
    BIO *ba = BIO_new_mem_buf(a, -1), *bb = BIO_new_mem_buf(b, -1);
    EVP_PKEY *ka = ba ? PEM_read_bio_PUBKEY(ba, NULL, NULL, NULL) : NULL;
    EVP_PKEY *kb = bb ? PEM_read_bio_PUBKEY(bb, NULL, NULL, NULL) : NULL;
    bool same = ka && kb && EVP_PKEY_eq(ka, kb) == 1;
    EVP_PKEY_free(ka), EVP_PKEY_free(kb);
    BIO_free(ba), BIO_free(bb);
    return same;
}

static void master_read(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    const char *arn = o->ap->base.cfg->master_stage_arn;
    if (r->error != AWS_OK) {
        char why[ERROR_MAX];
        snprintf(why, sizeof why, "%s", describe(o, r));
        snprintf(o->error, sizeof o->error,
                 "MASTER_STAGE_ARN: the stage %s %s with these credentials (%s)", arn,
                 r->error == AWS_ERR_NOT_FOUND ? "does not exist" : "cannot be read", why);
        op_end(o, o->error, NULL, NULL);
        return;
    }
    log_info("aws provider: MASTER_STAGE_ARN %s exists", arn);
    op_end(o, NULL, NULL, o->kid);
}

/* The key is settled (o->kid): the master stage next, when one is named. */
static void key_settled(struct op *o)
{
    const char *master = o->ap->base.cfg->master_stage_arn;
    if (!master[0]) {
        op_end(o, NULL, NULL, o->kid);
        return;
    }
    call(o, "GetStage", json_pack("{s:s}", "arn", master), master_read);
}

static void key_imported(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    const char *error;
    const json_t *key = answered(o, r, "publicKey", &error);
    const char *arn = json_string_value(json_object_get(key, "arn"));
    if (!error && !(arn && valid_public_key_arn(arn)))
        error = "ImportPublicKey: IVS answered no public key ARN";
    if (error) {
        snprintf(o->error, sizeof o->error,
                 "IVS_PUBLIC_KEY_ARN is not set and the signing key could not be imported (%s)%s",
                 error,
                 r->error == AWS_ERR_QUOTA_EXCEEDED
                     ? ": IVS holds 3 public keys per region; delete one (DeletePublicKey) or "
                       "set IVS_PUBLIC_KEY_ARN to one whose private key usher signs with"
                     : "");
        op_end(o, o->error, NULL, NULL);
        return;
    }
    log_info("aws provider: imported the signing key's public half as %s", arn);
    snprintf(o->kid, sizeof o->kid, "%s", arn);
    key_settled(o);
}

static void next_key(struct op *o);

/* One candidate key read: ours ends the search. */
static void candidate_read(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    const char *error;
    const json_t *key = answered(o, r, "publicKey", &error);
    const char *pem = json_string_value(json_object_get(key, "publicKeyMaterial"));
    if (error) {
        op_end(o, error, NULL, NULL);
        return;
    }
    const char *arn = json_string_value(json_object_get(key, "arn"));
    if (pem && same_key(pem, o->pem)) {
        if (!arn || !valid_public_key_arn(arn)) {
            snprintf(o->error, sizeof o->error, "%s: IVS answered our key without a public key ARN",
                     r->operation);
            op_end(o, o->error, NULL, NULL);
            return;
        }
        snprintf(o->kid, sizeof o->kid, "%s", arn);
        log_info("aws provider: the signing key is imported already as %s", o->kid);
        key_settled(o);
        return;
    }
    next_key(o);
}

/* Reads the keys listed one by one (the list holds no material); none
 * ours: ImportPublicKey. */
static void next_key(struct op *o)
{
    const char *arn = json_string_value(json_array_get(o->found, o->next_key++));
    if (arn) {
        call(o, "GetPublicKey", json_pack("{s:s}", "arn", arn), candidate_read);
        return;
    }
    json_t *tags = stage_tags(o->ap->base.cfg, NULL);
    call(o, "ImportPublicKey",
         tags ? json_pack("{s:s, s:s, s:o}", "publicKeyMaterial", o->pem, "name", "usher", "tags", tags)
              : NULL,
         key_imported);
}

static void keys_listed(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    const char *error, *next;
    const json_t *keys = page_of(o, r, "publicKeys", PAGE_MAX, KEY_PAGES_MAX, &next, &error), *k;
    if (error) {
        op_end(o, error, NULL, NULL);
        return;
    }
    size_t i;
    json_array_foreach(keys, i, k)
        if (json_string_value(json_object_get(k, "arn")))
            json_array_append(o->found, json_object_get(k, "arn"));
    if (next)
        call(o, "ListPublicKeys", json_pack("{s:i, s:s}", "maxResults", PAGE_MAX, "nextToken", next),
             keys_listed);
    else
        next_key(o);
}

/* IVS_PUBLIC_KEY_ARN read: its material must be our public half. */
static void configured_key_read(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    const char *arn = o->ap->base.cfg->public_key_arn;
    const char *error;
    const json_t *key = answered(o, r, "publicKey", &error);
    const char *pem = json_string_value(json_object_get(key, "publicKeyMaterial"));
    if (error || !pem || !same_key(pem, o->pem)) {
        char why[ERROR_MAX];
        snprintf(why, sizeof why, "%s", error ? error : "");
        snprintf(o->error, sizeof o->error,
                 error ? "IVS_PUBLIC_KEY_ARN: the key %s cannot be read (%s)"
                       : "IVS_PUBLIC_KEY_ARN: the key %s is not the public half of usher's signing key%s; "
                         "import GET /api/token/public-key's publicKeyPem (ImportPublicKey) and set its ARN, "
                         "point TOKEN_PRIVATE_KEY_FILE at that key's private half, or unset "
                         "IVS_PUBLIC_KEY_ARN so usher imports its key itself",
                 arn, why);
        op_end(o, o->error, NULL, NULL);
        return;
    }
    snprintf(o->kid, sizeof o->kid, "%s", arn);
    key_settled(o);
}

static void aws_prepare(struct stage_provider *p, const char *public_pem, provider_text_fn done,
                        void *arg)
{
    struct op *o = OP(OP_TEXT, done);
    if (!o)
        return;
    if (!(o->pem = strdup(public_pem)) || !(o->found = json_array())) {
        fail_later(o, "out of memory");
        return;
    }
    if (p->cfg->public_key_arn[0])
        call(o, "GetPublicKey", json_pack("{s:s}", "arn", p->cfg->public_key_arn), configured_key_read);
    else
        call(o, "ListPublicKeys", json_pack("{s:i}", "maxResults", PAGE_MAX), keys_listed);
}

/* ------------------------------------------------------------------------
 * Health and life
 * --------------------------------------------------------------------- */

static json_t *aws_health(struct stage_provider *p)
{
    struct aws_provider *ap = (struct aws_provider *)p;
    int64_t now = clock_now_ms();
    struct aws_client_last last = aws_client_last(ap->client);
    struct aws_client_recent recent = aws_client_recent(ap->client, now);
    json_t *h = json_pack("{s:s, s:I, s:I}", "credentials", aws_client_credentials_source(ap->client),
                          "throttlesLastMinute", (json_int_t)recent.throttles,
                          "errorsLastMinute", (json_int_t)recent.errors);
    json_object_set_new(h, "lastCall", last.at_ms
        ? json_pack("{s:s, s:s, s:I}", "operation", last.operation, "outcome", aws_error_name(last.error),
                    "ageMs", (json_int_t)(now - last.at_ms))
        : json_null());
    json_object_set_new(h, "lastQuotaExceeded", ap->quota[0]
        ? json_pack("{s:s, s:I}", "error", ap->quota, "ageMs", (json_int_t)(now - ap->quota_at_ms))
        : json_null());
    return h;
}

static void aws_free(struct stage_provider *p)
{
    struct aws_provider *ap = (struct aws_provider *)p;
    aws_client_free(ap->client);    /* ends calls still running: their ops end */
    free(ap);
}

static const struct stage_provider_ops aws_ops = {
    .name = "aws",
    .replication_quota = true,
    .prepare = aws_prepare,
    .create_stage = aws_create,
    .get_stage = aws_get,
    .list_stages = aws_list,
    .rename_stage = aws_rename,
    .delete_stage = aws_delete,
    .find_publisher = aws_find_publisher,
    .start_replication = aws_start,
    .stop_replication = aws_stop,
    .list_replicas = aws_list_replicas,
    .knows_participants = aws_knows_participants,
    .list_participants = aws_list_participants,
    .disconnect_participant = aws_disconnect,
    .health = aws_health,
    .free = aws_free,
};

struct aws_client *aws_provider_client(struct stage_provider *p)
{
    return p->ops == &aws_ops ? ((struct aws_provider *)p)->client : NULL;
}

struct stage_provider *aws_provider_new(struct event_base *base, const struct config *cfg,
                                        struct aws_client *client)
{
    struct aws_provider *ap = calloc(1, sizeof *ap);
    if (!ap) {
        aws_client_free(client);
        return NULL;
    }
    ap->base = (struct stage_provider){&aws_ops, cfg, base};
    ap->client = client;
    return &ap->base;
}
