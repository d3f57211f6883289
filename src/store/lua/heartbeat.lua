-- heartbeat.lua — a seated viewer says it is still there.
-- ARGV: prefix, userId, stage ARN, now (ms), capacity.
-- Returns {1} for a plain heartbeat, {0} when the user holds no seat in
-- that stage, or {2, newArn, participantId} when the stage is draining and
-- the viewer was moved to an open stage with room (the answer then carries
-- a token for the new stage).
local P, user, arn, now, capacity = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local hash = P .. 'viewer:heartbeat:' .. arn
local record = redis.call('HGET', hash, user)
if not record then return {0} end
-- Records we wrote start with the timestamp; rewrite just that part and
-- keep the cost of a heartbeat off cjson. Others are decoded.
local rest = string.match(record, '^{"timestamp":%d+(,.*)$')
if rest then
  record = '{"timestamp":' .. now .. rest
else
  local doc = cjson.decode(record)
  doc.timestamp = tonumber(now)
  record = cjson.encode(doc)
end

if redis.call('HGET', P .. 'stage_mode', arn) == 'draining' then
  local target, best
  for _, other in ipairs(redis.call('ZRANGE', P .. 'stages', 0, -1)) do
    local mode = redis.call('HGET', P .. 'stage_mode', other)
    local c = tonumber(redis.call('GET', P .. 'viewers:' .. other) or '0')
    if other ~= arn and (not mode or mode == 'open') and c < capacity and (best == nil or c < best) then
      target, best = other, c
    end
  end
  if target then
    redis.call('HDEL', hash, user)
    redis.call('ZREM', P .. 'viewer:expiry:' .. arn, user)
    redis.call('DECR', P .. 'viewers:' .. arn)
    redis.call('HSET', P .. 'viewer:heartbeat:' .. target, user, record)
    redis.call('ZADD', P .. 'viewer:expiry:' .. target, now, user)
    redis.call('INCR', P .. 'viewers:' .. target)
    return {2, target, cjson.decode(record).participantId}
  end
end

redis.call('HSET', hash, user, record)
redis.call('ZADD', P .. 'viewer:expiry:' .. arn, now, user)
return {1}
