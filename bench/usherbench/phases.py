"""phases -- the three phases of a run, each with its own Redis and usher:
main (the throughput scenarios with their references, then 100 stages /
100,000 viewers), burst (10,000 joins within one second), sweep (50,000
silent viewers expiring at once). Each fills its part of the results R;
ctx.wants(name) selects the scenarios (bench.py --only)."""

import asyncio
import os
import random
import resource
import time

from . import measure, probe, procs, references, stats
from .burst import burst_client
from .context import PREFIX, SEAT_SAMPLE, SMALL_STAGES, SMALL_VIEWERS, SWEEP_INTERVAL, SWEEP_TIMEOUT
from .procs import log
from .report import fmt_s
from .resp import Redis
from .usher import Usher

MAIN_SCENARIOS = ("health", "stats", "heartbeat", "heartbeat1000", "join", "joinleave", "big", "million")


def repeat(n, fn):
    for _ in range(n):
        fn()
    return n


def first_fcall(ctx, p, *names):
    """The first FCALL (or EVALSHA) argv of one of names a probe caught;
    stops the run when there is none."""
    calls = [a for a in p["top"] if probe.fcall_name(a, ctx.shas) in names]
    if not calls:
        raise SystemExit(f"probe {p['label']}: usher sent no FCALL {' or '.join(names)} ({p['top']})")
    return calls[0]


def seat_viewers(ctx, usher, n):
    """Seats n viewers by HTTP joins; writes them (user, stage) to a file
    for heartbeat.lua; returns (file, list)."""
    seated = []
    for i in range(n):
        d = usher.must("POST", "/api/token/viewer", {"userId": f"viewer-{i}"})
        seated.append((f"viewer-{i}", d["stageArn"]))
    users_file = os.path.join(ctx.tmp, "seated-users.tsv")
    with open(users_file, "w") as f:
        f.writelines(f"{u}\t{a}\n" for u, a in seated)
    return users_file, seated


def run_health(ctx, R, usher, redis):
    R["probes"]["health"] = probe.probe(ctx, redis, lambda: repeat(10, lambda: usher.must("GET", "/health")),
                                        "health")
    R["scen"]["health"] = measure.scenario(ctx, "GET /health", usher, redis, "get.lua", "/health")
    R["refs"]["health"] = references.redis_benchmark(ctx, redis, ["PING"], "PING")


def run_stats(ctx, R, usher, redis, key, stages, viewers):
    label = "stats" if key == "stats_small" else "stats-big"
    p = probe.probe(ctx, redis, lambda: repeat(10, lambda: usher.must("GET", "/api/stats")), label)
    R["probes"]["stats" if key == "stats_small" else key] = p
    call = first_fcall(ctx, p, "usher_stats")
    if key == "stats_small" and probe.library_check(ctx, redis):
        R["checks"].append(probe.library_check(ctx, redis))
    prof = ctx.perf_path(key.replace("_", "-"))
    R["scen"][key] = measure.scenario(ctx, f"GET /api/stats ({stages} stages, {viewers} viewers)",
                                      usher, redis, "get.lua", "/api/stats", profile_to=prof)
    R["scen"][key]["stages"], R["scen"][key]["viewers"] = stages, viewers
    R["refs"][key] = references.redis_benchmark(ctx, redis, call, f"FCALL usher_stats, {stages} stages")
    R["profiles"][key] = prof


def run_heartbeat(ctx, R, usher, redis, users_file, seated):
    def beats():
        for u, a in seated[:10]:
            usher.must("POST", "/api/viewer/heartbeat", {"userId": u, "stageArn": a})
        return len(seated[:10])
    p = probe.probe(ctx, redis, beats, "heartbeat")
    R["probes"]["heartbeat"] = p
    call = first_fcall(ctx, p, "usher_heartbeats", "usher_heartbeat")   # batched since library version 2
    prof = ctx.perf_path("heartbeat")
    R["scen"]["heartbeat"] = measure.scenario(ctx, "POST /api/viewer/heartbeat", usher, redis, "heartbeat.lua",
                                              "/api/viewer/heartbeat", {"BENCH_USERS": users_file},
                                              profile_to=prof)
    R["refs"]["heartbeat"] = references.redis_benchmark(ctx, redis, call, f"FCALL {call[1]} (1 heartbeat)")
    R["profiles"]["heartbeat"] = prof


