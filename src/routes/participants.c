/* participants.c — acting on IVS's participants: kicking a viewer
 * (DELETE /api/viewer/{userId}), the truth of a stage beside its seats
 * (GET /api/stage/{arn}/participants), IVS events from EventBridge as
 * hints (POST /api/ivs/events), and the local provider's test model
 * (POST /api/test/participants, LOCAL_PARTICIPANTS_API only). */
#include "routes/routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "config/config.h"
#include "http/fields.h"
#include "http/request.h"
#include "ivs/provider.h"
#include "reconcile/reconcile.h"
#include "scaler/scaler.h"
#include "util/clock.h"

#define REASON_MAX 128               /* DisconnectParticipantReason */
#define TOKEN_MAX 1024               /* PaginationToken */
#define PROVIDER_RETRY_AFTER_S "1"

/* 503 for a provider that failed, with its words. */
static void respond_provider_error(struct request *rq, const char *what, const char *error)
{
    request_add_header(rq, "Retry-After", PROVIDER_RETRY_AFTER_S);
    respond_error(rq, 503, "SERVICE_UNAVAILABLE", what, json_pack("{s:s}", "provider", error));
}

/* ---- kick ----------------------------------------------------------------- */

struct kick {
    struct request *rq;
    json_t *seat;                    /* {stageArn, participantId} */
    char reason[REASON_MAX + 1];
};

static void kick_left(void *arg, enum store_error err, const char *detail, const char *freed)
{
    struct kick *k = arg;
    struct request *rq = k->rq;
    if (err != STORE_OK) {
        respond_store_error(rq, err, detail);
    } else {
        json_t *data = json_pack("{s:s, s:O, s:O, s:b, s:s, s:s}", "userId", rq->param,
                                 "stageArn", json_object_get(k->seat, "stageArn"),
                                 "participantId", json_object_get(k->seat, "participantId"),
                                 "wasSeated", freed[0] != '\0', "reason", k->reason,
                                 "provider", rq->app->provider->ops->name);
        respond_ok(rq, 200, data);
    }
    json_decref(k->seat);
    free(k);
}

static void kick_disconnected(void *arg, const char *error)
{
    struct kick *k = arg;
    if (error || !k->rq->app->store) {
        respond_provider_error(k->rq, "the participant could not be disconnected",
                               error ? error : "shutting down");
        json_decref(k->seat);
        free(k);
        return;
    }
    store_leave(k->rq->app->store, k->rq->param,
                json_string_value(json_object_get(k->seat, "stageArn")), clock_now_ms(), kick_left, k);
}

static void kick_found(void *arg, enum store_error err, const char *detail, const char *text)
{
    struct kick *k = arg;
    struct request *rq = k->rq;
    k->seat = err == STORE_OK && text[0] ? json_loads(text, 0, NULL) : NULL;
    const char *arn = json_string_value(json_object_get(k->seat, "stageArn"));
    const char *pid = json_string_value(json_object_get(k->seat, "participantId"));
    struct stage_provider *p = rq->app->provider;
    if (err != STORE_OK)
        respond_store_error(rq, err, detail);
    else if (!arn || !pid)
        respond_error(rq, 404, "NOT_FOUND", "this viewer holds no seat", NULL);
    else if (!p)
        respond_unavailable(rq, "shutting down");
    else {
        p->ops->disconnect_participant(p, arn, pid, k->reason, kick_disconnected, k);
        return;
    }
    json_decref(k->seat);
    free(k);
}

/* DisconnectParticipantReason: 0-128 bytes; of UTF-8 without control
 * characters, as it goes to IVS and into the answer in JSON (a query's
 * %FF would fail both, after the seat was freed). */
static bool check_reason(const char *s, size_t len)
{
    return strlen(s) == len && valid_text(s, len, REASON_MAX);
}

