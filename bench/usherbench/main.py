"""main -- `python3 bench/bench.py [--only SCENARIO,...]`: checks the tools,
sets up the run's context, runs the phases, prints the report and (after a
full run) rewrites the generated block of BENCHMARKS.md. The children it
started are stopped whatever happens."""

import argparse
import dataclasses
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import time

from . import phases, procs, report
from .context import SCENARIOS, Ctx, Settings
from .probe import script_inner_commands, script_shas
from .procs import log


def parse_args(argv):
    p = argparse.ArgumentParser(prog="bench.py", description=(
        "usher's benchmarks (see BENCHMARKS.md). Settings come from the environment: BENCH_SECONDS, "
        "BENCH_WARMUP, BENCH_CONNECTIONS, BENCH_WRK_THREADS, BENCH_REF_SECONDS, BENCH_OPENSSL_SECONDS, "
        "BENCH_BURST, BENCH_SWEEP_VIEWERS, BENCH_BIG_VIEWERS, BENCH_BIG_STAGES, BENCH_PROFILE, BENCH_KEEP, "
        "BENCH_MD, BENCH_QUIET_WAIT, USHER_BIN, BENCH_HB_CONNECTIONS, BENCH_MILLION, BENCH_BEFORE_BIN, "
        "BENCH_BEFORE_LUA_SRC, BENCH_BEFORE_ONLY (see bench/bench.py)."))
    p.add_argument("--only", default="", help="comma list of scenarios to run, of: " + ", ".join(SCENARIOS)
                   + ". A partial run prints its results and does not write BENCHMARKS.md.")
    p.add_argument("--render", metavar="RESULTS_JSON", default="",
                   help="run nothing: render the report of a full run kept with BENCH_KEEP=1 (its results.json) "
                        "again, with this harness's report code, and write BENCHMARKS.md")
    args = p.parse_args(argv)
    only = [s for s in args.only.split(",") if s] or list(SCENARIOS)
    bad = [s for s in only if s not in SCENARIOS]
    if bad:
        p.error(f"unknown scenario {', '.join(bad)}; known: {', '.join(SCENARIOS)}")
    return frozenset(only), args.render


def check_tools(cfg):
    for tool in ("wrk", "redis-server", "redis-benchmark", "openssl"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: run `WITH_BENCH=1 sh scripts/deps.sh` (as root)")
    if not os.access(cfg.usher_bin, os.X_OK):
        raise SystemExit(f"{cfg.usher_bin} is missing: run `make`")
    if cfg.before_bin and not os.access(cfg.before_bin, os.X_OK):
        raise SystemExit(f"BENCH_BEFORE_BIN {cfg.before_bin} is not an executable")
    if cfg.before_bin and not os.path.isdir(cfg.before_lua_src):
        raise SystemExit(f"BENCH_BEFORE_BIN: its Lua sources {cfg.before_lua_src or '(none)'} are not a directory; "
                         "set BENCH_BEFORE_LUA_SRC")


def perf_works(ctx):
    if ctx.cfg.profile == "0" or not shutil.which("perf"):
        return False
    if ctx.cfg.profile == "1":
        return True
    r = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-o", os.path.join(ctx.tmp, "perf-check.data"),
                        "--", "true"], capture_output=True)
    return r.returncode == 0


def nonce_pool(cfg):
    """usher's SIGNER_PRECOMPUTE default, from its --help (0 when absent)."""
    helptext = subprocess.run([cfg.usher_bin, "--help"], capture_output=True, text=True).stdout
    m = re.search(r"SIGNER_PRECOMPUTE\s.*\(default: (\d+)\)", helptext)
    return int(m.group(1)) if m else 0


def make_ctx(cfg, only, tmp=None, label=""):
    ctx = Ctx(cfg=cfg, only=only, tmp=tmp or tempfile.mkdtemp(prefix="usher-bench-"), label=label)
    # the burst holds BURST sockets on each side; children inherit the limit
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < cfg.burst + 1000:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, cfg.burst + 1000), hard))
    ctx.inner = script_inner_commands(cfg.lua_src)
    ctx.shas = script_shas(cfg.lua_src)
    ctx.profile_on = perf_works(ctx)
    ctx.pool = nonce_pool(cfg)
    return ctx