def run_heartbeat_more(ctx, R, usher, redis, users_file, key, label, conns=None):
    """The heartbeat run again: with more connections (heartbeat1000) or
    with more viewers seated (heartbeat_million); same 200 viewers, same script."""
    prof = ctx.perf_path(key) if key == "heartbeat1000" else None
    R["scen"][key] = measure.scenario(ctx, f"POST /api/viewer/heartbeat ({label})", usher, redis,
                                      "heartbeat.lua", "/api/viewer/heartbeat", {"BENCH_USERS": users_file},
                                      conns=conns, profile_to=prof)
    if prof:
        R["profiles"][key] = prof


def run_join(ctx, R, usher, redis):
    call, p, _ = probe.seat_call(ctx, usher, redis, "probe-join-1")
    R["probes"]["join"] = p
    snap = {}

    def join_snapshot():        # after the warm-up, which seats viewers too
        snap["mem"], snap["tv"] = redis.used_memory(), redis.get_int(PREFIX + "total_viewers")
    prof = ctx.perf_path("join")
    R["scen"]["join"] = measure.scenario(ctx, "POST /api/token/viewer (new users)", usher, redis, "join.lua",
                                         "/api/token/viewer", {"BENCH_RUN": f"join{random.getrandbits(24):06x}"},
                                         before=join_snapshot, steady=True, drain=ctx.pool, profile_to=prof)
    R["profiles"]["join"] = prof
    mem1, tv1 = redis.used_memory(), redis.get_int(PREFIX + "total_viewers")
    seated = tv1 - snap["tv"]
    if seated <= 0:
        raise SystemExit("join: the timed run seated no viewer; no memory per viewer to report")
    R["mem"]["http_joins"] = {"viewers": seated, "bytes": mem1 - snap["mem"],
                              "per_viewer": (mem1 - snap["mem"]) / seated}


def run_joinleave(ctx, R, usher, redis):
    def cycle():
        d = usher.must("POST", "/api/token/viewer", {"userId": "probe-cycle-1"})
        usher.must("POST", "/api/viewer/leave", {"userId": "probe-cycle-1", "stageArn": d["stageArn"]})
        return 2
    R["probes"]["joinleave"] = probe.probe(ctx, redis, cycle, "join+leave")
    R["scen"]["joinleave"] = measure.scenario(
        ctx, "join, then leave (POST token/viewer + viewer/leave)", usher, redis, "joinleave.lua",
        "/api/token/viewer", {"BENCH_RUN": f"cycle{random.getrandbits(24):06x}"}, steady=True, drain=ctx.pool)


def run_signing(ctx, R, usher, redis):
    """openssl speed before and after the join runs, and the joins between."""
    R["refs"]["openssl_before"] = references.openssl_speed(ctx)
    if ctx.wants("join"):
        run_join(ctx, R, usher, redis)
    if ctx.wants("joinleave"):
        run_joinleave(ctx, R, usher, redis)
    procs.wait_idle(usher)
    R["refs"]["openssl_after"] = references.openssl_speed(ctx)
    R["refs"]["openssl"] = references.openssl_mean(R["refs"]["openssl_before"], R["refs"]["openssl_after"])


def redis_parts(redis, arn):
    """Where a stage's bytes go: MEMORY USAGE of its heartbeat hash and expiry zset."""
    parts = {}
    for kind, key in (("heartbeat hash", f"{PREFIX}viewer:heartbeat:{arn}"),
                      ("expiry zset", f"{PREFIX}viewer:expiry:{arn}")):
        size = redis.r.call("MEMORY", "USAGE", key, "SAMPLES", "0")
        entries = redis.r.call("HLEN" if "hash" in kind else "ZCARD", key)
        enc = redis.r.call("OBJECT", "ENCODING", key)
        parts[kind] = {"bytes": size, "entries": entries, "per_entry": size / max(1, entries), "encoding": enc}
    return parts


