// expiry.test.mjs — SPEC §4 heartbeat expiry, with two usher processes on one
// Redis, both sweeping (HEARTBEAT_TIMEOUT=2 s, HEARTBEAT_CLEANUP_INTERVAL=1 s).
//
// 40 viewers are seated over two stages; 20 keep heartbeating every 500 ms
// through both processes, 20 go silent. The silent ones must be removed with
// exactly the bookkeeping of a leave (hash, expiry index, counts), the others
// must stay; a late leave from an expired viewer changes nothing; an expired
// viewer can be seated again; once everyone is silent the counts reach zero.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis, Usher, PREFIX, sleep, checkInvariants, eventually, waitFor } from './harness.mjs';

const ENV = { AUTO_SCALE_ENABLED: 'false', MAX_VIEWERS_PER_STAGE: '1000',
  HEARTBEAT_TIMEOUT: '2', HEARTBEAT_CLEANUP_INTERVAL: '1' };
const short = (r) => `${r.status} ${JSON.stringify(r.body).slice(0, 300)}`;

// Who sits in each stage's heartbeat hash and expiry index, read without
// blocking the event loop (the heartbeat loop must keep its period while
// the test looks): {hash: Set of "user arn", expiry: Set of "user arn"}.
async function seats(redis, stages) {
  const hash = new Set(); const expiry = new Set();
  for (const arn of stages) {
    const [h, z] = await Promise.all([
      redis.rawAsync('HKEYS', `${PREFIX}viewer:heartbeat:${arn}`),
      redis.rawAsync('ZRANGE', `${PREFIX}viewer:expiry:${arn}`, 0, -1)]);
    for (const u of h.split('\n').filter(Boolean)) hash.add(`${u} ${arn}`);
    for (const u of z.split('\n').filter(Boolean)) expiry.add(`${u} ${arn}`);
  }
  return { hash, expiry };
}
const seat = (v) => `${v.userId} ${v.arn}`;
const totalViewers = async (redis) => Number(await redis.rawAsync('GET', `${PREFIX}total_viewers`));

