-- heartbeat.lua — POST /api/viewer/heartbeat for viewers that are seated.
-- BENCH_USERS names a file of "userId<TAB>stageArn" lines (written by
-- bench.py from the join answers); each thread walks the list from its own
-- offset, so consecutive heartbeats hit different viewers.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local reqs, i = {}, 0

function init(args)
  local headers = {["Content-Type"] = "application/json"}
  for line in io.lines(os.getenv("BENCH_USERS")) do
    local user, arn = line:match("^([^\t]+)\t([^\t]+)$")
    if user then
      reqs[#reqs + 1] = wrk.format("POST", "/api/viewer/heartbeat", headers,
        string.format('{"userId":"%s","stageArn":"%s"}', user, arn))
    end
  end
  i = ((id or 1) - 1) * math.floor(#reqs / 2)
end

function request()
  i = i + 1
  return reqs[i % #reqs + 1]
end
