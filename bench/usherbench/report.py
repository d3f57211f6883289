"""report -- the text `make bench` prints and writes into BENCHMARKS.md:
the run's description, the tables, one paragraph per measurement, the
targets with their verdicts, the commands as run, and the profile. Every
function here renders from the results R (and the run's settings) alone,
so the report is tested without running anything."""

import json
import os
import platform
import subprocess

from . import procs
from .context import ROOT, SMALL_STAGES, SWEEP_INTERVAL, SWEEP_TIMEOUT, PROFILE_SECONDS
from .probe import probe_text

BEGIN, END = "<!-- BEGIN make bench: generated, do not edit -->", "<!-- END make bench -->"


def fmt_s(v):
    return f"{v:.3f} s" if isinstance(v, (int, float)) else "never"


def mb(b):
    return f"{b / 2**20:.1f} MB"


def verdict(ok):
    return "met" if ok else "**missed**"


def short_names(cfg):
    return {"health": "health", "stats_small": f"stats {SMALL_STAGES} stages",
            "stats_big": f"stats {cfg.big_stages} stages", "heartbeat": "heartbeat", "join": "join",
            "joinleave": "join+leave"}


def ref_rows(cfg):
    """(scenario, its reference, the reference's name) in table order."""
    return [("health", "health", "redis-benchmark PING"),
            ("stats_small", "stats_small", "redis-benchmark FCALL usher_stats"),
            ("stats_big", "stats_big", "redis-benchmark FCALL usher_stats"),
            ("heartbeat", "heartbeat", "redis-benchmark FCALL usher_heartbeats, 1 heartbeat"),
            ("heartbeat1000", "health", "redis-benchmark PING"),
            ("heartbeat_million", "heartbeat", "redis-benchmark FCALL usher_heartbeats, 1 heartbeat (200 seated)"),
            ("join", "openssl", f"openssl speed -multi {cfg.nproc} ecdsap384 (sign/s)"),
            ("joinleave", "openssl", "same, per join (cycles/s = req/s ÷ 2)")]


def section_intro(R, ctx, w):
    """The run: machine, versions, how each scenario and reference ran."""
    cfg = ctx.cfg
    F = R["refs"]
    m = R["machine"]
    w(f"Run of {R['date']}, {R['elapsed_s']:.0f} s in all. Machine: {m['nproc']} cores "
      f"({m['cpu']}), {m['mem_gb']:.1f} GB, Linux {m['kernel']}; {m['redis']}; {m['openssl']}; "
      f"{m['wrk']}; Python {m['python']}; usher {R['versions'].get('usher', '?')} at {m['git']}. "
      f"Load generator, usher and Redis share these {m['nproc']} cores.")
    w("")
    w(f"Each scenario: {cfg.warmup} s warm-up, then {cfg.seconds} s of `wrk -t{cfg.wrk_threads} -c{cfg.conns} --latency`. "
      f"References run against the same Redis in the same run: `redis-benchmark -c {cfg.conns}` with the "
      f"FCALL usher itself sent (caught with MONITOR), and `openssl speed -seconds "
      f"{cfg.openssl_seconds} -multi {cfg.nproc} ecdsap384`, run before the join runs and again after them: "
      f"{F['openssl']['before']:.1f} and {F['openssl']['after']:.1f} ES384 signatures/s (other processes "
      f"meanwhile {F['openssl']['other'][0]:.0f} % and {F['openssl']['other'][1]:.0f} % of one core), mean "
      f"{F['openssl']['sign']:.1f} (the reference for joins).")
    w("")