describe('heartbeat expiry with two sweeping processes', () => {
  let redis; let ushers; let stages;
  const viewers = [];          // {userId, arn}
  let live = []; let silent = [];
  let beating = false; let beatLoop; let beatStart; const beatFailures = []; let beatRounds = 0;

  before(async () => {
    redis = await Redis.start();
    ushers = [await Usher.start(redis, ENV), await Usher.start(redis, ENV)];
    const pub = await ushers[0].post('/api/token/publisher', { userId: 'publisher-1' });
    assert.equal(pub.status, 200, short(pub));
    const st = await ushers[1].post('/api/stage', { name: 'expiry-b' });
    assert.equal(st.status, 201, short(st));
    const list = await ushers[0].get('/api/stage/list');
    stages = list.body.data.stages.map((s) => s.stageArn);
    assert.equal(stages.length, 2);
  });

  after(async () => {
    beating = false;
    await beatLoop;
    for (const u of ushers ?? []) await u.close();
    await redis?.close();
  });

  // Heartbeats for `live`, a round every 500 ms (from the start of one
  // round to the next, so a slow round does not stretch the period),
  // alternating processes, until stopped.
  async function heartbeatLoop() {
    for (let round = 0; beating; round++) {
      const t0 = Date.now();
      const res = await Promise.all(live.map((v, i) =>
        ushers[(round + i) % 2].post('/api/viewer/heartbeat', { userId: v.userId, stageArn: v.arn })));
      res.forEach((r, i) => { if (r.status !== 200) beatFailures.push(`${live[i].userId}: ${short(r)}`); });
      beatRounds++;
      await sleep(Math.max(0, 500 - (Date.now() - t0)));
    }
  }

  it('seats 40 viewers over both stages and processes', async () => {
    const res = await Promise.all(Array.from({ length: 40 }, (_, i) =>
      ushers[i % 2].post('/api/token/viewer', { userId: `exp-${i}`, stageArn: stages[Math.floor(i / 2) % 2] })));
    res.forEach((r) => assert.equal(r.status, 200, short(r)));
    res.forEach((r, i) => viewers.push({ userId: `exp-${i}`, arn: r.body.data.stageArn }));
    live = viewers.filter((_, i) => i % 2 === 0);   // 10 per stage keep beating
    silent = viewers.filter((_, i) => i % 2 === 1); // 10 per stage go silent
    const inv = checkInvariants(redis);
    assert.deepEqual(inv.problems, []);
    assert.equal(inv.total, 40);
    for (const s of stages) assert.equal(inv.counts[s], 20);
    for (const s of stages) {
      const indexed = redis.raw('ZRANGE', `${PREFIX}viewer:expiry:${s}`, 0, -1).split('\n').filter(Boolean);
      const want = viewers.filter((v) => v.arn === s).map((v) => v.userId);
      assert.deepEqual(indexed.sort(), want.sort(), `viewer:expiry:${s}`);
    }
    beating = true;
    beatStart = Date.now();
    beatLoop = heartbeatLoop();
  });

  it('removes the silent viewers and keeps the heartbeating ones', async () => {
    // Wait for the silent ones to go (timeout 2 s + sweep 1 s; generous for
    // a loaded machine), and at least 4 s (twice the timeout) from the first
    // heartbeat, so the heartbeating ones have outlived it twice over.
    const cleared = await eventually(async () => await totalViewers(redis) <= 20, 20000, 250);
    await sleep(Math.max(0, 4000 - (Date.now() - beatStart)));
    // And a sweep after that: one FCALL usher_sweep Redis runs from now
    // on judged every seat as it is at 4 s or later (a step is atomic).
    const monitor = await redis.monitor();
    try {
      await waitFor(() => monitor.fcalls('usher_sweep') >= 1, { timeoutMs: 10000, what: 'a sweep after 4 s' });
    } finally { monitor.stop(); }
    const now = await seats(redis, stages);
    assert.ok(cleared, `total_viewers still ${await totalViewers(redis)}`);
    const still = silent.filter((v) => now.hash.has(seat(v))).map((v) => v.userId);
    assert.deepEqual(still, [], 'silent viewers still seated');
    for (const v of silent) assert.equal(now.expiry.has(seat(v)), false, `${v.userId} left in viewer:expiry`);
    for (const v of live) assert.ok(now.hash.has(seat(v)) && now.expiry.has(seat(v)), `${v.userId} lost its seat`);
    assert.ok(beatRounds > 0, 'the heartbeat loop ran');
    assert.deepEqual(beatFailures, []);

    const inv = checkInvariants(redis);
    assert.deepEqual(inv.problems, []);
    assert.equal(inv.total, 20);
    for (const s of stages) assert.equal(inv.counts[s], 10, `viewers:${s}`);
    for (const u of ushers) {
      const st = await u.get('/api/stats');
      assert.equal(st.status, 200, short(st));
      assert.equal(st.body.data.totalViewers, 20, `stats on ${u.port}`);
      for (const s of stages) assert.equal(st.body.data.stages.find((e) => e.stageId === s)?.viewerCount, 10);
    }
    for (const [i, v] of silent.entries()) {
      const r = await ushers[i % 2].post('/api/viewer/heartbeat', { userId: v.userId, stageArn: v.arn });
      assert.equal(r.status, 404, `heartbeat of expired ${v.userId}: ${short(r)}`);
      assert.equal(r.body.error.code, 'NOT_FOUND');
    }
    assert.equal(checkInvariants(redis).total, 20, 'a 404 heartbeat must not seat anyone');
  });

  it('a late leave from an expired viewer changes nothing', async () => {
    const v = silent[0];
    const r = await ushers[1].post('/api/viewer/leave', { userId: v.userId, stageArn: v.arn });
    assert.equal(r.status, 200, short(r));
    assert.equal(r.body.data.viewerLeft, true);
    assert.equal(r.body.data.wasSeated, false);
    const inv = checkInvariants(redis);
    assert.deepEqual(inv.problems, []);
    assert.equal(inv.total, 20);
    for (const s of stages) assert.equal(inv.counts[s], 10);
  });

  it('an expired viewer can be seated again as a new viewer', async () => {
    const v = silent[1];
    const r = await ushers[0].post('/api/token/viewer', { userId: v.userId, stageArn: v.arn });
    assert.equal(r.status, 200, short(r));
    assert.equal(r.body.data.isNewViewer, true);
    assert.equal(checkInvariants(redis).total, 21);
  });

  it('once nobody heartbeats, every viewer expires and counts reach zero', async () => {
    beating = false;
    await beatLoop;
    assert.ok(beatRounds > 0, 'the heartbeat loop ran');
    assert.deepEqual(beatFailures, []);
    const empty = await eventually(async () => await totalViewers(redis) === 0, 20000, 250);
    const inv = checkInvariants(redis);
    assert.ok(empty, `total_viewers still ${inv.total}`);
    assert.deepEqual(inv.problems, []);
    for (const s of stages) {
      assert.equal(inv.counts[s], 0);
      assert.equal(redis.raw('ZCARD', `${PREFIX}viewer:expiry:${s}`), '0', `viewer:expiry:${s} not empty`);
    }
    const st = await ushers[1].get('/api/stats');
    assert.equal(st.body.data.totalViewers, 0);
  });
});
