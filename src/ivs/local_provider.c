/* local_provider.c — stages without AWS: the default, for development,
 * tests and benchmarks. A stage is an ARN of IVS's form,
 * arn:aws:ivs:{region}:{account}:stage/{12 random letters and digits}; the
 * caller records it in Redis. Replications are kept in a small list, as the
 * record of what IVS would be doing, each with the participant it copies
 * (the model's publisher in the source when it started, or in a source fed
 * by replication the participant that replication copies; "" without the
 * model), which list_replicas answers. LOCAL_REPLICATION_FAILURES makes the
 * first N replication starts fail, so the retry path can be tested.
 *
 * With LOCAL_PARTICIPANTS_API=true it also keeps a model of who is
 * connected, which tests drive (POST /api/test/participants): stage →
 * participant id → {userId, state, published, firstJoinTime}; a
 * participant that disconnects stays listed DISCONNECTED, as in an IVS
 * session. list_participants pages through it (the page token is the
 * position), disconnect_participant marks one DISCONNECTED, and
 * find_publisher names a connected published one. Without it the provider
 * knows no participants and reconciliation does not run.
 * It also remembers the stages it made (and did not delete), so that
 * usher can record them again when Redis loses its data (list_stages).
 * That memory is this process's only: a restarted process, or another
 * process, does not know them (with the local provider they exist nowhere
 * else). They carry no tags, so they are never taken for orphans.
 *
 * Every answer comes on a later loop turn, as a real provider's would.
 * The endpoints of a local stage follow from its id (stage_endpoints). */
#include "ivs/provider.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>

#include "config/config.h"
#include "util/clock.h"
#include "util/log.h"

#define STAGE_ID_LEN 12
#define ARN_MAX 256

struct replication {
    struct replication *next;
    char source[ARN_MAX], dest[ARN_MAX];
    char participant[ARN_MAX];       /* "" when the model is off */
};

struct made {
    struct made *next;
    char arn[ARN_MAX], name[ARN_MAX];
};

struct local_provider {
    struct stage_provider base;      /* first: the interface */
    struct replication *replications;
    struct made *made;               /* stages made and not deleted */
    long failures_left;
    json_t *participants;            /* the model: arn → id → participant; NULL when off */
};

/* One deferred answer, for any of the operations: `kind` says which
 * callback of the union hears it. */
enum answer_kind { ANSWER_DONE, ANSWER_STAGE, ANSWER_TEXT };

struct answer {
    enum answer_kind kind;
    union {
        provider_done_fn done;
        provider_stage_fn stage;
        provider_text_fn text;
    } fn;
    void *arg;
    char arn[ARN_MAX];
    char name[ARN_MAX];
    const char *text;
    const char *error;
};

/* Calls a's callback with a's outcome. */
static void call_back(const struct answer *a)
{
    char events[STAGE_ENDPOINT_MAX + 1], whip[STAGE_ENDPOINT_MAX + 1];
    stage_endpoints(a->arn, events, sizeof events, whip, sizeof whip);
    const struct provider_stage st = {.arn = a->arn, .name = a->name, .whip = whip,
                                      .events = events, .active_session = ""};
    switch (a->kind) {
    case ANSWER_DONE: a->fn.done(a->arg, a->error); break;
    case ANSWER_STAGE: a->fn.stage(a->arg, a->error ? NULL : &st, a->error); break;
    case ANSWER_TEXT: a->fn.text(a->arg, a->error ? NULL : a->text, a->error); break;
    }
}

static void deliver(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    call_back(arg);
    free(arg);
}

static void answer_later(struct stage_provider *p, struct answer *a)
{
    struct timeval now = {0, 0};
    if (event_base_once(p->base, -1, EV_TIMEOUT, deliver, a, &now) != 0) {
        a->error = "cannot schedule the answer";
        deliver(-1, 0, a);
    }
}

/* A deferred answer of kind; NULL (fn told) when out of memory. fn is the
 * callback, cast to its kind's type when delivered. */
