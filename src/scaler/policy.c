/* policy.c — see policy.h. No I/O and no clock: everything comes in
 * through struct scale_input, so the unit tests can play any situation. */
#include "scaler/policy.h"

long stages_needed(long seated, long capacity, double up, long max_stages)
{
    long by_load = (long)((double)seated / (up * (double)capacity) + 0.999999);
    long with_spare = (seated + capacity + capacity - 1) / capacity;
    long need = by_load > with_spare ? by_load : with_spare;
    if (need < 1)
        need = 1;
    return need > max_stages ? max_stages : need;
}

struct stage_ceiling stage_ceiling_of(long max_stages, bool replication_quota,
                                      long replication_max, bool chaining)
{
    if (!replication_quota || chaining || 1 + replication_max >= max_stages)
        return (struct stage_ceiling){max_stages, "MAX_STAGES"};
    return (struct stage_ceiling){1 + replication_max,
                                  "REPLICATION_MAX: the publisher's stage feeds at most this many "
                                  "stages by replication (IVS: 5 per participant), no chaining"};
}

static size_t push(struct scale_action *out, size_t n, size_t max,
                   enum action_kind kind, size_t stage)
{
    if (n < max)
        out[n++] = (struct scale_action){kind, stage};
    return n;
}

/* Stages that are or will be open: all but the draining ones. */
static long usable(const struct scale_input *in)
{
    long n = 0;
    for (size_t i = 0; i < in->nstages; i++)
        n += in->stages[i].mode != MODE_DRAINING;
    return n;
}

static long seated(const struct scale_input *in)
{
    long n = 0;
    for (size_t i = 0; i < in->nstages; i++)
        n += in->stages[i].viewers;
    return n;
}

/* The added stage to drain, or nstages for none. */
static size_t drain_candidate(const struct scale_input *in)
{
    size_t best = in->nstages;
    for (size_t i = 0; i < in->nstages; i++) {
        const struct stage_view *s = &in->stages[i];
        if (!s->auto_scaled || s->master || s->mode == MODE_DRAINING || s->children > 0)
            continue;
        if ((double)s->viewers > in->down * (double)in->capacity)
            continue;
        /* Least loaded; the newest among equals (later in the list). */
        if (best == in->nstages || s->viewers <= in->stages[best].viewers)
            best = i;
    }
    return best;
}

size_t scale_decide(const struct scale_input *in, struct scale_action *out, size_t max)
{
    size_t n = 0;
    long need = stages_needed(seated(in) + in->waiting, in->capacity, in->up, in->max_stages);
    long have = usable(in) + in->creating;
    long room = in->max_stages - (long)in->nstages - in->creating;

    for (long i = 0; i < need - have && i < room && i < in->create_budget; i++)
        n = push(out, n, max, ACT_CREATE, 0);

    bool cooled = in->now_ms - in->last_change_ms >= in->cooldown_ms;
    size_t victim = in->nstages;
    if (in->creating == 0 && cooled && usable(in) - 1 >= need + 1)
        victim = drain_candidate(in);

    for (size_t i = 0; i < in->nstages; i++) {
        const struct stage_view *s = &in->stages[i];
        if (s->master)
            continue;
        if (i == victim)
            n = push(out, n, max, ACT_DRAIN, i);
        else if (s->mode == MODE_DRAINING) {
            if (s->viewers == 0 || in->now_ms - s->draining_since_ms >= in->drain_timeout_ms)
                n = push(out, n, max, ACT_REMOVE, i);
        } else if (s->replication != REPL_RUNNING) {
            if (in->publisher_live && in->now_ms >= s->retry_at_ms)
                n = push(out, n, max, ACT_START_REPLICATION, i);
        } else if (s->mode == MODE_WAITING) {
            n = push(out, n, max, ACT_OPEN, i);
        }
    }
    return n;
}
