// concurrency.test.mjs — SPEC §3 invariants under concurrency, with two usher
// processes on one Redis.
//
//  1. A random workload (≥2,000 ops, ≥50 requests in flight, ~300 users):
//     joins with and without stageArn (so moves), duplicate joins,
//     heartbeats, leaves, double leaves, rejoins. Ops for one user are
//     serialized (one in flight per user, many users at once), so the test's
//     own "truth" is exact. Afterwards Redis, /api/stats and
//     /api/viewer/list on both processes must equal that truth.
//  2. Focused races: 200 simultaneous joins of one user (same stage, then
//     mixed stages) → one seat; 200 simultaneous leaves of one user → the
//     count drops by exactly one and never goes negative.
//  3. Capacity race: MAX_VIEWERS_PER_STAGE=10, one stage, 100 simultaneous
//     distinct joins → exactly 10 seats, the rest 503 STAGE_FULL.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Redis, Usher, PREFIX, enc, checkInvariants } from './harness.mjs';

// --- small helpers -------------------------------------------------------

// Like Usher#request, but through the given agent (so we control how many
// Like Usher#request, but through the given agent (so we control how many
// sockets are open at once).
const call = (u, agent, method, path, body) => u.request(method, path, { body, agent });

const keepAlive = (maxSockets) => new http.Agent({ keepAlive: true, maxSockets });
const pick = (arr) => arr[Math.floor(Math.random() * arr.length)];
const short = (r) => `${r.status} ${JSON.stringify(r.body).slice(0, 300)}`;

function countOf(redis, key) { return Number(redis.raw('GET', `${PREFIX}${key}`) || 0); }

// userId -> participantId from the viewer:heartbeat:{arn} hash.
function seatedPids(redis, arn) {
  const lines = redis.raw('HGETALL', `${PREFIX}viewer:heartbeat:${arn}`).split('\n').filter(Boolean);
  const out = new Map();
  for (let i = 0; i + 1 < lines.length; i += 2) out.set(lines[i], JSON.parse(lines[i + 1]).participantId);
  return out;
}

async function startPair(redis, env) {
  const a = await Usher.start(redis, env);
  const b = await Usher.start(redis, env);
  return [a, b];
}

async function goLive(u) {
  const r = await u.post('/api/token/publisher', { userId: 'publisher-1' });
  assert.equal(r.status, 200, short(r));
}

async function createStage(u, name) {
  const r = await u.post('/api/stage', { name });
  assert.equal(r.status, 201, short(r));
  const arn = r.body.data.stage.stageArn;
  assert.match(arn, /^arn:aws:ivs:/);
  return arn;
}

// --- 1 + 2: the random workload and focused races ------------------------