static struct answer *answer_new(enum answer_kind kind, void (*fn)(void), void *arg)
{
    struct answer *a = calloc(1, sizeof *a);
    if (!a) {
        /* No memory to answer later: the answer comes at once. */
        struct answer failed = {.kind = kind, .arg = arg, .error = "out of memory"};
        failed.fn.done = (provider_done_fn)fn;
        call_back(&failed);
        return NULL;
    }
    a->kind = kind;
    a->fn.done = (provider_done_fn)fn;
    a->arg = arg;
    return a;
}
#define ANSWER(kind, fn) answer_new(kind, (void (*)(void))(fn), arg)

static int random_stage_id(char *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char bytes[STAGE_ID_LEN];
    if (RAND_bytes(bytes, sizeof bytes) != 1)
        return -1;
    for (int i = 0; i < STAGE_ID_LEN; i++)
        out[i] = alphabet[bytes[i] % (sizeof alphabet - 1)];
    out[STAGE_ID_LEN] = '\0';
    return 0;
}

/* Local stages live only in usher's records: name and tags are kept there
 * (stage_info), not here. */
static void local_create(struct stage_provider *p, const char *name, const json_t *tags,
                         provider_stage_fn done, void *arg)
{
    (void)tags;
    struct local_provider *lp = (struct local_provider *)p;
    struct answer *a = ANSWER(ANSWER_STAGE, done);
    if (!a)
        return;
    snprintf(a->name, sizeof a->name, "%s", name ? name : "");
    char id[STAGE_ID_LEN + 1];
    struct made *m = NULL;
    if (random_stage_id(id) != 0) {
        a->error = "no random bytes for a stage id";
    } else if (!(m = calloc(1, sizeof *m))) {
        a->error = "out of memory";
    } else {
        snprintf(a->arn, sizeof a->arn, "arn:aws:ivs:%s:%s:stage/%s",
                 p->cfg->aws_region, p->cfg->aws_account_id, id);
        snprintf(m->arn, sizeof m->arn, "%s", a->arn);
        snprintf(m->name, sizeof m->name, "%s", name ? name : "");
        m->next = lp->made;
        lp->made = m;
    }
    answer_later(p, a);
}

/* A local stage is any ARN: its endpoints follow from its id. */
static void local_get(struct stage_provider *p, const char *arn, provider_stage_fn done, void *arg)
{
    struct answer *a = ANSWER(ANSWER_STAGE, done);
    if (!a)
        return;
    snprintf(a->arn, sizeof a->arn, "%s", arn);
    answer_later(p, a);
}

static void local_rename(struct stage_provider *p, const char *arn, const char *name,
                         provider_done_fn done, void *arg)
{
    (void)arn, (void)name;
    struct answer *a = ANSWER(ANSWER_DONE, done);
    if (a)
        answer_later(p, a);
}

static void local_delete(struct stage_provider *p, const char *arn,
                         provider_done_fn done, void *arg)
{
    struct local_provider *lp = (struct local_provider *)p;
    for (struct made **m = &lp->made; *m; m = &(*m)->next) {
        if (strcmp((*m)->arn, arn) == 0) {
            struct made *gone = *m;
            *m = gone->next;
            free(gone);
            break;
        }
    }
    struct answer *a = ANSWER(ANSWER_DONE, done);
    if (a)
        answer_later(p, a);
}

/* The model's connected, published participant of arn ("" for none). */
static const char *model_publisher(const struct local_provider *lp, const char *arn)
{
    const char *id;
    json_t *pt;
    json_object_foreach(json_object_get(lp->participants, arn), id, pt)
        if (json_is_true(json_object_get(pt, "published")) &&
            strcmp(json_string_value(json_object_get(pt, "state")), "CONNECTED") == 0)
            return id;
    return "";
}

/* Without the model nobody is found publishing. */
static void local_find_publisher(struct stage_provider *p, const char *arn,
                                 provider_text_fn done, void *arg)
{
    struct answer *a = ANSWER(ANSWER_TEXT, done);
    if (!a)
        return;
    snprintf(a->name, sizeof a->name, "%s", model_publisher((struct local_provider *)p, arn));
    a->text = a->name;
    answer_later(p, a);
}

/* ---- the participant model (LOCAL_PARTICIPANTS_API) --------------------- */

/* One list_participants answer due: a page of the model, copied. */
struct page_answer {
    provider_participants_fn done;
    void *arg;
    json_t *items;                   /* the page's participants */
    char next[24];                   /* "" at the end */
    const char *error;
};

