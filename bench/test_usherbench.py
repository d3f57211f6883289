"""Unit tests of usherbench's pure parts: percentiles, burst figures, the
parsers of wrk / redis-benchmark / openssl / INFO / MONITOR output, and
the report. `python3 -m unittest discover bench` (part of `make unit`)."""

import math
import unittest

from usherbench import measure, probe, references, report, resp, stats
from usherbench.context import Ctx, Settings


def settings(**kw):
    base = dict(nproc=2, seconds=10, warmup=2, conns=50, wrk_threads=2, ref_seconds=5.0, openssl_seconds=5,
                burst=10000, sweep_n=50000, big_viewers=100000, big_stages=100, profile="0", keep=False,
                md_path="", usher_bin="build/usher", lua_src="src/store/lua", quiet_wait=1)
    base.update(kw)
    return Settings(**base)


class Percentiles(unittest.TestCase):
    def test_empty_is_nan(self):
        self.assertTrue(math.isnan(stats.percentile([], 0.5)))

    def test_index_is_floor_of_q_times_n(self):
        v = list(range(1, 101))
        self.assertEqual(stats.percentile(v, 0.5), 51)
        self.assertEqual(stats.percentile(v, 0.99), 100)
        self.assertEqual(stats.percentile(v, 1.0), 100)
        self.assertEqual(stats.percentile(v, 0.0), 1)

    def test_deciles_skip_unanswered(self):
        lat = [0.001 * i for i in range(1, 21)]
        lat[0] = lat[1] = None
        d = stats.deciles(lat)
        self.assertEqual(len(d), 9)            # the first tenth had no answer
        self.assertEqual(d[-1], [19, 20, 20])

    def test_burst_summary(self):
        sched = [10.0, 10.5, 11.0, 11.5]
        results = [(200, 10.1), (200, 10.7), (503, 11.2), None]
        s = stats.burst_summary(results, sched, [10.0, 10.5, 11.001, 11.5], 10.0, 11.5, 3.0)
        self.assertEqual((s["n"], s["ok"]), (4, 2))
        self.assertEqual(s["statuses"], {200: 2, 503: 1, None: 1})
        self.assertAlmostEqual(s["p50_ms"], 200.0)
        self.assertAlmostEqual(s["max_ms"], 200.0)
        self.assertAlmostEqual(s["last_answer_s"], 1.2)
        self.assertAlmostEqual(s["send_lag_max_ms"], 1.0)

    def test_median_sorted_desc(self):
        self.assertEqual(stats.median_sorted_desc([]), 0)
        self.assertEqual(stats.median_sorted_desc([9, 5, 1]), 5)


class Scripts(unittest.TestCase):
    """usher before its function library: EVALSHA of one-file scripts."""

    def test_script_shas_and_names(self):
        import hashlib
        import os
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            for name, body in (("seat.lua", b"return 1"), ("usher.lua", b"-- library")):
                with open(os.path.join(d, name), "wb") as f:
                    f.write(body)
            shas = probe.script_shas(d)
        sha = hashlib.sha1(b"return 1").hexdigest()
        self.assertEqual(shas, {sha: "usher_seat"})
        self.assertEqual(probe.fcall_name(["EVALSHA", sha.upper(), "0"], shas), "usher_seat")
        self.assertIsNone(probe.fcall_name(["EVALSHA", sha, "0"]))
        self.assertIsNone(probe.fcall_name(["EVALSHA", "0" * 40, "0"], shas))
        self.assertEqual(probe.fcall_name(["FCALL", "usher_stats", "0"], shas), "usher_stats")
        self.assertIsNone(probe.fcall_name(["PING"], shas))

    def test_background_split_knows_scripts(self):
        shas = {"a" * 40: "usher_lease", "b" * 40: "usher_stats", "c" * 40: "usher_heartbeat"}
        top = [["EVALSHA", "a" * 40, "0"], ["EVALSHA", "b" * 40, "0"], ["EVALSHA", "c" * 40, "0"]]
        mine, bg = probe.split_background(top, shas)
        self.assertEqual((mine, len(bg)), ([["EVALSHA", "c" * 40, "0"]], 2))

    def test_call_stats_adds_fcall_and_evalsha(self):
        self.assertEqual(probe.call_stats({"fcall": (3, 30), "evalsha": (2, 5), "get": (9, 9)}), (5, 35))
        self.assertEqual(probe.call_stats({}), (0, 0))

    def test_before_settings(self):
        from usherbench.context import before_lua_src
        cfg = Settings.from_env({"BENCH_BEFORE_BIN": "/tmp/old/build/usher", "BENCH_BEFORE_ONLY": "health,join"})
        self.assertEqual(cfg.before_lua_src, "/tmp/old/src/store/lua")
        self.assertEqual(cfg.before_only, ("health", "join"))
        b = cfg.for_before()
        self.assertEqual((b.usher_bin, b.lua_src, b.md_path, b.before_bin),
                         ("/tmp/old/build/usher", "/tmp/old/src/store/lua", "", ""))
        self.assertEqual(before_lua_src(""), "")
        self.assertEqual(Settings.from_env({}).before_bin, "")


