/* provider.c — what every provider shares: choosing one from the settings,
 * reading a stage ARN, the endpoints of a local stage, and the tags that
 * mark usher's stages. */
#include "ivs/provider.h"

#include <stdio.h>
#include <string.h>

#include "aws/client.h"
#include "config/config.h"

const char *stage_id_of(const char *arn)
{
    const char *slash = strrchr(arn, '/');
    return slash ? slash + 1 : arn;
}

void stage_endpoints(const char *arn, char *events_url, size_t events_len,
                     char *whip_url, size_t whip_len)
{
    snprintf(events_url, events_len, "wss://global.events.live-video.net");
    snprintf(whip_url, whip_len, "https://%s.global-bm.whip.live-video.net", stage_id_of(arn));
}

const char *provider_stream_name(const struct config *cfg)
{
    return cfg->stream_name[0] ? cfg->stream_name : cfg->redis_key_prefix;
}

bool provider_tags_ours(const struct config *cfg, const json_t *tags)
{
    const char *managed = json_string_value(json_object_get(tags, USHER_TAG_MANAGED));
    const char *stream = json_string_value(json_object_get(tags, USHER_TAG_STREAM));
    return managed && stream && strcmp(managed, "true") == 0 &&
           strcmp(stream, provider_stream_name(cfg)) == 0;
}

void provider_participants_of(const json_t *items, struct provider_participant *list)
{
    for (size_t i = 0; i < json_array_size(items); i++) {
        const json_t *pt = json_array_get(items, i);
        list[i] = (struct provider_participant){
            .id = json_string_value(json_object_get(pt, "id")),
            .user_id = json_string_value(json_object_get(pt, "userId")),
            .state = json_string_value(json_object_get(pt, "state")),
            .first_join_time = json_string_value(json_object_get(pt, "firstJoinTime")),
            .published = json_is_true(json_object_get(pt, "published")),
            .replica = json_is_true(json_object_get(pt, "replica")),
        };
    }
}

/* The IVS client from the settings: the credential chain from the
 * environment (aws/credentials.h), with the static keys, region and
 * endpoint of usher's own settings (which may come from flags). */
static struct aws_client *aws_client_from(struct event_base *base, const struct config *cfg,
                                          char *err, size_t errlen)
{
    struct aws_client_settings s = {.region = cfg->aws_region,
                                    .endpoint_url = cfg->aws_endpoint_url,
                                    .timeout_ms = cfg->aws_timeout_ms};
    aws_creds_settings_from_env(&s.creds);
    s.creds.access_key_id = cfg->aws_access_key_id;
    s.creds.secret_access_key = cfg->aws_secret_access_key;
    s.creds.session_token = cfg->aws_session_token;
    return aws_client_new(base, &s, err, errlen);
}

struct stage_provider *provider_new(struct event_base *base, const struct config *cfg,
                                    char *err, size_t errlen)
{
    struct stage_provider *p = NULL;
    if (strcmp(cfg->stage_provider, "local") == 0) {
        p = local_provider_new(base, cfg);
    } else if (strcmp(cfg->stage_provider, "aws") == 0) {
        struct aws_client *client = aws_client_from(base, cfg, err, errlen);
        if (!client)
            return NULL;
        p = aws_provider_new(base, cfg, client);
    } else {
        snprintf(err, errlen, "STAGE_PROVIDER: '%s' is not local or aws", cfg->stage_provider);
        return NULL;
    }
    if (!p)
        snprintf(err, errlen, "STAGE_PROVIDER=%s: out of memory", cfg->stage_provider);
    return p;
}
