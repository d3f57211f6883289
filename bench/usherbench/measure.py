"""measure -- one scenario: usher left alone until idle, warmed up, then a
timed wrk run inside a Window that snapshots usher's and Redis's CPU and
Redis's commandstats around it; repeated when other processes disturbed it."""

import json
import os
import time

from . import procs
from .context import BENCH_DIR, DISTURBED, PROFILE_SECONDS
from .procs import log


class Window:
    """Snapshots around a timed run: usher and Redis CPU, commandstats.
    inner: command names that usher's scripts run (counted apart)."""

    def __init__(self, usher, redis, inner):
        self.u, self.rd, self.inner_names = usher, redis, inner

    def __enter__(self):
        self.cs0 = self.rd.r.cmdstats()
        self.t0 = time.time()
        self.ucpu0, self.rcpu0 = self.u.cpu(), self.rd.cpu()
        self.busy0 = procs.machine_busy()
        return self

    def __exit__(self, *exc):
        self.elapsed = time.time() - self.t0
        self.ucpu = self.u.cpu() - self.ucpu0
        self.rcpu = self.rd.cpu() - self.rcpu0
        self.busy = procs.machine_busy() - self.busy0
        d = cmdstats_delta(self.cs0, self.rd.r.cmdstats(), self.inner_names)
        self.by_cmd, self.top_cmds = d["by_cmd"], d["top_cmds"]
        self.top, self.inner, self.top_usec = d["top"], d["inner"], d["top_usec"]
        return False


def cmdstats_delta(cs0, cs1, inner_names):
    """What ran between two commandstats snapshots ({cmd: (calls, usec)}):
    top-level commands (not run by a script) apart from in-script ones;
    INFO (the snapshots themselves) left out."""
    d = {"by_cmd": {}, "top_cmds": {}, "top": 0, "inner": 0, "top_usec": 0}
    for name, (calls, usec) in cs1.items():
        c0, u0 = cs0.get(name, (0, 0))
        dc, du = calls - c0, usec - u0
        if dc <= 0 or name == "info":
            continue
        d["by_cmd"][name] = dc
        if name in inner_names:
            d["inner"] += dc
        else:
            d["top_cmds"][name] = dc
            d["top"] += dc
            d["top_usec"] += du
    return d


def background(ctx, usher, redis, seconds=2.0):
    """Top-level Redis commands per second usher sends on its own (scaler
    lease and view, sweeper) while no request comes in; windows of
    `seconds` until two agree (new stages first get their replication
    started, which settles)."""
    rates = []
    while True:
        with Window(usher, redis, ctx.inner) as w:
            time.sleep(seconds)
        rates.append(w.top / w.elapsed)
        if len(rates) >= 15 or (len(rates) >= 2 and abs(rates[-1] - rates[-2]) <= max(1.0, 0.2 * rates[-2])):
            break
    return {"per_s": rates[-1], "cmds": w.top_cmds, "usher_cpu_pct": 100 * w.ucpu / w.elapsed,
            "settle_s": seconds * (len(rates) - 1), "window_s": w.elapsed}


def parse_wrk(out):
    """The BENCH_JSON line bench/*.lua print at the end of a wrk run."""
    for line in out.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON "):])
    raise SystemExit("wrk printed no result:\n" + out)


def wrk_cmd(ctx, usher, script, path, seconds, latency=True, conns=None):
    cfg = ctx.cfg
    return (["wrk", f"-t{cfg.wrk_threads}", f"-c{conns or cfg.conns}", f"-d{seconds}s"] + (["--latency"] if latency else [])
            + ["-s", os.path.join(BENCH_DIR, script), f"http://127.0.0.1:{usher.port}{path}"])


def wrk(ctx, usher, script, path, seconds, extra_env=None, conns=None):
    shown = {"BENCH_LUA_DIR": BENCH_DIR}
    shown.update(extra_env or {})
    env = dict(os.environ, **shown)
    out, rc, cpu = procs.run_measured(ctx, wrk_cmd(ctx, usher, script, path, seconds, conns=conns), env=env,
                                      shown_env=shown)
    if rc != 0:
        raise SystemExit(f"wrk failed ({rc}):\n{out}")
    res = parse_wrk(out)
    res["wrk_cpu"] = cpu
    return res


def profile(ctx, usher, script, path, extra_env, out, conns=None):
    """A separate run after the timed one (perf slows usher down): wrk for
    PROFILE_SECONDS + 2 s, perf record -p usher for PROFILE_SECONDS."""
    shown = {"BENCH_LUA_DIR": BENCH_DIR, **(extra_env or {})}
    cmd = wrk_cmd(ctx, usher, script, path, PROFILE_SECONDS + 2, latency=False, conns=conns)
    load = procs.spawn(ctx, cmd, env=dict(os.environ, **shown), shown_env=shown)
    time.sleep(1)
    pcmd = ["perf", "record", "-e", "cpu-clock", "-F", "499", "--call-graph", "dwarf,16384",
            "-o", out, "-p", str(usher.pid), "--", "sleep", str(PROFILE_SECONDS)]
    procs.run_measured(ctx, pcmd)
    load.wait()
    ctx.children.remove(load)


