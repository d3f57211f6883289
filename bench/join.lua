-- join.lua — POST /api/token/viewer, every request a new user
-- ("<BENCH_RUN>-<thread>-<n>"), so each one takes a seat and gets a freshly
-- signed token; no stageArn, so usher picks the least-loaded stage.
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")

local headers = {["Content-Type"] = "application/json"}
local prefix, n = "", 0

function init(args)
  prefix = string.format("%s-%d-", os.getenv("BENCH_RUN") or "join", id or 1)
end

function request()
  n = n + 1
  return wrk.format("POST", "/api/token/viewer", headers,
    '{"userId":"' .. prefix .. n .. '"}')
end
