#!/usr/bin/env python3
"""bench.py -- `make bench`: usher's benchmark harness (see BENCHMARKS.md).

One command, standard library only. It starts its own redis-server(s) and
usher (the release build) on free loopback ports, warms up, runs every
scenario with wrk (50 connections, BENCH_SECONDS each), measures the
machine's own limits in the same run (redis-benchmark running the very
script call usher makes, `openssl speed -multi N ecdsap384`), then the
join burst, the 100,000-viewer memory figures and the 50,000-viewer sweep.
It prints a report and rewrites the generated block of BENCHMARKS.md.

How each figure is taken:
  req/s, p50/p99/max, non-2xx   wrk (bench/*.lua print one JSON line)
  usher CPU us/request          utime+stime of /proc/<usher>/stat (all
                                threads) over the timed run / requests
  Redis round trips/request     INFO commandstats deltas over the timed run:
                                commands that no usher script calls
                                (EVALSHA, PING, ...) / requests. Redis 7
                                also counts the commands a script runs
                                (redis.call) in commandstats; those are
                                shown apart, as "in-script commands".
                                A MONITOR probe before each run records
                                exactly what usher sends per request.
  usher RSS                     VmRSS of /proc/<usher>/status
  references                    redis-benchmark -c 50 with the EVALSHA
                                argv usher itself sent (caught by MONITOR),
                                after SCRIPT LOAD of src/store/lua/*.lua;
                                openssl speed -multi <nproc> ecdsap384

Settings (environment): BENCH_SECONDS (10), BENCH_WARMUP (2),
BENCH_CONNECTIONS (50), BENCH_WRK_THREADS (nproc), BENCH_REF_SECONDS (5),
BENCH_OPENSSL_SECONDS (5), BENCH_BURST (10000), BENCH_SWEEP_VIEWERS
(50000), BENCH_BIG_VIEWERS (100000), BENCH_BIG_STAGES (100),
BENCH_PROFILE (auto: profile usher with perf after the heartbeat, stats and
join runs when `perf record` works here; 0 = never, 1 = always),
BENCH_KEEP (0; 1 = keep the temporary directory with all logs),
BENCH_MD (BENCHMARKS.md; "" = do not write it), BENCH_QUIET_WAIT (120: how
long to wait for other processes to go quiet first), USHER_BIN (build/usher).
"""

import asyncio
import hashlib
import http.client
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_DIR = os.path.join(ROOT, "bench")
LUA_SRC = os.environ.get("BENCH_LUA_SRC") or os.path.join(ROOT, "src", "store", "lua")


def env_num(name, default, kind=int):
    v = os.environ.get(name, "")
    return kind(v) if v.strip() else default


NPROC = os.cpu_count() or 1
SECONDS = env_num("BENCH_SECONDS", 10)
WARMUP = env_num("BENCH_WARMUP", 2)
CONNS = env_num("BENCH_CONNECTIONS", 50)
WRK_THREADS = env_num("BENCH_WRK_THREADS", NPROC)
REF_SECONDS = env_num("BENCH_REF_SECONDS", 5, float)
OPENSSL_SECONDS = env_num("BENCH_OPENSSL_SECONDS", 5)
BURST = env_num("BENCH_BURST", 10000)
SWEEP_N = env_num("BENCH_SWEEP_VIEWERS", 50000)
BIG_VIEWERS = env_num("BENCH_BIG_VIEWERS", 100000)
BIG_STAGES = env_num("BENCH_BIG_STAGES", 100)
SMALL_STAGES, SMALL_VIEWERS = 5, 200
CAPACITY = 25000                      # MAX_VIEWERS_PER_STAGE's ceiling
PROFILE = os.environ.get("BENCH_PROFILE", "auto")    # auto: when `perf record` works here
PROFILE_SECONDS = 3
KEEP = os.environ.get("BENCH_KEEP", "0") == "1"
MD_PATH = os.environ.get("BENCH_MD", os.path.join(ROOT, "BENCHMARKS.md"))
USHER_BIN = os.environ.get("USHER_BIN") or os.path.join(ROOT, "build", "usher")
PREFIX = "ivs:prod:"                  # usher's default REDIS_KEY_PREFIX
SWEEP_INTERVAL, SWEEP_TIMEOUT = 5, 60
CLK_TCK = os.sysconf("SC_CLK_TCK")

PROFILE_ON = False
POOL = 0                              # usher's ECDSA nonce pool (SIGNER_PRECOMPUTE default)
COMMANDS = []                         # every external command, as run
TMP = None


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def record(cmd, env=None):
    envs = " ".join(f"{k}={v}" for k, v in (env or {}).items())
    COMMANDS.append((envs + " " if envs else "") + " ".join(shquote(c) for c in cmd))


def shquote(s):
    s = str(s)
    return s if re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", s) else "'" + s.replace("'", "'\\''") + "'"


# ---- processes ------------------------------------------------------------

CHILDREN = []                         # Popen objects we started


def spawn(cmd, env=None, logfile=None, shown_env=None):
    record(cmd, shown_env)
    out = open(logfile, "ab") if logfile else subprocess.DEVNULL
    p = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    CHILDREN.append(p)
    return p


def stop(p, timeout=5):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in CHILDREN:
        CHILDREN.remove(p)


def stop_all():
    for p in list(reversed(CHILDREN)):
        try:
            stop(p, 3)
        except Exception:
            pass


