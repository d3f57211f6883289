-- stats.lua — everything /api/stats shows, in one round trip.
-- Also what the scaler decides from.
-- ARGV: prefix. Returns {totalViewers, publisherStatus, masterArn or "",
--   then per stage, oldest first: arn, viewerCount, info JSON or "",
--   mode ("open" when none is set), scaler state JSON or "", and the
--   replication word from that state ("none" when there is none), so the
--   stats need not decode it}.
local P = ARGV[1]
local out = {redis.call('GET', P .. 'total_viewers') or '0',
             redis.call('GET', P .. 'publisher:status') or 'offline',
             redis.call('GET', P .. 'master_stage') or ''}
for _, arn in ipairs(redis.call('ZRANGE', P .. 'stages', 0, -1)) do
  out[#out + 1] = arn
  out[#out + 1] = redis.call('GET', P .. 'viewers:' .. arn) or '0'
  out[#out + 1] = redis.call('HGET', P .. 'stage_info', arn) or ''
  out[#out + 1] = redis.call('HGET', P .. 'stage_mode', arn) or 'open'
  local state = redis.call('HGET', P .. 'stage_state', arn) or ''
  out[#out + 1] = state
  out[#out + 1] = string.match(state, '"replication":"(%a+)"') or 'none'
end
return out
