/* decode.h — Redis replies into the store's C answers (store.h).
 *
 * The one place that knows the layout of each function's reply in
 * store/lua/usher.lua and of the commands store.c sends. Pure: no
 * connection, so the unit tests feed it replies built by hand. Each
 * decoder returns STORE_OK and fills *out, or STORE_FAILED for a reply of
 * another shape; strings in *out point into the reply. Decoders that
 * allocate (stats, viewer list, events) have a clear function. */
#ifndef USHER_STORE_DECODE_H
#define USHER_STORE_DECODE_H

#include <hiredis/hiredis.h>

#include "store/records.h"
#include "store/store.h"

/* The error of an error reply: a refusal by its first word (Redis may put
 * "ERR " in front or the function's location after), STORE_FAILED for any
 * other error; STORE_OK for a reply that is no error, or NULL. */
enum store_error decode_error(const redisReply *reply);

enum store_error decode_seat(const redisReply *reply, struct seat *out);
/* 1 (or {1}) a heartbeat taken, {2, stageArn, participantId} a move; 0
 * (or {0}) is STORE_NO_SEAT, 3 (or {3}) STORE_NO_STAGE. */
enum store_error decode_heartbeat(const redisReply *reply, struct heartbeat *out);
/* A string, status or nil ("") reply. */
enum store_error decode_text(const redisReply *reply, const char **out);
/* An integer, a string holding one, or nil (0). */
enum store_error decode_number(const redisReply *reply, long long *out);
/* A seat record's joinedAt (ms); nil or a record without one is STORE_NO_SEAT. */
enum store_error decode_joined(const redisReply *reply, long long *out);
/* publisher:status: *out 1 when "live", else 0 (nil, "offline"). */
enum store_error decode_live(const redisReply *reply, long long *out);
/* stage_update's 1, or 0 (the stage is gone: STORE_NO_STAGE). */
enum store_error decode_updated(const redisReply *reply);
/* A stage record's JSON text into *out (free with stage_info_clear). */
enum store_error decode_stage_info(const redisReply *reply, struct stage_info *out);
enum store_error decode_lease(const redisReply *reply, struct lease *out);
enum store_error decode_stage_removed(const redisReply *reply, struct stage_removed *out);

/* {exists, total, active, id...}: exists 0 is STORE_NO_STAGE. */
enum store_error decode_viewer_list(const redisReply *reply, struct viewer_list *out);
void viewer_list_clear(struct viewer_list *list);

/* The stage records are parsed through records (records.h; NULL: no cache). */
enum store_error decode_stats(const redisReply *reply, struct stage_records *records,
                              struct stats_view *out);
/* {stateId, masterArn, publisherStatus, problem...}. */
enum store_error decode_check(const redisReply *reply, struct state_check *out);
void state_check_clear(struct state_check *check);
void stats_view_clear(struct stats_view *view);

/* XREVRANGE entries [id, [field, value, ...]]; fields other than type,
 * stageArn, detail and at are ignored, missing ones are "". */
enum store_error decode_events(const redisReply *reply, struct stage_events *out);
enum store_error decode_live_read(const redisReply *reply, struct stage_records *records,
                                  struct live_read *out);
void stage_events_clear(struct stage_events *events);

#endif
