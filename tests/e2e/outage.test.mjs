// outage.test.mjs — Redis outages and shutdown (SPEC §1 503 SERVICE_UNAVAILABLE
// "within 1 s, never a hang", /health 503 "degraded", design notes: recovers
// by itself; SIGTERM exits 0).
//
//  (a) Redis killed: 503 + Retry-After within 1 s; Redis back on the same
//      port (empty): usher serves again without a restart, with the same
//      master stage and the publisher live again (the state rebuild).
//  (b) Redis stalled (SIGSTOP): 503 within 1 s; SIGCONT: recovers, data kept.
//  (c) usher started while no Redis listens: keeps running, /health 503
//      degraded, says so in its log; Redis comes up: /health 200.
//  (d) SIGTERM with 50 requests in flight: every answer that arrives is
//      complete JSON, exit code 0.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis, Usher, freePort, sleep, checkInvariants, startLive } from './harness.mjs';

const ENV = { AUTO_SCALE_ENABLED: 'false', MAX_VIEWERS_PER_STAGE: '1000' };
const BOUND_MS = 1000;       // SPEC §1: answered within 1 s
// A stall's slowest 503 with the default REDIS_TIMEOUT_MS (500) and the
// 50 ms watchdog tick, plus slack for ASan on 2 cores: the rest of the 1 s
// is the loop's and the network's (README "Redis trouble never hangs").
const STALL_BOUND_MS = 750;
const RECOVER_MS = 8000;     // "recovers by itself": generous for ASan on 2 cores
const short = (r) => `${r.status} ${JSON.stringify(r.body).slice(0, 300)}`;
// SPEC §2 gives /health's fields, §1 says every error uses the error
// envelope: accept the status at top level, under data, or in error.details.health.
const healthStatus = (r) => r.body?.data?.status ?? r.body?.status ?? r.body?.error?.details?.health?.status;

// Like Usher#request, but through the given agent (so we control how many
// sockets are open at once).
const call = (u, agent, method, path, body) => u.request(method, path, { body, agent });

// One request on a fresh connection (so it never waits behind another one),
// with its duration: from the request handed to the kernel to the answer's
// head (Usher#request timed), so the bound is usher's time, not the
// test's connect and set-up. A failed connection is status 0.
async function timed(u, method, path, body) {
  return u.request(method, path, { body, agent: false, timed: true })
    .catch((e) => ({ status: 0, headers: {}, body: String(e), ms: 0 }));
}

// The requests that must be refused quickly while Redis is gone.
async function assertUnavailableFast(u) {
  const reqs = [
    ['GET', '/api/stats'],
    ['POST', '/api/token/viewer', { userId: 'outage-viewer' }],
    ['GET', '/health'],
  ];
  const check = (r, [method, path]) => {
    const what = `${method} ${path}: ${short(r)} in ${Math.round(r.ms)} ms`;
    assert.ok(r.ms < BOUND_MS, `too slow: ${what}`);
    assert.equal(r.status, 503, what);
    if (path === '/health') {
      assert.equal(healthStatus(r), 'degraded', what);
    } else {
      assert.equal(r.body.success, false, what);
      assert.equal(r.body.error.code, 'SERVICE_UNAVAILABLE', what);
      assert.ok(r.headers['retry-after'], `no Retry-After: ${what}`);
    }
  };
  // One after another, then all at once (several of each).
  const seq = [];
  for (const req of reqs) { const r = await timed(u, ...req); seq.push(r); check(r, req); }
  const burst = Array.from({ length: 12 }, (_, i) => reqs[i % reqs.length]);
  const res = await Promise.all(burst.map((req) => timed(u, ...req)));
  res.forEach((r, i) => check(r, burst[i]));
  // The slowest answer, for the log: how much of the 1 s was left.
  return Math.round(Math.max(...seq.map((r) => r.ms), ...res.map((r) => r.ms)));
}