describe('two ushers, one Redis, concurrent viewers', () => {
  const ENV = { AUTO_SCALE_ENABLED: 'false', MAX_VIEWERS_PER_STAGE: '10000', HEARTBEAT_TIMEOUT: '600' };
  let redis; let ushers; let agents; let stages;

  before(async () => {
    redis = await Redis.start();
    ushers = await startPair(redis, ENV);
    agents = ushers.map(() => keepAlive(40));
    await goLive(ushers[0]);
    await createStage(ushers[0], 'conc-a');
    await createStage(ushers[1], 'conc-b');
    const list = await ushers[1].get('/api/stage/list');
    assert.equal(list.status, 200, short(list));
    stages = list.body.data.stages.map((s) => s.stageArn);
    assert.equal(stages.length, 3, `expected master + 2 stages, got ${stages}`);
  });

  after(async () => {
    agents?.forEach((a) => a.destroy());
    for (const u of ushers ?? []) await u.close();
    await redis?.close();
  });

  it('random workload over both processes ends exactly at the truth', async () => {
    const USERS = 300; const OPS = 2400; const WORKERS = 64;
    const truth = new Map();   // userId -> {arn, pid}: the seat each user must hold
    const lastPid = new Map(); // userId -> last participantId seen (for rejoins)
    const busy = new Set();
    const problems = [];
    let started = 0; let inFlight = 0; let maxInFlight = 0;
    const opCounts = {};

    const send = async (method, path, body) => {
      const i = Math.floor(Math.random() * ushers.length);
      inFlight++; maxInFlight = Math.max(maxInFlight, inFlight);
      try { return await call(ushers[i], agents[i], method, path, body); } finally { inFlight--; }
    };
    const expect = (cond, what, req, res) => {
      if (!cond) problems.push(`${what}: ${JSON.stringify(req)} -> ${short(res)}`);
    };

    // One op for one user; checks the answer against the truth and updates it.
    async function op(userId) {
      const seat = truth.get(userId);
      const r = Math.random();
      let kind;
      if (seat) kind = r < 0.15 ? 'dupJoin' : r < 0.35 ? 'joinStage' : r < 0.60 ? 'heartbeat'
        : r < 0.80 ? 'leave' : r < 0.90 ? 'rejoin' : 'heartbeatWrong';
      else kind = r < 0.40 ? 'join' : r < 0.70 ? 'joinStage' : r < 0.85 ? 'leave'
        : r < 0.93 ? 'rejoin' : 'heartbeat';
      opCounts[kind] = (opCounts[kind] || 0) + 1;

      if (kind === 'join' || kind === 'dupJoin' || kind === 'joinStage') {
        const req = { userId };
        if (kind === 'joinStage') req.stageArn = pick(stages);
        const res = await send('POST', '/api/token/viewer', req);
        const d = res.body?.data;
        expect(res.status === 200, 'join status', req, res);
        if (res.status !== 200) return;
        const want = req.stageArn ?? seat?.arn;
        if (want) expect(d.stageArn === want, 'join stage', req, res);
        else expect(stages.includes(d.stageArn), 'join stage known', req, res);
        expect(d.isNewViewer === !seat, `isNewViewer (seated: ${!!seat})`, req, res);
        if (seat && seat.arn === d.stageArn) expect(d.participantId === seat.pid, 'same participantId', req, res);
        if (seat && seat.arn !== d.stageArn) expect(d.movedFrom === seat.arn, 'movedFrom', req, res);
        truth.set(userId, { arn: d.stageArn, pid: d.participantId });
        lastPid.set(userId, d.participantId);
      } else if (kind === 'heartbeat' || kind === 'heartbeatWrong') {
        const arn = kind === 'heartbeat' && seat ? seat.arn : pick(stages.filter((s) => s !== seat?.arn));
        const req = { userId, stageArn: arn };
        const res = await send('POST', '/api/viewer/heartbeat', req);
        if (seat && seat.arn === arn) {
          expect(res.status === 200 && res.body.data.heartbeatUpdated === true, 'heartbeat', req, res);
        } else {
          expect(res.status === 404 && res.body?.error?.code === 'NOT_FOUND', 'heartbeat unseated 404', req, res);
        }
      } else if (kind === 'leave') {
        const req = { userId, stageArn: seat ? seat.arn : pick(stages) };
        const res = await send('POST', '/api/viewer/leave', req);
        expect(res.status === 200 && res.body.data.viewerLeft === true, 'leave', req, res);
        expect(res.body?.data?.wasSeated === !!seat, `wasSeated (seated: ${!!seat})`, req, res);
        truth.delete(userId);
      } else { // rejoin: same or other stage, with the participantId the user last had
        const pid = seat?.pid ?? lastPid.get(userId) ?? `pid-${userId}-${started}`;
        const req = { userId, stageArn: pick(stages), participantId: pid };
        const res = await send('POST', '/api/viewer/rejoin', req);
        expect(res.status === 200, 'rejoin status', req, res);
        if (res.status !== 200) return;
        const d = res.body.data;
        expect(d.stageArn === req.stageArn && d.participantId === pid, 'rejoin seat', req, res);
        expect(d.isNewViewer === !seat, `rejoin isNewViewer (seated: ${!!seat})`, req, res);
        truth.set(userId, { arn: req.stageArn, pid });
        lastPid.set(userId, pid);
      }
    }

    async function worker() {
      while (started < OPS) {
        started++;
        let u;
        do u = `user-${Math.floor(Math.random() * USERS)}`; while (busy.has(u));
        busy.add(u);
        try { await op(u); } finally { busy.delete(u); }
      }
    }
    await Promise.all(Array.from({ length: WORKERS }, worker));

    assert.deepEqual(problems.slice(0, 10), [], `${problems.length} wrong answers`);
    assert.ok(started >= 2000, `ops: ${started}`);
    assert.ok(maxInFlight >= 50, `only ${maxInFlight} requests in flight at once`);
    for (const k of ['join', 'dupJoin', 'joinStage', 'heartbeat', 'heartbeatWrong', 'leave', 'rejoin']) {
      assert.ok(opCounts[k] > 0, `op ${k} never ran: ${JSON.stringify(opCounts)}`);
    }

    // Redis holds exactly the truth.
    const inv = checkInvariants(redis);
    assert.deepEqual(inv.problems, []);
    const want = Object.fromEntries(stages.map((s) => [s, 0]));
    for (const { arn } of truth.values()) want[arn]++;
    assert.equal(inv.total, truth.size, 'total_viewers');
    for (const s of stages) assert.equal(countOf(redis, `viewers:${s}`), want[s], `viewers:${s}`);
    assert.equal(inv.seatOf.size, truth.size, 'number of seated users');
    for (const [u, seat] of truth) assert.equal(inv.seatOf.get(u), seat.arn, `stage of ${u}`);
    const pids = new Map(stages.flatMap((s) => [...seatedPids(redis, s)]));
    for (const [u, seat] of truth) assert.equal(pids.get(u), seat.pid, `participantId of ${u}`);

    // Both processes report the truth.
    for (const u of ushers) {
      const st = await u.get('/api/stats');
      assert.equal(st.status, 200, short(st));
      assert.equal(st.body.data.totalViewers, truth.size, `stats totalViewers on ${u.port}`);
      assert.equal(st.body.data.isPublisherLive, true);
      for (const s of stages) {
        const entry = st.body.data.stages.find((e) => e.stageId === s);
        assert.ok(entry, `stats on ${u.port} lacks ${s}`);
        assert.equal(entry.viewerCount, want[s], `stats viewerCount of ${s} on ${u.port}`);
      }
      const v = await u.get('/api/stats/viewers');
      assert.equal(v.body.data.totalViewers, truth.size, `stats/viewers on ${u.port}`);
      for (const s of stages) {
        const l = await u.get(`/api/viewer/list/${enc(s)}`);
        assert.equal(l.status, 200, short(l));
        assert.equal(l.body.data.totalViewers, want[s], `list totalViewers of ${s}`);
        const expected = [...truth].filter(([, seat]) => seat.arn === s).map(([id]) => id).sort();
        assert.deepEqual([...l.body.data.viewers].sort(), expected, `list viewers of ${s}`);
      }
    }
  });

  // n requests at once, alternating between the two processes, each on a
  // socket of its own.
  async function burst(n, make) {
    const wide = ushers.map(() => keepAlive(Infinity));
    try {
      return await Promise.all(Array.from({ length: n }, (_, i) => {
        const { method = 'POST', path, body } = make(i);
        return call(ushers[i % 2], wide[i % 2], method, path, body);
      }));
    } finally { wide.forEach((a) => a.destroy()); }
  }

  it('200 simultaneous joins of the same user give exactly one seat', async () => {
    const before = checkInvariants(redis).total;
    const res = await burst(200, () => ({ path: '/api/token/viewer', body: { userId: 'race-same' } }));
    const bad = res.filter((r) => r.status !== 200);
    assert.deepEqual(bad.slice(0, 3).map(short), [], `${bad.length} joins failed`);
    assert.equal(new Set(res.map((r) => r.body.data.stageArn)).size, 1, 'all answers name one stage');
    assert.equal(new Set(res.map((r) => r.body.data.participantId)).size, 1, 'all answers name one participantId');
    assert.equal(res.filter((r) => r.body.data.isNewViewer === true).length, 1, 'exactly one isNewViewer');
    const inv = checkInvariants(redis);
    assert.deepEqual(inv.problems, []);
    assert.equal(inv.total, before + 1);
    assert.equal(inv.seatOf.get('race-same'), res[0].body.data.stageArn);
  });

  it('200 simultaneous joins of one user into different stages give exactly one seat', async () => {
    const before = checkInvariants(redis).total;
    const res = await burst(200, (i) => ({ path: '/api/token/viewer',
      body: { userId: 'race-mixed', stageArn: stages[i % stages.length] } }));
    const bad = res.filter((r) => r.status !== 200);
    assert.deepEqual(bad.slice(0, 3).map(short), [], `${bad.length} joins failed`);
    assert.equal(res.filter((r) => r.body.data.isNewViewer === true).length, 1, 'exactly one isNewViewer');
    const inv = checkInvariants(redis);
    assert.deepEqual(inv.problems, []);
    assert.equal(inv.total, before + 1);
    assert.ok(stages.includes(inv.seatOf.get('race-mixed')), 'race-mixed holds a seat');
  });

  it('200 simultaneous leaves of one user drop the count by exactly one, never below zero', async () => {
    // A fresh stage holding only this user: a double decrement would go negative.
    const lonely = await createStage(ushers[0], 'race-lonely');
    const join = await ushers[1].post('/api/token/viewer', { userId: 'race-leaver', stageArn: lonely });
    assert.equal(join.status, 200, short(join));
    assert.equal(countOf(redis, `viewers:${lonely}`), 1);
    const before = checkInvariants(redis).total;

    const res = await burst(200, () => ({ path: '/api/viewer/leave',
      body: { userId: 'race-leaver', stageArn: lonely } }));
    const bad = res.filter((r) => r.status !== 200 || r.body.data.viewerLeft !== true);
    assert.deepEqual(bad.slice(0, 3).map(short), [], `${bad.length} leaves failed`);
    assert.equal(res.filter((r) => r.body.data.wasSeated === true).length, 1, 'exactly one wasSeated');
    assert.equal(countOf(redis, `viewers:${lonely}`), 0);
    const inv = checkInvariants(redis);
    assert.deepEqual(inv.problems, []);
    assert.equal(inv.total, before - 1);
    assert.equal(inv.seatOf.has('race-leaver'), false);

    // 200 leaves of users who never sat there change nothing either.
    const res2 = await burst(200, (i) => ({ path: '/api/viewer/leave',
      body: { userId: `race-ghost-${i % 7}`, stageArn: lonely } }));
    assert.ok(res2.every((r) => r.status === 200 && r.body.data.wasSeated === false),
      res2.map(short).find((s) => !s.includes('"wasSeated":false')));
    assert.equal(countOf(redis, `viewers:${lonely}`), 0);
    assert.equal(checkInvariants(redis).total, before - 1);
  });
});