def seed_big(ctx, R, usher, redis, arns):
    """Seats viewers with usher's own usher_seat call up to BENCH_BIG_VIEWERS."""
    call, _, _ = probe.seat_call(ctx, usher, redis, "probe-join-2")
    need = ctx.cfg.big_viewers - redis.get_int(PREFIX + "total_viewers")
    if need <= 0:
        raise SystemExit(f"big: {ctx.cfg.big_viewers - need} viewers are seated already, BENCH_BIG_VIEWERS is "
                         f"{ctx.cfg.big_viewers}: no viewer left to seat, so no memory per viewer to measure "
                         "(raise BENCH_BIG_VIEWERS)")
    mem0, cs0 = redis.used_memory(), redis.r.cmdstats()
    log(f"big: {len(arns)} stages; seating {need} more viewers with usher's own call "
        f"(FCALL usher_seat, pipelined) to reach {ctx.cfg.big_viewers}")
    took = probe.seed(redis, call, need, f"seed-{random.getrandbits(24):06x}-", int(time.time() * 1000))
    cs1, mem1 = redis.r.cmdstats(), redis.used_memory()
    tv = redis.get_int(PREFIX + "total_viewers")
    hl = sum(redis.r.pipeline([["HLEN", f"{PREFIX}viewer:heartbeat:{a}"] for a in arns]))
    (c0, u0), (c1, u1) = probe.call_stats(cs0), probe.call_stats(cs1)
    seat_calls = c1 - c0
    R["mem"]["seeded"] = {"viewers": need, "bytes": mem1 - mem0, "per_viewer": (mem1 - mem0) / need,
                          "seconds": took, "total_viewers": tv, "hlen_sum": hl,
                          "seat_us": (u1 - u0) / max(1, seat_calls),
                          "used_memory": mem1, "parts": redis_parts(redis, arns[-1]),
                          "sample": redis.r.call("HRANDFIELD", f"{PREFIX}viewer:heartbeat:{arns[-1]}", "1",
                                                 "WITHVALUES")}
    log(f"big: {tv} seated (sum of HLEN {hl}) in {took:.1f}s; usher_seat at {len(arns)} stages "
        f"{R['mem']['seeded']['seat_us']:.0f} us in Redis per call")
    return tv


def seat_sample(ctx, usher, redis, n):
    """Redis time (µs) per usher_seat call over n seats of new users,
    pipelined with usher's own call, at the stages there are now."""
    call, _, _ = probe.seat_call(ctx, usher, redis, f"probe-sample-{random.getrandbits(24):06x}")
    c0, u0 = probe.call_stats(redis.r.cmdstats())
    probe.seed(redis, call, n, f"sample-{random.getrandbits(24):06x}-", int(time.time() * 1000))
    c1, u1 = probe.call_stats(redis.r.cmdstats())
    return (u1 - u0) / max(1, c1 - c0)


def run_big(ctx, R, usher, redis):
    R["mem"]["seat_small_us"] = seat_sample(ctx, usher, redis, SEAT_SAMPLE)
    log(f"big: usher_seat at {SMALL_STAGES} stages {R['mem']['seat_small_us']:.1f} us in Redis per call "
        f"({SEAT_SAMPLE} seats)")
    arns = usher.add_stages(ctx.cfg.big_stages)
    tv = seed_big(ctx, R, usher, redis, arns)
    ctx.bg.update(measure.background(ctx, usher, redis))
    R["background"]["big"] = dict(ctx.bg)
    log(f"big: idle usher sends {ctx.bg['per_s']:.1f} Redis commands/s on its own ({ctx.bg['cmds']})")
    run_stats(ctx, R, usher, redis, "stats_big", len(arns), tv)
    R["mem"]["usher_rss_big"] = usher.rss()
    R["mem"]["usher_hwm"] = usher.hwm()
    R["mem"]["redis_used_memory"] = redis.used_memory()


