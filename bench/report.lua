-- report.lua — shared by the wrk scripts of `make bench` (bench/bench.py).
-- Gives every wrk thread an `id`, and at the end prints wrk's figures as
-- one JSON line ("BENCH_JSON {...}") that bench.py reads. Latencies are in
-- microseconds. `status_errors` is wrk's own count of answers with a
-- status >= 400; scripts that look at answers keep their own counters
-- (ok2xx, non2xx, joins, leaves, unseated), summed here over threads.
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

local counters = {"ok2xx", "non2xx", "joins", "leaves", "unseated", "pending"}

function done(summary, latency, requests)
  local extra = {}
  for _, name in ipairs(counters) do
    local sum, seen = 0, false
    for _, t in ipairs(threads) do
      local v = t:get(name)
      if type(v) == "number" then sum, seen = sum + v, true end
    end
    if seen then extra[#extra + 1] = string.format(',"%s":%d', name, sum) end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"status_errors":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"lat_mean_us":%.1f,"lat_p50_us":%d,"lat_p90_us":%d,"lat_p99_us":%d,"lat_max_us":%d%s}\n',
    summary.requests, summary.duration, summary.bytes, e.status,
    e.connect, e.read, e.write, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, table.concat(extra)))
end