static void page_deliver(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct page_answer *a = arg;
    size_t n = json_array_size(a->items);
    struct provider_participant *list = calloc(n + 1, sizeof *list);
    if (!list && !a->error)
        a->error = "out of memory";
    if (list)
        provider_participants_of(a->items, list);
    const struct participant_page page = {.session = n ? "local" : "", .items = list,
                                          .count = n, .next_token = a->next};
    a->done(a->arg, a->error ? NULL : &page, a->error);
    free(list);
    json_decref(a->items);
    free(a);
}

/* Fills a with the page q asks for. */
static void page_fill(const struct local_provider *lp, const struct participant_query *q,
                      struct page_answer *a)
{
    long from = q->next_token && *q->next_token ? strtol(q->next_token, NULL, 10) : 0;
    long max = q->all_pages ? LONG_MAX : q->max_results < 1 || q->max_results > 100 ? 100 : q->max_results;
    long at = 0;
    const char *id;
    json_t *pt;
    json_object_foreach(json_object_get(lp->participants, q->arn), id, pt) {
        bool connected = strcmp(json_string_value(json_object_get(pt, "state")), "CONNECTED") == 0;
        if (q->connected_only && !connected)
            continue;
        if (at++ < from)
            continue;
        if ((long)json_array_size(a->items) == max) {
            snprintf(a->next, sizeof a->next, "%ld", at - 1);
            break;
        }
        json_array_append(a->items, pt);
    }
}

/* The model lists the one session there is whatever id is asked. */
static bool local_takes_session(const char *session)
{
    (void)session;
    return true;
}

static void local_list_participants(struct stage_provider *p, const struct participant_query *q,
                                    provider_participants_fn done, void *arg)
{
    struct local_provider *lp = (struct local_provider *)p;
    struct page_answer *a = calloc(1, sizeof *a);
    if (!a || !(a->items = json_array())) {
        free(a);
        done(arg, NULL, "out of memory");
        return;
    }
    a->done = done, a->arg = arg;
    if (!lp->participants)
        a->error = "the local provider knows no participants (LOCAL_PARTICIPANTS_API=false)";
    else
        page_fill(lp, q, a);
    struct timeval now = {0, 0};
    if (event_base_once(p->base, -1, EV_TIMEOUT, page_deliver, a, &now) != 0) {
        a->error = "cannot schedule the answer";
        page_deliver(-1, 0, a);
    }
}

static void local_disconnect(struct stage_provider *p, const char *arn, const char *participant_id,
                             const char *reason, provider_done_fn done, void *arg)
{
    (void)reason;
    struct local_provider *lp = (struct local_provider *)p;
    json_t *pt = json_object_get(json_object_get(lp->participants, arn), participant_id);
    if (pt)
        json_object_set_new(pt, "state", json_string("DISCONNECTED"));
    struct answer *a = ANSWER(ANSWER_DONE, done);
    if (a)
        answer_later(p, a);
}

static bool local_knows_participants(struct stage_provider *p)
{
    return ((struct local_provider *)p)->participants != NULL;
}

const char *local_provider_participant(struct stage_provider *p, const char *arn,
                                       const char *participant_id, const char *user_id,
                                       bool published, bool connected)
{
    if (p->ops->knows_participants != local_knows_participants || !local_knows_participants(p))
        return "the local provider's participant model is off (LOCAL_PARTICIPANTS_API)";
    struct local_provider *lp = (struct local_provider *)p;
    json_t *stage = json_object_get(lp->participants, arn);
    if (!stage && json_object_set_new(lp->participants, arn, stage = json_object()) < 0)
        return "out of memory";
    json_t *old = json_object_get(stage, participant_id);
    char now[32];
    clock_iso8601(clock_now_ms(), now, sizeof now);
    const char *first = old ? json_string_value(json_object_get(old, "firstJoinTime")) : now;
    json_t *pt = json_pack("{s:s, s:s, s:s, s:s, s:b}", "id", participant_id, "userId", user_id,
                           "state", connected ? "CONNECTED" : "DISCONNECTED", "firstJoinTime", first,
                           "published", published);
    if (!pt || json_object_set_new(stage, participant_id, pt) < 0)
        return "out of memory";
    return NULL;
}