class Parsers(unittest.TestCase):
    def test_wrk_json_line(self):
        out = "Running 2s test\nBENCH_JSON {\"requests\": 12, \"duration_us\": 2000000}\n"
        self.assertEqual(measure.parse_wrk(out)["requests"], 12)

    def test_wrk_without_result_stops(self):
        with self.assertRaises(SystemExit):
            measure.parse_wrk("Running 2s test\nsocket errors\n")

    def test_redis_benchmark_csv(self):
        out = ('"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",'
               '"p99_latency_ms","max_latency_ms"\n"PING_INLINE","51234.50","0.500","0.100","0.479",'
               '"0.700","0.911","2.000"\n')
        r = references.parse_redis_benchmark(out)
        self.assertEqual((r["rps"], r["p50_ms"], r["p99_ms"], r["max_ms"]), (51234.5, 0.479, 0.911, 2.0))
        self.assertIsNone(references.parse_redis_benchmark("ERR unknown command\n"))

    def test_openssl_speed(self):
        out = ("                              sign    verify    sign/s verify/s\n"
               " 384 bits ecdsa (nistp384)   0.0007s   0.0009s   1432.5   1101.2\n")
        self.assertEqual(references.parse_openssl_speed(out), (1432.5, 1101.2))
        self.assertIsNone(references.parse_openssl_speed("no such algorithm"))

    def test_info_and_cmdstats(self):
        info = resp.parse_info("# Commandstats\r\ncmdstat_evalsha:calls=10,usec=250,usec_per_call=25.00\r\n"
                               "cmdstat_hset:calls=4,usec=8,usec_per_call=2.00\r\n")
        self.assertEqual(resp.parse_cmdstats(info), {"evalsha": (10, 250), "hset": (4, 8)})

    def test_cmdstats_delta_splits_inner(self):
        d = measure.cmdstats_delta({"evalsha": (10, 100), "info": (1, 5)},
                                   {"evalsha": (30, 300), "hset": (20, 40), "info": (3, 9)}, {"hset"})
        self.assertEqual((d["top"], d["inner"], d["top_usec"]), (20, 20, 200))
        self.assertNotIn("info", d["by_cmd"])

    def test_monitor_lines(self):
        self.assertEqual(probe.unrepr(r'a\x41\n\"b'), 'aA\n"b')
        lines = ['1.0 [0 127.0.0.1:5000] "EVALSHA" "abc" "1"', '1.1 [0 lua] "HSET" "k"',
                 '1.2 [0 127.0.0.1:6000] "ECHO" "x"']
        top, inner = probe.parse_monitor(lines, "127.0.0.1:6000")
        self.assertEqual((top, inner), ([["EVALSHA", "abc", "1"]], 1))

    def test_background_calls_left_out(self):
        top = [["FCALL", "usher_lease"], ["FCALL", "usher_stats"], ["FCALL", "usher_heartbeats"], ["XADD", "x"],
               ["FCALL", "usher_stats"]]
        mine, bg = probe.split_background(top)
        self.assertEqual(mine, [["FCALL", "usher_heartbeats"], ["FCALL", "usher_stats"]])
        self.assertEqual(len(bg), 3)

    def test_probe_summary_of_nothing_has_no_rates(self):
        self.assertEqual(probe.probe_summary("x", 0, [], [], 0, 0.1)["top_per_req"], 0)


def scenario(name, rps, **kw):
    s = {"name": name, "rps": rps, "p50_ms": 1.0, "p99_ms": 3.0, "max_ms": 9.0, "non2xx": 0, "socket_errors": 0,
         "usher_cpu_us": 10.0, "rt_per_req": 1.0, "inner_per_req": 4.0, "redis_us_per_req": 5.0, "rss": 8 << 20,
         "redis_cpu_us": 6.0, "usher_cpu_pct": 50, "redis_cpu_pct": 40, "wrk_cpu_pct": 30, "other_cpu_pct": 1,
         "idle_wait_s": 1, "warmup_rps": [rps], "wrk": {}, "top": 1000, "bg": 0.0, "requests": 1000,
         "stages": 5, "viewers": 200}
    s.update(kw)
    return s


