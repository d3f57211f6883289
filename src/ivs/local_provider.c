/* local_provider.c — stages without AWS: the default, for development,
 * tests and benchmarks. A stage is an ARN of IVS's form,
 * arn:aws:ivs:{region}:{account}:stage/{12 random letters and digits}; the
 * caller records it in Redis. Creation answers on the next loop turn, as a
 * real provider would answer later. */
#include "ivs/provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>

#include "config/config.h"

#define STAGE_ID_LEN 12
#define ARN_MAX 256

struct pending_create {
    provider_stage_fn done;
    void *arg;
    char arn[ARN_MAX];
    int ok;
};

static void answer_create(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct pending_create *pc = arg;
    pc->done(pc->arg, pc->ok ? pc->arn : NULL, pc->ok ? NULL : "no random bytes for a stage id");
    free(pc);
}

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

static void local_create(struct stage_provider *p, const char *name,
                         provider_stage_fn done, void *arg)
{
    (void)name;
    struct pending_create *pc = calloc(1, sizeof *pc);
    if (!pc) {
        done(arg, NULL, "out of memory");
        return;
    }
    pc->done = done;
    pc->arg = arg;
    char id[STAGE_ID_LEN + 1];
    pc->ok = random_stage_id(id) == 0;
    if (pc->ok)
        snprintf(pc->arn, sizeof pc->arn, "arn:aws:ivs:%s:%s:stage/%s",
                 p->cfg->aws_region, p->cfg->aws_account_id, id);
    struct timeval now = {0, 0};
    event_base_once(p->base, -1, EV_TIMEOUT, answer_create, pc, &now);
}

static void local_free(struct stage_provider *p) { free(p); }

static const struct stage_provider_ops local_ops = {
    .name = "local",
    .create_stage = local_create,
    .free = local_free,
};

struct stage_provider *local_provider_new(struct event_base *base,
                                          const struct config *cfg)
{
    struct stage_provider *p = calloc(1, sizeof *p);
    if (p) {
        p->ops = &local_ops;
        p->cfg = cfg;
        p->base = base;
    }
    return p;
}
