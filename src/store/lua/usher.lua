#!lua name=usher
-- usher.lua — every change usher makes to viewer and stage state, as one
-- Redis function library (FUNCTION LOAD, Redis 7). Each function runs
-- atomically, so the SPEC §3 counts stay exact whatever the number of
-- usher processes and wherever one is killed. store.c loads this library
-- when a connection is made, replacing an older one (usher_version).
--
-- Keys. ARGV[1] of every function is REDIS_KEY_PREFIX. The fixed keys a
-- function touches (total_viewers, stages, stage_mode, scaler:lease, ...)
-- are declared by the caller as KEYS, and read here by name (key()). The
-- per-stage keys (viewers:{arn}, viewer:heartbeat:{arn},
-- viewer:expiry:{arn}, stage:{arn}) and the seat index's buckets
-- (seat_index:{n}) are derived from the prefix, because
-- which stages a call touches is found inside the call (the least-loaded
-- stage, the stage a user sits in, the stages a sweep visits): declaring
-- them would take a round trip first and lose the atomicity. On Redis
-- Cluster all of a deployment's keys must therefore hash to one slot: put a
-- hash tag in the prefix (REDIS_KEY_PREFIX="{usher}:prod:"); README "Redis".
--
-- Refusals are errors whose first word is their code (NOT_LIVE, NO_STAGE,
-- STAGE_FULL, NO_ROOM_YET, STAGE_LIMIT, NOT_LEADER, IS_MASTER, NOT_EMPTY);
-- store.c turns them into enum store_error.

-- Raise VERSION with every change to this file: a connecting usher replaces
-- the library in Redis only when Redis holds an older one (store/redis.c).
local VERSION = 20

-- A stage's seating mode (stages/state.h names them in C). `stage_mode`
-- holds only waiting and draining: no field means open.
local OPEN, DRAINING = 'open', 'draining'

local function refuse(code, text) error({err = code .. ' ' .. text}) end

-- ---- keys --------------------------------------------------------------

