"""references -- the machine's own limits, measured in the same run as
usher: redis-benchmark against the same Redis with the very call usher
makes, and `openssl speed -multi N ecdsap384` for the signing joins need."""

import csv
import re
import time

from . import procs
from .context import DISTURBED
from .procs import log


def parse_redis_benchmark(out):
    """The last result row of `redis-benchmark --csv`; None when there is none."""
    rows = [l for l in out.splitlines() if l.startswith('"') and not l.startswith('"test"')]
    if not rows:
        return None
    f = next(iter(csv.reader([rows[-1]])))
    return {"rps": float(f[1]), "avg_ms": float(f[2]), "p50_ms": float(f[4]),
            "p99_ms": float(f[6]), "max_ms": float(f[7])}


def parse_openssl_speed(out):
    """(sign/s, verify/s) of ecdsap384 from `openssl speed`; None when absent."""
    m = re.search(r"384 bits ecdsa \(nistp384\)\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)", out)
    return (float(m.group(1)), float(m.group(2))) if m else None


def redis_benchmark_once(ctx, redis, argv, n):
    cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(redis.port), "-c", str(ctx.cfg.conns),
           "-n", str(n), "--csv"] + [str(a) for a in argv]
    out, rc, cpu = procs.run_measured(ctx, cmd)
    res = parse_redis_benchmark(out)
    if rc != 0 or not res:
        raise SystemExit(f"redis-benchmark failed:\n{out}")
    res.update({"n": n, "cpu": cpu})
    return res


def redis_benchmark(ctx, redis, argv, label):
    """redis-benchmark -c CONNS running argv; sized to about REF_SECONDS,
    repeated (twice at most) when other processes disturbed it."""
    calib = redis_benchmark_once(ctx, redis, argv, 2000)
    n = int(min(max(calib["rps"] * ctx.cfg.ref_seconds, 2000), 5_000_000))
    for attempt in range(3):
        rcpu0, b0, t0 = redis.cpu(), procs.machine_busy(), time.time()
        res = redis_benchmark_once(ctx, redis, argv, n)
        rcpu = redis.cpu() - rcpu0
        res["redis_cpu_us"] = rcpu * 1e6 / n
        res["other_cpu_pct"] = 100 * max(0.0, procs.machine_busy() - b0 - rcpu - res["cpu"]) / (time.time() - t0)
        if res["other_cpu_pct"] <= DISTURBED:
            break
        log(f"reference {label}: other processes took {res['other_cpu_pct']:.0f} % of one core meanwhile"
            + ("; running it again" if attempt < 2 else "; keeping this run"))
    res["label"] = label
    log(f"reference {label}: redis-benchmark {res['rps']:.0f} req/s, p50 {res['p50_ms']:.2f} ms, "
        f"p99 {res['p99_ms']:.2f} ms (other processes meanwhile: {res['other_cpu_pct']:.0f} % of one core)")
    return res


def openssl_speed(ctx):
    for attempt in range(3):
        r = openssl_speed_once(ctx)
        if r["other_cpu_pct"] <= DISTURBED:
            return r
        log("openssl speed: disturbed by other processes" + ("; running it again" if attempt < 2 else ""))
    return r


def openssl_speed_once(ctx):
    cfg = ctx.cfg
    cmd = ["openssl", "speed", "-seconds", str(cfg.openssl_seconds), "-multi", str(cfg.nproc), "ecdsap384"]
    log(f"reference: {' '.join(cmd)}")
    b0, t0 = procs.machine_busy(), time.time()
    out, rc, cpu = procs.run_measured(ctx, cmd)
    other = 100 * max(0.0, procs.machine_busy() - b0 - cpu) / (time.time() - t0)
    got = parse_openssl_speed(out)
    if rc != 0 or not got:
        raise SystemExit(f"openssl speed failed:\n{out}")
    log(f"reference: {got[0]:.1f} ES384 signatures/s on {cfg.nproc} processes "
        f"(other processes meanwhile: {other:.0f} % of one core)")
    return {"sign": got[0], "verify": got[1], "other_cpu_pct": other}


def openssl_mean(before, after):
    """The join reference: the mean of the runs before and after the joins."""
    return {"sign": (before["sign"] + after["sign"]) / 2, "verify": (before["verify"] + after["verify"]) / 2,
            "before": before["sign"], "after": after["sign"],
            "other": (before["other_cpu_pct"], after["other_cpu_pct"])}