void route_viewer_kick(struct request *rq)
{
    json_t *bad = json_array();
    const char *reason = field_string(rq->body, "reason", false, check_reason, bad);
    const char *query = request_query(rq, "reason");
    if (!reason && query && !check_reason(query, strlen(query)))
        json_array_append_new(bad, json_string("reason"));
    else if (!reason)
        reason = query;
    if (!valid_user_id(rq->param, strlen(rq->param)))
        json_array_append_new(bad, json_string("userId"));
    if (json_array_size(bad)) {
        respond_invalid(rq, "the path must hold a percent-encoded userId (1-128 bytes of UTF-8); "
                            "reason, when given, is at most 128 bytes of UTF-8 without control "
                            "characters", bad);
        return;
    }
    json_decref(bad);
    struct kick *k = calloc(1, sizeof *k);
    if (!k) {
        respond_error(rq, 500, "INTERNAL_ERROR", "the request could not be completed", NULL);
        return;
    }
    k->rq = rq;
    snprintf(k->reason, sizeof k->reason, "%s", reason ? reason : "");
    store_seat_of(rq->app->store, rq->param, kick_found, k);
}

/* ---- a stage's participants ------------------------------------------------ */

/* One listing under way: IVS's page, then each participant's seat. */
struct listing {
    struct request *rq;
    json_t *items;                   /* participants, as answered */
    json_t *page;                    /* {sessionId, nextToken} */
    size_t waiting;                  /* seat look-ups still due */
    bool failed;
    long max_results;                /* asked for, 1-100 */
};

static void listing_end(struct listing *l)
{
    if (l->failed)
        respond_unavailable(l->rq, "the seats could not be read");
    else
        respond_ok(l->rq, 200, json_pack("{s:s, s:O, s:O, s:O}", "stageArn", l->rq->param,
                                         "sessionId", json_object_get(l->page, "sessionId"),
                                         "participants", l->items,
                                         "nextToken", json_object_get(l->page, "nextToken")));
    json_decref(l->items), json_decref(l->page);
    free(l);
}

struct seat_look {
    struct listing *l;
    json_t *item;                    /* borrowed from l->items */
};

static void seat_read(void *arg, enum store_error err, const char *detail, const char *text)
{
    (void)detail;
    struct seat_look *s = arg;
    struct listing *l = s->l;
    json_t *seat = err == STORE_OK && text[0] ? json_loads(text, 0, NULL) : NULL;
    const char *arn = json_string_value(json_object_get(seat, "stageArn"));
    const char *pid = json_string_value(json_object_get(seat, "participantId"));
    const char *id = json_string_value(json_object_get(s->item, "participantId"));
    l->failed |= err != STORE_OK;
    json_object_set_new(s->item, "seated", json_boolean(arn && strcmp(arn, l->rq->param) == 0));
    json_object_set_new(s->item, "seat", seat ? json_pack("{s:s, s:s, s:b}", "stageArn", arn ? arn : "",
                                                          "participantId", pid ? pid : "",
                                                          "sameParticipant", pid && id && strcmp(pid, id) == 0)
                                              : json_null());
    json_decref(seat);
    free(s);
    if (--l->waiting == 0)
        listing_end(l);
}

static json_t *participant_json(const struct provider_participant *p)
{
    return json_pack("{s:s, s:s, s:s, s:b, s:s, s:b}", "participantId", p->id, "userId",
                     p->user_id ? p->user_id : "", "state", p->state ? p->state : "",
                     "published", p->published, "firstJoinTime",
                     p->first_join_time ? p->first_join_time : "", "replica", p->replica);
}

static void participants_listed(void *arg, const struct participant_page *page, const char *error)
{
    struct listing *l = arg;
    if (error || !l->rq->app->store) {
        respond_provider_error(l->rq, "the stage's participants could not be listed",
                               error ? error : "shutting down");
        free(l);
        return;
    }
    l->items = json_array();
    l->page = json_pack("{s:s, s:o}", "sessionId", page->session, "nextToken",
                        page->next_token[0] ? json_string(page->next_token) : json_null());
    for (size_t i = 0; i < page->count; i++)
        json_array_append_new(l->items, participant_json(&page->items[i]));
    l->waiting = page->count + 1;    /* one more, released below */
    for (size_t i = 0; i < page->count; i++) {
        struct seat_look *s = malloc(sizeof *s);
        if (!s) {
            l->failed = true, l->waiting--;
            continue;
        }
        *s = (struct seat_look){l, json_array_get(l->items, i)};
        const char *user = page->items[i].user_id;
        store_seat_of(l->rq->app->store, user ? user : "", seat_read, s);
    }
    if (--l->waiting == 0)
        listing_end(l);
}

