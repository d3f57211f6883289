-- stage_add.lua — record a stage the provider has created.
-- The stage's JSON lives without expiry in the `stage_info` hash, the
-- source the `stage:{arn}` key (with its SPEC TTL) is renewed from.
-- ARGV: prefix, arn, info JSON, createdAt (ms), ttl (s), max stages,
--       master: "0" an ordinary stage; "1" the master unless one exists
--       (then that one is returned and nothing is added); "2" the master
--       whatever was there (MASTER_STAGE_ARN set by the operator),
--       lease holder ("" when no lease is needed: not a scaler action),
--       mode ("open" or "waiting"), scaler state JSON ("" for none).
-- Returns the master stage ARN when asked to set it (ours or the one that
-- was there first), else the ARN added.
-- Errors: STAGE_LIMIT when full, NOT_LEADER when the lease is not held.
local P, arn, info, created, ttl, max = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local master, holder, mode, state = ARGV[7] ~= '0', ARGV[8], ARGV[9], ARGV[10]
if holder ~= '' and redis.call('GET', P .. 'scaler:lease') ~= holder then
  return redis.error_reply('NOT_LEADER the scaler lease is held elsewhere')
end
if ARGV[7] == '1' then
  local existing = redis.call('GET', P .. 'master_stage')
  if existing and redis.call('ZSCORE', P .. 'stages', existing) then return existing end
end
if not redis.call('ZSCORE', P .. 'stages', arn) then
  if redis.call('ZCARD', P .. 'stages') >= max then
    return redis.error_reply('STAGE_LIMIT no more stages allowed')
  end
  redis.call('ZADD', P .. 'stages', created, arn)
  redis.call('HSET', P .. 'stage_info', arn, info)
  redis.call('SET', P .. 'viewers:' .. arn, 0, 'NX')
  if mode ~= 'open' then redis.call('HSET', P .. 'stage_mode', arn, mode) end
  if state ~= '' then redis.call('HSET', P .. 'stage_state', arn, state) end
end
redis.call('SET', P .. 'stage:' .. arn, redis.call('HGET', P .. 'stage_info', arn), 'EX', ttl)
if master then
  redis.call('SET', P .. 'master_stage', arn)
  redis.call('HDEL', P .. 'stage_mode', arn)
end
return arn