def run_measured(cmd, env=None, shown_env=None):
    """Runs a command to its end; returns (output, exit code, CPU seconds)."""
    record(cmd, shown_env)
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    CHILDREN.append(p)
    out = p.stdout.read().decode(errors="replace")
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    CHILDREN.remove(p)
    return out, p.returncode, ru.ru_utime + ru.ru_stime


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy():
    """CPU seconds all cores spent busy (not idle/iowait), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


# ---- Redis ------------------------------------------------------------------

class RespError(Exception):
    pass


class Resp:
    """A minimal RESP2 client: commands, pipelines, MONITOR lines."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.sock.makefile("rb")
        host, p = self.sock.getsockname()[:2]
        self.addr = f"{host}:{p}"

    @staticmethod
    def encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        return b"".join(out)

    def read(self):
        line = self.f.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode(errors="replace")
        if t == b"-":
            return RespError(rest.decode(errors="replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:-2]
            return data.decode(errors="replace")
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ValueError(f"bad RESP line {line!r}")

    def call(self, *args):
        self.sock.sendall(self.encode(args))
        r = self.read()
        if isinstance(r, RespError):
            raise r
        return r

    def pipeline(self, cmds):
        self.sock.sendall(b"".join(self.encode(c) for c in cmds))
        return [self.read() for _ in cmds]

    def info(self, section):
        d = {}
        for line in self.call("INFO", section).splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                d[k] = v
        return d

    def cmdstats(self):
        out = {}
        for k, v in self.info("commandstats").items():
            if k.startswith("cmdstat_"):
                kv = dict(x.split("=") for x in v.split(","))
                out[k[8:]] = (int(kv["calls"]), int(kv["usec"]))
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def script_inner_commands():
    """Names of the commands usher's scripts run with redis.call/pcall."""
    names = set()
    for fn in sorted(os.listdir(LUA_SRC)):
        if fn.endswith(".lua"):
            with open(os.path.join(LUA_SRC, fn)) as f:
                names |= {m.lower() for m in re.findall(r"redis\.p?call\(\s*'([A-Za-z]+)'", f.read())}
    return names


class Redis:
    def __init__(self, name):
        self.port = free_port()
        self.dir = os.path.join(TMP, name)
        os.makedirs(self.dir)
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--dir", self.dir,
               "--logfile", os.path.join(self.dir, "redis.log")]
        self.proc = spawn(cmd)
        deadline = time.time() + 10
        while True:
            try:
                self.r = Resp(self.port)
                self.r.call("PING")
                break
            except (OSError, ConnectionError):
                if time.time() > deadline or self.proc.poll() is not None:
                    raise SystemExit(f"redis-server did not start (see {self.dir}/redis.log)")
                time.sleep(0.05)
        self.r.call("CLIENT", "SETNAME", "bench-harness")

    def get_int(self, key):
        v = self.r.call("GET", key)
        return int(v) if v is not None else 0

    def used_memory(self):
        return int(self.r.info("memory")["used_memory"])

    def stop(self):
        self.r.close()
        stop(self.proc)


# ---- usher ------------------------------------------------------------------

class Usher:
    def __init__(self, redis, name, **settings):
        self.redis = redis
        self.port = free_port()
        self.name = name
        self.logfile = os.path.join(TMP, f"usher-{name}.log")
        data_dir = os.path.join(TMP, "usher-data")   # one key for every instance
        os.makedirs(data_dir, exist_ok=True)
        shown = {
            "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
            "API_HOST": "127.0.0.1", "API_PORT": str(self.port),
            "SKIP_AUTH": "true", "RATE_LIMIT_MAX_REQUESTS": "0", "LOG_LEVEL": "warn",
            "MAX_VIEWERS_PER_STAGE": str(CAPACITY), "MAX_STAGES": str(max(BIG_STAGES + 1, 101)),
            "AUTO_SCALE_ENABLED": "false", "HEARTBEAT_CLEANUP_INTERVAL": "3600",
            "DATA_DIR": data_dir,
        }
        shown.update({k: str(v) for k, v in settings.items()})
        env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TZ") if k in os.environ}
        env.update(shown)
        self.settings = shown
        self.proc = spawn([USHER_BIN], env=env, logfile=self.logfile, shown_env=shown)
        self.pid = self.proc.pid
        self.started = time.time()
        self.conn = None
        self.last_use = 0.0
        deadline = time.time() + 15
        while True:
            try:
                st, _ = self.request("GET", "/health")
                if st == 200:
                    break
            except (OSError, http.client.HTTPException):
                self.conn = None
            if time.time() > deadline or self.proc.poll() is not None:
                raise SystemExit(f"usher did not become healthy (see {self.logfile})")
            time.sleep(0.05)

    def request(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        for attempt in (1, 2):
            # usher closes connections idle for 30 s; a request that could not
            # even be sent on such a one is sent again on a new connection
            if self.conn is None or time.time() - self.last_use > 20:
                if self.conn:
                    self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                self.last_use = time.time()
                break
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                raise
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = {"raw": raw.decode(errors="replace")}
        return resp.status, doc

    def must(self, method, path, body=None, ok=(200, 201)):
        st, doc = self.request(method, path, body)
        if st not in ok:
            raise SystemExit(f"{method} {path} answered {st}: {json.dumps(doc)[:300]}")
        return doc.get("data", {})

    def go_live(self):
        deadline = time.time() + 10
        while True:       # 503 until usher knows its master stage
            st, doc = self.request("POST", "/api/token/publisher", {"userId": "bench-publisher"})
            if st == 200:
                return doc["data"]["stageArn"]
            if time.time() > deadline:
                raise SystemExit(f"publisher token answered {st}: {doc}")
            time.sleep(0.1)

    def add_stages(self, total):
        have = self.must("GET", "/api/stage/list")["totalStages"]
        for i in range(have, total):
            self.must("POST", "/api/stage", {"name": f"bench-stage-{i + 1}"})
        arns = [s["stageArn"] for s in self.must("GET", "/api/stage/list")["stages"]]
        if len(arns) != total:
            raise SystemExit(f"wanted {total} stages, usher lists {len(arns)}")
        return arns

    def cpu(self):
        return proc_cpu(self.pid)

    def rss(self):
        return proc_status(self.pid, "VmRSS")

    def hwm(self):
        return proc_status(self.pid, "VmHWM")

    def stop(self):
        if self.conn:
            self.conn.close()
        stop(self.proc)


# ---- MONITOR probe ------------------------------------------------------------

MON_LINE = re.compile(r'^(\d+\.\d+) \[(\d+) ([^\]]+)\] (.*)$')
MON_ARG = re.compile(r'"((?:[^"\\]|\\.)*)"')


def unrepr(s):
    """Undoes Redis's sdscatrepr quoting of one MONITOR argument."""
    out, i = [], 0
    simple = {"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b", '"': '"', "\\": "\\"}
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            if n == "x" and i + 3 < len(s):
                out.append(chr(int(s[i + 2:i + 4], 16)))
                i += 4
                continue
            out.append(simple.get(n, n))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def probe(redis, fn, label):
    """Runs fn() (which makes HTTP requests and returns how many) with
    MONITOR on; returns what usher sent: top-level commands (argv lists)
    and the number of commands its scripts ran."""
    mon = Resp(redis.port)
    mon.sock.sendall(Resp.encode(["MONITOR"]))
    if mon.read() != "OK":
        raise SystemExit("MONITOR refused")
    t0 = time.time()
    n = fn()
    elapsed = time.time() - t0
    sentinel = f"bench-probe-end-{random.getrandbits(48)}"
    redis.r.call("ECHO", sentinel)
    top, inner = [], 0
    while True:
        line = mon.read()
        if not isinstance(line, str):
            continue
        if sentinel in line:
            break
        m = MON_LINE.match(line)
        if not m:
            continue
        addr, args = m.group(3), [unrepr(a) for a in MON_ARG.findall(m.group(4))]
        if addr == "lua":
            inner += 1
        elif addr != redis.r.addr:
            top.append(args)
    mon.close()
    # usher's own timers may fire meanwhile: the scaler's tick is a lease
    # call then a stats call; the sweeper's are sweep and stage_renew calls.
    own = {lua_sha(n) for n in ("lease", "sweep", "stage_renew")} - {None}
    stats_sha = lua_sha("stats")
    mine, bg, skip_view = [], [], 0
    for a in top:
        sha = a[1] if a[0].upper() == "EVALSHA" and len(a) > 1 else None
        if sha in own or a[0].upper() == "XADD":
            bg.append(a)
            skip_view += sha == lua_sha("lease")
        elif skip_view and sha == stats_sha:
            bg.append(a)
            skip_view -= 1
        else:
            mine.append(a)
    names = {}
    for a in mine:
        names[a[0].upper()] = names.get(a[0].upper(), 0) + 1
    return {"label": label, "requests": n, "top": mine, "background": len(bg), "inner": inner,
            "elapsed": elapsed, "top_per_req": len(mine) / n if n else 0,
            "inner_per_req": inner / n if n else 0,
            "names": {k: v / n for k, v in names.items()}}


def lua_sha(name):
    path = os.path.join(LUA_SRC, name + ".lua")
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return hashlib.sha1(f.read()).hexdigest()


def probe_text(p):
    names = ", ".join(f"{k} x{v:g}" for k, v in sorted(p["names"].items()))
    bg = f"; {p['background']} calls of usher's own timers left out" if p["background"] else ""
    return (f"{p['top_per_req']:g} top-level ({names or 'none'}{bg}), "
            f"{p['inner_per_req']:g} in-script")


# ---- measuring a window -----------------------------------------------------

INNER = set()


class Window:
    """Snapshots around a timed run: usher and Redis CPU, commandstats."""

    def __init__(self, usher, redis):
        self.u, self.rd = usher, redis

    def __enter__(self):
        self.cs0 = self.rd.r.cmdstats()
        self.t0 = time.time()
        self.ucpu0, self.rcpu0 = self.u.cpu(), proc_cpu(self.rd.proc.pid)
        self.busy0 = machine_busy()
        return self

    def __exit__(self, *exc):
        self.elapsed = time.time() - self.t0
        self.ucpu = self.u.cpu() - self.ucpu0
        self.rcpu = proc_cpu(self.rd.proc.pid) - self.rcpu0
        self.busy = machine_busy() - self.busy0
        cs1 = self.rd.r.cmdstats()
        self.top = self.inner = self.top_usec = 0
        self.by_cmd, self.top_cmds = {}, {}
        for name, (calls, usec) in cs1.items():
            c0, u0 = self.cs0.get(name, (0, 0))
            dc, du = calls - c0, usec - u0
            if dc <= 0 or name == "info":
                continue
            self.by_cmd[name] = dc
            if name in INNER:
                self.inner += dc
            else:
                self.top_cmds[name] = dc
                self.top += dc
                self.top_usec += du
        return False


def background(usher, redis, seconds=2.0):
    """Top-level Redis commands per second usher sends on its own (scaler
    lease and view, sweeper) while no request comes in; windows of
    `seconds` until two agree (new stages first get their replication
    started, which settles)."""
    rates = []
    while True:
        with Window(usher, redis) as w:
            time.sleep(seconds)
        rates.append(w.top / w.elapsed)
        if len(rates) >= 15 or (len(rates) >= 2 and abs(rates[-1] - rates[-2]) <= max(1.0, 0.2 * rates[-2])):
            break
    return {"per_s": rates[-1], "cmds": w.top_cmds, "usher_cpu_pct": 100 * w.ucpu / w.elapsed,
            "settle_s": seconds * (len(rates) - 1), "window_s": w.elapsed}


BG = {"per_s": 0.0}


def wait_quiet():
    """Other sessions may share this machine: wait up to BENCH_QUIET_WAIT s
    for a second in which under 15 % of one core is busy, and say so."""
    limit = env_num("BENCH_QUIET_WAIT", 120)
    t_end = time.time() + limit
    while True:
        b0 = machine_busy()
        time.sleep(1)
        busy = 100 * (machine_busy() - b0)
        if busy < 15 or time.time() >= t_end:
            log(f"machine before the run: {busy:.0f} % of one core busy with other processes"
                + ("" if busy < 15 else f" (waited {limit} s for less than 15 %)"))
            return busy
        log(f"waiting for a quiet machine: {busy:.0f} % of one core busy with other processes")


def parse_wrk(out):
    for line in out.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON "):])
    raise SystemExit("wrk printed no result:\n" + out)


def wrk(usher, script, path, seconds, extra_env=None):
    env = dict(os.environ)
    shown = {"BENCH_LUA_DIR": BENCH_DIR}
    shown.update(extra_env or {})
    env.update(shown)
    cmd = ["wrk", f"-t{WRK_THREADS}", f"-c{CONNS}", f"-d{seconds}s", "--latency",
           "-s", os.path.join(BENCH_DIR, script), f"http://127.0.0.1:{usher.port}{path}"]
    out, rc, cpu = run_measured(cmd, env=env, shown_env=shown)
    if rc != 0:
        raise SystemExit(f"wrk failed ({rc}):\n{out}")
    res = parse_wrk(out)
    res["wrk_cpu"] = cpu
    return res


def profile(usher, script, path, extra_env, out):
    """A separate run after the timed one (perf slows usher down): wrk for
    PROFILE_SECONDS + 2 s, perf record -p usher for PROFILE_SECONDS."""
    env = dict(os.environ, BENCH_LUA_DIR=BENCH_DIR, **(extra_env or {}))
    cmd = ["wrk", f"-t{WRK_THREADS}", f"-c{CONNS}", f"-d{PROFILE_SECONDS + 2}s",
           "-s", os.path.join(BENCH_DIR, script), f"http://127.0.0.1:{usher.port}{path}"]
    load = spawn(cmd, env=env, shown_env={"BENCH_LUA_DIR": BENCH_DIR, **(extra_env or {})})
    time.sleep(1)
    pcmd = ["perf", "record", "-e", "cpu-clock", "-F", "499", "--call-graph", "dwarf,16384",
            "-o", out, "-p", str(usher.pid), "--", "sleep", str(PROFILE_SECONDS)]
    run_measured(pcmd)
    load.wait()
    CHILDREN.remove(load)


DISTURBED = 25      # % of one core other processes may take before a run is repeated


def scenario(name, usher, redis, script, path, extra_env=None, profile_to=None, **kw):
    """scenario_once; repeated (twice at most) when other processes took
    more than DISTURBED % of one core meanwhile. Profiles after the last."""
    for attempt in range(3):
        r = scenario_once(name, usher, redis, script, path, extra_env, **kw)
        r["attempts"] = attempt + 1
        if r["other_cpu_pct"] <= DISTURBED:
            break
        log(f"{name}: other processes took {r['other_cpu_pct']:.0f} % of one core meanwhile"
            + ("; running it again" if attempt < 2 else "; keeping this run"))
    if profile_to:
        profile(usher, script, path, extra_env, profile_to)
    return r


def scenario_once(name, usher, redis, script, path, extra_env=None,
                  warm_env=None, before=None, steady=False, drain=0):
    """Waits until usher is idle (its signer threads compute nonces ahead
    after start and after joins, which would be counted against the next
    run), warm-up, then the timed wrk run inside a Window. `before` runs
    between the two (for snapshots the warm-up must not disturb). With
    `steady`, the warm-up goes on in WARMUP-second rounds until two rounds
    in a row agree within 10 % (joins: until the nonce pool is used up, so
    that the timed run measures the sustained rate): `drain` joins first,
    the size of usher's nonce pool, and only rounds after those count."""
    idle = wait_idle(usher)
    log(f"{name}: usher idle after {idle:.0f}s; warm-up {WARMUP}s{' rounds until steady' if steady else ''}, "
        f"then {SECONDS}s with wrk -c{CONNS}")
    rounds, joins, after = [], 0, []
    if WARMUP > 0:
        while True:
            drained = joins >= drain
            env = dict(warm_env or extra_env or {})
            if "BENCH_RUN" in env:      # new users in every round
                env["BENCH_RUN"] += f"w{len(rounds)}"
            wr = wrk(usher, script, path, WARMUP, env)
            rounds.append(wr["requests"] / (wr["duration_us"] / 1e6))
            joins += wr.get("joins", wr["requests"])
            if drained:
                after.append(rounds[-1])
            if not steady or len(rounds) >= 40 or (
                    len(after) >= 2 and abs(after[-1] - after[-2]) <= 0.1 * after[-2]):
                break
        if steady:
            log(f"{name}: warm-up rounds, req/s: {', '.join(f'{x:.0f}' for x in rounds)} ({joins} joins)")
    time.sleep(0.3)              # let the warm-up's last answers drain
    if before:
        before()
    with Window(usher, redis) as w:
        res = wrk(usher, script, path, SECONDS, extra_env)
        time.sleep(0.3)          # requests in flight when wrk stopped still reach Redis
    n = res["requests"]
    dur = res["duration_us"] / 1e6
    non2xx = res.get("non2xx", res["status_errors"])
    errors = res["connect_errors"] + res["read_errors"] + res["write_errors"] + res["timeouts"]
    r = {
        "name": name, "requests": n, "rps": n / dur, "p50_ms": res["lat_p50_us"] / 1000,
        "p99_ms": res["lat_p99_us"] / 1000, "max_ms": res["lat_max_us"] / 1000,
        "non2xx": non2xx, "socket_errors": errors,
        "usher_cpu_us": w.ucpu * 1e6 / n if n else 0,
        "redis_cpu_us": w.rcpu * 1e6 / n if n else 0,
        "rt_raw": w.top / n if n else 0, "inner_per_req": w.inner / n if n else 0,
        # minus what usher sends on its own meanwhile (scaler, sweeper; measured idle)
        "bg": BG["per_s"] * w.elapsed,
        "rt_per_req": max(0.0, w.top - BG["per_s"] * w.elapsed) / n if n else 0,
        "redis_us_per_req": w.top_usec / n if n else 0,
        "top": w.top, "inner": w.inner,
        "usher_cpu_pct": 100 * w.ucpu / dur, "redis_cpu_pct": 100 * w.rcpu / dur,
        "wrk_cpu_pct": 100 * res["wrk_cpu"] / dur,
        # everything else that ran on the machine meanwhile (this harness included)
        "other_cpu_pct": 100 * max(0.0, w.busy - w.ucpu - w.rcpu - res["wrk_cpu"]) / dur,
        "rss": usher.rss(), "by_cmd": w.by_cmd, "wrk": res, "idle_wait_s": idle,
        "warmup_rps": rounds,
    }
    log(f"{name}: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
        f"non-2xx {non2xx}, usher {r['usher_cpu_us']:.1f} us CPU/req, "
        f"{r['rt_per_req']:.3f} round trips/req")
    return r


# ---- references ---------------------------------------------------------------

def redis_benchmark(redis, argv, label):
    """redis-benchmark -c CONNS running argv; sized to about REF_SECONDS."""
    def run(n):
        cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(redis.port), "-c", str(CONNS),
               "-n", str(n), "--csv"] + [str(a) for a in argv]
        out, rc, cpu = run_measured(cmd)
        rows = [l for l in out.splitlines() if l.startswith('"') and not l.startswith('"test"')]
        if rc != 0 or not rows:
            raise SystemExit(f"redis-benchmark failed:\n{out}")
        f = next(iter(__import__("csv").reader([rows[-1]])))
        return {"rps": float(f[1]), "avg_ms": float(f[2]), "p50_ms": float(f[4]),
                "p99_ms": float(f[6]), "max_ms": float(f[7]), "n": n, "cpu": cpu}
    calib = run(2000)
    n = int(min(max(calib["rps"] * REF_SECONDS, 2000), 5_000_000))
    for attempt in range(3):
        rcpu0, b0, t0 = proc_cpu(redis.proc.pid), machine_busy(), time.time()
        res = run(n)
        rcpu = proc_cpu(redis.proc.pid) - rcpu0
        res["redis_cpu_us"] = rcpu * 1e6 / n
        res["other_cpu_pct"] = 100 * max(0.0, machine_busy() - b0 - rcpu - res["cpu"]) / (time.time() - t0)
        if res["other_cpu_pct"] <= DISTURBED:
            break
        log(f"reference {label}: other processes took {res['other_cpu_pct']:.0f} % of one core meanwhile"
            + ("; running it again" if attempt < 2 else "; keeping this run"))
    res["label"] = label
    log(f"reference {label}: redis-benchmark {res['rps']:.0f} req/s, p50 {res['p50_ms']:.2f} ms, "
        f"p99 {res['p99_ms']:.2f} ms (other processes meanwhile: {res['other_cpu_pct']:.0f} % of one core)")
    return res


def openssl_speed():
    for attempt in range(3):
        r = openssl_speed_once()
        if r["other_cpu_pct"] <= DISTURBED:
            return r
        log("openssl speed: disturbed by other processes" + ("; running it again" if attempt < 2 else ""))
    return r


def openssl_speed_once():
    cmd = ["openssl", "speed", "-seconds", str(OPENSSL_SECONDS), "-multi", str(NPROC), "ecdsap384"]
    log(f"reference: {' '.join(cmd)}")
    b0, t0 = machine_busy(), time.time()
    out, rc, cpu = run_measured(cmd)
    other = 100 * max(0.0, machine_busy() - b0 - cpu) / (time.time() - t0)
    m = re.search(r"384 bits ecdsa \(nistp384\)\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)", out)
    if rc != 0 or not m:
        raise SystemExit(f"openssl speed failed:\n{out}")
    sign = float(m.group(1))
    log(f"reference: {sign:.1f} ES384 signatures/s on {NPROC} processes "
        f"(other processes meanwhile: {other:.0f} % of one core)")
    return {"sign": sign, "verify": float(m.group(2)), "other_cpu_pct": other}


def script_check(redis, name, sha):
    """SCRIPT LOADs src/store/lua/<name>.lua; does usher run that text?"""
    with open(os.path.join(LUA_SRC, name + ".lua"), "rb") as f:
        text = f.read()
    loaded = redis.r.call("SCRIPT", "LOAD", text)
    return {"script": name, "sha": loaded, "usher_sha": sha, "same": loaded == sha}


# ---- seeding through seat.lua -------------------------------------------------

class SeatCall:
    """The EVALSHA argv usher sent for one join (from a MONITOR probe), with
    the positions of the user id, participant id and time stamp, so that
    viewers can be seated with exactly usher's script and arguments."""

    def __init__(self, argv, user, pid, now_ms):
        self.argv = argv
        self.i_user = argv.index(user)
        self.i_pid = argv.index(pid)
        self.i_now = next(i for i, a in enumerate(argv)
                          if re.fullmatch(r"\d{13}", a) and abs(int(a) - now_ms) < 120000)
        self.pid_len = len(pid)
        self.pid_alphabet = "0123456789abcdef" if re.fullmatch(r"[0-9a-f]+", pid) else \
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

    def make(self, user, now_ms):
        a = list(self.argv)
        a[self.i_user] = user
        a[self.i_pid] = "".join(random.choice(self.pid_alphabet) for _ in range(self.pid_len))
        a[self.i_now] = str(now_ms)
        return a


def seat_call(usher, redis, user):
    got = {}

    def join():
        got["now"] = int(time.time() * 1000)
        got["data"] = usher.must("POST", "/api/token/viewer", {"userId": user})
        return 1
    p = probe(redis, join, "join")
    evals = [a for a in p["top"] if a[0].upper() == "EVALSHA" and user in a]
    if len(evals) != 1:
        raise SystemExit(f"could not catch usher's seat call: {p['top']}")
    return SeatCall(evals[0], user, got["data"]["participantId"], got["now"]), p, got["data"]


def seed(redis, call, count, prefix, now_ms, batch=2000):
    """Seats `count` new viewers with usher's own seat.lua call, pipelined."""
    done, t0 = 0, time.time()
    while done < count:
        k = min(batch, count - done)
        replies = redis.r.pipeline([call.make(f"{prefix}{done + i}", now_ms) for i in range(k)])
        bad = [r for r in replies if isinstance(r, RespError)]
        if bad:
            raise SystemExit(f"seeding failed: {bad[0]}")
        done += k
    return time.time() - t0


# ---- the burst ----------------------------------------------------------------

def wait_idle(usher, limit=60):
    """Until usher uses under 5 % of a core for a second (work it does ahead
    of demand, if any, is done by then); returns the seconds waited."""
    t0 = time.time()
    while time.time() - t0 < limit:
        c0 = usher.cpu()
        time.sleep(1)
        if usher.cpu() - c0 < 0.05:
            break
    return time.time() - t0


async def burst_client(port, n, window_s, before_fire=None, at_fire=None, at_end=None):
    """n connections opened beforehand; request i is written at
    t0 + i * window_s / n whatever came back so far (open loop); latency is
    taken from that scheduled time to the end of the answer."""
    sem = asyncio.Semaphore(200)

    async def opener():
        async with sem:
            for attempt in range(50):
                try:
                    return await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    await asyncio.sleep(0.05)
            raise SystemExit("burst: cannot connect")
    conns = await asyncio.gather(*[opener() for _ in range(n)])
    loop = asyncio.get_running_loop()
    tag = f"burst-{random.getrandbits(32):08x}"
    reqs = []
    for i in range(n):
        body = json.dumps({"userId": f"{tag}-{i}"}).encode()
        reqs.append(b"POST /api/token/viewer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    results = [None] * n

    async def reader(i):
        r = conns[i][0]
        try:
            head = await r.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            await r.readexactly(int(m.group(1)) if m else 0)
            results[i] = (status, loop.time())
        except (asyncio.IncompleteReadError, OSError, ValueError):
            results[i] = (0, loop.time())
    readers = [asyncio.create_task(reader(i)) for i in range(n)]
    await asyncio.sleep(0.3)
    waited = before_fire() if before_fire else 0
    if at_fire:
        at_fire()
    t0 = loop.time() + 0.2
    sched = [t0 + i * window_s / n for i in range(n)]
    sent = [0.0] * n
    i = 0
    while i < n:
        now = loop.time()
        while i < n and sched[i] <= now:
            conns[i][1].write(reqs[i])
            sent[i] = loop.time()
            i += 1
        if i < n:
            await asyncio.sleep(max(0.0, min(sched[i] - loop.time(), 0.002)))
    last_sent = loop.time()
    try:
        await asyncio.wait_for(asyncio.gather(*readers), timeout=120)
    except asyncio.TimeoutError:
        pass
    if at_end:
        at_end()
    for _, w in conns:
        w.close()
    ok = [k for k in range(n) if results[k] and 200 <= results[k][0] < 300]
    lat = sorted(results[k][1] - sched[k] for k in range(n) if results[k] and results[k][0])
    statuses = {}
    for k in range(n):
        s = results[k][0] if results[k] else None
        statuses[s] = statuses.get(s, 0) + 1

    def pct(q):
        return lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")
    answered_at = max((results[k][1] for k in range(n) if results[k]), default=t0)
    # latency by order of sending: tenths of the burst (min / median / max, ms)
    deciles = []
    for d in range(10):
        part = sorted(results[k][1] - sched[k] for k in range(d * n // 10, (d + 1) * n // 10)
                      if results[k] and results[k][0])
        if part:
            deciles.append([round(part[0] * 1000), round(part[len(part) // 2] * 1000), round(part[-1] * 1000)])
    return {"n": n, "ok": len(ok), "statuses": statuses, "idle_wait_s": waited,
            "send_window_s": last_sent - t0, "send_lag_max_ms": max(s - c for s, c in zip(sent, sched)) * 1000,
            "p50_ms": pct(0.50) * 1000, "p99_ms": pct(0.99) * 1000, "max_ms": (lat[-1] if lat else 0) * 1000,
            "last_answer_s": answered_at - t0, "lat_by_decile": deciles}


# ---- phases -------------------------------------------------------------------

def repeat(n, fn):
    for _ in range(n):
        fn()
    return n


def phase_main(R):
    """Throughput scenarios, references, then 100 stages / 100,000 viewers."""
    redis = Redis("redis-main")
    usher = Usher(redis, "main")
    R["versions"]["usher"] = usher.must("GET", "/health").get("version", "?")
    usher.go_live()
    arns = usher.add_stages(SMALL_STAGES)
    log(f"main: usher pid {usher.pid} on :{usher.port}, redis :{redis.port}, {len(arns)} stages")

    seated = []
    for i in range(SMALL_VIEWERS):
        d = usher.must("POST", "/api/token/viewer", {"userId": f"viewer-{i}"})
        seated.append((f"viewer-{i}", d["stageArn"]))
    users_file = os.path.join(TMP, "seated-users.tsv")
    with open(users_file, "w") as f:
        f.writelines(f"{u}\t{a}\n" for u, a in seated)
    tv = redis.get_int(PREFIX + "total_viewers")
    log(f"main: {tv} viewers seated by HTTP joins in {SMALL_STAGES} stages")
    BG.update(background(usher, redis))
    R["background"] = {"small": dict(BG)}
    log(f"main: idle usher sends {BG['per_s']:.1f} Redis commands/s on its own ({BG['cmds']})")

    # ---- GET /health
    p = probe(redis, lambda: repeat(10, lambda: usher.must("GET", "/health")), "health")
    R["probes"]["health"] = p
    R["scen"]["health"] = scenario("GET /health", usher, redis, "get.lua", "/health")
    R["refs"]["health"] = redis_benchmark(redis, ["PING"], "PING")

    # ---- GET /api/stats, 5 stages / 200 viewers
    p = probe(redis, lambda: repeat(10, lambda: usher.must("GET", "/api/stats")), "stats")
    R["probes"]["stats"] = p
    stats_call = next(a for a in p["top"] if a[0].upper() == "EVALSHA")
    R["checks"].append(script_check(redis, "stats", stats_call[1]))
    prof = os.path.join(TMP, "perf-stats-small.data") if PROFILE_ON else None
    R["scen"]["stats_small"] = scenario(f"GET /api/stats ({SMALL_STAGES} stages, {tv} viewers)",
                                        usher, redis, "get.lua", "/api/stats", profile_to=prof)
    R["scen"]["stats_small"]["stages"], R["scen"]["stats_small"]["viewers"] = SMALL_STAGES, tv
    R["refs"]["stats_small"] = redis_benchmark(redis, stats_call, f"stats.lua, {SMALL_STAGES} stages")
    R["profiles"]["stats_small"] = prof

    # ---- POST /api/viewer/heartbeat
    def beats():
        for u, a in seated[:10]:
            usher.must("POST", "/api/viewer/heartbeat", {"userId": u, "stageArn": a})
        return 10
    p = probe(redis, beats, "heartbeat")
    R["probes"]["heartbeat"] = p
    hb_call = next(a for a in p["top"] if a[0].upper() == "EVALSHA")
    R["checks"].append(script_check(redis, "heartbeat", hb_call[1]))
    prof = os.path.join(TMP, "perf-heartbeat.data") if PROFILE_ON else None
    R["scen"]["heartbeat"] = scenario("POST /api/viewer/heartbeat", usher, redis, "heartbeat.lua",
                                      "/api/viewer/heartbeat", {"BENCH_USERS": users_file},
                                      profile_to=prof)
    R["refs"]["heartbeat"] = redis_benchmark(redis, hb_call, "heartbeat.lua")
    R["profiles"]["heartbeat"] = prof

    # ---- signing reference, joins, join-leave
    R["refs"]["openssl_before"] = openssl_speed()
    call, p, _ = seat_call(usher, redis, "probe-join-1")
    R["probes"]["join"] = p
    R["checks"].append(script_check(redis, "seat", call.argv[1]))
    snap = {}

    def join_snapshot():        # after the warm-up, which seats viewers too
        snap["mem"], snap["tv"] = redis.used_memory(), redis.get_int(PREFIX + "total_viewers")
    run = f"join{random.getrandbits(24):06x}"
    R["scen"]["join"] = scenario("POST /api/token/viewer (new users)", usher, redis, "join.lua",
                                 "/api/token/viewer", {"BENCH_RUN": run},
                                 before=join_snapshot, steady=True, drain=POOL,
                                 profile_to=os.path.join(TMP, "perf-join.data") if PROFILE_ON else None)
    R["profiles"]["join"] = os.path.join(TMP, "perf-join.data") if PROFILE_ON else None
    mem0, tv0 = snap["mem"], snap["tv"]
    mem1, tv1 = redis.used_memory(), redis.get_int(PREFIX + "total_viewers")
    R["mem"]["http_joins"] = {"viewers": tv1 - tv0, "bytes": mem1 - mem0,
                              "per_viewer": (mem1 - mem0) / max(1, tv1 - tv0)}

    def cycle():
        d = usher.must("POST", "/api/token/viewer", {"userId": "probe-cycle-1"})
        usher.must("POST", "/api/viewer/leave", {"userId": "probe-cycle-1", "stageArn": d["stageArn"]})
        return 2
    R["probes"]["joinleave"] = probe(redis, cycle, "join+leave")
    R["refs"]["openssl_after"] = None   # set below, after the join-then-leave run
    R["scen"]["joinleave"] = scenario("join, then leave (POST token/viewer + viewer/leave)", usher, redis,
                                      "joinleave.lua", "/api/token/viewer",
                                      {"BENCH_RUN": f"cycle{random.getrandbits(24):06x}"}, steady=True,
                                      drain=POOL)
    wait_idle(usher)
    R["refs"]["openssl_after"] = openssl_speed()
    ob, oa = R["refs"]["openssl_before"], R["refs"]["openssl_after"]
    R["refs"]["openssl"] = {"sign": (ob["sign"] + oa["sign"]) / 2, "verify": (ob["verify"] + oa["verify"]) / 2,
                            "before": ob["sign"], "after": oa["sign"],
                            "other": (ob["other_cpu_pct"], oa["other_cpu_pct"])}

    # ---- 100 stages, 100,000 viewers
    arns = usher.add_stages(BIG_STAGES)
    call, _, _ = seat_call(usher, redis, "probe-join-2")
    have = redis.get_int(PREFIX + "total_viewers")
    need = BIG_VIEWERS - have
    mem0 = redis.used_memory()
    cs0 = redis.r.cmdstats()
    log(f"big: {len(arns)} stages; seating {need} more viewers with usher's seat.lua call "
        f"(EVALSHA, pipelined) to reach {BIG_VIEWERS}")
    took = seed(redis, call, need, f"seed-{random.getrandbits(24):06x}-", int(time.time() * 1000)) if need > 0 else 0
    cs1 = redis.r.cmdstats()
    mem1 = redis.used_memory()
    tv = redis.get_int(PREFIX + "total_viewers")
    hl = sum(redis.r.pipeline([["HLEN", f"{PREFIX}viewer:heartbeat:{a}"] for a in arns]))
    seat_calls = cs1["evalsha"][0] - cs0["evalsha"][0]
    parts = {}
    for kind, key in (("heartbeat hash", f"{PREFIX}viewer:heartbeat:{arns[-1]}"),
                      ("expiry zset", f"{PREFIX}viewer:expiry:{arns[-1]}")):
        size = redis.r.call("MEMORY", "USAGE", key, "SAMPLES", "0")
        entries = redis.r.call("HLEN" if "hash" in kind else "ZCARD", key)
        enc = redis.r.call("OBJECT", "ENCODING", key)
        parts[kind] = {"bytes": size, "entries": entries, "per_entry": size / max(1, entries), "encoding": enc}
    sample = redis.r.call("HRANDFIELD", f"{PREFIX}viewer:heartbeat:{arns[-1]}", "1", "WITHVALUES")
    R["mem"]["seeded"] = {"viewers": need, "bytes": mem1 - mem0,
                          "per_viewer": (mem1 - mem0) / need if need > 0 else R["mem"]["http_joins"]["per_viewer"],
                          "seconds": took, "total_viewers": tv, "hlen_sum": hl,
                          "seat_us": (cs1["evalsha"][1] - cs0["evalsha"][1]) / max(1, seat_calls),
                          "used_memory": mem1, "parts": parts, "sample": sample}
    log(f"big: {tv} seated (sum of HLEN {hl}) in {took:.1f}s; seat.lua at {len(arns)} stages "
        f"{R['mem']['seeded']['seat_us']:.0f} us in Redis per call")
    BG.update(background(usher, redis))
    R["background"]["big"] = dict(BG)
    log(f"big: idle usher sends {BG['per_s']:.1f} Redis commands/s on its own ({BG['cmds']})")
    p = probe(redis, lambda: repeat(10, lambda: usher.must("GET", "/api/stats")), "stats-big")
    R["probes"]["stats_big"] = p
    stats_call = next(a for a in p["top"] if a[0].upper() == "EVALSHA")
    prof = os.path.join(TMP, "perf-stats-big.data") if PROFILE_ON else None
    R["scen"]["stats_big"] = scenario(f"GET /api/stats ({len(arns)} stages, {tv} viewers)",
                                      usher, redis, "get.lua", "/api/stats", profile_to=prof)
    R["profiles"]["stats_big"] = prof
    R["scen"]["stats_big"]["stages"], R["scen"]["stats_big"]["viewers"] = len(arns), tv
    R["refs"]["stats_big"] = redis_benchmark(redis, stats_call, f"stats.lua, {len(arns)} stages")
    R["mem"]["usher_rss_big"] = usher.rss()
    R["mem"]["usher_hwm"] = usher.hwm()
    R["mem"]["redis_used_memory"] = redis.used_memory()
    usher.stop()
    redis.stop()


def phase_burst(R):
    """BURST joins written within one second to an idle usher; then, when
    usher has a nonce pool, the same against a usher started with
    SIGNER_PRECOMPUTE=0 (what a burst meets once the pool is used up)."""
    redis = Redis("redis-burst")
    R["burst"] = burst_once(redis, "burst", {})
    if POOL > 0:
        R["burst_nopool"] = burst_once(redis, "burst-nopool", {"SIGNER_PRECOMPUTE": 0})
    redis.stop()


def burst_once(redis, name, settings):
    usher = Usher(redis, name, **settings)
    usher.go_live()
    usher.add_stages(SMALL_STAGES)
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    n = min(BURST, nofile - 500)
    log(f"{name}: opening {n} connections, then {n} joins (new users) written within 1 s"
        + (f" ({', '.join(f'{k}={v}' for k, v in settings.items())})" if settings else ""))
    snap = {}

    def cpus():
        me = resource.getrusage(resource.RUSAGE_SELF)
        return (time.time(), machine_busy(), usher.cpu(), proc_cpu(redis.proc.pid), me.ru_utime + me.ru_stime)

    def fire():
        snap["cs0"], snap["rss0"], snap["c0"] = redis.r.cmdstats(), usher.rss(), cpus()

    def end():
        snap["c1"], snap["cs1"] = cpus(), redis.r.cmdstats()
    res = asyncio.run(burst_client(usher.port, n, 1.0, lambda: wait_idle(usher), fire, end))
    d = [b - a for a, b in zip(snap["c0"], snap["c1"])]
    snap["cpu0"], snap["cpu1"] = snap["c0"][2], snap["c1"][2]
    # CPU % of one core over the burst: usher, redis, this client, everything else
    res["cpu_split"] = [100 * x / d[0] for x in (d[2], d[3], d[4], max(0.0, d[1] - d[2] - d[3] - d[4]))]
    cs0, cs1 = snap["cs0"], snap["cs1"]
    res["usher_cpu_us"] = (snap["cpu1"] - snap["cpu0"]) * 1e6 / max(1, res["ok"])
    res["evalsha"] = cs1["evalsha"][0] - cs0.get("evalsha", (0, 0))[0]
    res["rss"], res["rss_before"] = usher.hwm(), snap["rss0"]
    res["wanted"], res["settings"] = BURST, settings
    usher.stop()
    res["log"] = log_summary(usher.logfile)
    log(f"{name}: {res['ok']}/{n} answered 2xx, sent within {res['send_window_s']:.3f}s, "
        f"p50 {res['p50_ms']:.0f} ms, p99 {res['p99_ms']:.0f} ms, max {res['max_ms']:.0f} ms, "
        f"last answer at {res['last_answer_s']:.2f}s")
    if res["log"]:
        log(f"{name}: usher log: " + "; ".join(f"{n} x {m}" for m, n in res["log"]))
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


def wait_for_call(redis, sha, timeout):
    """Waits (MONITOR) until usher sends EVALSHA <sha>; False on timeout."""
    mon = Resp(redis.port)
    mon.sock.settimeout(timeout)
    mon.sock.sendall(Resp.encode(["MONITOR"]))
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            line = mon.read()
            if isinstance(line, str) and sha and sha in line:
                return True
    except (OSError, socket.timeout):
        pass
    finally:
        mon.close()
    return False


def phase_sweep(R):
    """50,000 viewers whose last heartbeat is 2 x HEARTBEAT_TIMEOUT old
    appear at once (one MULTI/EXEC of usher's own seat call) in front of an
    idle usher sweeping every SWEEP_INTERVAL s; every command Redis runs
    meanwhile goes to the SLOWLOG (threshold 0), so each sweep call's time
    is known; LATENCY LATEST keeps what took >= 5 ms."""
    redis = Redis("redis-sweep")
    usher = Usher(redis, "sweep", HEARTBEAT_CLEANUP_INTERVAL=SWEEP_INTERVAL,
                  HEARTBEAT_TIMEOUT=SWEEP_TIMEOUT, LOG_LEVEL="info")
    usher.go_live()
    arns = usher.add_stages(SMALL_STAGES)
    call, _, d = seat_call(usher, redis, "probe-join-3")
    usher.must("POST", "/api/viewer/leave", {"userId": "probe-join-3", "stageArn": d["stageArn"]})
    idle = wait_idle(usher)
    old = int(time.time() * 1000) - 2 * SWEEP_TIMEOUT * 1000
    log(f"sweep: usher idle after {idle:.0f}s; {SWEEP_N} viewers with heartbeats {2 * SWEEP_TIMEOUT}s old "
        f"appear at once (MULTI, {SWEEP_N} x usher's seat.lua call, EXEC)")
    tag = f"silent-{random.getrandbits(24):06x}-"
    cmds = [["MULTI"]] + [call.make(f"{tag}{i}", old) for i in range(SWEEP_N)] + [["EXEC"]]
    # right after one of usher's (empty) sweeps, so that the next one comes
    # after the viewers are all there and after the SLOWLOG is set up
    tick = wait_for_call(redis, lua_sha("sweep"), 3 * SWEEP_INTERVAL)
    replies = redis.r.pipeline(cmds)
    t_seeded = time.time()
    for cmd in (["CONFIG", "SET", "slowlog-log-slower-than", "0"],
                ["CONFIG", "SET", "slowlog-max-len", "100000"],
                ["CONFIG", "SET", "latency-monitor-threshold", "5"],
                ["SLOWLOG", "RESET"], ["LATENCY", "RESET"]):
        redis.r.call(*cmd)
        record(["redis-cli", "-p", str(redis.port)] + cmd)
    seated = [r for r in replies[-1] or [] if isinstance(r, list)]
    if len(seated) != SWEEP_N:
        raise SystemExit(f"sweep: seeding failed ({len(seated)} seated): "
                         f"{[r for r in replies[-1] or [None] if not isinstance(r, list)][:1]}")
    tv = SWEEP_N
    t_first = t_zero = None
    deadline = t_seeded + 3 * SWEEP_INTERVAL + 10
    while time.time() < deadline:
        v = redis.get_int(PREFIX + "total_viewers")
        now = time.time()
        if t_first is None and v < tv:
            t_first = now
        if v == 0:
            t_zero = now
            break
        time.sleep(0.005)
    time.sleep(0.3)
    slow = redis.r.call("SLOWLOG", "GET", "-1")
    latest = redis.r.call("LATENCY", "LATEST")
    left = redis.get_int(PREFIX + "total_viewers")
    sweep_sha = lua_sha("sweep")
    calls = sorted((e[2] for e in slow if len(e[3]) > 1 and e[3][0].upper() == "EVALSHA"
                    and e[3][1] == sweep_sha), reverse=True)
    # the harness's own commands (its connection is named bench-harness) are left out
    others = sorted(({"us": e[2], "cmd": " ".join(str(x) for x in e[3][:3])[:70]} for e in slow
                     if not (len(e[3]) > 1 and e[3][1] == sweep_sha)
                     and not (len(e) > 5 and e[5] == "bench-harness")), key=lambda e: -e["us"])
    with open(usher.logfile, errors="replace") as f:
        sweep_lines = [l.strip() for l in f if "sweep:" in l]
    R["sweep"] = {
        "seeded": tv, "left": left, "idle_wait_s": idle, "tick_seen": tick,
        "t_first_s": (t_first - t_seeded) if t_first else None,
        "duration_s": (t_zero - t_first) if t_zero and t_first else None,
        "calls": len(calls), "max_us": calls[0] if calls else 0,
        "median_us": calls[len(calls) // 2] if calls else 0, "sum_us": sum(calls),
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


# ---- report -------------------------------------------------------------------

def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = proc_meminfo("MemTotal")

    def ver(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"
    git = ver(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "src"],
                           capture_output=True, text=True).stdout.strip()
    return {"nproc": NPROC, "cpu": model, "kernel": platform.release(), "mem_gb": mem / 2**30,
            "redis": ver(["redis-server", "--version"]), "openssl": ver(["openssl", "version"]),
            "wrk": ver(["sh", "-c", "wrk -v 2>&1"]), "python": platform.python_version(),
            "git": git + (" + uncommitted changes in src/" if dirty else "")}


def proc_meminfo(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def mb(b):
    return f"{b / 2**20:.1f} MB"


def verdict(ok):
    return "met" if ok else "**missed**"


SHORT = {"health": "health", "stats_small": f"stats {SMALL_STAGES} stages", "stats_big": f"stats {BIG_STAGES} stages",
         "heartbeat": "heartbeat", "join": "join", "joinleave": "join+leave"}


def render(R):
    S, F = R["scen"], R["refs"]
    m = R["machine"]
    out = []
    w = out.append
    w(f"Run of {R['date']}, {R['elapsed_s']:.0f} s in all. Machine: {m['nproc']} cores "
      f"({m['cpu']}), {m['mem_gb']:.1f} GB, Linux {m['kernel']}; {m['redis']}; {m['openssl']}; "
      f"{m['wrk']}; Python {m['python']}; usher {R['versions'].get('usher', '?')} at {m['git']}. "
      f"Load generator, usher and Redis share these {m['nproc']} cores.")
    w("")
    w(f"Each scenario: {WARMUP} s warm-up, then {SECONDS} s of `wrk -t{WRK_THREADS} -c{CONNS} --latency`. "
      f"References run against the same Redis in the same run: `redis-benchmark -c {CONNS}` with the "
      f"EVALSHA call usher itself sent (caught with MONITOR), and `openssl speed -seconds "
      f"{OPENSSL_SECONDS} -multi {NPROC} ecdsap384`, run before the join runs and again after them: "
      f"{F['openssl']['before']:.1f} and {F['openssl']['after']:.1f} ES384 signatures/s (other processes "
      f"meanwhile {F['openssl']['other'][0]:.0f} % and {F['openssl']['other'][1]:.0f} % of one core), mean "
      f"{F['openssl']['sign']:.1f} (the reference for joins).")
    w("")
    w("| scenario | req/s | p50 ms | p99 ms | max ms | non-2xx | usher CPU µs/req | Redis round trips/req "
      "| in-script Redis cmds/req | Redis µs/req | usher RSS | reference | ref req/s (p50/p99 ms) | req/s ÷ ref |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    rows = [("health", "health", "redis-benchmark PING"),
            ("stats_small", "stats_small", "redis-benchmark EVALSHA stats.lua"),
            ("stats_big", "stats_big", "redis-benchmark EVALSHA stats.lua"),
            ("heartbeat", "heartbeat", "redis-benchmark EVALSHA heartbeat.lua"),
            ("join", "openssl", f"openssl speed -multi {NPROC} ecdsap384 (sign/s)"),
            ("joinleave", "openssl", "same, per join (cycles/s = req/s ÷ 2)")]
    for key, ref, refname in rows:
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
    w("Each usher figure as a ratio to its reference (usher ÷ reference; for req/s higher is better, "
      "for the others lower is better). Redis CPU µs/call is redis-server's own CPU time per request, "
      "from /proc, while usher drove it and while redis-benchmark did; for joins the reference CPU is "
      f"{NPROC} cores ÷ the openssl sign rate.")
    w("")
    w("| scenario | req/s usher / ref = ratio | p50 ms usher / ref = ratio | p99 ms usher / ref = ratio "
      "| CPU µs per request usher / ref = ratio |")
    w("|---|---|---|---|---|")
    sign_cpu = NPROC * 1e6 / F["openssl"]["sign"]
    for key, ref, _ in rows:
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
    w("CPU split during each timed run (% of one core; the machine has "
      f"{NPROC * 100} %): " + "; ".join(
          f"{SHORT[k]}: usher {S[k]['usher_cpu_pct']:.0f} %, redis {S[k]['redis_cpu_pct']:.0f} %, "
          f"wrk {S[k]['wrk_cpu_pct']:.0f} %, other processes {S[k]['other_cpu_pct']:.0f} %"
          + (f" (attempt {S[k]['attempts']})" if S[k].get('attempts', 1) > 1 else "") for k in ("health", "stats_small", "stats_big", "heartbeat", "join", "joinleave")) + ".")
    w("")
    bg = R["background"]
    w(f"Round trips per request are top-level commands (not run by a script) over answered requests, less "
      f"what an idle usher sends on its own, measured idle before the runs (2 s windows until two agree): {bg['small']['per_s']:.1f}/s at "
      f"{SMALL_STAGES} stages and {bg['big']['per_s']:.1f}/s at {BIG_STAGES} stages "
      f"({', '.join(f'{k} {v}' for k, v in sorted(bg['big']['cmds'].items()))} in {bg['big']['window_s']:.0f} s: the scaler's lease and view). "
      f"Other processes kept {R['quiet']:.0f} % of one core busy in the second before the run.")
    w("")
    w(f"Before each run the harness waits until usher's CPU is idle (its signer threads compute ECDSA "
      f"nonces ahead while idle): " + ", ".join(f"{SHORT[k]} {S[k]['idle_wait_s']:.0f} s"
                                               for k in ("health", "stats_small", "heartbeat", "join", "joinleave", "stats_big"))
      + f". Joins are measured sustained: the warm-up goes on in {WARMUP} s rounds until at least {POOL} joins "
      f"(SIGNER_PRECOMPUTE, the nonce pool) are done and then two more rounds agree within 10 %; "
      f"join rounds, req/s: {', '.join(f'{x:.0f}' for x in S['join']['warmup_rps'])}; join-then-leave rounds: "
      f"{', '.join(f'{x:.0f}' for x in S['joinleave']['warmup_rps'])} (the first rounds are signed from the nonce pool).")
    w("")
    jl = S["joinleave"]["wrk"]
    w(f"Join-then-leave: {jl.get('joins', 0)} joins and {jl.get('leaves', 0)} leaves answered 200 "
      f"({S['joinleave']['rps'] / 2:.0f} cycles/s); leaves that freed no seat: {jl.get('unseated', 0)}; "
      f"joins not yet left when wrk stopped: {jl.get('pending', 0)}.")
    w("")
    w("What usher sent to Redis per request (MONITOR probe of 10 requests before each run): " + "; ".join(
        f"{k}: {probe_text(p)}" for k, p in R["probes"].items()) + ".")
    w("")
    w("Scripts: " + ", ".join(
        f"{c['script']}.lua {'= the SHA usher runs' if c['same'] else 'DIFFERS from what usher runs (' + c['usher_sha'][:8] + ')'}"
        f" ({c['sha'][:12]})" for c in R["checks"]) + " (SCRIPT LOAD of src/store/lua/*.lua).")
    w("")
    for key in ("burst", "burst_nopool"):
        b = R.get(key)
        if not b:
            continue
        label = "Burst" if key == "burst" else "Burst with SIGNER_PRECOMPUTE=0 (no nonce pool: a burst once the pool is used up)"
        w(f"{label}: {b['n']} connections opened beforehand, usher left alone until idle "
          f"({b['idle_wait_s']:.0f} s{f', nonce pool of {POOL} full' if key == 'burst' and POOL else ''}), then "
          f"{b['n']} joins (new users) written open-loop within {b['send_window_s']:.3f} s (largest lag behind "
          f"schedule {b['send_lag_max_ms']:.1f} ms): {b['ok']} answered 2xx (statuses "
          f"{json.dumps({str(k): v for k, v in b['statuses'].items()})}); latency from scheduled send p50 "
          f"{b['p50_ms']:.0f} ms, p99 {b['p99_ms']:.0f} ms, max {b['max_ms']:.0f} ms; last answer "
          f"{b['last_answer_s']:.2f} s after the first request (= {b['ok'] / max(b['last_answer_s'], 1e-9):.0f} "
          f"joins/s); usher {b['usher_cpu_us']:.0f} µs CPU per join from the first request to the last answer, "
          f"{b['evalsha']} EVALSHA; CPU over the burst (% of one core): usher {b['cpu_split'][0]:.0f}, redis "
          f"{b['cpu_split'][1]:.0f}, the client {b['cpu_split'][2]:.0f}, other processes {b['cpu_split'][3]:.0f}; "
          f"usher RSS {mb(b['rss_before'])} with the {b['n']} connections open, peak "
          f"{mb(b['rss'])}. Latency by tenth of the burst, in sending order (min/median/max ms): "
          + " ".join("/".join(str(x) for x in d) for d in b["lat_by_decile"]) + "."
          + (" usher's log: " + "; ".join(f"{n} × `{m}`" for m, n in b["log"]) + "." if b.get("log") else ""))
        w("")
    me = R["mem"]
    sd, hj = me["seeded"], me["http_joins"]
    w(f"Memory at {sd['total_viewers']} seated in {S['stats_big']['stages']} stages (sum of HLEN "
      f"{sd['hlen_sum']}): usher RSS {mb(me['usher_rss_big'])} (peak {mb(me['usher_hwm'])}); Redis used_memory "
      f"{mb(me['redis_used_memory'])}. Redis bytes per seated viewer: {sd['per_viewer']:.0f} "
      f"(used_memory delta over {sd['viewers']} viewers seated with usher's own seat.lua EVALSHA, pipelined, "
      f"{sd['seconds']:.1f} s, {sd['seat_us']:.0f} µs Redis time per seat.lua call at "
      f"{S['stats_big']['stages']} stages); {hj['per_viewer']:.0f} over the {hj['viewers']} viewers "
      f"the timed join run seated by HTTP (5 stages). Where the bytes go, from `MEMORY USAGE … SAMPLES 0` of "
      f"the last stage's keys: " + "; ".join(
          f"{k} ({v['encoding']}) {v['bytes']} B for {v['entries']} = {v['per_entry']:.0f} B per viewer"
          for k, v in sd["parts"].items())
      + f"; a seat record, e.g. `{sd['sample'][0]}` → `{sd['sample'][1]}`.")
    w("")
    sw = R["sweep"]
    om = sw["other_max"]
    w(f"Sweep: usher running with HEARTBEAT_CLEANUP_INTERVAL={SWEEP_INTERVAL}, HEARTBEAT_TIMEOUT={SWEEP_TIMEOUT} "
      f"and idle (nonce pool full, {sw['idle_wait_s']:.0f} s after start), then {sw['seeded']} viewers with last "
      f"heartbeats {2 * SWEEP_TIMEOUT} s old appear at once, just after one of usher's (empty) sweeps "
      f"(one MULTI/EXEC of usher's seat.lua call): first "
      f"removal {fmt_s(sw['t_first_s'])} later, all gone {fmt_s(sw['duration_s'])} after that ({sw['left']} "
      f"left). SLOWLOG (threshold 0 during the test, so every call is there): {sw['calls']} sweep.lua calls, "
      f"longest {sw['max_us']} µs, median {sw['median_us']} µs, {sw['sum_us'] / 1000:.1f} ms in all, "
      f"{sw['over_1ms']} of them ≥ 1 ms"
      + (f"; longest other command from usher {om[0]['us']} µs (`{om[0]['cmd']}`)" if om else "")
      + f". LATENCY LATEST (≥ 5 ms): {json.dumps(sw['latency_latest']) if sw['latency_latest'] else 'no event'}"
      + (f". usher log: `{sw['log'][-1]}`" if sw["log"] else "") + ".")
    w("")
    w("### Targets")
    w("")
    w("| target | measured | verdict |")
    w("|---|---|---|")
    for t in targets(R):
        w(f"| {t[0]} | {t[1]} | {verdict(t[2])} |")
    w("")
    w("### Commands, as run")
    w("")
    w("```")
    for c in COMMANDS:
        w(c)
    w("```")
    return "\n".join(out)


def fmt_s(v):
    return f"{v:.3f} s" if isinstance(v, (int, float)) else "never"


def targets(R):
    S, F = R["scen"], R["refs"]
    t = []
    for key, ref, pk in (("heartbeat", "heartbeat", "heartbeat"), ("stats_small", "stats_small", "stats"),
                         ("stats_big", "stats_big", "stats_big")):
        s = S[key]
        label = s["name"].replace("POST /api/viewer/", "").replace("GET /api/", "")
        pr = R["probes"][pk]
        exact = pr["top_per_req"]
        # wrk counts answered requests; up to CONNS more were in flight when it
        # stopped; usher's own background commands are taken off (measured idle)
        mine = s["top"] - s["bg"]
        t.append((f"{label}: one Redis round trip per request (at most)",
                  f"{s['rt_per_req']:.3f}: {s['top']} top-level commands − {s['bg']:.0f} background for "
                  f"{s['requests']} answered (+ ≤ {CONNS} in flight at the end); MONITOR probe, one request "
                  f"at a time: {exact:.2f}",
                  exact <= 1 and mine <= s["requests"] + CONNS + 3))
        t.append((f"{label}: usher CPU ≤ 25 µs per request", f"{s['usher_cpu_us']:.1f} µs",
                  s["usher_cpu_us"] <= 25))
        r = s["rps"] / F[ref]["rps"]
        t.append((f"{label}: req/s ≥ 50 % of redis-benchmark on the same call",
                  f"{s['rps']:.0f} / {F[ref]['rps']:.0f} = {100 * r:.0f} %", r >= 0.5))
    r = S["stats_big"]["rps"] / S["stats_small"]["rps"]
    t.append((f"stats at {S['stats_big']['stages']} stages / {S['stats_big']['viewers']} viewers within 20 % "
              f"of {S['stats_small']['stages']} stages / {S['stats_small']['viewers']}",
              f"{S['stats_big']['rps']:.0f} vs {S['stats_small']['rps']:.0f} req/s = {100 * r:.0f} %", r >= 0.8))
    r = S["join"]["rps"] / F["openssl"]["sign"]
    t.append((f"joins ≥ 80 % of openssl speed -multi {NPROC} sign/s",
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
              f"longest sweep call {sw['max_us']} µs, longest command from usher {longest} µs"
              + (f", latency event max {lat_max} ms" if lat_max else ", no latency event ≥ 5 ms"),
              longest <= 10000 and lat_max <= 10))
    t.append((f"sweep of {sw['seeded']}: done within one interval ({SWEEP_INTERVAL} s)",
              fmt_s(sw["duration_s"]) + f", {sw['left']} left",
              sw["duration_s"] is not None and sw["duration_s"] <= SWEEP_INTERVAL and sw["left"] == 0))
    return t


def perf_works():
    if PROFILE == "0" or not shutil.which("perf"):
        return False
    if PROFILE == "1":
        return True
    r = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-o", os.path.join(TMP, "perf-check.data"),
                        "--", "true"], capture_output=True)
    return r.returncode == 0


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


BEGIN, END = "<!-- BEGIN make bench: generated, do not edit -->", "<!-- END make bench -->"


def write_md(text):
    if not MD_PATH:
        return
    block = f"{BEGIN}\n{text}\n{END}"
    doc = ""
    if os.path.exists(MD_PATH):
        with open(MD_PATH) as f:
            doc = f.read()
    if BEGIN in doc and END in doc:
        doc = doc[:doc.index(BEGIN)] + block + doc[doc.index(END) + len(END):]
    else:
        doc = (doc or "# usher benchmarks\n\n`make bench` writes the section below.\n") + "\n## Last run\n\n" + block + "\n"
    with open(MD_PATH, "w") as f:
        f.write(doc)
    log(f"wrote {MD_PATH}")


def main():
    global TMP, INNER
    for tool in ("wrk", "redis-server", "redis-benchmark", "openssl"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: run `WITH_BENCH=1 sh scripts/deps.sh` (as root)")
    if not os.access(USHER_BIN, os.X_OK):
        raise SystemExit(f"{USHER_BIN} is missing: run `make`")
    TMP = tempfile.mkdtemp(prefix="usher-bench-")
    # the burst holds BURST sockets on each side; children inherit the limit
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < BURST + 1000:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, BURST + 1000), hard))
    INNER = script_inner_commands()
    global PROFILE_ON, POOL
    PROFILE_ON = perf_works()
    helptext = subprocess.run([USHER_BIN, "--help"], capture_output=True, text=True).stdout
    m = re.search(r"SIGNER_PRECOMPUTE\s.*\(default: (\d+)\)", helptext)
    POOL = int(m.group(1)) if m else 0
    t0 = time.time()

    def on_signal(sig, frame):
        raise SystemExit(f"stopped by signal {sig}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    R = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "scen": {}, "refs": {}, "probes": {},
         "checks": [], "mem": {}, "profiles": {}, "versions": {}, "machine": machine()}
    log(f"usher {USHER_BIN}; {NPROC} cores; logs in {TMP}")
    try:
        R["quiet"] = wait_quiet()
        phase_main(R)
        phase_burst(R)
        phase_sweep(R)
        R["elapsed_s"] = time.time() - t0
        text = render(R)
        prof = profile_text(R)
        if prof:
            text += ("\n\n### Profile\n\nA separate run after each timed one (so that the figures above are "
                     f"not slowed down): wrk as above for {PROFILE_SECONDS + 2} s, `perf record -e cpu-clock -F 499 "
                     f"--call-graph dwarf,16384 -p <usher> -- sleep {PROFILE_SECONDS}`; `perf report --no-children "
                     "--sort dso` and `perf report --children --sort symbol` (usher's own and library functions "
                     "with ≥ 4 % inclusive).\n\n```\n" + prof + "\n```")
        print("\n" + text + "\n", flush=True)
        write_md(text)
        with open(os.path.join(TMP, "results.json"), "w") as f:
            json.dump(R, f, indent=1, default=str)
    finally:
        stop_all()
        if KEEP:
            log(f"kept {TMP}")
        else:
            shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