-- The call's context: the prefix and its declared fixed keys by name.
local function context(keys, args)
  local P = args[1]
  local declared = {}
  for _, k in ipairs(keys) do declared[string.sub(k, #P + 1)] = k end
  return {P = P, declared = declared, slots = {}}
end

local function key(c, name)
  return c.declared[name] or error('usher: key not declared by the caller: ' .. name)
end

local function stage_key(c, name, arn) return c.P .. name .. arn end
-- The claim of the stop of participant's replication into dest.
local function stop_claim_key(c, dest, participant) return c.P .. 'replica_stop:' .. dest .. ':' .. participant end

-- ---- stages --------------------------------------------------------------

local function live_stages(c) return redis.call('ZRANGE', key(c, 'stages'), 0, -1) end

local function is_stage(c, arn) return redis.call('ZSCORE', key(c, 'stages'), arn) ~= false end

local function count(c, arn) return tonumber(redis.call('GET', stage_key(c, 'viewers:', arn)) or '0') end

local function mode_of(c, arn) return redis.call('HGET', key(c, 'stage_mode'), arn) or OPEN end

-- Every stage gets a small number, its slot, when it is added: the seat
-- index stores slots (a few bytes a viewer) rather than ARNs.
-- `stage_slot` maps arn -> slot, `slot_stage` slot -> arn; the call's
-- context keeps those it has seen (c.slots), as each lookup scans a
-- listpack of up to 128 stages.
local function slot_of(c, arn)
  local slot = c.slots[arn] or redis.call('HGET', key(c, 'stage_slot'), arn)
  c.slots[arn] = slot
  return slot
end

local function slot_give(c, arn)
  local slot = slot_of(c, arn)
  if slot then return slot end
  slot = tostring(redis.call('INCR', key(c, 'stage_slot_seq')))
  redis.call('HSET', key(c, 'stage_slot'), arn, slot)
  redis.call('HSET', key(c, 'slot_stage'), slot, arn)
  c.slots[arn] = slot
  return slot
end

-- `open_stages`: the slots of the open stages by load, score = viewers +
-- slot / 2^20, so the integer part is the stage's count and, among equal
-- counts, the stage added first comes first. Slots, not ARNs: Redis keeps
-- a zset of up to 128 members as one listpack that each change rewrites,
-- and short members keep that cheap at 100 stages. Kept by every step that
-- seats, unseats or changes a mode (recount(), open_set()).
local TIE = 1048576

local function open_set(c, arn, open)
  local slot = slot_give(c, arn)
  if not open then return redis.call('ZREM', key(c, 'open_stages'), slot) end
  local score = count(c, arn) + (tonumber(slot) % TIE) / TIE
  redis.call('ZADD', key(c, 'open_stages'), string.format('%.17g', score), slot)
end

-- A stage's count moves by delta (its viewers:{arn} and its load in
-- open_stages when open); returns the new count.
local function recount(c, arn, slot, delta)
  if slot then redis.call('ZADD', key(c, 'open_stages'), 'XX', 'INCR', delta, slot) end
  return redis.call('INCRBY', stage_key(c, 'viewers:', arn), delta)
end

-- The open stage with room and the fewest viewers, other than `except`
-- (among equals the one added first): the head of open_stages.
local function least_loaded(c, capacity, except)
  local head = redis.call('ZRANGE', key(c, 'open_stages'), 0, 1, 'WITHSCORES')
  for i = 1, #head, 2 do
    local arn = redis.call('HGET', key(c, 'slot_stage'), head[i])
    if arn and not is_stage(c, arn) then arn = nil end   -- only live stages (`stages`) seat
    if arn then c.slots[arn] = head[i] end
    if arn ~= except then
      if arn and math.floor(tonumber(head[i + 1])) < capacity then return arn end
      return nil
    end
  end
end

-- Redis's clock (unix ms): one clock for every usher process.
local function redis_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Fencing: a scaler action (holder ~= '') runs only while its lease holds.
local function fence(c, holder)
  if holder ~= '' and redis.call('GET', key(c, 'scaler:lease')) ~= holder then
    refuse('NOT_LEADER', 'the scaler lease is held elsewhere')
  end
end

-- The scaler's last change (a stage added or drained under the lease),
-- kept in `scaler:last_change` by Redis's clock (ms) in the step that makes
-- it: SCALE_DOWN_COOLDOWN counts from it in whichever process holds the
-- lease next (lease() answers its age), across restarts and hand-overs.
local function note_change(c) redis.call('SET', key(c, 'scaler:last_change'), redis_ms()) end

-- ---- seats ----------------------------------------------------------------

-- The seat index: userId -> the slot of the stage where the user sits, so
-- finding a user's seat costs the same whatever the number of stages. It is
-- spread over SEAT_BUCKETS small hashes (seat_index:{n}, n from the userId)
-- that Redis keeps as listpacks: ~40 bytes a viewer at 1,000,000 seated,
-- where one big hash would take ~65 (BENCHMARKS.md, issue 11 "Memory").
local SEAT_BUCKETS = 16384

local function index_key(c, user)
  local h = 0
  for i = 1, #user do h = (h * 31 + string.byte(user, i)) % SEAT_BUCKETS end
  return c.P .. 'seat_index:' .. h
end

-- A seated viewer's record and expiry entry, refreshed.
local function touch_seat(c, arn, user, record, now)
  redis.call('HSET', stage_key(c, 'viewer:heartbeat:', arn), user, record)
  redis.call('ZADD', stage_key(c, 'viewer:expiry:', arn), now, user)
end

-- A new seat in `arn` for a user holding none; returns the stage's count.
local function add_seat(c, arn, user, record, now)
  touch_seat(c, arn, user, record, now)
  local slot = slot_give(c, arn)
  redis.call('HSET', index_key(c, user), user, slot)
  return recount(c, arn, slot, 1)
end

-- Removes the seats of `users` in stage `arn` (those really there) and
-- returns how many; total_viewers is the caller's (a move keeps it). The
-- one way a seat goes: the index and the counts follow here.
local function drop_seats(c, arn, users)
  local seats, n = stage_key(c, 'viewer:heartbeat:', arn), 0
  for _, user in ipairs(users) do
    if redis.call('HDEL', seats, user) == 1 then
      redis.call('HDEL', index_key(c, user), user)
      n = n + 1
    end
  end
  redis.call('ZREM', stage_key(c, 'viewer:expiry:', arn), unpack(users))
  if n > 0 then recount(c, arn, slot_of(c, arn), -n) end
  return n
end

-- A seat lost for good: a leave, an expiry.
local function unseat(c, arn, users)
  local n = drop_seats(c, arn, users)
  if n > 0 then redis.call('DECRBY', key(c, 'total_viewers'), n) end
  return n
end

local function move_seat(c, from, to, user, record, now)
  drop_seats(c, from, {user})
  return add_seat(c, to, user, record, now)
end

-- A seat record is {"timestamp":ms,"participantId":"…","joinedAt":ms}.
-- Records we wrote match the patterns; others (older tools) are decoded.
local function record_new(pid, joined, now)
  return '{"timestamp":' .. now .. ',"participantId":"' .. pid .. '","joinedAt":' .. joined .. '}'
end

local function record_fields(rec, now)
  local pid, joined = string.match(rec, '^{"timestamp":%d+,"participantId":"([A-Za-z0-9-]*)","joinedAt":(%d+)}$')
  if pid then return pid, joined end
  local doc = cjson.decode(rec)
  return tostring(doc.participantId or ''), string.format('%d', tonumber(doc.joinedAt) or tonumber(now))
end

-- The record with its timestamp moved to now: one we wrote keeps its text
-- after the timestamp.
local function record_touched(rec, now)
  local rest = string.match(rec, '^{"timestamp":%d+(,"participantId":"[A-Za-z0-9-]*","joinedAt":%d+})$')
  if rest then return '{"timestamp":' .. now .. rest end
  local pid, joined = record_fields(rec, now)
  return record_new(pid, joined, now)
end

-- The stage where `user` sits and its record: one seat at most.
local function find_seat(c, user)
  local slot = redis.call('HGET', index_key(c, user), user)
  if not slot then return end
  local arn = redis.call('HGET', key(c, 'slot_stage'), slot)
  if not arn then return end
  local rec = redis.call('HGET', stage_key(c, 'viewer:heartbeat:', arn), user)
  if rec then return arn, rec end
end

-- ---- viewer functions --------------------------------------------------

-- Joins that found no room are demand the scaler sizes for: `seat_waiting`
-- holds userId -> when it was refused (Redis's clock, ms), and counts for
-- DEMAND_MS or until the user is seated. Redis's own clock keeps the
-- entries of several usher processes comparable.
local DEMAND_MS = 10000

-- A join found no stage with room: it counts as demand, and the refusal
-- says whether room is coming (a stage waits to open, or one can be
-- added: NO_ROOM_YET, worth waiting for) or not (STAGE_FULL).
local function no_room(c, user, max_stages)
  local waiting = key(c, 'seat_waiting')
  local now = redis_ms()
  redis.call('ZREMRANGEBYSCORE', waiting, '-inf', now - DEMAND_MS)
  redis.call('ZADD', waiting, now, user)
  local stages = live_stages(c)
  for _, arn in ipairs(stages) do
    if redis.call('HGET', key(c, 'stage_mode'), arn) == 'waiting' then
      refuse('NO_ROOM_YET', 'a stage is opening')
    end
  end
  if #stages < max_stages then refuse('NO_ROOM_YET', 'a stage can be added') end
  refuse('STAGE_FULL', 'all ' .. #stages .. ' stages are full and no more may be added')
end

-- seat: join, same-seat refresh, move, rejoin.
-- ARGV: prefix, userId, wanted stage ARN ("" = least-loaded with room),
--       participantId for a new seat, now (ms), capacity,
--       "join" (needs a live publisher) or "rejoin" (keeps the given id),
--       stages that may exist (MAX_STAGES; 0 when none may be added).
-- KEYS: publisher:status, stages, stage_mode, total_viewers, seat_waiting,
-- open_stages, stage_slot, slot_stage, stage_slot_seq.
-- Returns {stageArn, participantId, viewersInStage, isNew (0/1), movedFrom or ""}.
-- Only open stages take new seats; from a draining stage a viewer asking
-- again is moved to an open one with room, else keeps its seat.
local function seat(keys, args)
  local c = context(keys, args)
  local user, wanted, new_pid, now, capacity, how, max_stages =
    args[2], args[3], args[4], args[5], tonumber(args[6]), args[7], tonumber(args[8])
  if how == 'join' and redis.call('GET', key(c, 'publisher:status')) ~= 'live' then
    refuse('NOT_LIVE', 'the publisher is not live')
  end
  local current, rec = find_seat(c, user)
  local target
  if wanted ~= '' then
    if not is_stage(c, wanted) then refuse('NO_STAGE', 'no such stage') end
    target = wanted
    if current ~= target and (count(c, target) >= capacity or mode_of(c, target) ~= OPEN) then
      refuse('STAGE_FULL', 'the stage is full')
    end
  elseif current and mode_of(c, current) == OPEN then
    target = current
  else
    target = least_loaded(c, capacity, nil) or current
    if not target then no_room(c, user, max_stages) end
    redis.call('ZREM', key(c, 'seat_waiting'), user)
  end
  if current == target then
    local pid, joined = record_fields(rec, now)
    if how == 'rejoin' then pid = new_pid end
    touch_seat(c, target, user, record_new(pid, joined, now), now)
    return {target, pid, count(c, target), 0, ''}
  end
  local record = record_new(new_pid, now, now)
  if current then
    return {target, new_pid, move_seat(c, current, target, user, record, now), 0, current}
  end
  redis.call('INCR', key(c, 'total_viewers'))
  return {target, new_pid, add_seat(c, target, user, record, now), 1, ''}
end

-- One heartbeat: a seated viewer says it is still there. Returns 1 for
-- a plain heartbeat, 0 when the user holds no seat in that stage, 3
-- when the stage is not live (the seat cannot come back there), or
-- {2, newArn, participantId} when the stage is draining and the viewer was
-- moved to an open stage with room. Plain numbers, not tables: Redis turns
-- a table of the reply into RESP at several times the cost (~9 % of a
-- call of seven heartbeats, BENCHMARKS.md).
local function beat(c, user, arn, now, capacity)
  local rec = redis.call('HGET', stage_key(c, 'viewer:heartbeat:', arn), user)
  if not rec then return is_stage(c, arn) and 0 or 3 end
  local record = record_touched(rec, now)
  if mode_of(c, arn) == DRAINING then
    local target = least_loaded(c, capacity, arn)
    if target then
      move_seat(c, arn, target, user, record, now)
      return {2, target, (record_fields(rec, now))}
    end
  end
  touch_seat(c, arn, user, record, now)
  return 1
end

-- heartbeats: the heartbeats that reached one usher together, in one call
-- (store/write_batch.c); each is the step it would be alone.
-- ARGV: prefix, then per heartbeat: userId, stage ARN, now (ms), capacity.
-- KEYS: stages, stage_mode, open_stages, stage_slot, slot_stage, stage_slot_seq.
-- Returns one answer of beat() per heartbeat, in order.
local function heartbeats(keys, args)
  local c = context(keys, args)
  local out = {}
  for i = 2, #args - 3, 4 do
    out[#out + 1] = beat(c, args[i], args[i + 1], args[i + 2], tonumber(args[i + 3]))
  end
  return out
end

-- Who left lately (a leave, a kick): `viewer:left` holds user → when (ms)
-- for LEFT_KEPT_MS, so that a reconciliation that read IVS before the
-- leave does not seat the user again (reconcile_seat).
local LEFT_KEPT_MS = 600000
local function note_left(c, user, now)
  local k = key(c, 'viewer:left')
  redis.call('ZADD', k, now, user)
  redis.call('ZREMRANGEBYSCORE', k, '-inf', tonumber(now) - LEFT_KEPT_MS)
end

-- leave: a viewer gives up its seat; a second leave changes nothing. A
-- viewer the scaler moved may name its old stage: its one seat is found
-- through the seat index. A freed seat is noted in `viewer:left`.
-- ARGV: prefix, userId, stage ARN, now (ms).
-- KEYS: stages, total_viewers, open_stages, stage_slot, slot_stage, viewer:left.
-- Returns the ARN of the stage whose seat was freed, or "".
local function leave(keys, args)
  local c = context(keys, args)
  local user, now = args[2], args[4]
  local arn = find_seat(c, user)
  if arn and unseat(c, arn, {user}) > 0 then
    note_left(c, user, now)
    return arn
  end
  return ''
end

-- seat_of: where a user sits. ARGV: prefix, userId. KEYS: stages, slot_stage.
-- Returns JSON {"stageArn":…,"participantId":…}, or "" when it holds no seat.
local function seat_of(keys, args)
  local c = context(keys, args)
  local arn, rec = find_seat(c, args[2])
  if not arn then return '' end
  local pid = record_fields(rec, 0)
  return cjson.encode({stageArn = arn, participantId = pid})
end

-- sweep: viewers whose last heartbeat is older than the cutoff lose their
-- seats. The expiry index is sorted by heartbeat, so the cost is that of
-- the expired; `limit` bounds one call (the caller calls again while a
-- call returns `limit`).
-- ARGV: prefix, cutoff (ms), limit.
-- KEYS: stages, total_viewers, open_stages, stage_slot.
-- Returns the number removed.
local function sweep(keys, args)
  local c = context(keys, args)
  local cutoff, limit = args[2], tonumber(args[3])
  local removed = 0
  for _, arn in ipairs(live_stages(c)) do
    local gone = redis.call('ZRANGEBYSCORE', stage_key(c, 'viewer:expiry:', arn), '-inf', cutoff,
                            'LIMIT', 0, limit - removed)
    if #gone > 0 then
      unseat(c, arn, gone)
      removed = removed + #gone
      if removed >= limit then break end
    end
  end
  return removed
end

-- viewer_list: who is seated in a stage, most recent heartbeat first.
-- ARGV: prefix, arn, active cutoff (ms), max ids. KEYS: stages.
-- Returns {exists (0/1), totalViewers, activeViewers, userId...}.
local function viewer_list(keys, args)
  local c = context(keys, args)
  local arn, cutoff, max = args[2], args[3], tonumber(args[4])
  if not is_stage(c, arn) then return {0, 0, 0} end
  local index = stage_key(c, 'viewer:expiry:', arn)
  local out = {1, count(c, arn), redis.call('ZCOUNT', index, '(' .. cutoff, '+inf')}
  for _, user in ipairs(redis.call('ZREVRANGE', index, 0, max - 1)) do out[#out + 1] = user end
  return out
end

-- ---- reconciliation with IVS (reconcile/reconcile.c) ---------------------

-- reconcile_seat: the participants IVS listed as connected in a stage,
-- read at `readAt`, against the seats. Each is one correction decided
-- here, on the state of now, so none undoes a join or leave made since
-- the read: a user seated in this stage is marked seen (`viewer:seen:{arn}`,
-- user → ms); a user seated in another stage since before the read is
-- moved here (a client that ignored a move); a user without a seat who has
-- not left since the read is seated here when the stage has room, else
-- counted unseated.
-- ARGV: prefix, arn, readAt (ms), now (ms), capacity, then participantId,
-- userId pairs. KEYS: stages, total_viewers, viewer:left, open_stages,
-- stage_slot, slot_stage, stage_slot_seq.
-- Returns JSON {seated: [user…], moved: [[user, fromArn]…], unseated: [user…]}
-- (an empty list may come as {}), or "" when the stage is gone.
local function reconcile_seat(keys, args)
  local c = context(keys, args)
  local arn, read_at, now, capacity = args[2], tonumber(args[3]), args[4], tonumber(args[5])
  if not is_stage(c, arn) then return '' end
  local seats, seen = stage_key(c, 'viewer:heartbeat:', arn), stage_key(c, 'viewer:seen:', arn)
  local out = {seated = {}, moved = {}, unseated = {}}
  for i = 6, #args - 1, 2 do
    local pid, user = args[i], args[i + 1]
    if redis.call('HEXISTS', seats, user) == 1 then
      redis.call('ZADD', seen, read_at, user)
    elseif tonumber(redis.call('ZSCORE', key(c, 'viewer:left'), user) or '-1') < read_at then
      local current, rec = find_seat(c, user)
      if current then
        local _, joined = record_fields(rec, now)
        if tonumber(joined) < read_at then
          move_seat(c, current, arn, user, record_new(pid, joined, now), now)
          redis.call('ZADD', seen, read_at, user)
          out.moved[#out.moved + 1] = {user, current}
        end
      elseif count(c, arn) < capacity then
        redis.call('INCR', key(c, 'total_viewers'))
        add_seat(c, arn, user, record_new(pid, now, now), now)
        redis.call('ZADD', seen, read_at, user)
        out.seated[#out.seated + 1] = user
      else
        out.unseated[#out.unseated + 1] = user
      end
    end
  end
  return cjson.encode(out)
end

-- reconcile_ghosts: seats of a stage whose participant IVS has not seen
-- connected since the cutoff (nor joined since) are removed, with the
-- bookkeeping of a leave; seen marks of users no longer seated go.
-- ARGV: prefix, arn, cutoff (ms). KEYS: stages, total_viewers, open_stages,
-- stage_slot.
-- Returns JSON [user…] of the seats removed (an empty list may come as {}).
local function reconcile_ghosts(keys, args)
  local c = context(keys, args)
  local arn, cutoff = args[2], tonumber(args[3])
  if not is_stage(c, arn) then return '[]' end
  local seats, seen = stage_key(c, 'viewer:heartbeat:', arn), stage_key(c, 'viewer:seen:', arn)
  local all, gone = redis.call('HGETALL', seats), {}
  for i = 1, #all, 2 do
    local _, joined = record_fields(all[i + 1], 0)
    local last = math.max(tonumber(joined), tonumber(redis.call('ZSCORE', seen, all[i]) or '0'))
    if last <= cutoff then gone[#gone + 1] = all[i] end
  end
  for i = 1, #gone, 1000 do
    unseat(c, arn, {unpack(gone, i, math.min(i + 999, #gone))})
  end
  for _, user in ipairs(redis.call('ZRANGE', seen, 0, -1)) do
    if redis.call('HEXISTS', seats, user) == 0 then redis.call('ZREM', seen, user) end
  end
  return cjson.encode(gone)
end

-- reconcile_notes: every stage's last reconciliation (`stage_reconcile`,
-- arn → JSON). ARGV: prefix. KEYS: stage_reconcile.
-- Returns one JSON object arn → note.
local function reconcile_notes(keys, args)
  local c = context(keys, args)
  local all, parts = redis.call('HGETALL', key(c, 'stage_reconcile')), {}
  for i = 1, #all, 2 do parts[#parts + 1] = cjson.encode(all[i]) .. ':' .. all[i + 1] end
  return '{' .. table.concat(parts, ',') .. '}'
end

-- event_news: an IVS event (EventBridge) about a stage is news when no
-- event taken for that stage was later, nor is the same one; then it is
-- recorded (`ivs_events`, arn → "time id"), so every usher process judges
-- duplicates and order alike. Times are ISO 8601 of one form (they compare
-- as text, and hold no space).
-- ARGV: prefix, arn, time, event id. KEYS: ivs_events.
-- Returns 1 when news (recorded), else 0.
local function event_news(keys, args)
  local c = context(keys, args)
  local arn, time, id = args[2], args[3], args[4]
  local last = redis.call('HGET', key(c, 'ivs_events'), arn)
  local t, i = string.match(last or '', '^(%S+) (.*)$')
  if t and (time < t or (time == t and id == i)) then return 0 end
  redis.call('HSET', key(c, 'ivs_events'), arn, time .. ' ' .. id)
  return 1
end

-- orphan_seen: the orphan sweep's candidates (stages of this stream IVS
-- lists and no record names), each noted (`orphan_seen`, arn → ms) by
-- Redis's clock the first time any process gives it; those not given are
-- forgotten (recorded meanwhile, or deleted). So ORPHAN_GRACE counts from
-- the first sweep that saw a stage, in whichever process, across restarts.
-- ARGV: prefix, JSON array of ARNs. KEYS: orphan_seen.
-- Returns a JSON object arn → ms since first seen (0: noted now).
local function orphan_seen(keys, args)
  local c = context(keys, args)
  local k, given, out = key(c, 'orphan_seen'), {}, {}
  local now = redis_ms()
  for _, arn in ipairs(cjson.decode(args[2])) do
    given[arn] = true
    redis.call('HSETNX', k, arn, now)
  end
  local all = redis.call('HGETALL', k)
  for i = 1, #all, 2 do
    if given[all[i]] then
      out[all[i]] = now - tonumber(all[i + 1])
    else
      redis.call('HDEL', k, all[i])
    end
  end
  return cjson.encode(out)
end

-- read(run) for `names` in runs of 1000 (unpack() is bounded by Lua's
-- stack), its answers joined: one MGET or HMGET for many names.
local READ_RUN = 1000
local function read_many(names, read)
  local out = {}
  for first = 1, #names, READ_RUN do
    local got = read(unpack(names, first, math.min(first + READ_RUN - 1, #names)))
    for j = 1, #got do out[first + j - 1] = got[j] end
  end
  return out
end

-- stats: everything /api/stats shows and the scaler decides from.
-- ARGV: prefix. KEYS: total_viewers, publisher:status, master_stage,
-- stages, stage_info, stage_mode, stage_state, seat_waiting.
-- Returns {totalViewers, publisherStatus, masterArn or "", joins waiting
-- for room (seat_waiting within DEMAND_MS), then per stage, oldest first:
-- arn, viewerCount, info JSON or "", mode, state JSON or ""}.
-- Each stage's fields are read for all stages at once (MGET, HMGET: four
-- commands whatever the number of stages, not four per stage).
local function stats(keys, args)
  local c = context(keys, args)
  local out = {redis.call('GET', key(c, 'total_viewers')) or '0',
               redis.call('GET', key(c, 'publisher:status')) or 'offline',
               redis.call('GET', key(c, 'master_stage')) or '',
               redis.call('ZCOUNT', key(c, 'seat_waiting'), redis_ms() - DEMAND_MS, '+inf')}
  local arns = live_stages(c)
  local counters = {}
  for i, arn in ipairs(arns) do counters[i] = stage_key(c, 'viewers:', arn) end
  local counts = read_many(counters, function(...) return redis.call('MGET', ...) end)
  local function fields(k) return function(...) return redis.call('HMGET', key(c, k), ...) end end
  local infos, modes = read_many(arns, fields('stage_info')), read_many(arns, fields('stage_mode'))
  local states = read_many(arns, fields('stage_state'))
  for i, arn in ipairs(arns) do
    out[#out + 1] = arn
    out[#out + 1] = counts[i] or '0'
    out[#out + 1] = infos[i] or ''
    out[#out + 1] = modes[i] or OPEN
    out[#out + 1] = states[i] or ''
  end
  return out
end

-- live: the stats view and the stage events after ARGV[2], at most ARGV[3],
-- oldest first (ARGV[2] "": the latest ARGV[3]), in one call: the live feed's
-- one read per interval (src/live/live.c). KEYS: those of stats, and
-- stage_events. Returns {stats' reply, stream entries}.
local function live(keys, args)
  local c = context(keys, args)
  local events, after, n = key(c, 'stage_events'), args[2], tonumber(args[3])
  local entries
  if after == '' then
    local newest = redis.call('XREVRANGE', events, '+', '-', 'COUNT', n)
    entries = {}
    for i = #newest, 1, -1 do entries[#entries + 1] = newest[i] end
  else
    entries = redis.call('XRANGE', events, '(' .. after, '+', 'COUNT', n)
  end
  return {stats(keys, args), entries}
end

-- ---- stage functions ------------------------------------------------------

local function stage_info_key_set(c, arn, info, ttl)
  redis.call('SET', stage_key(c, 'stage:', arn), info, 'EX', ttl)
end

-- stage_add: record a stage the provider has created. Its JSON lives
-- without expiry in `stage_info`, the source `stage:{arn}` (SPEC TTL) is
-- renewed from.
-- ARGV: prefix, arn, info JSON, createdAt (ms), ttl (s), max stages,
--       master: "0" an ordinary stage; "1" the master unless one exists
--       (then that one is returned and nothing is added); "2" the master
--       whatever was there (MASTER_STAGE_ARN), lease holder ("" when no
--       lease is needed), mode, scaler state JSON ("" for none), tags JSON
--       ("" for none; kept in `stage_tags`, as SPEC §3 fixes stage:{arn}),
--       endpoints JSON {whip, events} ("" for none; kept in `stage_endpoints`).
-- A stage the scaler adds (a lease holder given) is its last change
-- (note_change()).
-- KEYS: scaler:lease, master_stage, stages, stage_info, stage_mode,
-- stage_state, stage_tags, stage_endpoints, open_stages, stage_slot, slot_stage,
-- stage_slot_seq, scaler:last_change.
-- Returns the master ARN when asked to set it, else the ARN added.
local function stage_add(keys, args)
  local c = context(keys, args)
  local arn, info, created, ttl, max = args[2], args[3], args[4], args[5], tonumber(args[6])
  local master, holder, mode, state, tags = args[7], args[8], args[9], args[10], args[11]
  local endpoints = args[12]
  fence(c, holder)
  if master == '1' then
    local existing = redis.call('GET', key(c, 'master_stage'))
    if existing and is_stage(c, existing) then return existing end
  end
  if not is_stage(c, arn) then
    if redis.call('ZCARD', key(c, 'stages')) >= max then
      refuse('STAGE_LIMIT', 'no more stages allowed')
    end
    redis.call('ZADD', key(c, 'stages'), created, arn)
    redis.call('HSET', key(c, 'stage_info'), arn, info)
    redis.call('SET', stage_key(c, 'viewers:', arn), 0, 'NX')
    slot_give(c, arn)
    if mode ~= OPEN then redis.call('HSET', key(c, 'stage_mode'), arn, mode) end
    open_set(c, arn, mode == OPEN)
    if state ~= '' then redis.call('HSET', key(c, 'stage_state'), arn, state) end
    if tags ~= '' then redis.call('HSET', key(c, 'stage_tags'), arn, tags) end
    if holder ~= '' then note_change(c) end
  end
  -- The master named again (MASTER_STAGE_ARN, a restart) refreshes them.
  if endpoints ~= '' then redis.call('HSET', key(c, 'stage_endpoints'), arn, endpoints) end
  stage_info_key_set(c, arn, redis.call('HGET', key(c, 'stage_info'), arn), ttl)
  if master ~= '0' then
    redis.call('SET', key(c, 'master_stage'), arn)
    redis.call('HDEL', key(c, 'stage_mode'), arn)
    open_set(c, arn, true)
  end
  return arn
end

-- stage_update: the scaler changes a stage's mode and its bookkeeping,
-- under the lease. Draining is final: a late answer that would open the
-- stage again only updates the bookkeeping, and keeps the drain's start.
-- A stage starting to drain is the scaler's last change (note_change()).
-- ARGV: prefix, lease holder, arn, mode, scaler state JSON.
-- KEYS: scaler:lease, stages, stage_mode, stage_state, open_stages,
-- stage_slot, slot_stage, stage_slot_seq, scaler:last_change.
-- Returns 1, or 0 when the stage is gone.
local function stage_update(keys, args)
  local c = context(keys, args)
  local holder, arn, mode, state = args[2], args[3], args[4], args[5]
  fence(c, holder)
  if not is_stage(c, arn) then return 0 end
  if mode ~= DRAINING and mode_of(c, arn) == DRAINING then
    local old = cjson.decode(redis.call('HGET', key(c, 'stage_state'), arn) or '{}')
    local new = cjson.decode(state)
    new.drainingSince = old.drainingSince
    mode, state = DRAINING, cjson.encode(new)
  elseif mode == DRAINING and mode_of(c, arn) ~= DRAINING then
    note_change(c)
  end
  if mode == OPEN then
    redis.call('HDEL', key(c, 'stage_mode'), arn)
  else
    redis.call('HSET', key(c, 'stage_mode'), arn, mode)
  end
  open_set(c, arn, mode == OPEN)
  redis.call('HSET', key(c, 'stage_state'), arn, state)
  return 1
end

-- stage_remove: a stage ends, and everything it kept in Redis with it;
-- viewers still seated lose their seats with the bookkeeping of a leave.
-- ARGV: prefix, arn, lease holder ("" for an operator's DELETE, refused
-- while viewers remain), how long the claim of its replication's stop
-- lasts (ms, as replica_claim's).
-- KEYS: scaler:lease, master_stage, stages, total_viewers, stage_info,
-- stage_mode, stage_state, stage_tags, stage_endpoints, open_stages, stage_slot,
-- slot_stage, stage_reconcile.
-- Returns {viewers unseated, parentStage or ""}.
local function stage_remove(keys, args)
  local c = context(keys, args)
  local arn, holder = args[2], args[3]
  fence(c, holder)
  if not is_stage(c, arn) then refuse('NO_STAGE', 'no such stage') end
  if redis.call('GET', key(c, 'master_stage')) == arn then
    refuse('IS_MASTER', 'the master stage is never removed')
  end
  local seats = stage_key(c, 'viewer:heartbeat:', arn)
  local seated = redis.call('HLEN', seats)
  if holder == '' and seated > 0 then refuse('NOT_EMPTY', 'viewers are still seated there') end
  local info = redis.call('HGET', key(c, 'stage_info'), arn)
  local parent = info and cjson.decode(info).parentStage or ''
  if type(parent) ~= 'string' then parent = '' end
  -- Whoever removes a stage stops its replication (stages.c): that stop is
  -- claimed here, in the step that forgets the stage, as replica_claim
  -- would, so a replicas check that listed the replication still active
  -- does not judge it unknown and stop it a second time.
  local ok, st = pcall(cjson.decode, redis.call('HGET', key(c, 'stage_state'), arn) or '{}')
  local participant = ok and type(st) == 'table' and st.participant
  if parent ~= '' and type(participant) == 'string' and participant ~= '' then
    redis.call('SET', stop_claim_key(c, arn, participant), '1', 'PX', tonumber(args[4]))
  end
  local users = redis.call('HKEYS', seats)
  for i = 1, #users, 1000 do unseat(c, arn, {unpack(users, i, math.min(i + 999, #users))}) end
  redis.call('DEL', stage_key(c, 'viewer:heartbeat:', arn), stage_key(c, 'viewer:expiry:', arn),
             stage_key(c, 'viewers:', arn), stage_key(c, 'stage:', arn),
             stage_key(c, 'viewer:seen:', arn))
  local slot = slot_of(c, arn)
  if slot then
    redis.call('HDEL', key(c, 'slot_stage'), slot)
    redis.call('ZREM', key(c, 'open_stages'), slot)
  end
  for _, hash in ipairs({'stage_info', 'stage_mode', 'stage_state', 'stage_tags', 'stage_endpoints',
                         'stage_slot', 'stage_reconcile'}) do
    redis.call('HDEL', key(c, hash), arn)
  end
  redis.call('ZREM', key(c, 'stages'), arn)
  return {seated, parent}
end

-- stage_rename: a new name in `stage_info` and `stage:{arn}` (TTL afresh).
-- ARGV: prefix, arn, name, ttl (s). KEYS: stages, stage_info.
-- Returns the stage JSON.
local function stage_rename(keys, args)
  local c = context(keys, args)
  local arn, name, ttl = args[2], args[3], args[4]
  local info = redis.call('HGET', key(c, 'stage_info'), arn)
  if not info or not is_stage(c, arn) then refuse('NO_STAGE', 'no such stage') end
  local doc = cjson.decode(info)
  doc.name = name
  info = cjson.encode(doc)
  redis.call('HSET', key(c, 'stage_info'), arn, info)
  stage_info_key_set(c, arn, info, ttl)
  return info
end

-- stage_renew: keep every live stage's `stage:{arn}` alive (SPEC §3), from
-- `stage_info`, so a key that expired while no usher ran comes back.
-- ARGV: prefix, ttl (s). KEYS: stages, stage_info. Returns the count.
local function stage_renew(keys, args)
  local c = context(keys, args)
  local stages = live_stages(c)
  for _, arn in ipairs(stages) do
    local info = redis.call('HGET', key(c, 'stage_info'), arn)
    if info then stage_info_key_set(c, arn, info, args[2]) end
  end
  return #stages
end

-- reindex: builds the seat index, the slots and open_stages for stages
-- recorded before they existed (libraries before version 6), once: nothing to do
-- once stage_slot_seq exists. store.c calls it when a connection is ready.
-- ARGV: prefix. KEYS: stages, stage_mode, open_stages, stage_slot,
-- slot_stage, stage_slot_seq. Returns the number of seats indexed.
local function reindex(keys, args)
  local c = context(keys, args)
  if redis.call('EXISTS', key(c, 'stage_slot_seq')) == 1 then return 0 end
  local seats = 0
  for _, arn in ipairs(live_stages(c)) do
    local slot = slot_give(c, arn)
    open_set(c, arn, mode_of(c, arn) == OPEN)
    for _, user in ipairs(redis.call('HKEYS', stage_key(c, 'viewer:heartbeat:', arn))) do
      redis.call('HSET', index_key(c, user), user, slot)
      seats = seats + 1
    end
  end
  redis.call('SET', key(c, 'stage_slot_seq'), 0, 'NX')
  return seats
end

-- lease: the scaler lease, one process at a time; every scaler write is
-- fenced by it (fence()). With it comes the age of the scaler's last
-- change (`scaler:last_change`, Redis's clock), so the holder, whichever
-- process it is, counts SCALE_DOWN_COOLDOWN from the change another made.
-- ARGV: prefix, holder id, ttl (ms); ttl "0" gives the lease up.
-- KEYS: scaler:lease, scaler:epoch, scaler:last_change.
-- Returns {1, epoch, since} renewed, {2, epoch, since} newly taken,
-- {0, epoch, since} held by another or given up; since: ms since the last
-- change (never negative), -1 when none is recorded (or what is there is
-- no unix ms).
local function lease(keys, args)
  local c = context(keys, args)
  local holder, ttl = args[2], args[3]
  local k = key(c, 'scaler:lease')
  local current = redis.call('GET', k)
  -- Only digits are a time note_change() wrote (a foreign "-1e300" would
  -- make an age no integer reply carries: every lease call would fail).
  -- One later than now (a foreign write, or Redis's clock set back) is
  -- taken as now, so the cooldown lasts one SCALE_DOWN_COOLDOWN from here,
  -- not until that time comes.
  local now, noted = redis_ms(), redis.call('GET', key(c, 'scaler:last_change'))
  local last = noted and string.match(noted, '^%d+$') and tonumber(noted)
  if last and last > now then
    redis.call('SET', key(c, 'scaler:last_change'), now)
    last = now
  end
  local since = last and now - last or -1
  -- The epoch is a count INCR keeps: another value there (a foreign write)
  -- would fail every taking of the lease, so counting starts again.
  local ek = key(c, 'scaler:epoch')
  local counted = redis.call('GET', ek)
  if counted and not (string.match(counted, '^%d+$') and #counted <= 18) then redis.call('DEL', ek) end
  local function epoch() return tonumber(redis.call('GET', ek) or '0') end
  if ttl == '0' then
    if current == holder then redis.call('DEL', k) end
    return {0, epoch(), since}
  end
  if current == holder then
    redis.call('PEXPIRE', k, ttl)
    return {1, epoch(), since}
  end
  if current then return {0, epoch(), since} end
  redis.call('SET', k, holder, 'PX', ttl)
  return {2, redis.call('INCR', ek), since}
end

-- ---- the state check ------------------------------------------------------

-- The type each fixed key must have, in the order they are checked.
local FIXED_TYPES = {
  {'state_id', 'string'}, {'master_stage', 'string'}, {'stages', 'zset'},
  {'total_viewers', 'string'}, {'publisher:status', 'string'}, {'stage_info', 'hash'},
  {'stage_mode', 'hash'}, {'stage_state', 'hash'}, {'stage_tags', 'hash'},
  {'scaler:lease', 'string'}, {'scaler:epoch', 'string'}, {'stage_events', 'stream'},
  {'seat_waiting', 'zset'}, {'stage_endpoints', 'hash'}, {'scaler:last_change', 'string'},
}
local FOREIGN_KEPT_S = 86400

-- A key holding another type than usher's would make every call that
-- touches it fail: it is renamed aside (`foreign:{name}`, kept a day for
-- the operator) and usher's key starts empty. Returns the problem or nil.
local function set_aside(c, k, name, want)
  local t = redis.call('TYPE', k).ok
  if t == 'none' or t == want then return nil end
  local aside = c.P .. 'foreign:' .. name
  redis.call('RENAME', k, aside)
  redis.call('EXPIRE', aside, FOREIGN_KEPT_S)
  return name .. ' held a ' .. t .. ', moved to ' .. aside
end

local function is_integer(v) return v == false or string.match(v, '^%-?%d+$') ~= nil end

-- The expiry index of a stage made again from its seats (their last
-- heartbeats), when it lost entries: a seat missing there would never expire.
local function expiry_rebuilt(c, arn, seats, index)
  redis.call('DEL', index)
  local all = redis.call('HGETALL', seats)
  for i = 1, #all, 2 do
    local ok, doc = pcall(cjson.decode, all[i + 1])
    local at = ok and type(doc) == 'table' and tonumber(doc.timestamp) or 0
    redis.call('ZADD', index, at, all[i])
  end
  return 'viewer:expiry:' .. arn .. ' did not match the seats; rebuilt from them'
end

-- Unix ms as ISO 8601 UTC with milliseconds (as util/clock.c writes it);
-- days to a civil date after Howard Hinnant's days_from_civil inverse.
local function iso8601(ms)
  local s = math.floor(ms / 1000)
  local days, rest = math.floor(s / 86400), s % 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', y, m, d, math.floor(rest / 3600),
                       math.floor(rest / 60) % 60, rest % 60, ms % 1000)
end

-- A live stage without its record (`stage_info`) gets one again: created
-- when `stages` says, named after its id; not autoScaled, so the scaler
-- never drains it on a guess.
local function info_rebuilt(c, arn, master)
  local created = tonumber(redis.call('ZSCORE', key(c, 'stages'), arn)) or 0
  local name = arn == master and 'master-stage' or ('stage-' .. (string.match(arn, '/([^/]*)$') or ''))
  redis.call('HSET', key(c, 'stage_info'), arn, cjson.encode(
    {name = name, arn = arn, autoScaled = false, createdAt = iso8601(created)}))
  return 'stage_info had no record for ' .. arn .. '; made one (' .. name .. ')'
end

-- Per live stage: its seat keys' types, the expiry index covering every
-- seat, and viewers:{arn} = HLEN of its seats (the SPEC §3 invariant)
-- repaired from the seats. Returns the sum of seats; appends problems to
-- `found`.
local function check_stage(c, arn, found)
  local seats = stage_key(c, 'viewer:heartbeat:', arn)
  local index = stage_key(c, 'viewer:expiry:', arn)
  for _, kt in ipairs({{seats, 'hash'}, {index, 'zset'}}) do
    local p = set_aside(c, kt[1], string.sub(kt[1], #c.P + 1), kt[2])
    if p then found[#found + 1] = p end
  end
  local n = redis.call('HLEN', seats)
  if redis.call('ZCARD', index) ~= n then found[#found + 1] = expiry_rebuilt(c, arn, seats, index) end
  local counter = stage_key(c, 'viewers:', arn)
  local p = set_aside(c, counter, string.sub(counter, #c.P + 1), 'string')
  if p then found[#found + 1] = p end
  local v = redis.call('GET', counter)
  if not is_integer(v) or tonumber(v or '0') ~= n then
    redis.call('SET', counter, n)
    found[#found + 1] = 'viewers:' .. arn .. ' held ' .. tostring(v) .. ', set to ' .. n
  end
  return n
end

-- check: is usher's state in Redis whole? Run every few seconds by every
-- process (stages/recovery.c). Repairs what it can: keys of a foreign type
-- are set aside, counts are recomputed from the seats, a `master_stage`
-- naming no live stage is removed. `state_id` marks one life of the state:
-- it is set (to ARGV[2]) once a master stage is recorded, so a process
-- that finds it gone or changed knows Redis lost its data (a flush, a
-- failover to an empty replica, a restart without persistence).
-- ARGV: prefix, a new state id. KEYS: the FIXED_TYPES keys, open_stages,
-- stage_slot, slot_stage, stage_slot_seq.
-- Returns {state id or "", master ARN or "", publisher:status or "",
-- problem...}.
local function check(keys, args)
  local c = context(keys, args)
  local found = {}
  for _, kt in ipairs(FIXED_TYPES) do
    local p = set_aside(c, key(c, kt[1]), kt[1], kt[2])
    if p then found[#found + 1] = p end
  end
  local sum = 0
  local recorded_master = redis.call('GET', key(c, 'master_stage'))
  for _, arn in ipairs(live_stages(c)) do
    sum = sum + check_stage(c, arn, found)
    open_set(c, arn, mode_of(c, arn) == OPEN)     -- its load in open_stages follows the count
    if not redis.call('HGET', key(c, 'stage_info'), arn) then
      found[#found + 1] = info_rebuilt(c, arn, recorded_master)
    end
  end
  local total = redis.call('GET', key(c, 'total_viewers'))
  if not is_integer(total) or tonumber(total or '0') ~= sum then
    redis.call('SET', key(c, 'total_viewers'), sum)
    found[#found + 1] = 'total_viewers held ' .. tostring(total) .. ', set to ' .. sum
  end
  local master = redis.call('GET', key(c, 'master_stage'))
  if master and not is_stage(c, master) then
    redis.call('DEL', key(c, 'master_stage'))
    found[#found + 1] = 'master_stage named ' .. string.sub(master, 1, 200) .. ', not a live stage; removed'
    master = false
  end
  local id = redis.call('GET', key(c, 'state_id'))
  if master and not id then
    id = args[2]
    redis.call('SET', key(c, 'state_id'), id)
  end
  local out = {id or '', master or '', redis.call('GET', key(c, 'publisher:status')) or ''}
  for _, p in ipairs(found) do out[#out + 1] = p end
  return out
end

-- ---- IVS call rates ----------------------------------------------------------

-- rate_take: reserves the next slot for one IVS call of a class, for every
-- usher process of the deployment together (ivs/shared_limiter.c): calls of
-- a class go `interval` ms apart. A scaling call ("high") queues for the
-- next slot; any other ("low") takes a slot only when none is queued, and
-- else is told when to ask again, so scaling calls pass it. The clock is
-- Redis's own (TIME), so the processes need not agree on one. The key
-- `aws_rate:{class}` is derived from the prefix, like the per-stage keys,
-- and expires once idle.
-- ARGV: prefix, class name, interval (ms), "high" or "low".
-- Returns the ms to wait before calling (>= 0: the slot is taken), or,
-- for a low call, minus the ms after which to ask again (< 0).
local function rate_take(keys, args)
  local c = context(keys, args)
  local k, interval = stage_key(c, 'aws_rate:', args[2]), tonumber(args[3])
  local now = redis_ms()
  local slot = math.max(tonumber(redis.call('GET', k) or '0'), now)
  if args[4] == 'low' and slot > now then return now - slot end
  redis.call('SET', k, slot + interval, 'PX', slot + interval - now + 1000)
  return slot - now
end

-- ---- webhooks --------------------------------------------------------------

-- Claims a stage event for webhook delivery: the first caller for an id gets
-- the next number of webhook:sequence, every later one 0, so each event is
-- sent by one usher process at most. The claim (webhook:claim:{id}) lasts
-- ARGV[3] seconds, longer than any process takes to see the event.
local function webhook_claim(keys, args)
  local c = context(keys, args)
  local claimed = redis.call('SET', c.P .. 'webhook:claim:' .. args[2], '1', 'NX', 'EX', tonumber(args[3]))
  if not claimed then return 0 end
  return redis.call('INCR', key(c, 'webhook:sequence'))
end

-- ---- the replicas check (reconcile/replicas.h) -----------------------------

-- What a judgement of a stage's replication was made from, out of its
-- `stage_state` JSON (absent fields as the C side reads them).
local function judged_of(json)
  local ok, st = pcall(cjson.decode, json or '{}')
  if not ok or type(st) ~= 'table' then st = {} end
  return {st.replication or 'none', st.participant or '', st.runningSince or 0, st.drainingSince or 0}
end

-- replica_record: the check's judgement of a stage's replication, written
-- under the lease and only while the stage is as the check read it (its
-- mode, and the replication, participant, runningSince and drainingSince
-- of its bookkeeping): otherwise another writer (the scaler, or the check
-- of another process) came between the read and this write, and the
-- judgement is void. The mode is left as it is.
-- ARGV: prefix, lease holder, arn, mode read, bookkeeping read (JSON), new
-- bookkeeping (JSON). KEYS: scaler:lease, stages, stage_mode, stage_state.
-- Returns 1 written, 0 not (the stage changed, or is gone).
local function replica_record(keys, args)
  local c = context(keys, args)
  local holder, arn, mode, seen, state = args[2], args[3], args[4], args[5], args[6]
  fence(c, holder)
  if not is_stage(c, arn) or mode_of(c, arn) ~= mode then return 0 end
  local now, was = judged_of(redis.call('HGET', key(c, 'stage_state'), arn)), judged_of(seen)
  for i = 1, #was do
    if now[i] ~= was[i] then return 0 end
  end
  redis.call('HSET', key(c, 'stage_state'), arn, state)
  return 1
end

-- replica_claim: the check claims the stop of a replication it found
-- unknown, under the lease, for ARGV ttl ms (`replica_stop:{dest}:{participant}`):
-- a stop still under way when another check lists IVS is not made again.
-- ARGV: prefix, lease holder, destination arn, participant id, ttl (ms).
-- KEYS: scaler:lease. Returns 1 claimed, 0 claimed before.
local function replica_claim(keys, args)
  local c = context(keys, args)
  fence(c, args[2])
  local k = stop_claim_key(c, args[3], args[4])
  -- A claim always expires: a key there without a TTL (of any type) is a
  -- foreign write, not a claim, and would keep the stop from ever being made.
  if redis.call('PTTL', k) == -1 then redis.call('DEL', k) end
  if not redis.call('SET', k, '1', 'NX', 'PX', tonumber(args[5])) then return 0 end
  return 1
end

local function version() return VERSION end

redis.register_function('usher_seat', seat)
redis.register_function('usher_heartbeats', heartbeats)
redis.register_function('usher_stage_add', stage_add)
redis.register_function('usher_stage_update', stage_update)
redis.register_function('usher_stage_rename', stage_rename)
redis.register_function('usher_stage_renew', stage_renew)
redis.register_function('usher_lease', lease)
redis.register_function('usher_reindex', reindex)
redis.register_function{function_name = 'usher_check', callback = check, flags = {'allow-oom'}}
redis.register_function('usher_rate_take', rate_take)
redis.register_function('usher_webhook_claim', webhook_claim)
redis.register_function('usher_replica_record', replica_record)
redis.register_function('usher_replica_claim', replica_claim)
redis.register_function('usher_reconcile_seat', reconcile_seat)
redis.register_function('usher_event_news', event_news)
redis.register_function('usher_orphan_seen', orphan_seen)
-- Those that only free seats and keys run even when Redis is out of
-- memory (maxmemory reached), as they did as scripts: refusing them would
-- keep the memory taken.
redis.register_function{function_name = 'usher_leave', callback = leave, flags = {'allow-oom'}}
redis.register_function{function_name = 'usher_sweep', callback = sweep, flags = {'allow-oom'}}
redis.register_function{function_name = 'usher_stage_remove', callback = stage_remove, flags = {'allow-oom'}}
redis.register_function{function_name = 'usher_reconcile_ghosts', callback = reconcile_ghosts, flags = {'allow-oom'}}
-- Read-only functions may also run on replicas (FCALL_RO).
redis.register_function{function_name = 'usher_stats', callback = stats, flags = {'no-writes'}}
redis.register_function{function_name = 'usher_live', callback = live, flags = {'no-writes'}}
redis.register_function{function_name = 'usher_viewer_list', callback = viewer_list, flags = {'no-writes'}}
redis.register_function{function_name = 'usher_version', callback = version, flags = {'no-writes'}}
redis.register_function{function_name = 'usher_seat_of', callback = seat_of, flags = {'no-writes'}}
redis.register_function{function_name = 'usher_reconcile_notes', callback = reconcile_notes, flags = {'no-writes'}}
