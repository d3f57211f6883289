/* decode.c — see decode.h. */
#include "store/decode.h"

#include <stdlib.h>
#include <string.h>
#include <jansson.h>

/* Fields per stage in the stats reply, after its header of four. */
enum { STATS_HEADER = 4, STATS_PER_STAGE = 5 };

static bool is_array(const redisReply *r, size_t min)
{
    return r && r->type == REDIS_REPLY_ARRAY && r->elements >= min;
}

static bool is_text(const redisReply *e)
{
    return e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS;
}

/* Element i as text, NULL when it is not text. */
static const char *text_at(const redisReply *r, size_t i)
{
    return is_text(r->element[i]) ? r->element[i]->str : NULL;
}

static bool number_of(const redisReply *e, long long *out)
{
    if (e->type == REDIS_REPLY_INTEGER) {
        *out = e->integer;
        return true;
    }
    char *end;
    if (e->type != REDIS_REPLY_STRING || !e->len)
        return false;
    *out = strtoll(e->str, &end, 10);
    return *end == '\0';
}

enum store_error decode_error(const redisReply *reply)
{
    static const struct { const char *word; enum store_error error; } words[] = {
        {"NOT_LIVE ", STORE_NOT_LIVE},       {"NO_STAGE ", STORE_NO_STAGE},
        {"STAGE_FULL ", STORE_STAGE_FULL},   {"STAGE_LIMIT ", STORE_STAGE_LIMIT},
        {"NOT_LEADER ", STORE_NOT_LEADER},   {"IS_MASTER ", STORE_IS_MASTER},
        {"NOT_EMPTY ", STORE_NOT_EMPTY},     {"NO_ROOM_YET ", STORE_NO_ROOM_YET},
    };
    if (!reply || reply->type != REDIS_REPLY_ERROR)
        return STORE_OK;
    for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
        const char *at = strstr(reply->str, words[i].word);
        /* The word starts the message or follows Redis's wrapping. */
        if (at && (at == reply->str || at[-1] == ' '))
            return words[i].error;
    }
    return STORE_FAILED;
}

enum store_error decode_seat(const redisReply *reply, struct seat *out)
{
    long long viewers, is_new;
    if (!is_array(reply, 5) || !text_at(reply, 0) || !text_at(reply, 1) || !text_at(reply, 4) ||
        !number_of(reply->element[2], &viewers) || !number_of(reply->element[3], &is_new))
        return STORE_FAILED;
    *out = (struct seat){.stage_arn = text_at(reply, 0), .participant_id = text_at(reply, 1),
                         .stage_viewers = viewers, .is_new = is_new == 1,
                         .moved_from = text_at(reply, 4)};
    return STORE_OK;
}

enum store_error decode_heartbeat(const redisReply *reply, struct heartbeat *out)
{
    long long outcome;
    const redisReply *first = is_array(reply, 1) ? reply->element[0] : reply;
    if (!first || first->type == REDIS_REPLY_ARRAY || !number_of(first, &outcome))
        return STORE_FAILED;
    if (outcome == 0)
        return STORE_NO_SEAT;
    if (outcome == 3)
        return STORE_NO_STAGE;
    if (outcome == 1) {
        *out = (struct heartbeat){.moved = false};
        return STORE_OK;
    }
    if (outcome != 2 || !is_array(reply, 3) || !text_at(reply, 1) || !text_at(reply, 2))
        return STORE_FAILED;
    *out = (struct heartbeat){.moved = true, .stage_arn = text_at(reply, 1),
                              .participant_id = text_at(reply, 2)};
    return STORE_OK;
}

enum store_error decode_text(const redisReply *reply, const char **out)
{
    if (reply && reply->type == REDIS_REPLY_NIL) {
        *out = "";
        return STORE_OK;
    }
    if (!reply || !is_text(reply))
        return STORE_FAILED;
    *out = reply->str;
    return STORE_OK;
}

enum store_error decode_number(const redisReply *reply, long long *out)
{
    if (reply && reply->type == REDIS_REPLY_NIL) {
        *out = 0;
        return STORE_OK;
    }
    return reply && number_of(reply, out) ? STORE_OK : STORE_FAILED;
}