async function eventually(check, timeoutMs) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try { if (await check()) return true; } catch { /* not yet */ }
    await sleep(100);
  }
  return false;
}
const healthy = (u) => eventually(async () => (await timed(u, 'GET', '/health')).status === 200, RECOVER_MS);

describe('Redis outage while usher runs', () => {
  let redis; let usher;
  before(async () => {
    redis = await Redis.start();
    usher = await Usher.start(redis, ENV);
  });
  after(async () => {
    try { redis?.resume(); } catch { /* not paused or not running */ }
    await usher?.close();
    await redis?.close();
  });

  it('(a) Redis killed: 503 SERVICE_UNAVAILABLE within 1 s, then recovery on restart', async (t) => {
    const pub = await usher.post('/api/token/publisher', { userId: 'publisher-1' });
    assert.equal(pub.status, 200, short(pub));
    assert.equal((await usher.post('/api/token/viewer', { userId: 'v-before' })).status, 200);

    await redis.stop();
    const first = await assertUnavailableFast(usher);
    await sleep(1500); // still quick once the outage is old news
    const later = await assertUnavailableFast(usher);
    t.diagnostic(`slowest 503: ${first} ms, then ${later} ms`);

    await redis.restart(); // same port, empty (no persistence)
    assert.ok(await healthy(usher), `usher did not recover within ${RECOVER_MS} ms\n${usher.log}`);
    assert.equal(usher.proc.exitCode, null, 'usher must not have restarted');
    const st = await usher.get('/api/stats');
    assert.equal(st.status, 200, short(st));
    assert.equal(st.body.data.totalViewers, 0, 'the data went away with Redis');

    // The rebuild (README "When Redis loses its data") keeps the master
    // stage's ARN and marks the publisher, last seen live, live again.
    const v = await usher.post('/api/token/viewer', { userId: 'v-after' });
    assert.equal(v.status, 200, short(v));
    const pub2 = await usher.post('/api/token/publisher', { userId: 'publisher-1' });
    assert.equal(pub2.status, 200, short(pub2));
    assert.equal(pub2.body.data.stageArn, pub.body.data.stageArn, 'the same master stage');
    const inv = checkInvariants(redis);
    assert.deepEqual(inv.problems, []);
    assert.equal(inv.total, 1);
    assert.equal(inv.seatOf.get('v-after'), v.body.data.stageArn, 'the stage is in the stages set again');
  });

  it('(b) Redis stalled (SIGSTOP): 503 within 1 s, then recovery on SIGCONT', async (t) => {
    const before = checkInvariants(redis);
    assert.deepEqual(before.problems, []);
    redis.pause();
    try {
      const slowest = await assertUnavailableFast(usher);
      t.diagnostic(`slowest 503: ${slowest} ms`);
      assert.ok(slowest <= STALL_BOUND_MS, `a stall's 503 took ${slowest} ms, over ${STALL_BOUND_MS} ms`);
    } finally {
      redis.resume();
    }
    assert.ok(await healthy(usher), `usher did not recover within ${RECOVER_MS} ms\n${usher.log}`);
    const st = await usher.get('/api/stats');
    assert.equal(st.status, 200, short(st));
    assert.equal(st.body.data.isPublisherLive, true, 'a stall loses no data');
    // The join refused during the stall may or may not have landed; either way
    // the invariants hold and the old seat is still there.
    const inv = checkInvariants(redis);
    assert.deepEqual(inv.problems, []);
    assert.ok(inv.seatOf.has('v-after'));
    const v = await usher.post('/api/token/viewer', { userId: 'v-after-stall' });
    assert.equal(v.status, 200, short(v));
  });
});

