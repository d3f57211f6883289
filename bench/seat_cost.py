#!/usr/bin/env python3
"""seat_cost.py -- Redis time per seat (FCALL usher_seat) and per heartbeat
of one version of the function library, at a given number of stages,
measured inside Redis (INFO commandstats: µs per FCALL), without usher or
HTTP in the way. BENCHMARKS.md "Beyond the HTTP layer" uses it to compare
library versions:

    python3 bench/seat_cost.py LIBRARY.lua STAGES [SEATED] [N]

starts its own redis-server on a free port, loads LIBRARY.lua, adds STAGES
stages (the first the master), seats SEATED viewers spread over them, then
times N new seats and N heartbeats (alone, and with version 2 also in
batches of 20: usher_heartbeats). Prints one JSON line."""

import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from usherbench.resp import Resp  # noqa: E402

P = "ivs:bench:"
# Every fixed key any version's functions declare; a function reads only
# those it needs, so declaring more is harmless.
KEYS = [P + k for k in ("publisher:status", "stages", "stage_mode", "total_viewers", "open_stages",
                        "stage_slot", "slot_stage", "stage_slot_seq", "scaler:lease", "master_stage",
                        "stage_info", "stage_state", "stage_tags")]


def fcall(name, *args):
    return ["FCALL", name, str(len(KEYS))] + KEYS + [P] + [str(a) for a in args]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def per_call(r, cmds, batch=2000):
    """µs inside Redis per FCALL over cmds (sent pipelined)."""
    r.call("CONFIG", "RESETSTAT")
    for i in range(0, len(cmds), batch):
        r.pipeline(cmds[i:i + batch])
    calls, usec = r.cmdstats()["fcall"]
    return usec / calls


def main():
    lib, stages = sys.argv[1], int(sys.argv[2])
    seated = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 20000
    d = tempfile.mkdtemp(prefix="seat-cost-")
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", d], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                r = Resp(port)
                r.call("PING")
                break
            except OSError:
                time.sleep(0.05)
        with open(lib) as f:
            r.call("FUNCTION", "LOAD", "REPLACE", f.read())
        version = int(r.call("FCALL", "usher_version", "0"))
        r.call("SET", P + "publisher:status", "live")
        now = int(time.time() * 1000)
        arns = []
        for i in range(stages):
            arn = f"arn:aws:ivs:ap-northeast-1:123456789012:stage/bench{i:07d}"
            info = json.dumps({"name": f"s{i}", "arn": arn, "autoScaled": False, "createdAt": "x"})
            r.call(*fcall("usher_stage_add", arn, info, now + i, 3600, stages + 1, "1" if i == 0 else "0",
                          "", "open", "", ""))
            arns.append(arn)
        cap = seated + 2 * n

        def seat(user):
            return fcall("usher_seat", user, "", f"p{random.getrandbits(64):016x}", now, cap, "join")
        per_call(r, [seat(f"seated-{i}") for i in range(seated)])
        out = {"library_version": version, "stages": stages, "seated_before": seated, "n": n,
               "seat_us": per_call(r, [seat(f"new-{i}") for i in range(n)])}
        # Heartbeats of the viewers seated in the first stage (up to n).
        users = r.call("FCALL", "usher_viewer_list", "1", P + "stages", P, arns[0], 0, n)[3:]
        out["heartbeats"] = len(users)
        if version >= 2:
            out["heartbeat_us"] = per_call(r, [fcall("usher_heartbeats", u, arns[0], now, cap) for u in users])
            batches = [sum(([u, arns[0], now, cap] for u in users[i:i + 20]), [])
                       for i in range(0, len(users), 20)]
            out["heartbeat_batch20_us_each"] = per_call(r, [fcall("usher_heartbeats", *b) for b in batches]) / 20
        else:
            out["heartbeat_us"] = per_call(r, [fcall("usher_heartbeat", u, arns[0], now, cap) for u in users])
        out["used_memory"] = int(r.info("memory")["used_memory"])
        print(json.dumps(out))
    finally:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    main()
