/* aws_stages.c — the AWS provider's stage operations: CreateStage,
 * GetStage, ListStages (usher's own, by tag), UpdateStage (a rename) and
 * DeleteStage, each answer checked before usher records any of it. IVS
 * facts used here (../shared/aws/README.md and the API model): stage names
 * match [a-zA-Z0-9-_]{0,128}; CreateStage and GetStage return the stage's
 * endpoints (the WHIP host is not the stage id). */
#include "ivs/aws_op.h"

#include <stdio.h>
#include <string.h>

#define STAGE_NAME_MAX 128           /* StageName */

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

const char *stage_session(const json_t *stage, const char **fault)
{
    const json_t *v = json_object_get(stage, "activeSessionId");
    const char *session = !v || json_is_null(v) ? "" : json_string_value(v);
    *fault = NULL;
    if (session && (!*session || valid_session_id(session)))
        return session;
    *fault = "an activeSessionId outside " SESSION_ID_FORM;
    return NULL;
}

/* What is wrong with an IVS Stage object, or NULL: an ARN or an
 * activeSessionId outside ivs/ids.h's grammar, endpoints that are not an https WHIP URL and a wss
 * or https events URL (an absent endpoints object or member is no fault:
 * usher asks GetStage for them when it needs them). */
static const char *stage_fault(const json_t *stage)
{
    const char *arn = json_string_value(json_object_get(stage, "arn"));
    const json_t *ep = json_object_get(stage, "endpoints");
    const json_t *whip = json_object_get(ep, "whip"), *events = json_object_get(ep, "events");
    if (!json_is_object(stage))
        return "no stage object";
    const char *fault;
    if (!arn || !valid_stage_arn(arn))
        return "a stage ARN outside arn:aws:ivs:{region}:{account}:stage/{id}";
    if (!stage_session(stage, &fault))
        return fault;
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
    const json_t *stage = op_answered(o, r, "stage", &error);
    const char *fault = error ? NULL : stage_fault(stage);
    if (!error && !fault && o->source &&
        strcmp(json_string_value(json_object_get(stage, "arn")), o->source) != 0)
        fault = "a stage other than the one asked for";
    op_end(o, fault ? op_refused(o, r, fault) : error, stage, NULL);
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

json_t *stage_tags(const struct config *cfg, const json_t *tags)
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

void aws_create_stage(struct stage_provider *p, const char *name, const json_t *tags,
                      provider_stage_fn done, void *arg)
{
    struct op *o = OP(OP_STAGE, done);
    json_t *all = o ? stage_tags(p->cfg, tags) : NULL;
    if (o)
        op_call(o, "CreateStage",
                all ? json_pack("{s:o, s:o}", "name", ivs_name(name), "tags", all) : NULL,
                stage_answered);
}

/* The answer must be the stage asked for (o->source). */
void aws_get_stage(struct stage_provider *p, const char *arn, provider_stage_fn done, void *arg)
{
    struct op *o = OP(OP_STAGE, done);
    if (o && op_arns(o, arn, NULL))
        op_call(o, "GetStage", json_pack("{s:s}", "arn", arn), stage_answered);
}

static void call_done(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    op_end(o, r->error == AWS_OK ? NULL : op_describe(o, r), NULL, NULL);
}

void aws_rename_stage(struct stage_provider *p, const char *arn, const char *name,
                      provider_done_fn done, void *arg)
{
    struct op *o = OP(OP_DONE, done);
    if (o)
        op_call(o, "UpdateStage", json_pack("{s:s, s:o}", "arn", arn, "name", ivs_name(name)),
                call_done);
}

/* A stage already gone is deleted. */
void aws_delete_stage(struct stage_provider *p, const char *arn, provider_done_fn done, void *arg)
{
    struct op *o = OP(OP_DONE, done);
    if (o)
        op_call(o, "DeleteStage", json_pack("{s:s}", "arn", arn), op_gone);
}

/* One page of ListStages: ours kept, then the next page or the end. */
static void stages_listed(void *arg, const struct aws_result *r)
{
    struct op *o = arg;
    const char *error, *next;
    const json_t *stages = op_page(o, r, "stages", PAGE_MAX, PAGES_MAX, &next, &error), *s;
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
            op_end(o, op_refused(o, r, fault), NULL, NULL);
            return;
        }
        if (!op_keep(o, r, json_incref((json_t *)s)))
            return;
    }
    if (!next) {
        op_end(o, NULL, NULL, NULL);
        return;
    }
    op_call(o, "ListStages", json_pack("{s:i, s:s}", "maxResults", PAGE_MAX, "nextToken", next),
            stages_listed);
}

void aws_list_stages(struct stage_provider *p, provider_list_fn done, void *arg)
{
    struct op *o = OP(OP_LIST, done);
    if (o && !(o->found = json_array())) {
        op_fail_later(o, "out of memory");
        return;
    }
    if (o)
        op_call(o, "ListStages", json_pack("{s:i}", "maxResults", PAGE_MAX), stages_listed);
}
