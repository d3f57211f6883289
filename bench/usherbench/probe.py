"""probe -- what usher sends to Redis, seen with MONITOR: the commands
one request costs (top level and inside functions), usher's own
`FCALL usher_seat` (so viewers can be seated with exactly usher's function
and arguments), and waiting for one of usher's timers to fire."""

import hashlib
import os
import random
import re
import socket
import time

from .resp import Resp, RespError

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


def script_inner_commands(lua_src):
    """Names of the commands usher's function library runs with redis.call/pcall."""
    names = set()
    for fn in sorted(os.listdir(lua_src)):
        if fn.endswith(".lua"):
            with open(os.path.join(lua_src, fn)) as f:
                names |= {m.lower() for m in re.findall(r"redis\.p?call\(\s*'([A-Za-z]+)'", f.read())}
    return frozenset(names)


def script_shas(lua_src):
    """{SHA1: usher_<name>} of the one-file scripts in lua_src (usher before
    its function library ran `EVALSHA` of src/store/lua/<name>.lua; Redis
    names a script by the SHA1 of its text). {} for the library alone."""
    shas = {}
    for fn in sorted(os.listdir(lua_src)):
        if fn.endswith(".lua") and fn != "usher.lua":
            with open(os.path.join(lua_src, fn), "rb") as f:
                shas[hashlib.sha1(f.read()).hexdigest()] = "usher_" + fn[:-4]
    return shas


def fcall_name(argv, shas=None):
    """The function an FCALL argv calls (usher_seat, ...), or, for an
    EVALSHA of a script in shas (script_shas), usher_<script>; None for
    other commands."""
    if not argv or len(argv) < 2:
        return None
    verb = argv[0].upper()
    if verb in ("FCALL", "FCALL_RO"):
        return argv[1]
    if verb in ("EVALSHA", "EVALSHA_RO") and shas:
        return shas.get(argv[1].lower())
    return None


def call_stats(cs):
    """(calls, usec) of usher's function or script calls in a commandstats snapshot."""
    f, e = cs.get("fcall", (0, 0)), cs.get("evalsha", (0, 0))
    return f[0] + e[0], f[1] + e[1]


def library_version(lua_src):
    """The VERSION of src/store/lua/usher.lua."""
    with open(os.path.join(lua_src, "usher.lua")) as f:
        m = re.search(r"^local VERSION = (\d+)", f.read(), re.M)
    return int(m.group(1)) if m else None


def parse_monitor(lines, own_addr):
    """MONITOR lines -> (top-level argv lists from others than own_addr,
    number of commands scripts ran)."""
    top, inner = [], 0
    for line in lines:
        m = MON_LINE.match(line)
        if not m:
            continue
        addr, args = m.group(3), [unrepr(a) for a in MON_ARG.findall(m.group(4))]
        if addr == "lua":
            inner += 1
        elif addr != own_addr:
            top.append(args)
    return top, inner


OWN_TIMERS = ("usher_lease", "usher_sweep", "usher_stage_renew", "usher_reindex")


def split_background(top, shas=None):
    """usher's own timers may fire meanwhile: the scaler's tick is a lease
    call then a stats call; the sweeper's are sweep and stage_renew calls.
    Returns (the request's commands, background)."""
    mine, bg, skip_view = [], [], 0
    for a in top:
        fn = fcall_name(a, shas)
        if fn in OWN_TIMERS or a[0].upper() == "XADD":
            bg.append(a)
            skip_view += fn == "usher_lease"
        elif skip_view and fn == "usher_stats":
            bg.append(a)
            skip_view -= 1
        else:
            mine.append(a)
    return mine, bg


def probe_summary(label, n, mine, bg, inner, elapsed):
    names = {}
    for a in mine:
        names[a[0].upper()] = names.get(a[0].upper(), 0) + 1
    return {"label": label, "requests": n, "top": mine, "background": len(bg), "inner": inner,
            "elapsed": elapsed, "top_per_req": len(mine) / n if n else 0,
            "inner_per_req": inner / n if n else 0,
            "names": {k: v / n for k, v in names.items()} if n else {}}


