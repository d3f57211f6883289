-- heartbeat.lua — a seated viewer says it is still there.
-- ARGV: prefix, userId, stage ARN, now (ms). Returns 1, or 0 when the user
-- holds no seat in that stage.
local P, user, arn, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local hash = P .. 'viewer:heartbeat:' .. arn
local record = redis.call('HGET', hash, user)
if not record then return 0 end
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
redis.call('HSET', hash, user, record)
redis.call('ZADD', P .. 'viewer:expiry:' .. arn, now, user)
return 1