/* Nothing to check: tokens carry IVS_PUBLIC_KEY_ARN as given, or the
 * local key id. */
static void local_prepare(struct stage_provider *p, const char *public_pem,
                          provider_text_fn done, void *arg)
{
    (void)public_pem;
    struct answer *a = ANSWER(ANSWER_TEXT, done);
    if (!a)
        return;
    a->text = p->cfg->public_key_arn;
    answer_later(p, a);
}

static json_t *local_health(struct stage_provider *p)
{
    (void)p;
    return json_object();
}

/* The participant a replication into arn copies, "" for none: in a stage
 * fed by replication the publisher is a replica with its own id (IVS), so
 * a chained replication copies that id. */
static const char *replica_in(const struct local_provider *lp, const char *arn)
{
    for (const struct replication *r = lp->replications; r; r = r->next)
        if (strcmp(r->dest, arn) == 0)
            return r->participant;
    return "";
}

static void local_start_replication(struct stage_provider *p, const char *source,
                                    const char *dest, provider_text_fn done, void *arg)
{
    struct local_provider *lp = (struct local_provider *)p;
    struct answer *a = ANSWER(ANSWER_TEXT, done);
    if (!a)
        return;
    struct replication *r = NULL;
    if (lp->failures_left > 0) {
        lp->failures_left--;
        a->error = "replication refused (LOCAL_REPLICATION_FAILURES)";
    } else if (!(r = calloc(1, sizeof *r))) {
        a->error = "out of memory";
    } else {
        snprintf(r->source, sizeof r->source, "%s", source);
        snprintf(r->dest, sizeof r->dest, "%s", dest);
        const char *publisher = model_publisher(lp, source);
        snprintf(r->participant, sizeof r->participant, "%s",
                 *publisher ? publisher : replica_in(lp, source));
        snprintf(a->name, sizeof a->name, "%s", r->participant);
        a->text = a->name;
        r->next = lp->replications;
        lp->replications = r;
        log_debug("local provider: replicating %s -> %s", source, dest);
    }
    answer_later(p, a);
}

/* participant_id NULL: whichever participant's it is. */
static void local_stop_replication(struct stage_provider *p, const char *source, const char *dest,
                                   const char *participant_id, provider_done_fn done, void *arg)
{
    struct local_provider *lp = (struct local_provider *)p;
    for (struct replication **r = &lp->replications; *r; r = &(*r)->next) {
        if (strcmp((*r)->source, source) == 0 && strcmp((*r)->dest, dest) == 0 &&
            (!participant_id || strcmp((*r)->participant, participant_id) == 0)) {
            struct replication *gone = *r;
            *r = gone->next;
            free(gone);
            break;
        }
    }
    struct answer *a = ANSWER(ANSWER_DONE, done);
    if (a)
        answer_later(p, a);
}

/* list_replicas' answer: the replications of one participant out of a
 * source, copied now, delivered on a later loop turn. */
struct replicas_answer {
    provider_replicas_fn done;
    void *arg;
    size_t n;
    struct provider_replica *items;  /* dest strings owned */
};

static void replicas_answer_free(struct replicas_answer *a)
{
    for (size_t i = 0; i < a->n; i++)
        free((char *)a->items[i].dest);
    free(a->items);
    free(a);
}

static void replicas_deliver(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct replicas_answer *a = arg;
    a->done(a->arg, a->items, a->n, NULL);
    replicas_answer_free(a);
}

static void local_list_replicas(struct stage_provider *p, const char *source,
                                const char *participant_id, provider_replicas_fn done, void *arg)
{
    struct local_provider *lp = (struct local_provider *)p;
    size_t n = 0;
    for (const struct replication *r = lp->replications; r; r = r->next)
        n++;
    struct replicas_answer *a = calloc(1, sizeof *a);
    bool whole = a && (a->items = calloc(n + 1, sizeof *a->items));
    for (const struct replication *r = lp->replications; whole && r; r = r->next) {
        if (strcmp(r->source, source) != 0 || strcmp(r->participant, participant_id) != 0)
            continue;
        const char *dest = strdup(r->dest);
        a->items[a->n] = (struct provider_replica){.dest = dest, .dest_session = "local", .active = true};
        whole = dest != NULL;
        a->n += whole;
    }
    struct timeval now = {0, 0};
    if (whole) {
        a->done = done, a->arg = arg;
        if (event_base_once(p->base, -1, EV_TIMEOUT, replicas_deliver, a, &now) == 0)
            return;
    }
    if (a)
        replicas_answer_free(a);
    done(arg, NULL, 0, "out of memory");
}

