-- joinleave.lua — a viewer joins (POST /api/token/viewer, new user), and
-- once the join has been answered the same viewer leaves
-- (POST /api/viewer/leave with the stageArn of the answer). A leave is only
-- sent after its join's answer came back: answers queue the leave, and the
-- next request of any connection of the thread takes it. Counters:
-- joins/leaves answered 200, unseated = leaves that freed no seat (should
-- be 0), non2xx = any other answer, pending = joins not yet left at the end.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local headers = {["Content-Type"] = "application/json"}
local prefix, n = "", 0
local queue = {}
ok2xx, non2xx, joins, leaves, unseated, pending = 0, 0, 0, 0, 0, 0

function init(args)
  prefix = string.format("%s-%d-", os.getenv("BENCH_RUN") or "cycle", id or 1)
end

function request()
  local body = table.remove(queue)
  if body then
    pending = pending - 1
    return wrk.format("POST", "/api/viewer/leave", headers, body)
  end
  n = n + 1
  return wrk.format("POST", "/api/token/viewer", headers,
    '{"userId":"' .. prefix .. n .. '"}')
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    return
  end
  ok2xx = ok2xx + 1
  if body:find('"viewerLeft"', 1, true) then
    leaves = leaves + 1
    if not body:find('"wasSeated":true', 1, true) then unseated = unseated + 1 end
    return
  end
  local user = body:match('"userId":"([^"]+)"')
  local arn = body:match('"stageArn":"([^"]+)"')
  if user and arn then
    joins = joins + 1
    pending = pending + 1
    queue[#queue + 1] = '{"userId":"' .. user .. '","stageArn":"' .. arn .. '"}'
  end
end
