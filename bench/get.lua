-- get.lua — a plain GET of the URL given to wrk (/health, /api/stats).
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
