"""procs -- child processes and their cleanup, CPU and memory read from
/proc, and the harness's log line. Every child is recorded in the Ctx, so
that stop_all can end exactly the processes this run started, and every
command line in ctx.commands, for the report's "Commands, as run"."""

import os
import re
import socket
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def shquote(s):
    s = str(s)
    return s if re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", s) else "'" + s.replace("'", "'\\''") + "'"


def record(ctx, cmd, env=None):
    envs = " ".join(f"{k}={v}" for k, v in (env or {}).items())
    ctx.commands.append((envs + " " if envs else "") + " ".join(shquote(c) for c in cmd))


def spawn(ctx, cmd, env=None, logfile=None, shown_env=None):
    record(ctx, cmd, shown_env)
    out = open(logfile, "ab") if logfile else subprocess.DEVNULL
    p = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    ctx.children.append(p)
    return p


def stop(ctx, p, timeout=5):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in ctx.children:
        ctx.children.remove(p)


def stop_all(ctx):
    for p in list(reversed(ctx.children)):
        try:
            stop(ctx, p, 3)
        except Exception:
            pass


def run_measured(ctx, cmd, env=None, shown_env=None):
    """Runs a command to its end; returns (output, exit code, CPU seconds)."""
    record(ctx, cmd, shown_env)
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    ctx.children.append(p)
    out = p.stdout.read().decode(errors="replace")
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    ctx.children.remove(p)
    return out, p.returncode, ru.ru_utime + ru.ru_stime


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu(pid):
    """CPU seconds (user + system, all threads) of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy():
    """CPU seconds all cores spent busy (not idle/iowait), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK


def proc_status(pid, key):
    """A kB field of /proc/<pid>/status (VmRSS, VmHWM), in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def proc_meminfo(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


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


def wait_quiet(ctx):
    """Other sessions may share this machine: wait up to BENCH_QUIET_WAIT s
    for a second in which under 15 % of one core is busy, and say so."""
    limit = ctx.cfg.quiet_wait
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