/* The stage is usher's: IVS is asked for its participants. */
static void stage_known(void *arg, enum store_error err, const char *detail,
                        const struct viewer_list *list)
{
    (void)list;
    struct listing *l = arg;
    struct request *rq = l->rq;
    struct stage_provider *p = rq->app->provider;
    if (err != STORE_OK || !p) {
        if (err != STORE_OK)
            respond_store_error(rq, err, detail);
        else
            respond_unavailable(rq, "shutting down");
        free(l);
        return;
    }
    struct participant_query q = {.arn = rq->param, .session = request_query(rq, "sessionId"),
                                  .next_token = request_query(rq, "nextToken"),
                                  .max_results = l->max_results};
    p->ops->list_participants(p, &q, participants_listed, l);
}

/* Whether s is 1-max bytes of [A-Za-z0-9+/=_-] (IVS's tokens and ids). */
static bool token_ok(const char *s, size_t max)
{
    size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-");
    return n > 0 && n <= max && s[n] == '\0';
}

void route_stage_participants(struct request *rq)
{
    const char *next = request_query(rq, "nextToken"), *session = request_query(rq, "sessionId");
    const char *max = request_query(rq, "maxResults");
    char *end = NULL;
    long most = max ? strtol(max, &end, 10) : 100;
    json_t *bad = json_array();
    if (!valid_stage_arn(rq->param))
        json_array_append_new(bad, json_string("stageArn"));
    if (next && !token_ok(next, TOKEN_MAX))
        json_array_append_new(bad, json_string("nextToken"));
    if (session && (!token_ok(session, 128) || !rq->app->provider->ops->takes_session(session)))
        json_array_append_new(bad, json_string("sessionId"));
    if ((max && (!*max || *end)) || most < 1 || most > 100)
        json_array_append_new(bad, json_string("maxResults"));
    if (json_array_size(bad)) {
        respond_invalid(rq, "a percent-encoded stage ARN in the path; maxResults 1-100; nextToken "
                            "and sessionId as a previous answer gave them (IVS: " SESSION_ID_FORM ")",
                        bad);
        return;
    }
    json_decref(bad);
    if (!rq->app->provider->ops->knows_participants(rq->app->provider)) {
        respond_error(rq, 404, "NOT_FOUND", "the stage provider lists no participants "
                                            "(local provider without LOCAL_PARTICIPANTS_API)", NULL);
        return;
    }
    struct listing *l = calloc(1, sizeof *l);
    if (!l) {
        respond_error(rq, 500, "INTERNAL_ERROR", "the request could not be completed", NULL);
        return;
    }
    l->rq = rq;
    l->max_results = most;
    /* A stage usher does not run is 404 before IVS is asked. */
    store_viewer_list(rq->app->store, rq->param, 0, 1, stage_known, l);
}

/* ---- IVS events (EventBridge) ---------------------------------------------- */

#define EVENT_ID_MAX 127
/* How far ahead of this server's clock an event's time may be (s). The
 * latest time taken is kept for good (ivs_events): one dated years ahead
 * would make every later event "older" and end the hints. */
#define EVENT_AHEAD_MAX_S 300
#define TEXT_OF(n) #n
#define TEXT(n) TEXT_OF(n)

/* s as unix seconds when it is a UTC time as EventBridge writes it,
 * YYYY-MM-DDTHH:MM:SS[.fff]Z, that exists (no month 13, February 30 or
 * hour 24); else -1. The fraction is dropped. */