def run_million(ctx, R, usher, redis, users_file):
    """Seats viewers up to BENCH_MILLION (usher's own usher_seat call,
    pipelined, in BENCH_BIG_STAGES stages), then: Redis bytes per seated
    viewer, usher's RSS, and the heartbeat run again with them seated."""
    arns = usher.add_stages(ctx.cfg.big_stages)
    call, _, _ = probe.seat_call(ctx, usher, redis, "probe-join-million")
    have = redis.get_int(PREFIX + "total_viewers")
    need = ctx.cfg.million - have
    if need <= 0:
        raise SystemExit(f"million: {have} viewers are seated already, BENCH_MILLION is {ctx.cfg.million}")
    mem0, rss0 = redis.used_memory(), usher.rss()
    log(f"million: seating {need} more viewers with usher's own call (pipelined) to reach {ctx.cfg.million}")
    took = probe.seed(redis, call, need, f"m-{random.getrandbits(24):06x}-", int(time.time() * 1000))
    mem1, tv = redis.used_memory(), redis.get_int(PREFIX + "total_viewers")
    hl = sum(redis.r.pipeline([["HLEN", f"{PREFIX}viewer:heartbeat:{a}"] for a in arns]))
    R["million"] = {"seated": tv, "hlen_sum": hl, "seeded": need, "seconds": took, "stages": len(arns),
                    "bytes": mem1 - mem0, "per_viewer": (mem1 - mem0) / need, "used_memory": mem1,
                    "used_memory_empty": R["mem"].get("redis_empty"),
                    "rss_before": rss0, "rss": usher.rss(), "parts": redis_parts(redis, arns[-1])}
    log(f"million: {tv} seated (sum of HLEN {hl}) in {took:.0f}s; Redis +{(mem1 - mem0) / need:.0f} B per viewer")
    run_heartbeat_more(ctx, R, usher, redis, users_file, "heartbeat_million", f"{tv} seated")
    R["million"]["rss_after"] = usher.rss()


def phase_main(ctx, R):
    """Throughput scenarios, references, then 100 stages / 100,000 viewers."""
    if not any(ctx.wants(s) for s in MAIN_SCENARIOS):
        return
    redis = Redis(ctx, "redis-main")
    usher = Usher(ctx, redis, "main")
    R["mem"]["redis_empty"] = redis.used_memory()
    R["versions"]["usher"] = usher.must("GET", "/health").get("version", "?")
    usher.go_live()
    arns = usher.add_stages(SMALL_STAGES)
    log(f"main: usher pid {usher.pid} on :{usher.port}, redis :{redis.port}, {len(arns)} stages")
    users_file, seated = seat_viewers(ctx, usher, SMALL_VIEWERS)
    tv = redis.get_int(PREFIX + "total_viewers")
    log(f"main: {tv} viewers seated by HTTP joins in {SMALL_STAGES} stages")
    ctx.bg.update(measure.background(ctx, usher, redis))
    R["background"] = {"small": dict(ctx.bg)}
    log(f"main: idle usher sends {ctx.bg['per_s']:.1f} Redis commands/s on its own ({ctx.bg['cmds']})")
    if ctx.wants("health"):
        run_health(ctx, R, usher, redis)
    if ctx.wants("stats"):
        run_stats(ctx, R, usher, redis, "stats_small", SMALL_STAGES, tv)
    if ctx.wants("heartbeat"):
        run_heartbeat(ctx, R, usher, redis, users_file, seated)
    if ctx.wants("heartbeat1000"):
        run_heartbeat_more(ctx, R, usher, redis, users_file, "heartbeat1000", f"wrk -c{ctx.cfg.hb_conns}",
                           conns=ctx.cfg.hb_conns)
    if ctx.wants("join") or ctx.wants("joinleave"):
        run_signing(ctx, R, usher, redis)
    if ctx.wants("big"):
        run_big(ctx, R, usher, redis)
    if ctx.wants("million") and ctx.cfg.million > 0:
        run_million(ctx, R, usher, redis, users_file)
    usher.stop()
    redis.stop()


# ---- the burst ------------------------------------------------------------------

def phase_burst(ctx, R):
    """BURST joins written within one second to an idle usher; then, when
    usher has a nonce pool, the same against a usher started with
    SIGNER_PRECOMPUTE=0 (what a burst meets once the pool is used up)."""
    if not ctx.wants("burst"):
        return
    redis = Redis(ctx, "redis-burst")
    R["burst"] = burst_once(ctx, redis, "burst", {})
    if ctx.pool > 0:
        R["burst_nopool"] = burst_once(ctx, redis, "burst-nopool", {"SIGNER_PRECOMPUTE": 0})
    redis.stop()


def burst_snapshots(usher, redis, snap):
    """Callbacks taking CPU and commandstats snapshots at fire and at end."""
    def cpus():
        me = resource.getrusage(resource.RUSAGE_SELF)
        return (time.time(), procs.machine_busy(), usher.cpu(), redis.cpu(), me.ru_utime + me.ru_stime)

    def fire():
        snap["cs0"], snap["rss0"], snap["c0"] = redis.r.cmdstats(), usher.rss(), cpus()

    def end():
        snap["c1"], snap["cs1"] = cpus(), redis.r.cmdstats()
    return fire, end


