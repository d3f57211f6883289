"""usher -- one usher process (the release build) on a free port in front
of a Redis of the run's own, with the settings of a benchmark, and a small
keep-alive HTTP client for the set-up calls."""

import http.client
import json
import os
import time

from . import procs
from .context import CAPACITY


class Usher:
    def __init__(self, ctx, redis, name, **settings):
        self.ctx, self.redis, self.name = ctx, redis, name
        self.port = procs.free_port()
        self.logfile = os.path.join(ctx.tmp, f"usher-{name}.log")
        data_dir = os.path.join(ctx.tmp, "usher-data")   # one key for every instance
        os.makedirs(data_dir, exist_ok=True)
        shown = {
            "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
            "API_HOST": "127.0.0.1", "API_PORT": str(self.port),
            "SKIP_AUTH": "true", "RATE_LIMIT_MAX_REQUESTS": "0", "LOG_LEVEL": "warn",
            "MAX_VIEWERS_PER_STAGE": str(CAPACITY), "MAX_STAGES": str(max(ctx.cfg.big_stages + 1, 101)),
            "AUTO_SCALE_ENABLED": "false", "HEARTBEAT_CLEANUP_INTERVAL": "3600",
            "DATA_DIR": data_dir,
        }
        shown.update({k: str(v) for k, v in settings.items()})
        env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TZ") if k in os.environ}
        env.update(shown)
        self.settings = shown
        self.proc = procs.spawn(ctx, [ctx.cfg.usher_bin], env=env, logfile=self.logfile, shown_env=shown)
        self.pid = self.proc.pid
        self.started = time.time()
        self.conn = None
        self.last_use = 0.0
        self._wait_healthy()

    def _wait_healthy(self):
        deadline = time.time() + 15
        while True:
            try:
                st, _ = self.request("GET", "/health")
                if st == 200:
                    return
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
        return procs.proc_cpu(self.pid)

    def rss(self):
        return procs.proc_status(self.pid, "VmRSS")

    def hwm(self):
        return procs.proc_status(self.pid, "VmHWM")

    def stop(self):
        if self.conn:
            self.conn.close()
        procs.stop(self.ctx, self.proc)
