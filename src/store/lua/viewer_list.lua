-- viewer_list.lua — who is seated in a stage, most recent heartbeat first.
-- ARGV: prefix, arn, active cutoff (ms), max ids returned.
-- Returns {exists (0/1), totalViewers, activeViewers, userId...}.
local P, arn, cutoff, max = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if not redis.call('ZSCORE', P .. 'stages', arn) then return {0, 0, 0} end
local index = P .. 'viewer:expiry:' .. arn
local out = {1, tonumber(redis.call('GET', P .. 'viewers:' .. arn) or '0'),
             redis.call('ZCOUNT', index, '(' .. cutoff, '+inf')}
for _, user in ipairs(redis.call('ZREVRANGE', index, 0, max - 1)) do out[#out + 1] = user end
return out
