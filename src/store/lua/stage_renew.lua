-- stage_renew.lua — keep every live stage's `stage:{arn}` key alive (SPEC §3:
-- TTL 3600 s, renewed while the stage lives), rewriting it from `stage_info`
-- so a key that expired while no usher ran comes back.
-- ARGV: prefix, ttl (s). Returns the number of stages renewed.
local P, ttl = ARGV[1], ARGV[2]
local stages = redis.call('ZRANGE', P .. 'stages', 0, -1)
for _, arn in ipairs(stages) do
  local info = redis.call('HGET', P .. 'stage_info', arn)
  if info then redis.call('SET', P .. 'stage:' .. arn, info, 'EX', ttl) end
end
return #stages