/* The list as it is now, delivered on a later loop turn. */
struct listing {
    struct local_provider *lp;
    provider_list_fn done;
    void *arg;
    size_t n;
    struct provider_stage *stages;
};

static const char *replication_source(const struct local_provider *lp, const char *dest)
{
    for (const struct replication *r = lp->replications; r; r = r->next)
        if (strcmp(r->dest, dest) == 0)
            return r->source;
    return NULL;
}

static void listing_free(struct listing *l)
{
    for (size_t i = 0; l->stages && i < l->n; i++)
        free((char *)l->stages[i].arn), free((char *)l->stages[i].name);
    free(l->stages);
    free(l);
}

static void deliver_listing(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct listing *l = arg;
    /* Sources are looked up now: a replication may have stopped meanwhile. */
    for (size_t i = 0; i < l->n; i++)
        l->stages[i].replicating_from = replication_source(l->lp, l->stages[i].arn);
    l->done(l->arg, l->stages, l->n, NULL);
    listing_free(l);
}

static void local_list_stages(struct stage_provider *p, provider_list_fn done, void *arg)
{
    struct local_provider *lp = (struct local_provider *)p;
    struct listing *l = calloc(1, sizeof *l);
    size_t n = 0;
    for (const struct made *m = lp->made; m; m = m->next)
        n++;
    if (l)
        l->stages = calloc(n ? n : 1, sizeof *l->stages);
    for (const struct made *m = lp->made; l && l->stages && m; m = m->next, l->n++)
        l->stages[l->n] = (struct provider_stage){.arn = strdup(m->arn), .name = strdup(m->name),
                                                  .whip = "", .events = "", .active_session = ""};
    bool whole = l && l->stages;
    for (size_t i = 0; whole && i < l->n; i++)
        whole = l->stages[i].arn && l->stages[i].name;
    struct timeval now = {0, 0};
    if (whole) {
        *l = (struct listing){lp, done, arg, l->n, l->stages};
        if (event_base_once(p->base, -1, EV_TIMEOUT, deliver_listing, l, &now) == 0)
            return;
    }
    if (l)
        listing_free(l);
    done(arg, NULL, 0, "out of memory");
}

static void local_free(struct stage_provider *p)
{
    struct local_provider *lp = (struct local_provider *)p;
    while (lp->made) {
        struct made *next = lp->made->next;
        free(lp->made);
        lp->made = next;
    }
    while (lp->replications) {
        struct replication *next = lp->replications->next;
        free(lp->replications);
        lp->replications = next;
    }
    json_decref(lp->participants);
    free(lp);
}

static const struct stage_provider_ops local_ops = {
    .name = "local",
    .replication_quota = false,
    .prepare = local_prepare,
    .create_stage = local_create,
    .get_stage = local_get,
    .list_stages = local_list_stages,
    .rename_stage = local_rename,
    .delete_stage = local_delete,
    .find_publisher = local_find_publisher,
    .health = local_health,
    .start_replication = local_start_replication,
    .stop_replication = local_stop_replication,
    .list_replicas = local_list_replicas,
    .knows_participants = local_knows_participants,
    .list_participants = local_list_participants,
    .takes_session = local_takes_session,
    .disconnect_participant = local_disconnect,
    .free = local_free,
};

struct stage_provider *local_provider_new(struct event_base *base,
                                          const struct config *cfg)
{
    struct local_provider *lp = calloc(1, sizeof *lp);
    if (!lp)
        return NULL;
    lp->base.ops = &local_ops;
    lp->base.cfg = cfg;
    lp->base.base = base;
    lp->failures_left = cfg->local_replication_failures;
    if (cfg->local_participants_api && !(lp->participants = json_object())) {
        free(lp);
        return NULL;
    }
    return &lp->base;
}