static int64_t event_time_s(const char *s)
{
    static const char form[] = "dddd-dd-ddTdd:dd:dd";
    size_t i = 0;
    for (; form[i]; i++)
        if (form[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != form[i])
            return -1;
    if (s[i] == '.')
        for (i++; s[i] >= '0' && s[i] <= '9' && i < 30; i++)
            ;
    struct tm tm = {0};
    if (s[i] != 'Z' || s[i + 1] != '\0' || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
        return -1;
    struct tm want = tm;
    time_t t = timegm(&tm);         /* normalises what does not exist: compared below */
    if (t == (time_t)-1 || tm.tm_year != want.tm_year || tm.tm_mon != want.tm_mon ||
        tm.tm_mday != want.tm_mday || tm.tm_hour != want.tm_hour || tm.tm_min != want.tm_min ||
        tm.tm_sec != want.tm_sec)
        return -1;
    return (int64_t)t;
}

static const char *const publisher_events[] = {"Participant Published", "Participant Unpublished"};

/* Why an event is not taken as a hint, or NULL when it is. */
static const char *event_ignored(json_t *body, const char **arn)
{
    const char *type = json_string_value(json_object_get(body, "detail-type"));
    const char *name = json_string_value(json_object_get(json_object_get(body, "detail"), "event_name"));
    *arn = json_string_value(json_array_get(json_object_get(body, "resources"), 0));
    if (!type || strcmp(type, "IVS Stage Update") != 0)
        return "not an IVS Stage Update";
    if (!name || (strcmp(name, publisher_events[0]) != 0 && strcmp(name, publisher_events[1]) != 0))
        return "not a Participant Published or Unpublished event";
    if (!*arn || !valid_stage_arn(*arn))
        return "no stage ARN in resources";
    return NULL;
}

static void event_judged(void *arg, enum store_error err, const char *detail, long long news)
{
    struct request *rq = arg;
    if (err != STORE_OK) {
        respond_store_error(rq, err, detail);
        return;
    }
    if (news)
        reconcile_look_now(scaler_reconcile(rq->app->scaler));
    respond_ok(rq, 200, json_pack("{s:s, s:b, s:s?}", "id", body_str(rq, "id"), "taken", news == 1,
                                  "ignored", news ? NULL : "a duplicate, or older than an event taken"));
}

void route_ivs_events(struct request *rq)
{
    json_t *bad = json_array();
    const char *id = json_string_value(json_object_get(rq->body, "id"));
    const char *time = json_string_value(json_object_get(rq->body, "time"));
    int64_t at_s = time ? event_time_s(time) : -1;
    if (!id || !*id || strlen(id) > EVENT_ID_MAX)
        json_array_append_new(bad, json_string("id"));
    if (at_s < 0)
        json_array_append_new(bad, json_string("time"));
    if (json_array_size(bad)) {
        respond_invalid(rq, "an EventBridge event: id (1-127 characters) and time "
                            "(a UTC time, YYYY-MM-DDTHH:MM:SS[.fff]Z) are required", bad);
        return;
    }
    json_decref(bad);
    const char *arn, *why = event_ignored(rq->body, &arn);
    if (!why && strcmp(arn, rq->app->master_arn) != 0)
        why = "not the master stage";
    if (!why && at_s > rq->now_ms / 1000 + EVENT_AHEAD_MAX_S)
        why = "dated more than " TEXT(EVENT_AHEAD_MAX_S) " s ahead of this server's clock";
    if (why) {
        respond_ok(rq, 200, json_pack("{s:s, s:b, s:s}", "id", id, "taken", 0, "ignored", why));
        return;
    }
    /* Whole seconds, one form: the times compare as text in Redis. */
    char whole[21];
    snprintf(whole, sizeof whole, "%.19sZ", time);
    store_event_news(rq->app->store, arn, whole, id, event_judged, rq);
}

/* ---- the local provider's test model ---------------------------------------- */

void route_test_participants(struct request *rq)
{
    json_t *bad = json_array();
    const char *arn = field_string(rq->body, "stageArn", true, check_stage_arn, bad);
    const char *pid = field_string(rq->body, "participantId", true, check_participant_id, bad);
    const char *user = field_string(rq->body, "userId", true, check_user_id, bad);
    json_t *published = json_object_get(rq->body, "published");
    json_t *connected = json_object_get(rq->body, "connected");
    if (published && !json_is_boolean(published))
        json_array_append_new(bad, json_string("published"));
    if (connected && !json_is_boolean(connected))
        json_array_append_new(bad, json_string("connected"));
    if (json_array_size(bad)) {
        respond_invalid(rq, "stageArn, participantId and userId are required; published and "
                            "connected are booleans", bad);
        return;
    }
    json_decref(bad);
    const char *error = local_provider_participant(rq->app->provider, arn, pid, user,
                                                   json_is_true(published), !json_is_false(connected));
    if (error) {
        respond_error(rq, 404, "NOT_FOUND", error, NULL);
        return;
    }
    respond_ok(rq, 200, json_pack("{s:s, s:s, s:s, s:b}", "stageArn", arn, "participantId", pid,
                                  "userId", user, "connected", !json_is_false(connected)));
}
