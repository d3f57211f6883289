-- stage_remove.lua — a stage ends, and everything it kept in Redis with it.
-- Viewers still seated there lose their seats with the bookkeeping of a
-- leave, so the counts stay exact.
-- ARGV: prefix, arn, lease holder ("" for an operator's DELETE, which is
-- refused for the master stage and while viewers remain).
-- Returns {viewers unseated, parentStage or ""} (the stage it replicated from).
-- Errors: NO_STAGE, IS_MASTER, NOT_EMPTY, NOT_LEADER.
local P, arn, holder = ARGV[1], ARGV[2], ARGV[3]
if holder ~= '' and redis.call('GET', P .. 'scaler:lease') ~= holder then
  return redis.error_reply('NOT_LEADER the scaler lease is held elsewhere')
end
if not redis.call('ZSCORE', P .. 'stages', arn) then
  return redis.error_reply('NO_STAGE no such stage')
end
if redis.call('GET', P .. 'master_stage') == arn then
  return redis.error_reply('IS_MASTER the master stage is never removed')
end
local seated = redis.call('HLEN', P .. 'viewer:heartbeat:' .. arn)
local info = redis.call('HGET', P .. 'stage_info', arn)
local parent = info and cjson.decode(info).parentStage or ''
if type(parent) ~= 'string' then parent = '' end
if holder == '' and seated > 0 then
  return redis.error_reply('NOT_EMPTY viewers are still seated there')
end
redis.call('DECRBY', P .. 'total_viewers', seated)
redis.call('DEL', P .. 'viewer:heartbeat:' .. arn, P .. 'viewer:expiry:' .. arn,
           P .. 'viewers:' .. arn, P .. 'stage:' .. arn)
redis.call('HDEL', P .. 'stage_info', arn)
redis.call('HDEL', P .. 'stage_mode', arn)
redis.call('HDEL', P .. 'stage_state', arn)
redis.call('ZREM', P .. 'stages', arn)
return {seated, parent}
