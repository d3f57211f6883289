#!/usr/bin/env python3
"""seat_cost.py -- Redis time per seat (FCALL usher_seat) and per heartbeat
(FCALL usher_heartbeats) of one version of the function library, at a given
number of stages, measured inside Redis (INFO commandstats: µs per FCALL),
without usher or HTTP in the way. It compares library versions (a change to
usher.lua alone) without building usher; `make bench` measures the same
calls through usher ("Join flat", the heartbeat's Redis CPU):

    python3 bench/seat_cost.py LIBRARY.lua STAGES [SEATED] [N]

starts its own redis-server on a free port, loads LIBRARY.lua, adds STAGES
stages (the first the master), seats SEATED viewers spread over them, then
times N new seats and up to N heartbeats of the first stage's viewers, one
per call and in calls of 20. Prints one JSON line.

Every call is made as src/store/store.c makes it today: each function's
fixed keys are read from store.c's function table, its arguments are those
store.c's store_* functions pass (written here; store_seat, store_heartbeat,
store_stage_add, store_viewer_list). A library that does not take today's
calls (library 1 and others before usher_heartbeats or stage_endpoints)
fails with Redis's error; every answer is checked, so an error or a refusal
is never timed as a seat. `bench/test_seat_cost.py` (`make unit`) runs it
against src/store/lua/usher.lua."""

import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from usherbench.resp import Resp, RespError  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STORE_C = os.path.join(ROOT, "src", "store", "store.c")
P = "ivs:bench:"
TABLE_ENTRY = re.compile(r'\[FN_\w+\]\s*=\s*\{"(\w+)",\s*\{([^}]*)\}\}')


def store_keys(path=STORE_C):
    """{function name: [its fixed keys, unprefixed]} from store.c's table."""
    with open(path) as f:
        table = {name: re.findall(r'"([^"]+)"', keys) for name, keys in TABLE_ENTRY.findall(f.read())}
    if "usher_seat" not in table:
        raise SystemExit(f"{path}: no function table found (store.c changed; update TABLE_ENTRY)")
    return table


class Library:
    """FCALLs of one loaded library, with store.c's keys for each function."""

    def __init__(self, keys):
        self.keys = keys

    def fcall(self, name, *args):
        keys = [P + k for k in self.keys[name]]
        return ["FCALL", name, str(len(keys))] + keys + [P] + [str(a) for a in args]


def answers(r, cmds, check, batch=2000):
    """Sends cmds pipelined; stops at the first answer check() refuses."""
    for i in range(0, len(cmds), batch):
        for cmd, got in zip(cmds[i:i + batch], r.pipeline(cmds[i:i + batch])):
            if isinstance(got, RespError) or not check(got):
                raise SystemExit(f"{cmd[1]} answered {got!r} (to {cmd[:3]} ... {cmd[-8:]})")


def per_call(r, cmds, check):
    """µs inside Redis per FCALL over cmds, each answer checked."""
    r.call("CONFIG", "RESETSTAT")
    answers(r, cmds, check)
    calls, usec = r.cmdstats()["fcall"]
    if calls != len(cmds):
        raise SystemExit(f"Redis counted {calls} FCALLs, {len(cmds)} were sent")
    return usec / calls


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def connect(port):
    for _ in range(100):
        try:
            r = Resp(port)
            r.call("PING")
            return r
        except (OSError, ConnectionError, RespError):
            time.sleep(0.05)
    raise SystemExit(f"redis-server on port {port} did not answer")


def add_stages(r, lib, stages, now):
    """store_stage_add's call: arn, info, createdAt, ttl, max stages, master
    ("1" the first, the master unless one exists;
    "0" the others), lease holder, mode, state, tags, endpoints."""
    arns = []
    for i in range(stages):
        arn = f"arn:aws:ivs:ap-northeast-1:123456789012:stage/bench{i:07d}"
        info = json.dumps({"name": f"s{i}", "arn": arn, "autoScaled": False, "createdAt": "x"})
        got = r.call(*lib.fcall("usher_stage_add", arn, info, now + i, 3600, stages, "1" if i == 0 else "0",
                                "", "open", "", "", ""))
        if got != arn:
            raise SystemExit(f"usher_stage_add answered {got!r} for {arn}")
        arns.append(arn)
    return arns


def measure(r, lib, stages, seated, n):
    now = int(time.time() * 1000)
    r.call("SET", P + "publisher:status", "live")
    arns = add_stages(r, lib, stages, now)
    cap = seated + 2 * n

    def seat(user):   # store_seat: user, stage ("" = least loaded), participant id, now, capacity, how, max stages
        return lib.fcall("usher_seat", user, "", f"p{random.getrandbits(64):016x}", now, cap, "join", stages)

    def seated_new(got):   # {stageArn, participantId, viewersInStage, isNew, movedFrom}
        return isinstance(got, list) and got[0] in arns and got[3] == 1

    answers(r, [seat(f"seated-{i}") for i in range(seated)], seated_new)
    out = {"library_version": int(r.call("FCALL", "usher_version", "0")), "stages": stages,
           "seated_before": seated, "n": n,
           "seat_us": per_call(r, [seat(f"new-{i}") for i in range(n)], seated_new)}
    # store_viewer_list: arn, active cutoff (ms), max ids -> {exists, total, active, user...}
    users = r.call(*lib.fcall("usher_viewer_list", arns[0], 0, n))[3:]
    out["heartbeats"] = len(users)

    def beat(u):   # store_heartbeat: user, stage, now, capacity (four per heartbeat of a call)
        return [u, arns[0], now, cap]

    def plain(got):   # 1 a plain heartbeat (library 10 on), {1} before
        return isinstance(got, list) and all(a in (1, [1]) for a in got)

    out["heartbeat_us"] = per_call(r, [lib.fcall("usher_heartbeats", *beat(u)) for u in users], plain)
    batches = [sum((beat(u) for u in users[i:i + 20]), []) for i in range(0, len(users), 20)]
    out["heartbeat_batch20_us_each"] = per_call(
        r, [lib.fcall("usher_heartbeats", *b) for b in batches], plain) * len(batches) / max(1, len(users))
    total = int(r.call("GET", P + "total_viewers"))
    if total != seated + n:
        raise SystemExit(f"total_viewers is {total}, {seated + n} were seated")
    out["used_memory"] = int(r.info("memory")["used_memory"])
    return out


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__.split("\n\n")[1])
    lib_path, stages = sys.argv[1], int(sys.argv[2])
    seated = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 20000
    lib = Library(store_keys())
    with tempfile.TemporaryDirectory(prefix="seat-cost-") as d:
        port = free_port()
        proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", d], stdout=subprocess.DEVNULL)
        try:
            r = connect(port)
            with open(lib_path) as f:
                r.call("FUNCTION", "LOAD", "REPLACE", f.read())
            print(json.dumps(measure(r, lib, stages, seated, n)))
        finally:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