BURST_IDLE_MS = 120000   # the burst's connections wait, idle, while usher fills its nonce pool


def burst_once(ctx, redis, name, settings):
    # HTTP_IDLE_TIMEOUT_MS (30 s by default) would close the connections
    # opened first while the harness waits for an idle usher: their joins
    # would then find no connection (answered "0"), which is no figure of usher's.
    usher = Usher(ctx, redis, name, HTTP_IDLE_TIMEOUT_MS=BURST_IDLE_MS, **settings)
    usher.go_live()
    usher.add_stages(SMALL_STAGES)
    n = min(ctx.cfg.burst, resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 500)
    log(f"{name}: opening {n} connections, then {n} joins (new users) written within 1 s"
        + (f" ({', '.join(f'{k}={v}' for k, v in settings.items())})" if settings else ""))
    snap = {}
    fire, end = burst_snapshots(usher, redis, snap)
    res = asyncio.run(burst_client(usher.port, n, 1.0, lambda: procs.wait_idle(usher), fire, end))
    d = [b - a for a, b in zip(snap["c0"], snap["c1"])]
    # CPU % of one core over the burst: usher, redis, this client, everything else
    res["cpu_split"] = [100 * x / d[0] for x in (d[2], d[3], d[4], max(0.0, d[1] - d[2] - d[3] - d[4]))]
    res["usher_cpu_us"] = d[2] * 1e6 / max(1, res["ok"])
    res["fcall"] = probe.call_stats(snap["cs1"])[0] - probe.call_stats(snap["cs0"])[0]
    res["rss"], res["rss_before"] = usher.hwm(), snap["rss0"]
    res["wanted"], res["settings"] = ctx.cfg.burst, settings
    usher.stop()
    res["log"] = log_summary(usher.logfile)
    log(f"{name}: {res['ok']}/{n} answered 2xx, sent within {res['send_window_s']:.3f}s, "
        f"p50 {res['p50_ms']:.0f} ms, p99 {res['p99_ms']:.0f} ms, max {res['max_ms']:.0f} ms, "
        f"last answer at {res['last_answer_s']:.2f}s")
    if res["log"]:
        log(f"{name}: usher log: " + "; ".join(f"{c} x {m}" for m, c in res["log"]))
    return res


def log_summary(path, levels=("warn", "error")):
    """usher's warnings and errors, counted by message (time stamps off)."""
    counts = {}
    with open(path, errors="replace") as f:
        for line in f:
            parts = line.split(None, 2)
            if len(parts) == 3 and parts[1] in levels:
                msg = parts[1] + " " + parts[2].strip()
                counts[msg] = counts.get(msg, 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])[:6]


# ---- the sweep ------------------------------------------------------------------

SLOWLOG_SETUP = (["CONFIG", "SET", "slowlog-log-slower-than", "0"],
                 ["CONFIG", "SET", "slowlog-max-len", "100000"],
                 ["CONFIG", "SET", "latency-monitor-threshold", "5"],
                 ["SLOWLOG", "RESET"], ["LATENCY", "RESET"])


def sweep_seed(ctx, usher, redis, call):
    """SWEEP_N viewers with heartbeats 2 x HEARTBEAT_TIMEOUT old appear at
    once, right after one of usher's (empty) sweeps, so that the next one
    comes after they are all there and after the SLOWLOG is set up.
    Returns (usher's sweep seen before, when the viewers appeared)."""
    n = ctx.cfg.sweep_n
    old = int(time.time() * 1000) - 2 * SWEEP_TIMEOUT * 1000
    tag = f"silent-{random.getrandbits(24):06x}-"
    cmds = [["MULTI"]] + [call.make(f"{tag}{i}", old) for i in range(n)] + [["EXEC"]]
    tick = probe.wait_for_call(redis, "usher_sweep", 3 * SWEEP_INTERVAL, ctx.shas)
    replies = redis.r.pipeline(cmds)
    t_seeded = time.time()
    for cmd in SLOWLOG_SETUP:
        redis.r.call(*cmd)
        procs.record(ctx, ["redis-cli", "-p", str(redis.port)] + cmd)
    seated = [r for r in replies[-1] or [] if isinstance(r, list)]
    if len(seated) != n:
        raise SystemExit(f"sweep: seeding failed ({len(seated)} seated): "
                         f"{[r for r in replies[-1] or [None] if not isinstance(r, list)][:1]}")
    return tick, t_seeded