def finish(ctx, R):
    """The report after a full run; the figures and the issue-11 targets
    measured alone after a partial one."""
    if ctx.only != frozenset(SCENARIOS):
        print("\n" + json.dumps({k: R[k] for k in ("scen", "refs", "mem", "million", "burst", "sweep")
                                 if R.get(k)}, indent=1, default=str), flush=True)
        print("\n" + "\n".join(report.targets_table(R)) + "\n", flush=True)
        log(f"partial run ({', '.join(sorted(ctx.only))}): BENCHMARKS.md left as it is")
        return
    text = report.render(R, ctx) + report.profile_section(report.profile_text(R))
    print("\n" + text + "\n", flush=True)
    report.write_md(ctx.cfg.md_path, text)


def run_before(ctx, R):
    """With BENCH_BEFORE_BIN: the same scenarios (those of BENCH_BEFORE_ONLY
    that this run runs) on the older usher, each with its own Redis, first;
    its results go to R["before"]."""
    cfg = ctx.cfg.for_before()
    only = frozenset(s for s in ctx.only if s in ctx.cfg.before_only)
    if not only:
        return None
    tmp = os.path.join(ctx.tmp, "before")
    os.makedirs(tmp)
    bctx = make_ctx(cfg, only, tmp=tmp, label="before-")
    Rb = {"scen": {}, "refs": {}, "probes": {}, "checks": [], "mem": {}, "profiles": {}, "versions": {},
          "bin": cfg.usher_bin, "git": report.git_of(cfg.usher_bin)}
    log(f"before: usher {cfg.usher_bin} (scripts {cfg.lua_src}); scenarios {', '.join(sorted(only))}")
    try:
        phases.phase_main(bctx, Rb)
        phases.phase_burst(bctx, Rb)
    finally:
        procs.stop_all(bctx)
    R["before"] = Rb
    R["commands_before"] = bctx.commands
    return bctx


def render_again(path, cfg):
    """--render: the report of a kept full run, rendered again from its
    results.json (the profiles are read from the perf files beside it)."""
    with open(path) as f:
        R = json.load(f)
    ctx = Ctx(cfg=dataclasses.replace(cfg, **R.get("settings", {})), tmp=os.path.dirname(path),
              commands=R.get("commands", []), pool=R.get("pool", 0))
    text = report.render(R, ctx) + report.profile_section(report.profile_text(R))
    print(text)
    report.write_md(cfg.md_path, text)


def main(argv=None):
    only, render = parse_args(argv)
    cfg = Settings.from_env(os.environ)
    if render:
        render_again(render, cfg)
        return
    check_tools(cfg)
    ctx = make_ctx(cfg, only)
    t0 = time.time()

    def on_signal(sig, frame):
        raise SystemExit(f"stopped by signal {sig}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    R = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "scen": {}, "refs": {}, "probes": {},
         "checks": [], "mem": {}, "profiles": {}, "versions": {}, "machine": report.machine(cfg)}
    log(f"usher {cfg.usher_bin}; {cfg.nproc} cores; scenarios {', '.join(sorted(only))}; logs in {ctx.tmp}")
    try:
        R["quiet"] = procs.wait_quiet(ctx)
        if cfg.before_bin:
            run_before(ctx, R)
        phases.phase_main(ctx, R)
        phases.phase_burst(ctx, R)
        phases.phase_sweep(ctx, R)
        R["elapsed_s"] = time.time() - t0
        R["commands"], R["pool"] = ctx.commands, ctx.pool
        R["settings"] = {k: getattr(cfg, k) for k in ("seconds", "warmup", "conns", "wrk_threads",
                                                      "openssl_seconds", "big_stages", "hb_conns")}
        finish(ctx, R)
        with open(os.path.join(ctx.tmp, "results.json"), "w") as f:
            json.dump(R, f, indent=1, default=str)
    finally:
        procs.stop_all(ctx)
        if cfg.keep:
            log(f"kept {ctx.tmp}")
        else:
            shutil.rmtree(ctx.tmp, ignore_errors=True)