enum store_error decode_joined(const redisReply *reply, long long *out)
{
    if (reply && reply->type == REDIS_REPLY_NIL)
        return STORE_NO_SEAT;
    if (!reply || reply->type != REDIS_REPLY_STRING)
        return STORE_FAILED;
    json_t *record = json_loads(reply->str, 0, NULL);
    json_t *joined = json_object_get(record, "joinedAt");
    enum store_error err = json_is_number(joined) ? STORE_OK : STORE_NO_SEAT;
    if (err == STORE_OK)
        *out = (long long)json_number_value(joined);
    json_decref(record);
    return err;
}

enum store_error decode_live(const redisReply *reply, long long *out)
{
    const char *status;
    enum store_error err = decode_text(reply, &status);
    if (err == STORE_OK)
        *out = strcmp(status, "live") == 0;
    return err;
}

enum store_error decode_updated(const redisReply *reply)
{
    long long n;
    enum store_error err = decode_number(reply, &n);
    return err == STORE_OK && n != 1 ? STORE_NO_STAGE : err;
}

enum store_error decode_stage_info(const redisReply *reply, struct stage_info *out)
{
    const char *text;
    enum store_error err = decode_text(reply, &text);
    if (err == STORE_OK)
        stage_info_parse(text, out);
    return err == STORE_OK && !out->doc ? STORE_FAILED : err;
}

enum store_error decode_lease(const redisReply *reply, struct lease *out)
{
    long long held, epoch, since;
    if (!is_array(reply, 3) || !number_of(reply->element[0], &held) ||
        !number_of(reply->element[1], &epoch) || !number_of(reply->element[2], &since) ||
        held < 0 || held > 2 || since < -1)
        return STORE_FAILED;
    *out = (struct lease){.held = held != 0, .taken = held == 2, .epoch = epoch,
                          .since_change_ms = since};
    return STORE_OK;
}

enum store_error decode_stage_removed(const redisReply *reply, struct stage_removed *out)
{
    long long unseated;
    if (!is_array(reply, 2) || !number_of(reply->element[0], &unseated) || !text_at(reply, 1))
        return STORE_FAILED;
    *out = (struct stage_removed){.unseated = unseated, .parent = text_at(reply, 1)};
    return STORE_OK;
}

enum store_error decode_viewer_list(const redisReply *reply, struct viewer_list *out)
{
    long long exists;
    *out = (struct viewer_list){0};
    if (!is_array(reply, 3) || !number_of(reply->element[0], &exists))
        return STORE_FAILED;
    if (exists != 1)
        return STORE_NO_STAGE;
    if (!number_of(reply->element[1], &out->total) || !number_of(reply->element[2], &out->active))
        return STORE_FAILED;
    size_t n = reply->elements - 3;
    const char **ids = calloc(n ? n : 1, sizeof *ids);
    if (!ids)
        return STORE_FAILED;
    for (size_t i = 0; i < n; i++)
        if (!(ids[i] = text_at(reply, i + 3))) {
            free(ids);
            return STORE_FAILED;
        }
    out->count = n;
    out->user_ids = ids;
    return STORE_OK;
}

void viewer_list_clear(struct viewer_list *list)
{
    free((void *)list->user_ids);
    *list = (struct viewer_list){0};
}

/* The stage at position i of the view. */
static bool decode_stage(const redisReply *reply, size_t i, const char *master,
                         struct stage_records *records, struct stage_entry *e)
{
    size_t at = STATS_HEADER + i * STATS_PER_STAGE;
    const char *arn = text_at(reply, at), *info = text_at(reply, at + 2);
    const char *mode = text_at(reply, at + 3), *state = text_at(reply, at + 4);
    if (!arn || !info || !mode || !state || !number_of(reply->element[at + 1], &e->viewers))
        return false;
    e->arn = arn;
    e->master = strcmp(arn, master) == 0;
    e->mode = stage_mode_of(mode);
    stage_records_parse(records, i, info, state, &e->info, &e->state);
    return true;
}

