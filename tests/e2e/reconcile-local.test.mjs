// reconcile-local.test.mjs — reconciliation of seats with who is connected,
// kicks and the participants view, with the local provider's model of who
// is connected (LOCAL_PARTICIPANTS_API=true, driven through
// POST /api/test/participants). The same logic against the fake IVS:
// reconcile.test.mjs.
//
//  1. Ghosts: a seat whose participant never connected (a token never used)
//     and one whose participant disconnected while its heartbeats go on are
//     removed after RECONCILE_GRACE and not before; a connected one stays.
//     Each removal is a stage event with its reason; /api/stats/stages shows
//     the stage's last reconciliation.
//  2. Seats lost from Redis while viewers are connected come back (seated).
//  3. A viewer connected in another stage than its seat is moved there.
//  4. Joins and leaves racing reconciliation passes: SPEC §3 invariants after
//     every round; a viewer who left is not seated again by a pass.
//  5. Kick: DELETE /api/viewer/{userId} frees the seat (counts drop by one),
//     the model shows the participant disconnected; an unknown user is 404;
//     bad input is 400 and changes nothing.
//  6. The publisher followed in the model: offline after
//     PUBLISHER_OFFLINE_GRACE without a published participant (joins 404),
//     live again when one connects.
//  8. The library functions called directly with a read time before what
//     happened since: a leave or a seat taken after the read is not undone;
//     a full stage seats nobody (unseated); ghosts only before the cutoff.
//  7. Without LOCAL_PARTICIPANTS_API the test route is 404 and nothing is
//     reconciled.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLive, checkInvariants, PREFIX, sleep, waitFor, enc } from './harness.mjs';
import { ok, viewerCalls, ghostsRemoved, passesRead, stagesOf } from './reconcile-shared.mjs';

const GRACE_S = 3;
const env = {
  LOCAL_PARTICIPANTS_API: 'true', RECONCILE_INTERVAL: '1', RECONCILE_GRACE: String(GRACE_S),
  SCALER_INTERVAL_MS: '200', PUBLISHER_POLL_INTERVAL: '0', HEARTBEAT_TIMEOUT: '600',
};