def scenario(ctx, name, usher, redis, script, path, extra_env=None, profile_to=None, **kw):
    """scenario_once; repeated (twice at most) when other processes took
    more than DISTURBED % of one core meanwhile. Profiles after the last."""
    # Joins run once: a rerun with the same users only refreshes their seats
    # (and seats nobody), one with new users needs seats the 5 stages may
    # no longer have.
    attempts = 1 if "BENCH_RUN" in (extra_env or {}) else 3
    for attempt in range(attempts):
        r = scenario_once(ctx, name, usher, redis, script, path, extra_env, **kw)
        r["attempts"] = attempt + 1
        if r["other_cpu_pct"] <= DISTURBED or attempt + 1 == attempts:
            break
        log(f"{name}: other processes took {r['other_cpu_pct']:.0f} % of one core meanwhile"
            + ("; running it again" if attempt < 2 else "; keeping this run"))
    if profile_to:
        profile(ctx, usher, script, path, extra_env, profile_to, conns=kw.get("conns"))
    return r


def warm_up(ctx, usher, script, path, env0, steady, drain, conns=None):
    """WARMUP-second wrk rounds: one, or with `steady` until two rounds in
    a row after `drain` joins agree within 10 %. Returns (req/s per round, joins)."""
    rounds, joins, after = [], 0, []
    while ctx.cfg.warmup > 0:
        drained = joins >= drain
        env = dict(env0)
        if "BENCH_RUN" in env:      # new users in every round
            env["BENCH_RUN"] += f"w{len(rounds)}"
        wr = wrk(ctx, usher, script, path, ctx.cfg.warmup, env, conns)
        rounds.append(wr["requests"] / (wr["duration_us"] / 1e6))
        joins += wr.get("joins", wr["requests"])
        if drained:
            after.append(rounds[-1])
        if not steady or len(rounds) >= 40 or (
                len(after) >= 2 and abs(after[-1] - after[-2]) <= 0.1 * after[-2]):
            break
    return rounds, joins


def scenario_once(ctx, name, usher, redis, script, path, extra_env=None,
                  warm_env=None, before=None, steady=False, drain=0, conns=None):
    """Waits until usher is idle (its signer threads compute nonces ahead
    after start and after joins, which would be counted against the next
    run), warm-up, then the timed wrk run inside a Window. `before` runs
    between the two (for snapshots the warm-up must not disturb). With
    `steady`, the warm-up goes on until the rate is steady (joins: until the
    nonce pool, `drain` joins, is used up, so that the timed run measures
    the sustained rate)."""
    cfg = ctx.cfg
    idle = procs.wait_idle(usher)
    log(f"{name}: usher idle after {idle:.0f}s; warm-up {cfg.warmup}s{' rounds until steady' if steady else ''}, "
        f"then {cfg.seconds}s with wrk -c{conns or cfg.conns}")
    rounds, joins = warm_up(ctx, usher, script, path, warm_env or extra_env or {}, steady, drain, conns)
    if steady and rounds:
        log(f"{name}: warm-up rounds, req/s: {', '.join(f'{x:.0f}' for x in rounds)} ({joins} joins)")
    time.sleep(0.3)              # let the warm-up's last answers drain
    if before:
        before()
    with Window(usher, redis, ctx.inner) as w:
        res = wrk(ctx, usher, script, path, cfg.seconds, extra_env, conns)
        time.sleep(0.3)          # requests in flight when wrk stopped still reach Redis
    r = scenario_result(ctx, name, res, w, usher.rss())
    r.update({"idle_wait_s": idle, "warmup_rps": rounds, "conns": conns or cfg.conns})
    log(f"{name}: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
        f"non-2xx {r['non2xx']}, usher {r['usher_cpu_us']:.1f} us CPU/req, "
        f"{r['rt_per_req']:.3f} round trips/req")
    return r


def scenario_result(ctx, name, res, w, rss):
    """The figures of one timed run from wrk's result and its Window. A run
    that answered no request measured nothing: it stops the bench."""
    n = res["requests"]
    if n <= 0:
        raise SystemExit(f"{name}: wrk saw no request answered; nothing was measured")
    dur = res["duration_us"] / 1e6
    bg = ctx.bg["per_s"] * w.elapsed
    return {
        "name": name, "requests": n, "rps": n / dur, "p50_ms": res["lat_p50_us"] / 1000,
        "p99_ms": res["lat_p99_us"] / 1000, "max_ms": res["lat_max_us"] / 1000,
        "non2xx": res.get("non2xx", res["status_errors"]),
        "socket_errors": res["connect_errors"] + res["read_errors"] + res["write_errors"] + res["timeouts"],
        "usher_cpu_us": w.ucpu * 1e6 / n, "redis_cpu_us": w.rcpu * 1e6 / n,
        "rt_raw": w.top / n, "inner_per_req": w.inner / n,
        # minus what usher sends on its own meanwhile (scaler, sweeper; measured idle)
        "bg": bg, "rt_per_req": max(0.0, w.top - bg) / n, "redis_us_per_req": w.top_usec / n,
        "top": w.top, "inner": w.inner,
        "usher_cpu_pct": 100 * w.ucpu / dur, "redis_cpu_pct": 100 * w.rcpu / dur,
        "wrk_cpu_pct": 100 * res["wrk_cpu"] / dur,
        # everything else that ran on the machine meanwhile (this harness included)
        "other_cpu_pct": 100 * max(0.0, w.busy - w.ucpu - w.rcpu - res["wrk_cpu"]) / dur,
        "rss": rss, "by_cmd": w.by_cmd, "wrk": res,
    }