def section_table(R, ctx, w):
    """The main table: each scenario beside its reference."""
    cfg = ctx.cfg
    S, F = R["scen"], R["refs"]
    w("| scenario | req/s | p50 ms | p99 ms | max ms | non-2xx | usher CPU µs/req | Redis round trips/req "
      "| in-script Redis cmds/req | Redis µs/req | usher RSS | reference | ref req/s (p50/p99 ms) | req/s ÷ ref |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for key, ref, refname in ref_rows(cfg):
        if key not in S or ref not in F:
            continue
        s = S[key]
        f = F[ref]
        if ref == "openssl":
            refval = f["sign"]
            mine = s["rps"] if key == "join" else s["rps"] / 2
            refcell = f"{refval:.0f} sign/s"
        else:
            refval, mine = f["rps"], s["rps"]
            refcell = f"{refval:.0f} ({f['p50_ms']:.2f}/{f['p99_ms']:.2f})"
        name = s["name"]
        w(f"| {name} | {s['rps']:.0f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['max_ms']:.1f} | "
          f"{s['non2xx'] + s['socket_errors']} | {s['usher_cpu_us']:.1f} | {s['rt_per_req']:.3f} | "
          f"{s['inner_per_req']:.1f} | {s['redis_us_per_req']:.1f} | {mb(s['rss'])} | {refname} | "
          f"{refcell} | {mine / refval:.2f} |")
    w("")


def section_issue11(R, ctx, w):
    """Issue 11's targets, this usher beside the "before" one; the million."""
    cfg = ctx.cfg
    w("### Issue 11's targets")
    w("")
    if R.get("before"):
        b = R["before"]
        w(f"\"before\" is `{b['bin']}` (built at {b['git']}), measured first in this same run, each part with "
          f"its own Redis, the same scenarios and settings; the figures under \"Before\" below are its own.")
        w("")
    for line in targets_table(R, cfg.hb_conns):
        w(line)
    w("")
    m = R.get("million")
    if m:
        parts = "; ".join(f"{k} ({v['encoding']}) {v['per_entry']:.0f} B per viewer" for k, v in m["parts"].items())
        empty = m.get("used_memory_empty")
        whole = f", {(m['used_memory'] - empty) / m['seated']:.0f} B per viewer counting everything since " \
            "the empty Redis" if empty else ""
        w(f"The million: {m['seeded']:,} viewers seated on top of the {m['seated'] - m['seeded']:,} there were "
          f"(usher's own `usher_seat` call, pipelined, {m['seconds']:.0f} s) in {m['stages']} stages: "
          f"{m['seated']:,} seated, sum of HLEN {m['hlen_sum']:,}; Redis used_memory {mb(m['used_memory'])}, "
          f"+{m['per_viewer']:.0f} B per viewer seated{whole}; in the last stage: {parts}. usher RSS "
          f"{mb(m['rss_before'])} before, {mb(m['rss'])} after seating, {mb(m['rss_after'])} after the heartbeat run.")
        w("")


def section_before(R, ctx, w):
    """The "before" usher's own table."""
    b = R.get("before")
    if not b or not b["scen"]:
        return
    w(f"### Before ({b['git']}), same run")
    w("")
    section_table(b, ctx, w)


def section_ratios(R, ctx, w):
    """Each usher figure as a ratio to its reference."""
    cfg = ctx.cfg
    S, F = R["scen"], R["refs"]
    w("Each usher figure as a ratio to its reference (usher ÷ reference; for req/s higher is better, "
      "for the others lower is better). Redis CPU µs/call is redis-server's own CPU time per request, "
      "from /proc, while usher drove it and while redis-benchmark did; for joins the reference CPU is "
      f"{cfg.nproc} cores ÷ the openssl sign rate.")
    w("")
    w("| scenario | req/s usher / ref = ratio | p50 ms usher / ref = ratio | p99 ms usher / ref = ratio "
      "| CPU µs per request usher / ref = ratio |")
    w("|---|---|---|---|---|")
    sign_cpu = cfg.nproc * 1e6 / F["openssl"]["sign"]
    for key, ref, _ in ref_rows(cfg):
        if key not in S or ref not in F:
            continue
        s, f = S[key], F[ref]
        if ref == "openssl":
            per_join = 1 if key == "join" else 2
            rps = s["rps"] / per_join
            cpu = s["usher_cpu_us"] * per_join
            w(f"| {s['name']} | {rps:.0f} joins/s / {f['sign']:.0f} sign/s = {rps / f['sign']:.2f} | "
              f"{s['p50_ms']:.2f} / – | {s['p99_ms']:.2f} / – | usher {cpu:.0f} per join / "
              f"{sign_cpu:.0f} per signature = {cpu / sign_cpu:.2f} |")
        else:
            w(f"| {s['name']} | {s['rps']:.0f} / {f['rps']:.0f} = {s['rps'] / f['rps']:.2f} | "
              f"{s['p50_ms']:.2f} / {f['p50_ms']:.2f} = {s['p50_ms'] / f['p50_ms']:.1f} | "
              f"{s['p99_ms']:.2f} / {f['p99_ms']:.2f} = {s['p99_ms'] / f['p99_ms']:.1f} | "
              f"Redis {s['redis_cpu_us']:.1f} / {f['redis_cpu_us']:.1f} = "
              f"{s['redis_cpu_us'] / f['redis_cpu_us']:.2f}; usher {s['usher_cpu_us']:.1f} |")
    w("")


def section_cpu_background(R, ctx, w):
    """CPU split per run; what round trips per request count."""
    cfg = ctx.cfg
    S = R["scen"]
    w("CPU split during each timed run (% of one core; the machine has "
      f"{cfg.nproc * 100} %): " + "; ".join(
          f"{short_names(cfg)[k]}: usher {S[k]['usher_cpu_pct']:.0f} %, redis {S[k]['redis_cpu_pct']:.0f} %, "
          f"wrk {S[k]['wrk_cpu_pct']:.0f} %, other processes {S[k]['other_cpu_pct']:.0f} %"
          + (f" (attempt {S[k]['attempts']})" if S[k].get('attempts', 1) > 1 else "") for k in ("health", "stats_small", "stats_big", "heartbeat", "join", "joinleave")) + ".")
    w("")
    bg = R["background"]
    w(f"Round trips per request are top-level commands (not run by a script) over answered requests, less "
      f"what an idle usher sends on its own, measured idle before the runs (2 s windows until two agree): {bg['small']['per_s']:.1f}/s at "
      f"{SMALL_STAGES} stages and {bg['big']['per_s']:.1f}/s at {cfg.big_stages} stages "
      f"({', '.join(f'{k} {v}' for k, v in sorted(bg['big']['cmds'].items()))} in {bg['big']['window_s']:.0f} s: the scaler's lease and view). "
      f"Other processes kept {R['quiet']:.0f} % of one core busy in the second before the run.")
    w("")


def section_warmup(R, ctx, w):
    """Idle waits, warm-up rounds, join-then-leave counts."""
    cfg = ctx.cfg
    S = R["scen"]
    w(f"Before each run the harness waits until usher's CPU is idle (its signer threads compute ECDSA "
      f"nonces ahead while idle): " + ", ".join(f"{short_names(cfg)[k]} {S[k]['idle_wait_s']:.0f} s"
                                               for k in ("health", "stats_small", "heartbeat", "join", "joinleave", "stats_big"))
      + f". Joins are measured sustained: the warm-up goes on in {cfg.warmup} s rounds until at least {ctx.pool} joins "
      f"(SIGNER_PRECOMPUTE, the nonce pool) are done and then two more rounds agree within 10 %; "
      f"join rounds, req/s: {', '.join(f'{x:.0f}' for x in S['join']['warmup_rps'])}; join-then-leave rounds: "
      f"{', '.join(f'{x:.0f}' for x in S['joinleave']['warmup_rps'])} (the first rounds are signed from the nonce pool).")
    w("")
    jl = S["joinleave"]["wrk"]
    w(f"Join-then-leave: {jl.get('joins', 0)} joins and {jl.get('leaves', 0)} leaves answered 200 "
      f"({S['joinleave']['rps'] / 2:.0f} cycles/s); leaves that freed no seat: {jl.get('unseated', 0)}; "
      f"joins not yet left when wrk stopped: {jl.get('pending', 0)}.")
    w("")


def section_probes(R, ctx, w):
    """What usher sent to Redis per request; the function library's version."""
    w("What usher sent to Redis per request (MONITOR probe of 10 requests before each run): " + "; ".join(
        f"{k}: {probe_text(p)}" for k, p in R["probes"].items()) + ".")
    w("")
    w("Function library: " + ", ".join(
        f"`{c['library']}` version {c['version']} in Redis "
        f"{'= src/store/lua/usher.lua' if c['same'] else 'DIFFERS from src/store/lua/usher.lua (' + str(c['source_version']) + ')'}"
        for c in R["checks"]) + ".")
    w("")


def section_bursts(R, ctx, w):
    """The bursts."""
    for key in ("burst", "burst_nopool"):
        b = R.get(key)
        if not b:
            continue
        label = "Burst" if key == "burst" else "Burst with SIGNER_PRECOMPUTE=0 (no nonce pool: a burst once the pool is used up)"
        w(f"{label}: {b['n']} connections opened beforehand, usher left alone until idle "
          f"({b['idle_wait_s']:.0f} s{f', nonce pool of {ctx.pool} full' if key == 'burst' and ctx.pool else ''}), then "
          f"{b['n']} joins (new users) written open-loop within {b['send_window_s']:.3f} s (largest lag behind "
          f"schedule {b['send_lag_max_ms']:.1f} ms): {b['ok']} answered 2xx (statuses "
          f"{json.dumps({str(k): v for k, v in b['statuses'].items()})}); latency from scheduled send p50 "
          f"{b['p50_ms']:.0f} ms, p99 {b['p99_ms']:.0f} ms, max {b['max_ms']:.0f} ms; last answer "
          f"{b['last_answer_s']:.2f} s after the first request (= {b['ok'] / max(b['last_answer_s'], 1e-9):.0f} "
          f"joins/s); usher {b['usher_cpu_us']:.0f} µs CPU per join from the first request to the last answer, "
          f"{b['fcall']} FCALL; CPU over the burst (% of one core): usher {b['cpu_split'][0]:.0f}, redis "
          f"{b['cpu_split'][1]:.0f}, the client {b['cpu_split'][2]:.0f}, other processes {b['cpu_split'][3]:.0f}; "
          f"usher RSS {mb(b['rss_before'])} with the {b['n']} connections open, peak "
          f"{mb(b['rss'])}. Latency by tenth of the burst, in sending order (min/median/max ms): "
          + " ".join("/".join(str(x) for x in d) for d in b["lat_by_decile"]) + "."
          + (" usher's log: " + "; ".join(f"{n} × `{m}`" for m, n in b["log"]) + "." if b.get("log") else ""))
        w("")


def section_memory(R, ctx, w):
    """Memory at 100,000 seated, and where the bytes go."""
    S = R["scen"]
    me = R["mem"]
    sd, hj = me["seeded"], me["http_joins"]
    w(f"Memory at {sd['total_viewers']} seated in {S['stats_big']['stages']} stages (sum of HLEN "
      f"{sd['hlen_sum']}): usher RSS {mb(me['usher_rss_big'])} (peak {mb(me['usher_hwm'])}); Redis used_memory "
      f"{mb(me['redis_used_memory'])}. Redis bytes per seated viewer: {sd['per_viewer']:.0f} "
      f"(used_memory delta over {sd['viewers']} viewers seated with usher's own FCALL usher_seat, pipelined, "
      f"{sd['seconds']:.1f} s, {sd['seat_us']:.0f} µs Redis time per usher_seat call at "
      f"{S['stats_big']['stages']} stages); {hj['per_viewer']:.0f} over the {hj['viewers']} viewers "
      f"the timed join run seated by HTTP (5 stages). Where the bytes go, from `MEMORY USAGE … SAMPLES 0` of "
      f"the last stage's keys: " + "; ".join(
          f"{k} ({v['encoding']}) {v['bytes']} B for {v['entries']} = {v['per_entry']:.0f} B per viewer"
          for k, v in sd["parts"].items())
      + f"; a seat record, e.g. `{sd['sample'][0]}` → `{sd['sample'][1]}`.")
    w("")


def section_sweep(R, ctx, w):
    """The sweep."""
    sw = R["sweep"]
    om = sw["other_max"]
    w(f"Sweep: usher running with HEARTBEAT_CLEANUP_INTERVAL={SWEEP_INTERVAL}, HEARTBEAT_TIMEOUT={SWEEP_TIMEOUT} "
      f"and idle (nonce pool full, {sw['idle_wait_s']:.0f} s after start), then {sw['seeded']} viewers with last "
      f"heartbeats {2 * SWEEP_TIMEOUT} s old appear at once, just after one of usher's (empty) sweeps "
      f"(one MULTI/EXEC of usher's usher_seat call): first "
      f"removal {fmt_s(sw['t_first_s'])} later, all gone {fmt_s(sw['duration_s'])} after that ({sw['left']} "
      f"left). SLOWLOG (threshold 0 during the test, so every call is there): {sw['calls']} usher_sweep calls, "
      f"longest {sw['max_us']} µs, median {sw['median_us']} µs, {sw['sum_us'] / 1000:.1f} ms in all, "
      f"{sw['over_1ms']} of them ≥ 1 ms"
      + (f"; longest other command from usher {om[0]['us']} µs (`{om[0]['cmd']}`)" if om else "")
      + f". LATENCY LATEST (≥ 5 ms): {json.dumps(sw['latency_latest']) if sw['latency_latest'] else 'no event'}"
      + (f". usher log: `{sw['log'][-1]}`" if sw["log"] else "") + ".")
    w("")


def section_targets_commands(R, ctx, w):
    """The targets table and the commands as run."""
    w("### Other checks (earlier issues' targets)")
    w("")
    w("| target | measured | verdict |")
    w("|---|---|---|")
    for t in targets(R, ctx):
        w(f"| {t[0]} | {t[1]} | {verdict(t[2])} |")
    w("")
    w("### Commands, as run")
    w("")
    w("```")
    for c in R.get("commands_before", []) + ctx.commands:
        w(c)
    w("```")


SECTIONS = (section_intro, section_issue11, section_table, section_before, section_ratios, section_cpu_background, section_warmup,
            section_probes, section_bursts, section_memory, section_sweep, section_targets_commands)


def render(R, ctx):
    """The generated block of BENCHMARKS.md (Markdown), from a full run's results."""
    out = []
    for section in SECTIONS:
        section(R, ctx, out.append)
    return "\n".join(out)


def targets_scenarios(R, cfg):
    """Round trips, CPU, rate against the reference, and errors, for the
    heartbeat and the two stats scenarios."""
    S, F = R["scen"], R["refs"]
    t = []
    for key, ref, pk in (("heartbeat", "heartbeat", "heartbeat"), ("stats_small", "stats_small", "stats"),
                         ("stats_big", "stats_big", "stats_big")):
        s = S[key]
        label = s["name"].replace("POST /api/viewer/", "").replace("GET /api/", "")
        pr = R["probes"][pk]
        exact = pr["top_per_req"]
        # wrk counts answered requests; up to cfg.conns more were in flight when it
        # stopped; usher's own background commands are taken off (measured idle)
        mine = s["top"] - s["bg"]
        t.append((f"{label}: one Redis round trip per request (at most)",
                  f"{s['rt_per_req']:.3f}: {s['top']} top-level commands − {s['bg']:.0f} background for "
                  f"{s['requests']} answered (+ ≤ {cfg.conns} in flight at the end); MONITOR probe, one request "
                  f"at a time: {exact:.2f}",
                  exact <= 1 and mine <= s["requests"] + cfg.conns + 3))
        t.append((f"{label}: usher CPU ≤ 25 µs per request", f"{s['usher_cpu_us']:.1f} µs",
                  s["usher_cpu_us"] <= 25))
        r = s["rps"] / F[ref]["rps"]
        t.append((f"{label}: req/s ≥ 50 % of redis-benchmark on the same call",
                  f"{s['rps']:.0f} / {F[ref]['rps']:.0f} = {100 * r:.0f} %", r >= 0.5))
        errors = s["non2xx"] + s["socket_errors"]
        t.append((f"{label}: every request answered 2xx", f"{errors} non-2xx or socket errors of {s['requests']}",
                  errors == 0 and s["requests"] > 0))
    return t


def targets_rest(R, cfg):
    """Stats flat in the event's size, joins, the bursts, memory, the sweep."""
    S, F = R["scen"], R["refs"]
    t = []
    r = S["stats_big"]["rps"] / S["stats_small"]["rps"]
    t.append((f"stats at {S['stats_big']['stages']} stages / {S['stats_big']['viewers']} viewers within 20 % "
              f"of {S['stats_small']['stages']} stages / {S['stats_small']['viewers']}",
              f"{S['stats_big']['rps']:.0f} vs {S['stats_small']['rps']:.0f} req/s = {100 * r:.0f} %", r >= 0.8))
    r = S["join"]["rps"] / F["openssl"]["sign"]
    t.append((f"joins ≥ 80 % of openssl speed -multi {cfg.nproc} sign/s",
              f"{S['join']['rps']:.0f} / {F['openssl']['sign']:.0f} = {100 * r:.0f} %", r >= 0.8))
    b = R["burst"]
    t.append((f"burst: {b['wanted']} joins within 1 s all answered",
              f"{b['ok']} / {b['wanted']} 2xx, sent within {b['send_window_s']:.2f} s",
              b["ok"] == b["wanted"] and b["send_window_s"] <= 1.05))
    t.append(("burst: p99 ≤ 1.5 s", f"{b['p99_ms'] / 1000:.2f} s", b["p99_ms"] <= 1500))
    nb = R.get("burst_nopool")
    if nb:
        t.append(("(the same burst with SIGNER_PRECOMPUTE=0: all answered, p99 ≤ 1.5 s)",
                  f"{nb['ok']} / {nb['wanted']} 2xx, p99 {nb['p99_ms'] / 1000:.2f} s",
                  nb["ok"] == nb["wanted"] and nb["p99_ms"] <= 1500))
    me = R["mem"]
    t.append((f"usher RSS ≤ 32 MB with {me['seeded']['total_viewers']} seated",
              mb(me["usher_rss_big"]), me["usher_rss_big"] <= 32 * 2**20))
    t.append(("Redis ≤ 300 bytes per seated viewer", f"{me['seeded']['per_viewer']:.0f} B",
              me["seeded"]["per_viewer"] <= 300))
    sw = R["sweep"]
    longest = max(sw["max_us"], sw["other_max"][0]["us"] if sw["other_max"] else 0)
    lat_max = max((int(e[3]) for e in sw["latency_latest"]), default=0)
    t.append((f"sweep of {sw['seeded']}: no Redis block > 10 ms",
              f"{sw['calls']} sweep calls{' (none seen: nothing was measured)' if not sw['calls'] else ''}; longest sweep call {sw['max_us']} µs, longest command from usher {longest} µs"
              + (f", latency event max {lat_max} ms" if lat_max else ", no latency event ≥ 5 ms"),
              sw["calls"] > 0 and longest <= 10000 and lat_max <= 10))
    t.append((f"sweep of {sw['seeded']}: done within one interval ({SWEEP_INTERVAL} s)",
              fmt_s(sw["duration_s"]) + f", {sw['left']} left",
              sw["duration_s"] is not None and sw["duration_s"] <= SWEEP_INTERVAL and sw["left"] == 0))
    return t


def targets(R, ctx):
    """(target, measured, met?) rows of the other checks' table."""
    return targets_scenarios(R, ctx.cfg) + targets_rest(R, ctx.cfg)


# ---- issue 11's targets -----------------------------------------------------------
# Each row: (target, a function of the results R giving (measured text, met?)).
# A figure the run did not take raises KeyError: the row then says "not run".

HB_RATE, HB_P99_MS, HB_USHER_US, HB_REDIS_US = 33000, 10, 15, 6


def _rate_row(key):
    def f(R):
        s, ping = R["scen"][key], R["refs"]["health"]["rps"]
        return (f"{s['rps']:,.0f}/s (PING {ping:,.0f}/s in the same run: {s['rps'] / ping:.2f} ×)",
                s["rps"] >= HB_RATE)
    return f


def _p99_row(key):
    def f(R):
        s = R["scen"][key]
        return f"p99 {s['p99_ms']:.1f} ms (p50 {s['p50_ms']:.2f})", s["p99_ms"] <= HB_P99_MS
    return f


def _errors_row(key):
    def f(R):
        s = R["scen"][key]
        e = s["non2xx"] + s["socket_errors"]
        return f"{e} of {s['requests']:,}", e == 0 and s["requests"] > 0
    return f


def _cpu_row(key, who, limit):
    field = "usher_cpu_us" if who == "usher" else "redis_cpu_us"

    def f(R):
        s = R["scen"][key]
        return f"{s[field]:.1f} µs", s[field] <= limit
    return f


def _stats_flat(R):
    big, small = R["scen"]["stats_big"], R["scen"]["stats_small"]
    r = big["rps"] / small["rps"]
    return (f"{big['rps']:,.0f} vs {small['rps']:,.0f}/s = {100 * r:.0f} % ({big['stages']} stages, "
            f"{big['viewers']:,} viewers)", r >= 0.8)


def _join_flat(R):
    big, small = R["mem"]["seeded"]["seat_us"], R["mem"]["seat_small_us"]
    return f"{big:.1f} vs {small:.1f} µs per usher_seat = {big / small:.2f} ×", big <= 1.5 * small


def _hb_flat(R):
    a, b, m = R["scen"]["heartbeat"], R["scen"]["heartbeat_million"], R["million"]
    ru, rr = b["usher_cpu_us"] / a["usher_cpu_us"], b["redis_cpu_us"] / a["redis_cpu_us"]
    return (f"{m['seated']:,} seated: usher {b['usher_cpu_us']:.1f} µs, Redis {b['redis_cpu_us']:.1f} µs, "
            f"{b['rps']:,.0f}/s; 200 seated: usher {a['usher_cpu_us']:.1f}, Redis {a['redis_cpu_us']:.1f} µs, "
            f"{a['rps']:,.0f}/s ({ru:.2f} ×, {rr:.2f} ×)", ru <= 1.2 and rr <= 1.2)


def _redis_bytes(R):
    m = R["million"]
    return (f"{m['per_viewer']:.0f} B ({m['seeded']:,} seated on top of {m['seated'] - m['seeded']:,}; "
            f"{m['seated']:,} seated in all)", m["per_viewer"] <= 300)


def _rss_flat(R):
    """usher's RSS before the million was seated and after, with the
    heartbeat run between: only the viewers changed (the runs before it,
    e.g. 1,000 connections, leave buffers the allocator keeps)."""
    m = R["million"]
    a, b = m["rss_before"], m["rss_after"]
    return (f"{mb(a)} at {m['seated'] - m['seeded']:,} seated, {mb(b)} at {m['seated']:,} "
            f"(15 s of heartbeats later)", b - a <= 2 * 2**20)


def _joins(R):
    j, sign = R["scen"]["join"]["rps"], R["refs"]["openssl"]["sign"]
    return f"{j:,.0f} / {sign:,.0f} sign/s = {100 * j / sign:.0f} %", j >= 0.8 * sign


def _burst_all(R):
    b = R["burst"]
    return (f"{b['ok']:,} of {b['wanted']:,} answered 2xx, sent within {b['send_window_s']:.2f} s",
            b["ok"] == b["wanted"] and b["send_window_s"] <= 1.05)


def _burst_p99(R):
    return f"{R['burst']['p99_ms'] / 1000:.2f} s", R["burst"]["p99_ms"] <= 1500


def issue11_rows(hb_conns):
    rows = []
    for key, label in (("heartbeat", "heartbeats, 50 connections"),
                       ("heartbeat1000", f"heartbeats, {hb_conns} connections")):
        rows += [(f"{label}: ≥ {HB_RATE:,}/s", _rate_row(key)), (f"{label}: p99 ≤ {HB_P99_MS} ms", _p99_row(key)),
                 (f"{label}: zero errors", _errors_row(key)),
                 (f"{label}: usher CPU ≤ {HB_USHER_US} µs each", _cpu_row(key, "usher", HB_USHER_US)),
                 (f"{label}: Redis CPU ≤ {HB_REDIS_US} µs each", _cpu_row(key, "redis", HB_REDIS_US))]
    for key, label in (("health", "`GET /health`"), ("stats_small", f"`GET /api/stats` ({SMALL_STAGES} stages)")):
        rows += [(f"{label}: ≥ {HB_RATE:,}/s", _rate_row(key)), (f"{label}: p99 ≤ {HB_P99_MS} ms", _p99_row(key)),
                 (f"{label}: zero errors", _errors_row(key)),
                 (f"{label}: usher CPU ≤ {HB_USHER_US} µs each", _cpu_row(key, "usher", HB_USHER_US))]
    rows += [("stats at 100 stages / 100,000 viewers ≥ 80 % of the 5-stage rate", _stats_flat),
             ("a join's Redis time at 100 stages ≤ 1.5 × at 5 stages", _join_flat),
             ("heartbeat cost the same at 200 and at 1,000,000 seated (within 20 %)", _hb_flat),
             ("Redis ≤ 300 bytes per seated viewer at 1,000,000 seated", _redis_bytes),
             ("usher RSS flat in viewers (within 2 MB)", _rss_flat),
             ("joins ≥ 80 % of `openssl speed -multi N`, sustained", _joins),
             ("burst of 10,000 joins in 1 s: all answered", _burst_all),
             ("burst: p99 ≤ 1.5 s", _burst_p99)]
    return rows


def judge(fn, R):
    """(measured text, True/False, or None when the run did not take the figure)."""
    if R is None:
        return "–", None
    try:
        return fn(R)
    except (KeyError, TypeError, ZeroDivisionError):
        return "not run", None


def targets_table(R, hb_conns=1000):
    """Issue 11's targets as Markdown lines: the usher under test, and
    beside it the "before" usher (BENCH_BEFORE_BIN) when the run had one."""
    before = R.get("before")
    head = "| target | " + (f"before ({before.get('git', '?')}) | " if before else "") + "this usher | verdict |"
    out = [head, "|---|" + ("---|" if before else "") + "---|---|"]
    for name, fn in issue11_rows(hb_conns):
        text, ok = judge(fn, R)
        btext = ""
        if before:
            bt, bok = judge(fn, before)
            btext = f"{bt}{' (met)' if bok else ''} | "
        out.append(f"| {name} | {btext}{text} | {'not run' if ok is None else verdict(ok)} |")
    return out


def git_of(binary):
    """The short commit of the checkout a usher binary was built in (<checkout>/build/usher)."""
    top = os.path.dirname(os.path.dirname(os.path.abspath(binary)))
    r = subprocess.run(["git", "-C", top, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return r.stdout.strip() or "?"


def machine(cfg):
    """The machine and the versions of what runs on it."""
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break

    def ver(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"
    git = ver(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "src"],
                           capture_output=True, text=True).stdout.strip()
    return {"nproc": cfg.nproc, "cpu": model, "kernel": platform.release(),
            "mem_gb": procs.proc_meminfo("MemTotal") / 2**30,
            "redis": ver(["redis-server", "--version"]), "openssl": ver(["openssl", "version"]),
            "wrk": ver(["sh", "-c", "wrk -v 2>&1"]), "python": platform.python_version(),
            "git": git + (" + uncommitted changes in src/" if dirty else "")}


def profile_text(R):
    out = []
    for key, path in R["profiles"].items():
        if not path or not os.path.exists(path):
            continue
        base = ["perf", "report", "-i", path, "--stdio"]
        dso = subprocess.run(base + ["--no-children", "--sort", "dso", "-g", "none"],
                             capture_output=True, text=True).stdout
        sym = subprocess.run(base + ["--children", "--sort", "symbol", "-g", "none", "--percent-limit", "4"],
                             capture_output=True, text=True).stdout
        dsos = [" ".join(l.split()) for l in dso.splitlines() if l.strip() and not l.startswith("#")][:8]
        syms = []
        for l in sym.splitlines():
            f = l.split()
            if len(f) >= 4 and f[0].endswith("%") and f[2] == "[.]" and not f[3].startswith("0x") \
                    and f[3] not in ("_start", "main", "__libc_start_call_main", "__libc_start_main_impl",
                                     "run", "event_base_loop", "start_thread", "clone3"):
                syms.append(f"{f[0]:>7} incl. {f[1]:>7} self  {' '.join(f[3:]).replace(' -      -', '').strip()}")
        out.append(f"{key}: CPU by library (self): " + "; ".join(dsos) +
                   "\n" + "\n".join(syms[:22]))
    return "\n\n".join(out)


def profile_section(prof):
    """The Profile section around profile_text's output ("" when none)."""
    if not prof:
        return ""
    return ("\n\n### Profile\n\nA separate run after each timed one (so that the figures above are "
            f"not slowed down): wrk as above for {PROFILE_SECONDS + 2} s, `perf record -e cpu-clock -F 499 "
            f"--call-graph dwarf,16384 -p <usher> -- sleep {PROFILE_SECONDS}`; `perf report --no-children "
            "--sort dso` and `perf report --children --sort symbol` (usher's own and library functions "
            "with ≥ 4 % inclusive).\n\n```\n" + prof + "\n```")


def replace_block(doc, text):
    """doc with its generated block replaced by text (or a new one added)."""
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in doc and END in doc:
        return doc[:doc.index(BEGIN)] + block + doc[doc.index(END) + len(END):]
    return (doc or "# usher benchmarks\n\n`make bench` writes the section below.\n") + "\n## Last run\n\n" + block + "\n"


def write_md(path, text):
    if not path:
        return
    doc = ""
    if os.path.exists(path):
        with open(path) as f:
            doc = f.read()
    with open(path, "w") as f:
        f.write(replace_block(doc, text))
    procs.log(f"wrote {path}")