def full_results():
    ref = {"rps": 40000.0, "p50_ms": 0.5, "p99_ms": 1.0, "redis_cpu_us": 3.0}
    burst = {"n": 10, "idle_wait_s": 1, "send_window_s": 0.9, "send_lag_max_ms": 0.1, "ok": 10,
             "statuses": {200: 10}, "p50_ms": 100, "p99_ms": 300, "max_ms": 400, "last_answer_s": 1.0,
             "usher_cpu_us": 700, "fcall": 10, "cpu_split": [90, 5, 3, 2], "rss_before": 1 << 20,
             "rss": 2 << 20, "lat_by_decile": [[1, 2, 3]], "log": [], "wanted": 10}
    return {
        "date": "today", "elapsed_s": 60, "versions": {"usher": "1.0"}, "quiet": 2,
        "machine": {"nproc": 2, "cpu": "cpu", "mem_gb": 4, "kernel": "6", "redis": "r", "openssl": "o",
                    "wrk": "w", "python": "3", "git": "abc"},
        "refs": {"openssl": {"sign": 1000.0, "verify": 900.0, "before": 990.0, "after": 1010.0, "other": (1, 2)},
                 "health": ref, "stats_small": ref, "stats_big": ref, "heartbeat": ref},
        "scen": {"health": scenario("GET /health", 30000), "stats_small": scenario("GET /api/stats (5)", 25000),
                 "stats_big": scenario("GET /api/stats (100)", 24000, stages=100, viewers=100000),
                 "heartbeat": scenario("POST /api/viewer/heartbeat", 20000), "join": scenario("join", 900),
                 "joinleave": scenario("join, then leave", 1600)},
        "background": {"small": {"per_s": 1.0}, "big": {"per_s": 2.0, "cmds": {"evalsha": 4}, "window_s": 2}},
        "probes": {"health": {"top_per_req": 0, "names": {}, "background": 0, "inner_per_req": 0},
                   "stats": {"top_per_req": 1, "names": {"EVALSHA": 1}, "background": 0, "inner_per_req": 9},
                   "stats_big": {"top_per_req": 1, "names": {"EVALSHA": 1}, "background": 0, "inner_per_req": 9},
                   "heartbeat": {"top_per_req": 1, "names": {"EVALSHA": 1}, "background": 0, "inner_per_req": 3}},
        "checks": [{"library": "usher", "version": 2, "source_version": 2, "same": True}],
        "burst": burst,
        "mem": {"seeded": {"total_viewers": 100000, "hlen_sum": 100000, "per_viewer": 250, "viewers": 99800,
                           "seconds": 3, "seat_us": 20, "parts": {}, "sample": ["u", "{}"]},
                "http_joins": {"per_viewer": 260, "viewers": 9000}, "usher_rss_big": 9 << 20,
                "usher_hwm": 10 << 20, "redis_used_memory": 30 << 20},
        "sweep": {"other_max": [], "idle_wait_s": 1, "seeded": 50000, "t_first_s": 1.0, "duration_s": 2.0,
                  "left": 0, "calls": 40, "max_us": 3000, "median_us": 2000, "sum_us": 80000, "over_1ms": 40,
                  "latency_latest": [], "log": []},
    }


