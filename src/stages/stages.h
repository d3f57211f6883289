/* stages.h — making stages real: ask the provider for one, then record it
 * in Redis (stage_add.lua) so every usher process sees it. Used for the
 * master stage at start, for POST /api/stage, and by the scaler. */
#ifndef USHER_STAGES_STAGES_H
#define USHER_STAGES_STAGES_H

#include <stdbool.h>
#include <jansson.h>

struct app;

enum stage_outcome { STAGE_CREATED, STAGE_LIMIT, STAGE_FAILED, STAGE_UNAVAILABLE };

/* info is the stage's record {name, arn, autoScaled, createdAt, parentStage?}
 * (a new reference, NULL unless STAGE_CREATED); error says why otherwise. */
typedef void (*stage_created_fn)(void *arg, enum stage_outcome outcome,
                                 json_t *info, const char *error);

void stage_create(struct app *app, const char *name, bool auto_scaled,
                  stage_created_fn done, void *arg);

/* Learns the master stage (app->master_arn) from Redis, creating and
 * recording it when there is none (or taking MASTER_STAGE_ARN when set).
 * Called each time the Redis connection becomes ready. */
void stage_ensure_master(struct app *app);

#endif
