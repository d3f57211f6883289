/* aws_op.c — the steps every operation of the AWS provider takes (see
 * aws_op.h): made, calls IVS one call after another, reads each answer
 * (a page of a List answer checked as IVS would give it), and ends by
 * calling its caller once with what the caller's callback type holds. */
#include "ivs/aws_op.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/log.h"

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
    if (n)
        provider_participants_of(o->found, list);
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

/* Calls o's caller back as op_end says, without freeing o. */
static void op_answer(struct op *o, const char *error, const json_t *stage, const char *text)
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
}

void op_end(struct op *o, const char *error, const json_t *stage, const char *text)
{
    op_answer(o, error, stage, text);
    op_free(o);
}

static void end_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct op *o = arg;
    op_end(o, o->error, NULL, NULL);
}

void op_fail_later(struct op *o, const char *error)
{
    static const struct timeval now = {0, 0};
    snprintf(o->error, sizeof o->error, "%s", error);
    if (event_base_once(o->ap->base.base, -1, EV_TIMEOUT, end_later, o, &now) != 0)
        op_end(o, error, NULL, NULL);
}

/* ------------------------------------------------------------------------
 * Calling IVS and reading its answers
 * --------------------------------------------------------------------- */

const char *op_describe(struct op *o, const struct aws_result *r)
{
    snprintf(o->error, ERROR_MAX, "%s: %s (%s): %.200s", r->operation,
             r->code ? r->code : "-", aws_error_name(r->error), r->message ? r->message : "-");
    if (r->error == AWS_ERR_QUOTA_EXCEEDED) {
        snprintf(o->ap->quota, sizeof o->ap->quota, "%s", o->error);
        o->ap->quota_at_ms = clock_now_ms();
    }
    return o->error;
}

int op_call(struct op *o, const char *operation, json_t *body, aws_call_fn next)
{
    int rc = body ? aws_call(o->ap->client, operation, body, next, o) : -1;
    json_decref(body);
    if (rc < 0)
        op_fail_later(o, "cannot call IVS: out of memory or shutting down");
    return rc;
}

struct op *op_new(struct stage_provider *p, enum op_kind kind, void (*fn)(void), void *arg)
{
    struct op *o = calloc(1, sizeof *o);
    if (!o) {
        /* No memory to answer later: the answer comes at once. */
        struct op failed = {.ap = (struct aws_provider *)p, .kind = kind, .fn = fn, .arg = arg};
        log_error("aws provider: out of memory");
        op_answer(&failed, "out of memory", NULL, NULL);
        return NULL;
    }
    *o = (struct op){.ap = (struct aws_provider *)p, .kind = kind, .fn = fn, .arg = arg};
    return o;
}

const char *op_refused(struct op *o, const struct aws_result *r, const char *what)
{
    snprintf(o->error, sizeof o->error, "%s: IVS answered %s", r->operation, what);
    return o->error;
}

const json_t *op_answered(struct op *o, const struct aws_result *r, const char *name,
                          const char **error)
{
    *error = r->error == AWS_OK ? NULL : op_describe(o, r);
    return *error ? NULL : json_object_get(r->json, name);
}

const json_t *op_page(struct op *o, const struct aws_result *r, const char *name, size_t asked,
                      int max_pages, const char **next, const char **error)
{
    const json_t *list = op_answered(o, r, name, error);
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
    if (what[0] || (more && !o->token)) {
        *error = what[0] ? op_refused(o, r, what) : op_short(o, r);
        return NULL;
    }
    *next = o->token;
    return list;
}

json_t *op_member(json_t *body, const char *name, const char *value)
{
    if (body && value && json_object_set_new(body, name, json_string(value)) < 0) {
        json_decref(body);
        return NULL;
    }
    return body;
}

bool op_keep(struct op *o, const struct aws_result *r, json_t *item)
{
    if (json_array_append_new(o->found, item) == 0)
        return true;
    op_end(o, op_short(o, r), NULL, NULL);
    return false;
}

const char *op_short(struct op *o, const struct aws_result *r)
{
    snprintf(o->error, sizeof o->error,
             "%s: out of memory keeping a page (the list would have been short)", r->operation);
    return o->error;
}

bool op_arns(struct op *o, const char *source, const char *dest)
{
    o->source = strdup(source);
    o->dest = dest ? strdup(dest) : NULL;
    if (!o->source || (dest && !o->dest)) {
        op_fail_later(o, "out of memory");
        return false;
    }
    return true;
}

void op_gone(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    bool gone = r->error == AWS_OK || r->error == AWS_ERR_NOT_FOUND;
    op_end(o, gone ? NULL : op_describe(o, r), NULL, NULL);
}