class Report(unittest.TestCase):
    def setUp(self):
        self.ctx = Ctx(cfg=settings(), pool=64, commands=["wrk -t2 x"])

    def test_render_has_every_section(self):
        text = report.render(full_results(), self.ctx)
        for part in ("Run of today", "| scenario | req/s |", "Each usher figure as a ratio", "CPU split during",
                     "Round trips per request", "Before each run the harness waits", "Join-then-leave:",
                     "What usher sent to Redis", "Function library: `usher` version 2 in Redis = src/store/lua/usher.lua", "Burst: 10 connections",
                     "Memory at 100000 seated", "Sweep: usher running", "### Issue 11's targets",
                     "### Other checks", "### Commands, as run",
                     "wrk -t2 x"):
            self.assertIn(part, text)

    def test_targets_met_and_missed(self):
        R = full_results()
        rows = {t[0]: t[2] for t in report.targets(R, self.ctx)}
        self.assertTrue(rows["heartbeat: every request answered 2xx"])
        R["scen"]["heartbeat"]["non2xx"] = 5
        rows = {t[0]: t[2] for t in report.targets(R, self.ctx)}
        self.assertFalse(rows["heartbeat: every request answered 2xx"])

    def test_a_sweep_that_saw_no_call_is_missed(self):
        R = full_results()
        R["sweep"].update(calls=0, max_us=0)
        rows = {t[0]: t[2] for t in report.targets(R, self.ctx)}
        self.assertFalse(rows["sweep of 50000: no Redis block > 10 ms"])

    def issue11(self, R):
        """{target: (this usher's text, verdict cell)} of the issue-11 table."""
        out = {}
        for line in report.targets_table(R)[2:]:
            cells = [c.strip() for c in line.strip("|").split("|")]
            out[cells[0]] = (cells[-2], cells[-1])
        return out

    def test_issue11_not_run_is_never_met(self):
        rows = self.issue11(full_results())
        self.assertEqual(rows["heartbeats, 1000 connections: ≥ 33,000/s"], ("not run", "not run"))
        self.assertEqual(rows["Redis ≤ 300 bytes per seated viewer at 1,000,000 seated"][1], "not run")
        self.assertEqual(rows["heartbeats, 50 connections: ≥ 33,000/s"][1], "**missed**")   # 20,000/s
        self.assertEqual(rows["heartbeats, 50 connections: p99 ≤ 10 ms"][1], "met")

    def test_issue11_every_target_judged(self):
        R = full_results()
        R["scen"]["heartbeat1000"] = scenario("hb 1000", 40000, p99_ms=12.0, usher_cpu_us=9.0, redis_cpu_us=5.0)
        R["scen"]["heartbeat_million"] = scenario("hb 1M", 19000, usher_cpu_us=11.0, redis_cpu_us=8.0)
        R["mem"]["seat_small_us"] = 15.0                  # 20 at 100 stages: 1.33 x
        R["million"] = {"seated": 1000000, "seeded": 900000, "per_viewer": 310.0, "rss_before": 8 << 20,
                        "rss_after": 9 << 20}
        rows = self.issue11(R)
        self.assertNotIn("not run", [v[1] for v in rows.values()])
        self.assertEqual(rows["heartbeats, 1000 connections: ≥ 33,000/s"][1], "met")
        self.assertEqual(rows["heartbeats, 1000 connections: p99 ≤ 10 ms"][1], "**missed**")
        self.assertIn("1.00 ×", rows["heartbeats, 1000 connections: ≥ 33,000/s"][0])   # PING 40,000/s
        self.assertEqual(rows["a join's Redis time at 100 stages ≤ 1.5 × at 5 stages"][1], "met")
        # Redis 8.0 vs 6.0 µs at 200 seated: 1.33 x, not the same
        self.assertEqual(rows["heartbeat cost the same at 200 and at 1,000,000 seated (within 20 %)"][1],
                         "**missed**")
        self.assertEqual(rows["Redis ≤ 300 bytes per seated viewer at 1,000,000 seated"][1], "**missed**")
        self.assertEqual(rows["usher RSS flat in viewers (within 2 MB)"][1], "met")    # 8 -> 9 MB
        R["million"]["rss_after"] = 11 << 20
        self.assertEqual(self.issue11(R)["usher RSS flat in viewers (within 2 MB)"][1], "**missed**")
        R["mem"]["seat_small_us"] = 10.0
        self.assertEqual(self.issue11(R)["a join's Redis time at 100 stages ≤ 1.5 × at 5 stages"][1], "**missed**")

    def test_issue11_before_beside(self):
        R = full_results()
        before = full_results()
        before["scen"]["heartbeat"]["rps"] = 40000
        before.update(git="c9134cb", bin="/tmp/b/build/usher")
        R["before"] = before
        lines = report.targets_table(R)
        self.assertIn("| target | before (c9134cb) | this usher | verdict |", lines[0])
        hb = next(l for l in lines if l.startswith("| heartbeats, 50 connections: ≥ 33,000/s"))
        self.assertIn("40,000/s", hb)
        self.assertIn("(met)", hb)
        self.assertTrue(hb.endswith("| **missed** |"))      # the verdict is this usher's
        text = report.render(R, self.ctx)
        self.assertIn("### Before (c9134cb), same run", text)

    def test_render_again_from_results_json(self):
        import json
        import os
        import tempfile
        from usherbench import main
        R = full_results()
        R.update(commands=["wrk -t2 again"], pool=64, settings={"seconds": 7}, profiles={})
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "results.json"), "w") as f:
                json.dump(R, f)
            md = os.path.join(d, "B.md")
            with open(md, "w") as f:
                f.write("# x\n" + report.BEGIN + "\nold\n" + report.END + "\n")
            main.render_again(os.path.join(d, "results.json"), settings(md_path=md))
            with open(md) as f:
                text = f.read()
        self.assertIn("wrk -t2 again", text)
        self.assertIn("then 7 s of `wrk", text)        # the run's own settings
        self.assertNotIn("\nold\n", text)

    def test_replace_block(self):
        doc = "# x\n\nintro\n" + report.BEGIN + "\nold\n" + report.END + "\ntail\n"
        self.assertEqual(report.replace_block(doc, "new"),
                         "# x\n\nintro\n" + report.BEGIN + "\nnew\n" + report.END + "\ntail\n")
        self.assertIn("## Last run", report.replace_block("", "new"))


if __name__ == "__main__":
    unittest.main()
