/* fields.h — reading fields out of a request's JSON body, with the SPEC's
 * rules for each kind of value. Every bad field is added to a list that
 * becomes error.details.fields, so one answer names all that is wrong. */
#ifndef USHER_HTTP_FIELDS_H
#define USHER_HTTP_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "ivs/ids.h"

/* 1–128 bytes of valid UTF-8 without control characters (C0, DEL, C1). */
bool valid_user_id(const char *s, size_t len);
/* 0–max bytes of valid UTF-8 without control characters (C0, DEL, C1):
 * text a request gives that usher hands on in JSON (jansson refuses
 * invalid UTF-8). */
bool valid_text(const char *s, size_t len, size_t max);
/* valid_stage_arn: ivs/ids.h */
/* 1–64 of [A-Za-z0-9-] */
bool valid_participant_id(const char *s);
/* IVS CreateStage `tags` (ivs-realtime-service-2.json, shapes Tags, TagKey,
 * TagValue): an object of at most 50 string values, keys 1–128 and values
 * 0–256 bytes, without NUL. */
#define STAGE_TAGS_MAX 50
#define STAGE_TAG_KEY_MAX 128
#define STAGE_TAG_VALUE_MAX 256
bool valid_stage_tags(const json_t *tags);

typedef bool (*field_check_fn)(const char *value, size_t len);
bool check_user_id(const char *s, size_t len);
bool check_stage_arn(const char *s, size_t len);
bool check_participant_id(const char *s, size_t len);

/* The string field `name` of body when it passes check; NULL when absent
 * (and not required) or bad, and then, for bad or missing-but-required,
 * `name` is appended to bad. */
const char *field_string(json_t *body, const char *name, bool required,
                         field_check_fn check, json_t *bad);

#endif