// --- 3: capacity race ----------------------------------------------------

describe('capacity race: 10 seats, 100 simultaneous viewers', () => {
  const CAP = 10;
  let redis; let ushers; let wide; let master;

  before(async () => {
    redis = await Redis.start();
    ushers = await startPair(redis, { AUTO_SCALE_ENABLED: 'false', MAX_VIEWERS_PER_STAGE: String(CAP) });
    wide = ushers.map(() => keepAlive(Infinity));
    await goLive(ushers[0]);
    const list = await ushers[0].get('/api/stage/list');
    assert.equal(list.body.data.totalStages, 1, short(list));
    master = list.body.data.stages[0].stageArn;
  });

  after(async () => {
    wide?.forEach((a) => a.destroy());
    for (const u of ushers ?? []) await u.close();
    await redis?.close();
  });

  const at = (i, path, body) => call(ushers[i % 2], wide[i % 2], 'POST', path, body);
  const isFull = (r) => r.status === 503 && r.body?.error?.code === 'STAGE_FULL';

  it('exactly 10 of 100 simultaneous joins are seated, the rest get 503 STAGE_FULL', async () => {
    const res = await Promise.all(Array.from({ length: 100 },
      (_, i) => at(i, '/api/token/viewer', { userId: `cap-${i}` })));
    const ok = res.filter((r) => r.status === 200);
    const other = res.filter((r) => r.status !== 200 && !isFull(r));
    assert.deepEqual(other.slice(0, 3).map(short), [], 'answers neither 200 nor 503 STAGE_FULL');
    assert.equal(ok.length, CAP);
    assert.ok(ok.every((r) => r.body.data.stageArn === master));
    const inv = checkInvariants(redis, { capacity: CAP });
    assert.deepEqual(inv.problems, []);
    assert.equal(inv.total, CAP);
    assert.equal(inv.counts[master], CAP);
  });

  it('rejoins into the full stage are refused', async () => {
    const res = await Promise.all(Array.from({ length: 50 },
      (_, i) => at(i, '/api/viewer/rejoin', { userId: `cap-re-${i}`, stageArn: master, participantId: `p-${i}` })));
    assert.ok(res.every(isFull), res.map(short).find((s) => !s.startsWith('503')));
    const inv = checkInvariants(redis, { capacity: CAP });
    assert.deepEqual(inv.problems, []);
    assert.equal(inv.total, CAP);
  });

  it('leaves racing with joins never overfill the stage', async () => {
    const seated = [...checkInvariants(redis).seatOf.keys()];
    assert.equal(seated.length, CAP);
    const reqs = [
      ...seated.map((u) => ['/api/viewer/leave', { userId: u, stageArn: master }]),
      ...Array.from({ length: 40 }, (_, i) => ['/api/token/viewer', { userId: `cap-new-${i}` }]),
    ].sort(() => Math.random() - 0.5);
    const res = await Promise.all(reqs.map(([p, b], i) => at(i, p, b)));
    let joined = 0;
    res.forEach((r, i) => {
      if (reqs[i][0] === '/api/viewer/leave') assert.equal(r.status, 200, short(r));
      else if (r.status === 200) joined++;
      else assert.ok(isFull(r), short(r));
    });
    const inv = checkInvariants(redis, { capacity: CAP });
    assert.deepEqual(inv.problems, []);
    assert.ok(joined <= CAP, `${joined} joined`);
    assert.equal(inv.total, joined, 'all 10 left, so only the new joins remain');
  });
});