describe('reconciliation with the local provider model', () => {
  let redis, usher, master;
  const connect = async (stageArn, participantId, userId, connected = true) =>
    ok(await usher.post('/api/test/participants', { stageArn, participantId, userId, connected }));
  const calls = viewerCalls(() => usher, () => redis);
  const { join, seated, invariants, events } = calls;
  // A DELETE with a body: node sends none without a Content-Length.
  const kick = (user, body) => usher.request('DELETE', `/api/viewer/${user}`, body === undefined ? {}
    : { raw: JSON.stringify(body), headers: { 'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(JSON.stringify(body))) } });

  before(async () => {
    ({ redis, usher } = await startLive(env));
    master = redis.raw('GET', `${PREFIX}master_stage`);
  });
  after(async () => {
    await usher?.close();
    await redis?.close();
  });

  it('removes ghost seats after the grace and not before', async () => {
    await ghostsRemoved(calls, { usher: () => usher, graceS: GRACE_S, timeoutMs: 12000,
      connect: (seat, user) => connect(seat.stageArn, seat.participantId, user),
      disconnect: (seat, user) => connect(seat.stageArn, seat.participantId, user, false) });
    const stages = ok(await usher.get('/api/stats/stages')).stages;
    const note = stages.find((s) => s.stageId === master).reconcile;
    assert.ok(note && note.lastReconciledAt, `a note: ${JSON.stringify(note)}`);
    assert.equal(typeof note.connected, 'number');
  });

  it('seats connected viewers again after Redis lost their seats', async () => {
    const a = await join('lost-a');
    const b = await join('lost-b');
    await connect(a.stageArn, a.participantId, 'lost-a');
    await connect(b.stageArn, b.participantId, 'lost-b');
    // The seats vanish (as when expired: no leave noted), counts kept consistent.
    const before = invariants();
    redis.raw('FCALL', 'usher_sweep', 4, `${PREFIX}stages`, `${PREFIX}total_viewers`, `${PREFIX}open_stages`,
      `${PREFIX}stage_slot`, PREFIX, Date.now() + 1, 100000);
    assert.ok(!seated(master, 'lost-a') && !seated(master, 'lost-b'));
    await waitFor(() => seated(master, 'lost-a') && seated(master, 'lost-b'), { timeoutMs: 8000, what: 'seated again' });
    assert.equal(invariants().total, before.total);
    const ev = (await events()).filter((e) => e.type === 'reconcile_seated');
    assert.ok(ev.some((e) => e.detail.includes('lost-a') && e.detail.includes('without a seat')));
  });

  it('moves a viewer connected in another stage there', async () => {
    const other = ok(await usher.post('/api/stage', { name: 'other' })).stage.stageArn;
    const v = await join('mover');
    const from = v.stageArn;
    const to = from === other ? master : other;
    await sleep(1100);                 // its seat is older than the next read
    await connect(to, 'mover-elsewhere', 'mover');
    await waitFor(() => seated(to, 'mover'), { timeoutMs: 8000, what: 'moved' });
    assert.ok(!seated(from, 'mover'));
    invariants();
    const ev = (await events()).filter((e) => e.type === 'reconcile_moved');
    assert.ok(ev.some((e) => e.detail.includes('mover') && e.stageArn === to));
  });

  it('joins and leaves racing passes never double count or lose a seat', async () => {
    for (let round = 0; round < 12; round++) {
      const users = Array.from({ length: 6 }, (_, i) => `race-${round}-${i}`);
      const joined = await Promise.all(users.map(join));
      await Promise.all(joined.map((j, i) => connect(j.stageArn, j.participantId, users[i])));
      await sleep(200 + (round % 4) * 300);
      // Half leave (and disconnect), racing the next pass.
      await Promise.all(joined.slice(0, 3).map(async (j, i) => {
        ok(await usher.post('/api/viewer/leave', { userId: users[i], stageArn: j.stageArn }));
        await connect(j.stageArn, j.participantId, users[i], false);
      }));
      invariants();
    }
    await passesRead(usher, stagesOf(redis));   // passes after every leave
    const inv = invariants();
    for (let round = 0; round < 12; round++) {
      for (let i = 0; i < 6; i++) {
        assert.equal(inv.seatOf.has(`race-${round}-${i}`), i >= 3, `race-${round}-${i}`);
      }
    }
  });

  it('kicks a viewer: the seat goes, the model shows it disconnected; unknown is 404', async () => {
    const v = await join('kicked');
    await connect(v.stageArn, v.participantId, 'kicked');
    const before = invariants().total;
    const r = ok(await usher.request('DELETE', `/api/viewer/kicked?reason=${enc('rude')}`));
    assert.equal(r.participantId, v.participantId);
    assert.equal(r.stageArn, v.stageArn);
    assert.equal(r.reason, 'rude');
    assert.equal(invariants().total, before - 1);
    assert.ok(!seated(v.stageArn, 'kicked'));
    const list = ok(await usher.get(`/api/stage/${enc(v.stageArn)}/participants`)).participants;
    const p = list.find((x) => x.participantId === v.participantId);
    assert.equal(p.state, 'DISCONNECTED');
    assert.equal(p.seated, false);
    const missing = await usher.request('DELETE', '/api/viewer/nobody-here');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'NOT_FOUND');
    // A reason in the body; a reason too long is 400 and changes nothing.
    const w = await join('kicked-2');
    const long = await kick('kicked-2', { reason: 'x'.repeat(129) });
    assert.equal(long.status, 400);
    assert.ok(seated(w.stageArn, 'kicked-2'));
    const r2 = ok(await kick('kicked-2', { reason: 'by body' }));
    assert.equal(r2.reason, 'by body');
    assert.equal((await usher.request('DELETE', '/api/viewer/kicked-2')).status, 404, 'a second kick');
    invariants();
  });

  it('lists participants beside their seats, page by page', async () => {
    const users = ['page-a', 'page-b', 'page-c'];
    for (const u of users) {
      const j = await join(u);
      await connect(master, `${u}-pid`, u);
      void j;
    }
    const seen = [];
    let next = null;
    do {
      const page = ok(await usher.get(`/api/stage/${enc(master)}/participants?maxResults=2${next ? `&nextToken=${next}` : ''}`));
      assert.ok(page.participants.length <= 2);
      seen.push(...page.participants);
      next = page.nextToken;
    } while (next);
    for (const u of users) {
      const p = seen.find((x) => x.participantId === `${u}-pid`);
      assert.ok(p, `${u} listed`);
      assert.equal(p.userId, u);
      assert.equal(p.state, 'CONNECTED');
      assert.ok(p.firstJoinTime);
    }
    for (const bad of ['maxResults=0', 'maxResults=101', 'maxResults=x', 'nextToken=%25%25']) {
      const r = await usher.get(`/api/stage/${enc(master)}/participants?${bad}`);
      assert.equal(r.status, 400, bad);
    }
    assert.equal((await usher.get('/api/stage/not-an-arn/participants')).status, 400);
  });

  it('refuses bad test-model input', async () => {
    for (const body of [{}, { stageArn: master, participantId: 'a b', userId: 'u' },
      { stageArn: master, participantId: 'p', userId: 'u', published: 'yes' }]) {
      assert.equal((await usher.post('/api/test/participants', body)).status, 400, JSON.stringify(body));
    }
  });
});

describe('without LOCAL_PARTICIPANTS_API', () => {
  it('the test route is 404 and seats are not reconciled', async () => {
    const { redis, usher } = await startLive({ RECONCILE_INTERVAL: '1', RECONCILE_GRACE: '1',
      SCALER_INTERVAL_MS: '200' });
    try {
      const master = redis.raw('GET', `${PREFIX}master_stage`);
      const r = await usher.post('/api/test/participants', { stageArn: master, participantId: 'p', userId: 'u' });
      assert.equal(r.status, 404);
      const monitor = await redis.monitor();
      try {
        const joined = Date.now();
        ok(await usher.post('/api/token/viewer', { userId: 'stays' }));
        // Past the grace and an interval (a pass would be due and the seat
        // a ghost), then three scaler ticks, which start the passes (each
        // begins with the lease call): none ran, none read the stage.
        await sleep(Math.max(0, joined + 2000 - Date.now()));
        const leases = monitor.fcalls('usher_lease');
        await waitFor(() => monitor.fcalls('usher_lease') >= leases + 3, { timeoutMs: 10000, what: 'three scaler ticks' });
        assert.doesNotMatch(monitor.text(), /"FCALL" "usher_reconcile_/, 'no reconcile step ran');
      } finally { monitor.stop(); }
      const note = ok(await usher.get('/api/stats/stages')).stages.find((st) => st.stageId === master).reconcile;
      assert.equal(note, null, 'no pass read the stage');
      assert.equal(redis.raw('HEXISTS', `${PREFIX}viewer:heartbeat:${master}`, 'stays'), '1');
      assert.equal((await usher.get(`/api/stage/${enc(master)}/participants`)).status, 404);
    } finally {
      await usher.close();
      await redis.close();
    }
  });
});

describe('the publisher followed in the local model', () => {
  it('offline after the grace when no published participant is connected, live again when one is', async () => {
    const { redis, usher } = await startLive({ LOCAL_PARTICIPANTS_API: 'true', RECONCILE_INTERVAL: '0',
      SCALER_INTERVAL_MS: '200', PUBLISHER_POLL_INTERVAL: '1', PUBLISHER_OFFLINE_GRACE: '2' });
    try {
      const master = redis.raw('GET', `${PREFIX}master_stage`);
      const status = () => redis.raw('GET', `${PREFIX}publisher:status`);
      const set = (connected) => usher.post('/api/test/participants',
        { stageArn: master, participantId: 'pub-1', userId: 'publisher-1', published: true, connected });
      ok(await set(true));
      // Past the grace (2 s), then two looks for the publisher: each ends
      // with a GET of publisher:status and judges on its answer (a write,
      // if any, sent before the next look begins).
      await sleep(2500);
      const monitor = await redis.monitor();
      try {
        // usher's own GETs (a client's address), not those inside functions ([0 lua]).
        const looks = () => monitor.text().split('\n')
          .filter((l) => /^\S+ \[\d+ [\d.:]+\] "GET" "/.test(l) && l.includes(`"${PREFIX}publisher:status"`)).length;
        await waitFor(() => looks() >= 2, { timeoutMs: 10000, what: 'two looks for the publisher' });
      } finally { monitor.stop(); }
      assert.equal(status(), 'live', 'a connected publisher keeps it live past the grace');
      ok(await set(false));
      const t0 = Date.now();
      await waitFor(() => status() === 'offline', { timeoutMs: 8000, what: 'offline' });
      assert.ok(Date.now() - t0 >= 1000, 'not before the grace');
      assert.equal((await usher.post('/api/token/viewer', { userId: 'late' })).status, 404);
      ok(await set(true));
      await waitFor(() => status() === 'live', { timeoutMs: 5000, what: 'live again' });
      ok(await usher.post('/api/token/viewer', { userId: 'late' }));
    } finally {
      await usher.close();
      await redis.close();
    }
  });
});

// The library's reconcile functions called directly (usher loaded them),
// with a read time before what happened since: each correction decides on
// the state of the moment, so none undoes a join or leave made after the
// read.
// The keys store.c declares for them.
const SEAT_KEYS = ['stages', 'total_viewers', 'viewer:left', 'open_stages', 'stage_slot', 'slot_stage', 'stage_slot_seq'];
const GHOST_KEYS = ['stages', 'total_viewers', 'open_stages', 'stage_slot'];

describe('reconcile_seat and reconcile_ghosts compare, then act', () => {
  let redis, usher, master, other;
  const fcall = (fn, keys, ...args) => redis.raw('FCALL', fn, keys.length, ...keys.map((k) => PREFIX + k), PREFIX, ...args);
  const seat = (arn, readAt, capacity, ...pairs) =>
    JSON.parse(fcall('usher_reconcile_seat', SEAT_KEYS, arn, readAt, Date.now(), capacity, ...pairs));
  const list = (x) => (Array.isArray(x) ? x : []);
  before(async () => {
    ({ redis, usher } = await startLive({ LOCAL_PARTICIPANTS_API: 'true', RECONCILE_INTERVAL: '0', PUBLISHER_POLL_INTERVAL: '0' }));
    master = redis.raw('GET', `${PREFIX}master_stage`);
    other = ok(await usher.post('/api/stage', { name: 'second' })).stage.stageArn;
  });
  after(async () => {
    await usher?.close();
    await redis?.close();
  });

  it('a leave after the read is not undone; one before it is', async () => {
    const j = ok(await usher.post('/api/token/viewer', { userId: 'leaver' }));
    const readAt = Date.now();
    await sleep(5);
    ok(await usher.post('/api/viewer/leave', { userId: 'leaver', stageArn: j.stageArn }));
    const out = seat(j.stageArn, readAt, 50, j.participantId, 'leaver');
    assert.deepEqual(list(out.seated), []);
    assert.equal(checkInvariants(redis).seatOf.has('leaver'), false);
    const later = seat(j.stageArn, Date.now() + 5, 50, j.participantId, 'leaver');
    assert.deepEqual(later.seated, ['leaver'], 'IVS read after the leave: seated');
    assert.deepEqual(checkInvariants(redis).problems, []);
  });

  it('a seat taken after the read is not moved; one taken before is', async () => {
    const readAt = Date.now();
    await sleep(5);
    const j = ok(await usher.post('/api/viewer/rejoin', { userId: 'fresh', stageArn: master, participantId: 'fresh-p' }));
    assert.equal(j.stageArn, master);
    assert.deepEqual(list(seat(other, readAt, 50, 'fresh-old', 'fresh').moved), []);
    assert.ok(checkInvariants(redis).seatOf.get('fresh') === master);
    const moved = seat(other, Date.now() + 5, 50, 'fresh-old', 'fresh').moved;
    assert.deepEqual(moved, [['fresh', master]]);
    const inv = checkInvariants(redis);
    assert.deepEqual(inv.problems, []);
    assert.equal(inv.seatOf.get('fresh'), other);
  });

  it('a full stage seats nobody more: unseated', async () => {
    const before = checkInvariants(redis);
    const cap = before.counts[other];
    const out = seat(other, Date.now(), cap, 'full-p', 'full-user');
    assert.deepEqual(out.unseated, ['full-user']);
    assert.deepEqual(checkInvariants(redis).problems, []);
    assert.equal(checkInvariants(redis).total, before.total);
  });

  it('ghosts: only seats neither joined nor seen after the cutoff go', async () => {
    const a = ok(await usher.post('/api/viewer/rejoin', { userId: 'ghost-a', stageArn: master, participantId: 'ga' }));
    void a;
    const cutoff = Date.now() - 60000;
    const gone = JSON.parse(fcall('usher_reconcile_ghosts', GHOST_KEYS, master, cutoff));
    assert.deepEqual(list(gone), [], 'joined after the cutoff: kept');
    const all = JSON.parse(fcall('usher_reconcile_ghosts', GHOST_KEYS, master, Date.now() + 1));
    assert.ok(all.includes('ghost-a'));
    const inv = checkInvariants(redis);
    assert.deepEqual(inv.problems, []);
    assert.equal(inv.counts[master], 0);
    assert.equal(fcall('usher_reconcile_seat', SEAT_KEYS,
      'arn:aws:ivs:ap-northeast-1:123456789012:stage/gone00000000', 0, 0, 50), '', 'a stage gone: ""');
  });
});
