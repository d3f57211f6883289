-- stage_rename.lua — a new name for a stage, in `stage_info` and in the
-- `stage:{arn}` key (whose TTL is set afresh).
-- ARGV: prefix, arn, name, ttl (s). Returns the stage JSON. Error NO_STAGE.
local P, arn, name, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local info = redis.call('HGET', P .. 'stage_info', arn)
if not info or not redis.call('ZSCORE', P .. 'stages', arn) then
  return redis.error_reply('NO_STAGE no such stage')
end
local doc = cjson.decode(info)
doc.name = name
info = cjson.encode(doc)
redis.call('HSET', P .. 'stage_info', arn, info)
redis.call('SET', P .. 'stage:' .. arn, info, 'EX', ttl)
return info