describe('usher started while Redis is down', () => {
  let redis; let usher; let ready;
  before(async () => {
    // A Redis object on a free port, not started yet.
    // (Two ports found free one after the other may be the same one.)
    redis = new Redis(await freePort(), mkdtempSync(join(tmpdir(), 'usher-redis-')));
    let port;
    do port = await freePort(); while (port === redis.port);
    usher = new Usher(port, redis, ENV);
    // restart() spawns synchronously and then waits for /health 200, which
    // cannot happen yet: keep the promise, don't await it.
    ready = usher.restart();
    ready.catch(() => {});
  });
  after(async () => {
    await usher?.close();
    await redis?.close();
  });

  it('(c) keeps running degraded, then becomes healthy when Redis appears', async () => {
    // Wait until it listens at all.
    const up = await eventually(async () => (await timed(usher, 'GET', '/health')).status > 0, 15000);
    assert.ok(up, `usher never answered\n${usher.log}`);
    const exited = await Promise.race([usher.exited, sleep(2000).then(() => null)]);
    assert.equal(exited, null, `usher exited: ${JSON.stringify(exited)}\n${usher.log}`);

    const h = await timed(usher, 'GET', '/health');
    assert.ok(h.ms < BOUND_MS, `/health took ${h.ms} ms`);
    assert.equal(h.status, 503, short(h));
    assert.equal(healthStatus(h), 'degraded', short(h));
    const s = await timed(usher, 'GET', '/api/stats');
    assert.ok(s.ms < BOUND_MS, `/api/stats took ${s.ms} ms`);
    assert.equal(s.status, 503, short(s));
    assert.equal(s.body.error.code, 'SERVICE_UNAVAILABLE');
    assert.ok(s.headers['retry-after']);
    // The log line comes over a pipe of its own: wait for it, don't race it.
    assert.ok(await eventually(() => /redis/i.test(usher.log), 5000), `the log should say Redis is unreachable\n${usher.log}`);

    await redis.restart();
    assert.ok(await healthy(usher), `usher did not become healthy within ${RECOVER_MS} ms\n${usher.log}`);
    const pub = await usher.post('/api/token/publisher', { userId: 'publisher-1' });
    assert.equal(pub.status, 200, short(pub));
    const v = await usher.post('/api/token/viewer', { userId: 'late-viewer' });
    assert.equal(v.status, 200, short(v));
    assert.deepEqual(checkInvariants(redis).problems, []);
  });
});

describe('SIGTERM with requests in flight', () => {
  let redis; let usher;
  before(async () => {
    ({ redis, usher } = await startLive(ENV));
  });
  after(async () => {
    await usher?.close();
    await redis?.close();
  });

  it('(d) answers in flight are complete JSON and the exit code is 0', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
    let first;
    const gotFirst = new Promise((r) => { first = r; });
    const reqs = Array.from({ length: 50 }, (_, i) => {
      const p = i % 3 === 2
        ? call(usher, agent, 'GET', '/api/stats')
        : call(usher, agent, 'POST', '/api/token/viewer', { userId: `term-${i}` });
      p.then(first, first);
      return p.then((r) => ({ ok: true, i, r }), (e) => ({ ok: false, i, e }));
    });
    await gotFirst; // some are answered, the rest are in flight
    const status = await usher.stop('SIGTERM');
    const results = await Promise.all(reqs);
    agent.destroy();

    const answered = results.filter((x) => x.ok);
    assert.ok(answered.length > 0);
    for (const { i, r } of answered) {
      assert.equal(typeof r.body, 'object', `request ${i}: not complete JSON: ${String(r.body).slice(0, 200)}`);
      assert.equal(typeof r.body.success, 'boolean', `request ${i}: ${short(r)}`);
      assert.match(r.body.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, `request ${i}: ${short(r)}`);
    }
    assert.deepEqual(status, { code: 0, signal: null }, `exit status\n${usher.log}`);

    // What was answered as seated is seated; the invariants hold.
    const inv = checkInvariants(redis);
    assert.deepEqual(inv.problems, []);
    for (const { i, r } of answered) {
      if (i % 3 !== 2 && r.status === 200) assert.ok(inv.seatOf.has(`term-${i}`), `term-${i} answered 200 but not seated`);
    }
  });
});
