-- lease.lua — the scaler lease: one usher process at a time decides on
-- stages. The holder renews it well within its TTL; if the holder dies the
-- key expires and another process takes it. Every script that changes
-- stages on the scaler's behalf checks the lease again (fencing), so a
-- holder that stalled past its TTL cannot act on stale decisions.
-- ARGV: prefix, holder id, ttl (ms); ttl "0" gives the lease up (a process
-- stopping), so the next holder need not wait for it to expire.
-- Returns {1, epoch} renewed, {2, epoch} newly taken, {0, epoch} held by
-- another or given up.
local P, holder, ttl = ARGV[1], ARGV[2], ARGV[3]
local key = P .. 'scaler:lease'
local current = redis.call('GET', key)
if ttl == '0' then
  if current == holder then redis.call('DEL', key) end
  return {0, tonumber(redis.call('GET', P .. 'scaler:epoch') or '0')}
end
if current == holder then
  redis.call('PEXPIRE', key, ttl)
  return {1, tonumber(redis.call('GET', P .. 'scaler:epoch') or '0')}
end
if not current then
  redis.call('SET', key, holder, 'PX', ttl)
  return {2, redis.call('INCR', P .. 'scaler:epoch')}
end
return {0, tonumber(redis.call('GET', P .. 'scaler:epoch') or '0')}
