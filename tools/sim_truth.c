/* sim_truth.c — the simulator's truth: who it believes usher has seated,
 * as counts, as a range, and viewer by viewer.
 *
 * The audience (sim_audience.c) changes it as answers come; the checks
 * (sim_check.c) compare usher with it. It is a leaf so that neither has to
 * know the other: the audience never calls a check, and a check never
 * looks inside a viewer.
 *
 * While the audience is busy, usher's count may lie anywhere in a range:
 *
 *   low end    seated, plus leaves still queued (not sent, so not applied)
 *   high end   also joins sent and not settled, leaves sent, and vanished
 *              viewers inside their expiry grace
 *
 * A check that reads usher over a span of time compares with the widest
 * range seen over that span: truth_watch opens the window, every
 * truth_changed widens it. The stage table names the stages seen (by
 * number, so a viewer's seat is one byte). */
#include "sim_truth.h"

#include <stdlib.h>
#include <string.h>

int truth_init(struct truth *t, uint32_t viewers, const char *user_prefix)
{
    memset(t, 0, sizeof *t);
    t->viewers = viewers;
    strncpy(t->user_prefix, user_prefix, sizeof t->user_prefix - 1);
    t->seat = malloc(viewers);
    if (!t->seat)
        return -1;
    memset(t->seat, NO_SEAT, viewers);
    return 0;
}

void truth_free(struct truth *t)
{
    free(t->seat);
    t->seat = NULL;
}

void truth_range(const struct truth *t, int64_t *min, int64_t *max)
{
    *min = t->seated + (t->leaving - t->leave_sent);
    *max = t->seated + t->leaving + t->join_sent + t->vanished;
}

void truth_watch(struct truth *t) { truth_range(t, &t->wmin, &t->wmax); }

void truth_changed(struct truth *t)
{
    int64_t min, max;
    truth_range(t, &min, &max);
    if (min < t->wmin)
        t->wmin = min;
    if (max > t->wmax)
        t->wmax = max;
    if (t->seated > t->peak)
        t->peak = t->seated;
}

void truth_seat(struct truth *t, uint32_t idx, int stage)
{
    t->seat[idx] = stage < 0 || stage >= NO_SEAT ? NO_SEAT : (uint8_t)stage;
}

int truth_stage(struct truth *t, const char *arn)
{
    if (!arn || !arn[0] || strlen(arn) >= ARN_MAX || strpbrk(arn, "\"\\"))
        return -1;
    for (int i = 0; i < t->nstages; i++)
        if (strcmp(t->stages[i], arn) == 0)
            return i;
    if (t->nstages == MAX_STAGES_SEEN)
        return -1;
    memcpy(t->stages[t->nstages], arn, strlen(arn) + 1);
    return t->nstages++;
}

bool truth_user(const struct truth *t, const char *user, uint32_t *idx)
{
    size_t plen = strlen(t->user_prefix);
    if (strncmp(user, t->user_prefix, plen) != 0)
        return false;
    const char *p = user + plen;
    if (!*p || (p[0] == '0' && p[1]))
        return false;
    uint64_t n = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || (n = n * 10 + (uint64_t)(*p - '0')) >= t->viewers)
            return false;
    }
    *idx = (uint32_t)n;
    return true;
}
