-- leave.lua — a viewer gives up its seat. Idempotent: only a seat that is
-- really there is counted out, so a second leave changes nothing and no
-- count can go below zero. A viewer the scaler moved may still name its
-- old stage (a user holds one seat at most): then the seat is looked for
-- in the other stages, a cost paid only when the named stage misses.
-- ARGV: prefix, userId, stage ARN.
-- Returns the ARN of the stage whose seat was freed, or "" when none was.
local P, user, named = ARGV[1], ARGV[2], ARGV[3]

local function free_seat(arn)
  if redis.call('HDEL', P .. 'viewer:heartbeat:' .. arn, user) == 0 then return false end
  redis.call('ZREM', P .. 'viewer:expiry:' .. arn, user)
  redis.call('DECR', P .. 'viewers:' .. arn)
  redis.call('DECR', P .. 'total_viewers')
  return true
end

if free_seat(named) then return named end
for _, arn in ipairs(redis.call('ZRANGE', P .. 'stages', 0, -1)) do
  if arn ~= named and free_seat(arn) then return arn end
end
return ''
