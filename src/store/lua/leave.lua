-- leave.lua — a viewer gives up its seat. Idempotent: only a seat that is
-- really there is counted out, so a second leave changes nothing and no
-- count can go below zero.
-- ARGV: prefix, userId, stage ARN. Returns 1 if a seat was freed, else 0.
local P, user, arn = ARGV[1], ARGV[2], ARGV[3]
if redis.call('HDEL', P .. 'viewer:heartbeat:' .. arn, user) == 0 then return 0 end
redis.call('ZREM', P .. 'viewer:expiry:' .. arn, user)
redis.call('DECR', P .. 'viewers:' .. arn)
redis.call('DECR', P .. 'total_viewers')
return 1
