-- stats.lua — everything /api/stats shows, in one round trip.
-- ARGV: prefix. Returns {totalViewers, publisherStatus,
--   then per stage, oldest first: arn, viewerCount, info JSON or ""}.
local P = ARGV[1]
local out = {redis.call('GET', P .. 'total_viewers') or '0',
             redis.call('GET', P .. 'publisher:status') or 'offline'}
for _, arn in ipairs(redis.call('ZRANGE', P .. 'stages', 0, -1)) do
  out[#out + 1] = arn
  out[#out + 1] = redis.call('GET', P .. 'viewers:' .. arn) or '0'
  out[#out + 1] = redis.call('HGET', P .. 'stage_info', arn) or ''
end
return out