enum store_error decode_stats(const redisReply *reply, struct stage_records *records,
                              struct stats_view *out)
{
    long long total, waiting;
    *out = (struct stats_view){0};
    if (!is_array(reply, STATS_HEADER) || (reply->elements - STATS_HEADER) % STATS_PER_STAGE ||
        !number_of(reply->element[0], &total) || !text_at(reply, 1) || !text_at(reply, 2) ||
        !number_of(reply->element[3], &waiting))
        return STORE_FAILED;
    size_t n = (reply->elements - STATS_HEADER) / STATS_PER_STAGE;
    out->stages = calloc(n ? n : 1, sizeof *out->stages);
    if (!out->stages)
        return STORE_FAILED;
    out->total_viewers = total;
    out->publisher_live = strcmp(text_at(reply, 1), "live") == 0;
    out->master_arn = text_at(reply, 2);
    out->waiting = waiting;
    stage_records_resize(records, n);
    for (; out->count < n; out->count++)
        if (!decode_stage(reply, out->count, out->master_arn, records, &out->stages[out->count])) {
            stats_view_clear(out);
            return STORE_FAILED;
        }
    return STORE_OK;
}

enum store_error decode_check(const redisReply *reply, struct state_check *out)
{
    *out = (struct state_check){0};
    if (!is_array(reply, 3))
        return STORE_FAILED;
    for (size_t i = 0; i < reply->elements; i++)
        if (!text_at(reply, i))
            return STORE_FAILED;
    size_t n = reply->elements - 3;
    const char **problems = n < 4096 ? calloc(n + 1, sizeof *problems) : NULL;
    if (!problems)
        return STORE_FAILED;
    for (size_t i = 0; i < n; i++)
        problems[i] = text_at(reply, i + 3);
    *out = (struct state_check){.state_id = text_at(reply, 0), .master_arn = text_at(reply, 1),
                                .publisher = text_at(reply, 2), .nproblems = n,
                                .problems = problems};
    return STORE_OK;
}

void state_check_clear(struct state_check *check)
{
    free((void *)check->problems);
    *check = (struct state_check){0};
}

void stats_view_clear(struct stats_view *view)
{
    for (size_t i = 0; i < view->count; i++)
        stage_info_clear(&view->stages[i].info);
    free(view->stages);
    *view = (struct stats_view){0};
}

/* One entry [id, [field, value, ...]] into *e. */
static bool decode_event(const redisReply *entry, struct stage_event *e)
{
    if (!is_array(entry, 2) || !text_at(entry, 0) || entry->element[1]->type != REDIS_REPLY_ARRAY)
        return false;
    *e = (struct stage_event){.id = text_at(entry, 0), .type = "", .stage_arn = "",
                              .detail = "", .at = ""};
    const redisReply *f = entry->element[1];
    for (size_t k = 0; k + 1 < f->elements; k += 2) {
        const char *name = text_at(f, k), *value = text_at(f, k + 1);
        if (!name || !value)
            return false;
        const char **slot = strcmp(name, "type") == 0 ? &e->type
                          : strcmp(name, "stageArn") == 0 ? &e->stage_arn
                          : strcmp(name, "detail") == 0 ? &e->detail
                          : strcmp(name, "at") == 0 ? &e->at : NULL;
        if (slot)
            *slot = value;
    }
    return true;
}

enum store_error decode_events(const redisReply *reply, struct stage_events *out)
{
    *out = (struct stage_events){0};
    if (!is_array(reply, 0))
        return STORE_FAILED;
    struct stage_event *items = calloc(reply->elements ? reply->elements : 1, sizeof *items);
    if (!items)
        return STORE_FAILED;
    for (size_t i = 0; i < reply->elements; i++)
        if (!decode_event(reply->element[i], &items[i])) {
            free(items);
            return STORE_FAILED;
        }
    out->count = reply->elements;
    out->items = items;
    return STORE_OK;
}

void stage_events_clear(struct stage_events *events)
{
    free((void *)events->items);
    *events = (struct stage_events){0};
}

enum store_error decode_live_read(const redisReply *reply, struct stage_records *records,
                                  struct live_read *out)
{
    *out = (struct live_read){0};
    if (!is_array(reply, 2) || reply->elements != 2)
        return STORE_FAILED;
    enum store_error err = decode_stats(reply->element[0], records, &out->stats);
    if (err == STORE_OK && (err = decode_events(reply->element[1], &out->events)) != STORE_OK)
        stats_view_clear(&out->stats);
    return err;
}
