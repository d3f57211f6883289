"""resp -- a minimal RESP2 client (commands, pipelines, MONITOR lines) and
a redis-server of the run's own on a free loopback port."""

import os
import socket
import time

from . import procs


def parse_info(text):
    """INFO's text as a dict of field -> value (strings)."""
    d = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            d[k] = v
    return d


def parse_cmdstats(info):
    """INFO commandstats fields as {command: (calls, usec)}."""
    out = {}
    for k, v in info.items():
        if k.startswith("cmdstat_"):
            kv = dict(x.split("=") for x in v.split(","))
            out[k[8:]] = (int(kv["calls"]), int(kv["usec"]))
    return out


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
        return parse_info(self.call("INFO", section))

    def cmdstats(self):
        return parse_cmdstats(self.info("commandstats"))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Redis:
    """redis-server on a free port with no persistence, in ctx.tmp/<name>."""

    def __init__(self, ctx, name):
        self.ctx = ctx
        self.port = procs.free_port()
        self.dir = os.path.join(ctx.tmp, name)
        os.makedirs(self.dir)
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--dir", self.dir,
               "--logfile", os.path.join(self.dir, "redis.log")]
        self.proc = procs.spawn(ctx, cmd)
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

    def cpu(self):
        return procs.proc_cpu(self.proc.pid)

    def stop(self):
        self.r.close()
        procs.stop(self.ctx, self.proc)