def probe(ctx, redis, fn, label):
    """Runs fn() (which makes HTTP requests and returns how many) with
    MONITOR on; returns what usher sent: top-level commands (argv lists)
    and the number of commands its scripts ran. A probe of no request
    proves nothing: it stops the run."""
    mon = Resp(redis.port)
    mon.sock.sendall(Resp.encode(["MONITOR"]))
    if mon.read() != "OK":
        raise SystemExit("MONITOR refused")
    t0 = time.time()
    n = fn()
    elapsed = time.time() - t0
    if not n:
        raise SystemExit(f"probe {label}: no request was made")
    sentinel = f"bench-probe-end-{random.getrandbits(48)}"
    redis.r.call("ECHO", sentinel)
    lines = []
    while True:
        line = mon.read()
        if not isinstance(line, str):
            continue
        if sentinel in line:
            break
        lines.append(line)
    mon.close()
    top, inner = parse_monitor(lines, redis.r.addr)
    mine, bg = split_background(top, ctx.shas)
    return probe_summary(label, n, mine, bg, inner, elapsed)


def probe_text(p):
    names = ", ".join(f"{k} x{v:g}" for k, v in sorted(p["names"].items()))
    bg = f"; {p['background']} calls of usher's own timers left out" if p["background"] else ""
    return (f"{p['top_per_req']:g} top-level ({names or 'none'}{bg}), "
            f"{p['inner_per_req']:g} in-script")


def library_check(ctx, redis):
    """Does Redis run the library of src/store/lua/usher.lua (its VERSION)?
    None for a usher of one-file scripts (no library)."""
    if not os.path.exists(os.path.join(ctx.cfg.lua_src, "usher.lua")):
        return None
    want = library_version(ctx.cfg.lua_src)
    loaded = int(redis.r.call("FCALL", "usher_version", "0"))
    return {"library": "usher", "version": loaded, "source_version": want, "same": loaded == want}


class SeatCall:
    """The FCALL usher_seat argv usher sent for one join (from a MONITOR
    probe), with the positions of the user id, participant id and time
    stamp, so that viewers can be seated with exactly usher's call."""

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


def seat_call(ctx, usher, redis, user):
    got = {}

    def join():
        got["now"] = int(time.time() * 1000)
        got["data"] = usher.must("POST", "/api/token/viewer", {"userId": user})
        return 1
    p = probe(ctx, redis, join, "join")
    evals = [a for a in p["top"] if fcall_name(a, ctx.shas) == "usher_seat" and user in a]
    if len(evals) != 1:
        raise SystemExit(f"could not catch usher's seat call: {p['top']}")
    return SeatCall(evals[0], user, got["data"]["participantId"], got["now"]), p, got["data"]


def seed(redis, call, count, prefix, now_ms, batch=2000):
    """Seats `count` new viewers with usher's own usher_seat call, pipelined."""
    done, t0 = 0, time.time()
    while done < count:
        k = min(batch, count - done)
        replies = redis.r.pipeline([call.make(f"{prefix}{done + i}", now_ms) for i in range(k)])
        bad = [r for r in replies if isinstance(r, RespError)]
        if bad:
            raise SystemExit(f"seeding failed: {bad[0]}")
        done += k
    return time.time() - t0


def wait_for_call(redis, name, timeout, shas=None):
    """Waits (MONITOR) until usher sends FCALL <name> (or the EVALSHA of
    its script, shas: script_shas); False on timeout."""
    marks = [f'"FCALL" "{name}"'] + [f'"EVALSHA" "{h}"' for h, n in (shas or {}).items() if n == name]
    mon = Resp(redis.port)
    mon.sock.settimeout(timeout)
    mon.sock.sendall(Resp.encode(["MONITOR"]))
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            line = mon.read()
            if isinstance(line, str) and any(m in line for m in marks):
                return True
    except (OSError, socket.timeout):
        pass
    finally:
        mon.close()
    return False
