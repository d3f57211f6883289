/* ids.h — the identifiers of IVS that usher accepts and makes: stage ARNs,
 * user ids, participant ids. One definition, used by request validation
 * (http/fields.c), settings (config.c) and token assembly (tokens/jwt.c).
 *
 * Limits from the IVS Real-Time API model (ivs-realtime-service-2.json):
 * ParticipantTokenUserId at most 128, ParticipantId at most 64 of
 * [a-zA-Z0-9-], StageSessionId 16 bytes of "st-[a-zA-Z0-9]+", StageArn "arn:aws:ivs:[a-z0-9-]+:[0-9]+:stage/[a-zA-Z0-9-]+";
 * usher's stage ARNs are the narrower form below (12-digit account, ids
 * of [A-Za-z0-9], as IVS issues them). A leaf: no other usher header. */
#ifndef USHER_IVS_IDS_H
#define USHER_IVS_IDS_H

#include <stdbool.h>

#define STAGE_ARN_MAX 256            /* bytes; buffers hold STAGE_ARN_MAX + 1 */
#define STAGE_ID_MAX 64              /* the ARN's last segment */
#define USER_ID_MAX 128              /* ParticipantTokenUserId */
#define PARTICIPANT_ID_MAX 64        /* ParticipantId */
#define SESSION_ID_LEN 16            /* StageSessionId: min and max 16 */

/* arn:aws:ivs:{region: [a-z0-9-]+}:{12 digits}:stage/{1–64 of [A-Za-z0-9]},
 * at most STAGE_ARN_MAX bytes. */
bool valid_stage_arn(const char *s);

/* arn:aws:ivs:{region: [a-z0-9-]+}:{12 digits}:public-key/{1–64 of
 * [A-Za-z0-9]}, at most STAGE_ARN_MAX bytes (PublicKeyArn, narrowed as
 * the stage ARN is). */
bool valid_public_key_arn(const char *s);

/* st-{13 of [A-Za-z0-9]}: a StageSessionId (a stage's activeSessionId,
 * a replica's destinationSessionId), SESSION_ID_LEN bytes. */
bool valid_session_id(const char *s);
#define SESSION_ID_FORM "st-{13 of [A-Za-z0-9]}"  /* the grammar, in error words */

#endif
