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
                     "Memory at 100000 seated", "Sweep: usher running", "### Targets", "### Commands, as run",
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

    def test_replace_block(self):
        doc = "# x\n\nintro\n" + report.BEGIN + "\nold\n" + report.END + "\ntail\n"
        self.assertEqual(report.replace_block(doc, "new"),
                         "# x\n\nintro\n" + report.BEGIN + "\nnew\n" + report.END + "\ntail\n")
        self.assertIn("## Last run", report.replace_block("", "new"))


if __name__ == "__main__":
    unittest.main()
