// burst.test.mjs — a burst of viewers is seated while stages can still be
// added (issue 12, item 2).
//
// - MAX_VIEWERS_PER_STAGE=1, MAX_STAGES=3, publisher live: viewer A is
//   seated, viewer B right after waits for the stage the scaler adds (woken
//   by B's refusal, sized for A and B) and is seated in it, within JOIN_WAIT_MS.
// - MAX_STAGES=1 (no stage can be added): B gets 503 STAGE_FULL at once,
//   with Retry-After and details saying why and when room is expected;
//   JOIN_WAIT_MS=0 with a stage that could be added: 503 with Retry-After 1.
// - Capacity 20, MAX_STAGES=40: 500 joins from 100 concurrent clients are
//   all seated, the SPEC §3 invariants hold, and the stage count follows the
//   audience to what the policy needs for 500 (32).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { PREFIX, Usher, checkInvariants, startLive } from './harness.mjs';

const short = (r) => `${r.status} ${JSON.stringify(r.body).slice(0, 300)}`;

async function eventually(check, timeoutMs, stepMs = 100) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return check();
}

describe('the second viewer of a burst waits for the stage being added', () => {
  let redis, usher;
  before(async () => {
    ({ redis, usher } = await startLive({
      AUTO_SCALE_ENABLED: 'true', MAX_VIEWERS_PER_STAGE: '1', MAX_STAGES: '3',
    }));
  });
  after(async () => { await usher?.close(); await redis?.close(); });

  it('A 200, B right after 200 in another stage, within JOIN_WAIT_MS', async () => {
    const a = await usher.post('/api/token/viewer', { userId: 'burst-a' });
    assert.equal(a.status, 200, short(a));
    // timed: usher's part of the time (harness), not the test's own delays.
    const b = await usher.post('/api/token/viewer', { userId: 'burst-b' }, { timed: true });
    assert.equal(b.status, 200, short(b));
    assert.notEqual(b.body.data.stageArn, a.body.data.stageArn);
    assert.ok(b.ms < 3000, `B waited ${Math.round(b.ms)} ms`);
    assert.deepEqual(checkInvariants(redis, { capacity: 1 }).problems, []);
  });

  it('C is seated too (the third stage), D gets 503 STAGE_FULL with Retry-After at once', async () => {
    const c = await usher.post('/api/token/viewer', { userId: 'burst-c' });
    assert.equal(c.status, 200, short(c));
    const d = await usher.post('/api/token/viewer', { userId: 'burst-d' }, { timed: true });
    assert.equal(d.status, 503, short(d));
    assert.ok(d.ms < 1000, `no wait when no stage can be added (${Math.round(d.ms)} ms)`);
    assert.equal(d.body.error.code, 'STAGE_FULL');
    assert.match(d.headers['retry-after'] ?? '', /^[1-9]\d*$/);
    const det = d.body.error.details;
    assert.equal(det.retryAfterSeconds, Number(d.headers['retry-after']));
    assert.match(det.why, /3 stages are full/);
    assert.equal(typeof det.roomExpected, 'string');
  });
});

describe('a join on a process without the scaler lease waits for the stage its holder adds', () => {
  let redis, a, b;
  before(async () => {
    const env = { AUTO_SCALE_ENABLED: 'true', MAX_VIEWERS_PER_STAGE: '1', MAX_STAGES: '3' };
    ({ redis, usher: a } = await startLive(env));
    assert.ok(await eventually(() => redis.raw('GET', `${PREFIX}scaler:lease`) !== '', 5000), 'A holds the lease');
    b = await Usher.start(redis, env);
  });
  after(async () => { await a?.close(); await b?.close(); await redis?.close(); });

  it('A seats viewer 1; viewer 2 joins through B, waits and is seated', async () => {
    assert.equal((await a.post('/api/token/viewer', { userId: 'mp-1' })).status, 200);
    const two = await b.post('/api/token/viewer', { userId: 'mp-2' }, { timed: true });
    assert.equal(two.status, 200, short(two));
    assert.ok(two.ms < 3000, `waited ${Math.round(two.ms)} ms`);
    assert.deepEqual(checkInvariants(redis, { capacity: 1 }).problems, []);
  });
});

describe('JOIN_WAIT_MS=0: no wait, but a 503 that says when to come back', () => {
  let redis, usher;
  before(async () => {
    ({ redis, usher } = await startLive({
      AUTO_SCALE_ENABLED: 'true', MAX_VIEWERS_PER_STAGE: '1', MAX_STAGES: '3',
      JOIN_WAIT_MS: '0', SCALER_INTERVAL_MS: '60000',
    }));
  });
  after(async () => { await usher?.close(); await redis?.close(); });

  it('B gets 503 STAGE_FULL with Retry-After 1 while a stage can be added', async () => {
    assert.equal((await usher.post('/api/token/viewer', { userId: 'nw-a' })).status, 200);
    const b = await usher.post('/api/token/viewer', { userId: 'nw-b' });
    assert.equal(b.status, 503, short(b));
    assert.equal(b.body.error.code, 'STAGE_FULL');
    assert.equal(b.headers['retry-after'], '1');
    assert.equal(b.body.error.details.retryAfterSeconds, 1);
    // Its refusal woke the scaler (the interval is a minute): B is seated on retry.
    assert.ok(await eventually(async () =>
      (await usher.post('/api/token/viewer', { userId: 'nw-b' })).status === 200, 5000));
  });
});

describe('500 joins from 100 concurrent clients at capacity 20', () => {
  let redis, usher;
  const C = 20;
  before(async () => {
    ({ redis, usher } = await startLive({
      AUTO_SCALE_ENABLED: 'true', MAX_VIEWERS_PER_STAGE: String(C), MAX_STAGES: '40',
      // The local provider has no creation limit of its own; IVS's 5/s is the
      // default. Faster here so the test measures usher, not the pacing.
      STAGE_CREATE_RATE: '20', HEARTBEAT_TIMEOUT: '600',
    }));
  });
  after(async () => { await usher?.close(); await redis?.close(); });

  it('all are seated, and the stages follow the audience', async (t) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 100 });
    const answers = [];
    let next = 0;
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 100 }, async () => {
      while (next < 500) {
        const userId = `crowd-${next++}`;
        answers.push(await usher.request('POST', '/api/token/viewer', { body: { userId }, agent }));
      }
    }));
    const elapsed = Date.now() - t0;
    agent.destroy();
    const seated = answers.filter((r) => r.status === 200).length;
    const refused = answers.filter((r) => r.status !== 200);
    t.diagnostic(`500 joins in ${elapsed} ms: ${seated} seated, ${refused.length} refused`);
    for (const r of refused) {
      assert.equal(r.status, 503, short(r));
      assert.equal(r.body.error.code, 'STAGE_FULL');
      assert.match(r.headers['retry-after'] ?? '', /^[1-9]\d*$/, 'a refusal without Retry-After');
    }
    assert.equal(seated, 500, `${refused.length} refused while stages could be added`);
    const inv = checkInvariants(redis, { capacity: C });
    assert.deepEqual(inv.problems, []);
    assert.equal(inv.total, 500);
    // policy.h: max(ceil(500 / 16), ceil(520 / 20)) = 32 stages.
    let count = 0;
    assert.ok(await eventually(async () => {
      count = (await usher.get('/api/stage/list')).body.data.totalStages;
      return count === 32;
    }, 10000), `${count} stages, want 32`);
  });
});