def sweep_watch(redis, seeded, t_seeded):
    """Polls total_viewers until it is 0; (first removal, all gone) times or None."""
    t_first = t_zero = None
    deadline = t_seeded + 3 * SWEEP_INTERVAL + 10
    while time.time() < deadline:
        v = redis.get_int(PREFIX + "total_viewers")
        now = time.time()
        if t_first is None and v < seeded:
            t_first = now
        if v == 0:
            t_zero = now
            break
        time.sleep(0.005)
    return t_first, t_zero


def sweep_calls(slow, sweep_fn="usher_sweep", shas=None):
    """From SLOWLOG GET entries: the sweep calls' µs (descending) and the
    longest other commands (the harness's own, named bench-harness, left out)."""
    calls = sorted((e[2] for e in slow if probe.fcall_name(e[3], shas) == sweep_fn), reverse=True)
    others = sorted(({"us": e[2], "cmd": " ".join(str(x) for x in e[3][:3])[:70]} for e in slow
                     if probe.fcall_name(e[3], shas) != sweep_fn
                     and not (len(e) > 5 and e[5] == "bench-harness")), key=lambda e: -e["us"])
    return calls, others


def phase_sweep(ctx, R):
    """50,000 viewers whose last heartbeat is 2 x HEARTBEAT_TIMEOUT old
    appear at once (one MULTI/EXEC of usher's own seat call) in front of an
    idle usher sweeping every SWEEP_INTERVAL s; every command Redis runs
    meanwhile goes to the SLOWLOG (threshold 0), so each sweep call's time
    is known; LATENCY LATEST keeps what took >= 5 ms."""
    if not ctx.wants("sweep"):
        return
    redis = Redis(ctx, "redis-sweep")
    usher = Usher(ctx, redis, "sweep", HEARTBEAT_CLEANUP_INTERVAL=SWEEP_INTERVAL,
                  HEARTBEAT_TIMEOUT=SWEEP_TIMEOUT, LOG_LEVEL="info")
    usher.go_live()
    usher.add_stages(SMALL_STAGES)
    call, _, d = probe.seat_call(ctx, usher, redis, "probe-join-3")
    usher.must("POST", "/api/viewer/leave", {"userId": "probe-join-3", "stageArn": d["stageArn"]})
    idle = procs.wait_idle(usher)
    log(f"sweep: usher idle after {idle:.0f}s; {ctx.cfg.sweep_n} viewers with heartbeats {2 * SWEEP_TIMEOUT}s "
        f"old appear at once (MULTI, {ctx.cfg.sweep_n} x usher's usher_seat call, EXEC)")
    tick, t_seeded = sweep_seed(ctx, usher, redis, call)
    t_first, t_zero = sweep_watch(redis, ctx.cfg.sweep_n, t_seeded)
    time.sleep(0.3)
    calls, others = sweep_calls(redis.r.call("SLOWLOG", "GET", "-1"), shas=ctx.shas)
    latest = redis.r.call("LATENCY", "LATEST")
    with open(usher.logfile, errors="replace") as f:
        sweep_lines = [l.strip() for l in f if "sweep:" in l]
    R["sweep"] = {
        "seeded": ctx.cfg.sweep_n, "left": redis.get_int(PREFIX + "total_viewers"), "idle_wait_s": idle,
        "tick_seen": tick, "t_first_s": (t_first - t_seeded) if t_first else None,
        "duration_s": (t_zero - t_first) if t_zero and t_first else None,
        "calls": len(calls), "max_us": calls[0] if calls else 0,
        "median_us": stats.median_sorted_desc(calls), "sum_us": sum(calls),
        "over_1ms": sum(1 for c in calls if c >= 1000), "other_max": others[:1],
        "latency_latest": [[str(x) for x in e] for e in latest] if latest else [],
        "log": sweep_lines[-3:],
    }
    s = R["sweep"]
    log(f"sweep: first removal {fmt_s(s['t_first_s'])} after the viewers appeared, all gone "
        f"{fmt_s(s['duration_s'])} later; {len(calls)} sweep calls, longest {s['max_us']} us, "
        f"median {s['median_us']} us")
    usher.stop()
    redis.stop()
