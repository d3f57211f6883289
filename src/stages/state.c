/* state.c — see state.h. */
#include "stages/state.h"

#include <stdio.h>
#include <string.h>

static const char *const mode_names[] = {
    [MODE_OPEN] = "open", [MODE_WAITING] = "waiting", [MODE_DRAINING] = "draining",
};
static const char *const replication_names[] = {
    [REPL_NONE] = "none", [REPL_PENDING] = "pending", [REPL_RUNNING] = "running",
    [REPL_FAILED] = "failed",
};

const char *stage_mode_name(enum stage_mode mode) { return mode_names[mode]; }

enum stage_mode stage_mode_of(const char *name)
{
    for (int m = MODE_WAITING; name && m <= MODE_DRAINING; m++)
        if (strcmp(name, mode_names[m]) == 0)
            return (enum stage_mode)m;
    return MODE_OPEN;
}

const char *replication_name(enum replication_state r) { return replication_names[r]; }

enum replication_state replication_of(const char *name)
{
    if (!name)
        return REPL_NONE;
    for (int r = REPL_NONE; r <= REPL_FAILED; r++)
        if (strcmp(name, replication_names[r]) == 0)
            return (enum replication_state)r;
    return REPL_PENDING;
}

char *stage_state_json(const struct stage_state *st)
{
    json_t *doc = json_pack("{s:s, s:I}", "replication", replication_name(st->replication),
                            "attempts", (json_int_t)st->attempts);
    if (!doc)
        return NULL;
    if (st->retry_at_ms)
        json_object_set_new(doc, "retryAt", json_integer(st->retry_at_ms));
    if (st->draining_since_ms)
        json_object_set_new(doc, "drainingSince", json_integer(st->draining_since_ms));
    if (st->error[0])
        json_object_set_new(doc, "error", json_string(st->error));
    if (st->participant[0])
        json_object_set_new(doc, "participant", json_string(st->participant));
    if (st->running_since_ms)
        json_object_set_new(doc, "runningSince", json_integer(st->running_since_ms));
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return text;
}

void stage_state_parse(const char *json, struct stage_state *out)
{
    *out = (struct stage_state){0};
    json_t *doc = json && json[0] ? json_loads(json, 0, NULL) : NULL;
    if (!json_is_object(doc)) {
        json_decref(doc);
        return;
    }
    out->replication = replication_of(json_string_value(json_object_get(doc, "replication")));
    out->attempts = (long)json_integer_value(json_object_get(doc, "attempts"));
    out->retry_at_ms = json_integer_value(json_object_get(doc, "retryAt"));
    out->draining_since_ms = json_integer_value(json_object_get(doc, "drainingSince"));
    const char *error = json_string_value(json_object_get(doc, "error"));
    snprintf(out->error, sizeof out->error, "%s", error ? error : "");
    const char *participant = json_string_value(json_object_get(doc, "participant"));
    snprintf(out->participant, sizeof out->participant, "%s", participant ? participant : "");
    out->running_since_ms = json_integer_value(json_object_get(doc, "runningSince"));
    json_decref(doc);
}

json_t *stage_info_new(const char *arn, const char *name, bool auto_scaled,
                       const char *created_at, const char *parent)
{
    json_t *doc = json_pack("{s:s, s:s, s:b, s:s}", "name", name, "arn", arn,
                            "autoScaled", auto_scaled, "createdAt", created_at);
    if (doc && parent)
        json_object_set_new(doc, "parentStage", json_string(parent));
    return doc;
}

void stage_info_parse(const char *json, struct stage_info *out)
{
    *out = (struct stage_info){0};
    json_t *doc = json && json[0] ? json_loads(json, 0, NULL) : NULL;
    if (!json_is_object(doc)) {
        json_decref(doc);
        return;
    }
    out->doc = doc;
    out->arn = json_string_value(json_object_get(doc, "arn"));
    out->name = json_string_value(json_object_get(doc, "name"));
    out->created_at = json_string_value(json_object_get(doc, "createdAt"));
    out->parent = json_string_value(json_object_get(doc, "parentStage"));
    out->auto_scaled = json_is_true(json_object_get(doc, "autoScaled"));
}

void stage_info_clear(struct stage_info *info)
{
    json_decref(info->doc);
    *info = (struct stage_info){0};
}
