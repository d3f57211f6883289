"""context -- the run's settings (read once from the environment) and its
context object, which holds everything a run changes: the temporary
directory, the children it started, the commands it ran (for the report),
and what it learned of usher (nonce pool, in-script command names, its idle
Redis traffic). Passed to every function that needs any of it."""

import dataclasses
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH_DIR = os.path.join(ROOT, "bench")
PREFIX = "ivs:prod:"                  # usher's default REDIS_KEY_PREFIX
CAPACITY = 25000                      # MAX_VIEWERS_PER_STAGE's ceiling
SMALL_STAGES, SMALL_VIEWERS = 5, 200
SWEEP_INTERVAL, SWEEP_TIMEOUT = 5, 60
PROFILE_SECONDS = 3
DISTURBED = 25      # % of one core other processes may take before a run is repeated
SCENARIOS = ("health", "stats", "heartbeat", "heartbeat1000", "join", "joinleave", "big", "million", "burst",
             "sweep")
# What the "before" usher (BENCH_BEFORE_BIN) runs by default: every issue-11
# figure but those that take minutes on an old build (seating a million with
# a seat script that scans every stage, the join-then-leave cycle, the sweep).
BEFORE_SCENARIOS = ("health", "stats", "heartbeat", "heartbeat1000", "join", "big", "burst")
SEAT_SAMPLE = 5000     # seats timed in Redis at 5 stages, beside those at 100


def env_num(env, name, default, kind=int):
    v = env.get(name, "")
    return kind(v) if v.strip() else default


@dataclasses.dataclass(frozen=True)
class Settings:
    """BENCH_* settings (see bench/bench.py --help)."""
    nproc: int
    seconds: int
    warmup: int
    conns: int
    wrk_threads: int
    ref_seconds: float
    openssl_seconds: int
    burst: int
    sweep_n: int
    big_viewers: int
    big_stages: int
    profile: str
    keep: bool
    md_path: str
    usher_bin: str
    lua_src: str
    quiet_wait: int
    hb_conns: int = 1000
    million: int = 1000000
    before_bin: str = ""
    before_lua_src: str = ""
    before_only: tuple = BEFORE_SCENARIOS

    @classmethod
    def from_env(cls, env):
        nproc = os.cpu_count() or 1
        return cls(
            nproc=nproc, seconds=env_num(env, "BENCH_SECONDS", 10), warmup=env_num(env, "BENCH_WARMUP", 2),
            conns=env_num(env, "BENCH_CONNECTIONS", 50), wrk_threads=env_num(env, "BENCH_WRK_THREADS", nproc),
            ref_seconds=env_num(env, "BENCH_REF_SECONDS", 5, float),
            openssl_seconds=env_num(env, "BENCH_OPENSSL_SECONDS", 5), burst=env_num(env, "BENCH_BURST", 10000),
            sweep_n=env_num(env, "BENCH_SWEEP_VIEWERS", 50000),
            big_viewers=env_num(env, "BENCH_BIG_VIEWERS", 100000), big_stages=env_num(env, "BENCH_BIG_STAGES", 100),
            profile=env.get("BENCH_PROFILE", "auto"), keep=env.get("BENCH_KEEP", "0") == "1",
            md_path=env.get("BENCH_MD", os.path.join(ROOT, "BENCHMARKS.md")),
            usher_bin=env.get("USHER_BIN") or os.path.join(ROOT, "build", "usher"),
            lua_src=env.get("BENCH_LUA_SRC") or os.path.join(ROOT, "src", "store", "lua"),
            quiet_wait=env_num(env, "BENCH_QUIET_WAIT", 120),
            hb_conns=env_num(env, "BENCH_HB_CONNECTIONS", 1000), million=env_num(env, "BENCH_MILLION", 1000000),
            before_bin=env.get("BENCH_BEFORE_BIN", ""),
            before_lua_src=env.get("BENCH_BEFORE_LUA_SRC") or before_lua_src(env.get("BENCH_BEFORE_BIN", "")),
            before_only=tuple(s for s in env.get("BENCH_BEFORE_ONLY", ",".join(BEFORE_SCENARIOS)).split(",") if s))

    def for_before(self):
        """The same settings for the "before" usher: its binary and its scripts;
        no BENCHMARKS.md of its own."""
        return dataclasses.replace(self, usher_bin=self.before_bin, lua_src=self.before_lua_src, md_path="",
                                   before_bin="")


def before_lua_src(before_bin):
    """The Lua sources beside a usher binary built in a checkout
    (<checkout>/build/usher -> <checkout>/src/store/lua); "" when none."""
    if not before_bin:
        return ""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(before_bin))), "src", "store", "lua")


@dataclasses.dataclass
class Ctx:
    """Everything one run changes."""
    cfg: Settings
    tmp: str = ""
    only: frozenset = frozenset(SCENARIOS)      # scenarios to run
    children: list = dataclasses.field(default_factory=list)   # Popen objects we started
    commands: list = dataclasses.field(default_factory=list)   # every external command, as run
    inner: frozenset = frozenset()   # commands usher's scripts run (redis.call)
    pool: int = 0                    # usher's ECDSA nonce pool (SIGNER_PRECOMPUTE default)
    profile_on: bool = False
    shas: dict = dataclasses.field(default_factory=dict)   # EVALSHA SHA1 -> usher_<script> (usher before its library)
    label: str = ""                  # "" for the usher under test, "before" for BENCH_BEFORE_BIN
    bg: dict = dataclasses.field(default_factory=lambda: {"per_s": 0.0})   # usher's idle Redis traffic

    def wants(self, name):
        return name in self.only

    def perf_path(self, name):
        """Where a profile goes, or None when not profiling."""
        return os.path.join(self.tmp, f"perf-{self.label}{name}.data") if self.profile_on else None
