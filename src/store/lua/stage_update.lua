-- stage_update.lua — the scaler changes a stage's mode (open, waiting,
-- draining) and its bookkeeping (replication, drain start), under the lease.
-- Draining is final: a late answer (say, replication started) that would
-- open the stage again only updates the bookkeeping, and keeps the drain's
-- start.
-- ARGV: prefix, lease holder, arn, mode, scaler state JSON.
-- Returns 1, or 0 when the stage is gone. Error NOT_LEADER.
local P, holder, arn, mode, state = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('GET', P .. 'scaler:lease') ~= holder then
  return redis.error_reply('NOT_LEADER the scaler lease is held elsewhere')
end
if not redis.call('ZSCORE', P .. 'stages', arn) then return 0 end
if mode ~= 'draining' and redis.call('HGET', P .. 'stage_mode', arn) == 'draining' then
  local old = cjson.decode(redis.call('HGET', P .. 'stage_state', arn) or '{}')
  local new = cjson.decode(state)
  new.drainingSince = old.drainingSince
  mode, state = 'draining', cjson.encode(new)
end
if mode == 'open' then
  redis.call('HDEL', P .. 'stage_mode', arn)
else
  redis.call('HSET', P .. 'stage_mode', arn, mode)
end
redis.call('HSET', P .. 'stage_state', arn, state)
return 1
