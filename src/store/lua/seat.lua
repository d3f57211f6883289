-- seat.lua — seat a viewer, atomically: join, same-seat refresh, move, rejoin.
-- ARGV: prefix, userId, wanted stage ARN ("" = least-loaded with room),
--       participantId for a new seat, now (ms), capacity,
--       mode ("join" needs a live publisher; "rejoin" keeps the given id).
-- Returns {stageArn, participantId, viewersInStage, isNew (0/1), movedFrom or ""}.
-- Errors: NOT_LIVE, NO_STAGE, STAGE_FULL (first word of the error message).
-- Only stages whose `stage_mode` is absent or "open" take new seats: an
-- added stage waits ("waiting") until the publisher's video reaches it, and
-- a stage being closed ("draining") seats nobody new; a viewer asking again
-- from a draining stage is moved to an open one when there is room.
local P, user, wanted, new_pid = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, capacity, mode = ARGV[5], tonumber(ARGV[6]), ARGV[7]

if mode == 'join' and redis.call('GET', P .. 'publisher:status') ~= 'live' then
  return redis.error_reply('NOT_LIVE the publisher is not live')
end

local stages = redis.call('ZRANGE', P .. 'stages', 0, -1)
local function count(arn) return tonumber(redis.call('GET', P .. 'viewers:' .. arn) or '0') end
local function open(arn)
  local mode = redis.call('HGET', P .. 'stage_mode', arn)
  return not mode or mode == 'open'
end

-- Where the user sits now: one seat at most, so the first hit is the only one.
local current, record
for _, arn in ipairs(stages) do
  record = redis.call('HGET', P .. 'viewer:heartbeat:' .. arn, user)
  if record then current = arn break end
end

-- participantId and joinedAt of a seat record; records we wrote match the
-- pattern, others (written by older tools) are decoded.
local function fields(rec)
  local pid, joined = string.match(rec, '"participantId":"([A-Za-z0-9-]*)".*"joinedAt":(%d+)')
  if pid then return pid, joined end
  local doc = cjson.decode(rec)
  return tostring(doc.participantId or ''), string.format('%d', tonumber(doc.joinedAt) or tonumber(now))
end

local function put(arn, pid, joined)
  redis.call('HSET', P .. 'viewer:heartbeat:' .. arn, user,
    '{"timestamp":' .. now .. ',"participantId":"' .. pid .. '","joinedAt":' .. joined .. '}')
  redis.call('ZADD', P .. 'viewer:expiry:' .. arn, now, user)
end

local target
if wanted ~= '' then
  if not redis.call('ZSCORE', P .. 'stages', wanted) then
    return redis.error_reply('NO_STAGE no such stage')
  end
  target = wanted
  if current ~= target and (count(target) >= capacity or not open(target)) then
    return redis.error_reply('STAGE_FULL the stage is full')
  end
elseif current and open(current) then
  target = current
else
  -- Least-loaded stage with room; ZRANGE gives the oldest first, and a
  -- strict < keeps the oldest among equals.
  local best
  for _, arn in ipairs(stages) do
    local c = count(arn)
    if c < capacity and open(arn) and (best == nil or c < best) then target, best = arn, c end
  end
  -- From a draining stage with nowhere to go, the viewer keeps its seat.
  target = target or current
  if not target then return redis.error_reply('STAGE_FULL no stage has room') end
end

if current == target then
  local pid, joined = fields(record)
  if mode == 'rejoin' then pid = new_pid end
  put(target, pid, joined)
  return {target, pid, count(target), 0, ''}
end

if current then
  redis.call('HDEL', P .. 'viewer:heartbeat:' .. current, user)
  redis.call('ZREM', P .. 'viewer:expiry:' .. current, user)
  redis.call('DECR', P .. 'viewers:' .. current)
else
  redis.call('INCR', P .. 'total_viewers')
end
put(target, new_pid, now)
return {target, new_pid, redis.call('INCR', P .. 'viewers:' .. target), current and 0 or 1, current or ''}
