-- sweep.lua — remove viewers whose last heartbeat is older than the cutoff,
-- with the same bookkeeping as a leave. The expiry index is sorted by last
-- heartbeat, so the cost is that of the expired viewers, not of the seated;
-- `limit` bounds one call so Redis is never blocked for long: the caller
-- calls again while a call returns `limit`.
-- ARGV: prefix, cutoff (ms), limit. Returns the number removed.
local P, cutoff, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local removed = 0
for _, arn in ipairs(redis.call('ZRANGE', P .. 'stages', 0, -1)) do
  local index = P .. 'viewer:expiry:' .. arn
  local gone = redis.call('ZRANGEBYSCORE', index, '-inf', cutoff, 'LIMIT', 0, limit - removed)
  if #gone > 0 then
    redis.call('ZREM', index, unpack(gone))
    local n = redis.call('HDEL', P .. 'viewer:heartbeat:' .. arn, unpack(gone))
    redis.call('DECRBY', P .. 'viewers:' .. arn, n)
    redis.call('DECRBY', P .. 'total_viewers', n)
    removed = removed + #gone
    if removed >= limit then break end
  end
end
return removed
