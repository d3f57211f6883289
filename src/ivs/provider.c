/* provider.c — what every provider shares: reading a stage ARN and the
 * endpoints a participant token names. */
#include "ivs/provider.h"

#include <stdio.h>
#include <string.h>

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
