"""burst -- the open-loop join burst: n connections opened beforehand,
request i written at t0 + i * window / n whatever came back so far, and
latency taken from that scheduled time to the end of the answer."""

import asyncio
import json
import random
import re

from . import stats


async def open_conns(port, n):
    sem = asyncio.Semaphore(200)

    async def opener():
        async with sem:
            for _ in range(50):
                try:
                    return await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    await asyncio.sleep(0.05)
            raise SystemExit("burst: cannot connect")
    return await asyncio.gather(*[opener() for _ in range(n)])


def join_requests(n):
    """n raw POST /api/token/viewer requests, each for a new user."""
    tag = f"burst-{random.getrandbits(32):08x}"
    reqs = []
    for i in range(n):
        body = json.dumps({"userId": f"{tag}-{i}"}).encode()
        reqs.append(b"POST /api/token/viewer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    return reqs


async def read_answer(reader, loop):
    """(status, loop time at the end of the body); status 0 when the answer
    was cut or unreadable."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        await reader.readexactly(int(m.group(1)) if m else 0)
        return status, loop.time()
    except (asyncio.IncompleteReadError, OSError, ValueError, IndexError):
        return 0, loop.time()


async def send_on_schedule(conns, reqs, sched, loop):
    """Writes request i at sched[i]; returns the times each was written."""
    sent, i, n = [0.0] * len(reqs), 0, len(reqs)
    while i < n:
        now = loop.time()
        while i < n and sched[i] <= now:
            conns[i][1].write(reqs[i])
            sent[i] = loop.time()
            i += 1
        if i < n:
            await asyncio.sleep(max(0.0, min(sched[i] - loop.time(), 0.002)))
    return sent


async def burst_client(port, n, window_s, before_fire=None, at_fire=None, at_end=None):
    """The burst of n joins written within window_s; returns its figures
    (stats.burst_summary). before_fire returns the seconds waited for an
    idle usher; at_fire and at_end take snapshots around the burst."""
    conns = await open_conns(port, n)
    loop = asyncio.get_running_loop()
    reqs = join_requests(n)
    results = [None] * n

    async def reader(i):
        results[i] = await read_answer(conns[i][0], loop)
    readers = [asyncio.create_task(reader(i)) for i in range(n)]
    await asyncio.sleep(0.3)
    waited = before_fire() if before_fire else 0
    if at_fire:
        at_fire()
    t0 = loop.time() + 0.2
    sched = [t0 + i * window_s / n for i in range(n)]
    sent = await send_on_schedule(conns, reqs, sched, loop)
    last_sent = loop.time()
    try:
        await asyncio.wait_for(asyncio.gather(*readers), timeout=120)
    except asyncio.TimeoutError:
        pass
    if at_end:
        at_end()
    for _, w in conns:
        w.close()
    return stats.burst_summary(results, sched, sent, t0, last_sent, waited)
