/* aws_provider.c — stages in Amazon IVS Real-Time: the provider interface
 * (provider.h) on the control-plane client (aws/client.h).
 *
 * Each provider operation is one `struct op` (aws_op.h) that runs one or
 * more IVS calls in turn (find the publisher, then replicate; page after
 * page of a list) and ends by calling the caller's callback once. This
 * file holds the table of operations, /health's view of the client and
 * the provider's life; the operations are in aws_stages.c,
 * aws_participants.c, aws_replication.c and aws_keys.c (start-up). */
#include "ivs/aws_op.h"

#include <stdlib.h>

#include "util/clock.h"

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

static bool aws_knows_participants(struct stage_provider *p)
{
    (void)p;
    return true;
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
    .create_stage = aws_create_stage,
    .get_stage = aws_get_stage,
    .list_stages = aws_list_stages,
    .rename_stage = aws_rename_stage,
    .delete_stage = aws_delete_stage,
    .find_publisher = aws_find_publisher,
    .start_replication = aws_start_replication,
    .stop_replication = aws_stop_replication,
    .list_replicas = aws_list_replicas,
    .knows_participants = aws_knows_participants,
    .list_participants = aws_list_participants,
    .takes_session = valid_session_id,
    .disconnect_participant = aws_disconnect_participant,
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
