// reconcile.test.mjs — usher's counts made to agree with IVS (the fake IVS
// of tests/fake-ivs, 5 TPS enforced), with STAGE_PROVIDER=aws and short
// intervals set by settings. The same logic with the local provider's
// model: reconcile-local.test.mjs.
//
//  1. Ghost seats (a token never used; a viewer gone from IVS while its
//     heartbeats go on from a script) are removed after RECONCILE_GRACE and
//     not before; a connected viewer keeps its seat; GetStage and
//     ListParticipants (filterByState CONNECTED) are what was asked.
//  2. After FLUSHALL, the viewers IVS shows connected are seated again in
//     the master stage (found again by its tag) and the publisher is live
//     again from IVS.
//  3. A viewer connected in another stage than its seat is moved there.
//  4. Joins and leaves racing reconciliation passes: SPEC §3 invariants
//     after each of many rounds; viewers who left stay gone.
//  5. Kick: the fake sees DisconnectParticipant with the seat's participant
//     id, the counts drop by one; an unknown user is 404; IVS refusing is
//     503 with its words and the seat kept. The participants
//     view lists IVS's participants beside their seats, page by page.
//     A stage deleted in IVS behind usher's back is skipped (its note says
//     why) and the other stages are still reconciled.
//  6. The publisher leaves IVS → publisher:status offline after
//     PUBLISHER_OFFLINE_GRACE and viewer joins 404; back → live.
//  7. EventBridge events: a Participant Published event makes the
//     publisher live at once (no regular polling); duplicates, older events
//     and unknown detail-types are answered and change nothing; malformed
//     ones are 400.
//  8. A draining stage past DRAIN_TIMEOUT: its participants are disconnected
//     (DisconnectParticipant with the reason) before DeleteStage.
//  9. 10 stages of 300 participants at 5 TPS: a full pass completes (every
//     stage noted, 3000 seated) and a stage creation asked for during it is
//     answered within a second.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { start as startFake } from '../fake-ivs/fake-ivs.mjs';
import { Redis, Usher, PREFIX, sleep, checkInvariants, waitFor, enc } from './harness.mjs';
import { ok, viewerCalls, ghostsRemoved, passesRead, stagesOf } from './reconcile-shared.mjs';

const STREAM = 'e2e-reconcile';
const GRACE_S = 3;
const awsEnv = (fake, extra = {}) => ({ STAGE_PROVIDER: 'aws', STREAM_NAME: STREAM, ...fake.env(),
  AWS_EC2_METADATA_DISABLED: 'true', SCALER_INTERVAL_MS: '200', RECONCILE_INTERVAL: '1',
  RECONCILE_GRACE: String(GRACE_S), PUBLISHER_POLL_INTERVAL: '1', PUBLISHER_OFFLINE_GRACE: '2',
  HEARTBEAT_TIMEOUT: '600', ORPHAN_SWEEP_INTERVAL: '0', ...extra });
const dropKeys = (fake) => { for (const k of fake.publicKeys()) fake.invoke('DeletePublicKey', { arn: k.arn }); };

// Starts usher on the fake with a live publisher connected in IVS.
async function startOn(fake, redis, extra, headers = {}) {
  redis.cli('FLUSHALL');
  dropKeys(fake);
  const usher = await Usher.start(redis, awsEnv(fake, extra));
  await waitFor(() => redis.raw('GET', `${PREFIX}master_stage`), { timeoutMs: 10000, what: 'the master' });
  const master = redis.raw('GET', `${PREFIX}master_stage`);
  const pub = ok(await usher.post('/api/token/publisher', { userId: 'pub' }, { headers }));
  fake.connectParticipant(master, { participantId: pub.participantId, userId: 'pub', published: true });
  return { usher, master, pub };
}

describe('reconciliation against the fake IVS', () => {
  let fake, redis, usher, master, pub;
  const calls = viewerCalls(() => usher, () => redis);
  const { join, seated, invariants, events } = calls;

  before(async () => {
    fake = await startFake();
    redis = await Redis.start();
    ({ usher, master, pub } = await startOn(fake, redis));
  });
  after(async () => {
    await usher?.close();
    await redis?.close();
    await fake?.close();
  });

  it('removes ghost seats after the grace and not before', async () => {
    await ghostsRemoved(calls, { usher: () => usher, graceS: GRACE_S, timeoutMs: 15000,
      connect: (seat, userId) => fake.connectParticipant(seat.stageArn, { participantId: seat.participantId, userId }),
      disconnect: (seat) => fake.disconnectParticipant(seat.stageArn, seat.participantId) });
    const lists = fake.callsOf('ListParticipants').filter((c) => c.input?.filterByState === 'CONNECTED');
    assert.ok(lists.length > 0, 'ListParticipants filterByState=CONNECTED');
    assert.ok(lists.every((c) => c.input.sessionId), 'with the session GetStage gave');
    const note = ok(await usher.get('/api/stats/stages')).stages.find((s) => s.stageId === master).reconcile;
    assert.ok(note.lastReconciledAt);
    assert.ok(note.connected >= 1, JSON.stringify(note));
  });

  it('seats connected viewers again after FLUSHALL', async () => {
    const users = ['flush-a', 'flush-b', 'flush-c'];
    for (const u of users) {
      const j = await join(u);
      fake.connectParticipant(j.stageArn, { participantId: j.participantId, userId: u });
    }
    await sleep(1200);
    // Redis loses everything; usher starts again on it (as after a Redis
    // failover): the master is found again by its tag, the seats come back
    // from IVS, and the publisher, connected in IVS, is live again.
    await usher.stop();
    redis.cli('FLUSHALL');
    await usher.restart();
    await waitFor(() => redis.raw('GET', `${PREFIX}master_stage`) === master, { timeoutMs: 10000, what: 'the master again' });
    await waitFor(() => users.every((u) => seated(master, u)), { timeoutMs: 10000, what: 'seated again' });
    await waitFor(() => redis.raw('GET', `${PREFIX}publisher:status`) === 'live', { timeoutMs: 5000, what: 'live again' });
    const inv = invariants();
    assert.ok(inv.total >= users.length);
    const ev = (await events()).filter((e) => e.type === 'reconcile_seated');
    assert.ok(ev.some((e) => users.some((u) => e.detail.includes(u))));
  });

  it('moves a viewer connected in another stage there', async () => {
    const other = ok(await usher.post('/api/stage', { name: 'other' })).stage.stageArn;
    const v = await join('mover');
    const to = v.stageArn === other ? master : other;
    await sleep(1100);
    fake.connectParticipant(to, { participantId: 'mover-elsewhere', userId: 'mover' });
    await waitFor(() => seated(to, 'mover'), { timeoutMs: 10000, what: 'moved' });
    assert.ok(!seated(v.stageArn, 'mover'));
    invariants();
    assert.ok((await events()).some((e) => e.type === 'reconcile_moved' && e.stageArn === to && e.detail.includes('mover')));
  });

  it('joins and leaves racing passes never double count or lose a seat', async () => {
    const rounds = 10;
    for (let round = 0; round < rounds; round++) {
      const users = Array.from({ length: 4 }, (_, i) => `race-${round}-${i}`);
      const joined = await Promise.all(users.map(join));
      joined.forEach((j, i) => fake.connectParticipant(j.stageArn, { participantId: j.participantId, userId: users[i] }));
      await sleep(150 + (round % 4) * 300);
      await Promise.all(joined.slice(0, 2).map(async (j, i) => {
        ok(await usher.post('/api/viewer/leave', { userId: users[i], stageArn: j.stageArn }));
        fake.disconnectParticipant(j.stageArn, j.participantId);
      }));
      invariants();
    }
    await passesRead(usher, stagesOf(redis));   // passes after every leave
    const inv = invariants();
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < 4; i++) assert.equal(inv.seatOf.has(`race-${round}-${i}`), i >= 2, `race-${round}-${i}`);
    }
  });

  it('kicks: DisconnectParticipant with the seat\'s participant id, counts drop by one', async () => {
    const v = await join('kicked');
    fake.connectParticipant(v.stageArn, { participantId: v.participantId, userId: 'kicked' });
    const before = invariants().total;
    const r = ok(await usher.request('DELETE', `/api/viewer/kicked?reason=${enc('bye')}`));
    assert.equal(r.participantId, v.participantId);
    const call = fake.callsOf('DisconnectParticipant').at(-1);
    assert.equal(call.status, 200);
    assert.equal(call.input.participantId, v.participantId);
    assert.equal(call.input.stageArn, v.stageArn);
    assert.equal(call.input.reason, 'bye');
    assert.equal(invariants().total, before - 1);
    assert.equal(fake.participants(v.stageArn).find((p) => p.participantId === v.participantId).state, 'DISCONNECTED');
    const missing = await usher.request('DELETE', '/api/viewer/nobody');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'NOT_FOUND');
    await passesRead(usher, [v.stageArn]);   // a pass does not seat the kicked viewer again
    assert.ok(!seated(v.stageArn, 'kicked'));
    // IVS refusing the disconnect: 503 with its words, the seat kept.
    const w = await join('kept');
    fake.connectParticipant(w.stageArn, { participantId: w.participantId, userId: 'kept' });
    fake.failNext('DisconnectParticipant', { status: 403, code: 'AccessDeniedException', message: 'not allowed' });
    const refused = await usher.request('DELETE', '/api/viewer/kept');
    assert.equal(refused.status, 503);
    assert.match(refused.body.error.details.provider, /AccessDeniedException/);
    assert.ok(Number(refused.headers['retry-after']) > 0);
    assert.ok(seated(w.stageArn, 'kept'));
    invariants();
  });

  it('lists IVS\'s participants beside their seats, page by page', async () => {
    const present = await join('lister');
    fake.connectParticipant(present.stageArn, { participantId: present.participantId, userId: 'lister' });
    const arn = present.stageArn;
    for (let i = 0; i < 4; i++) fake.connectParticipant(arn, { participantId: `extra-${i}`, userId: `extra-${i}` });
    const seen = [];
    let next = null;
    let pages = 0;
    do {
      const page = ok(await usher.get(`/api/stage/${enc(arn)}/participants?maxResults=3${next ? `&nextToken=${enc(next)}` : ''}`));
      seen.push(...page.participants);
      next = page.nextToken;
      pages++;
    } while (next && pages < 50);
    assert.ok(pages > 1, 'more than one page');
    const inMaster = ok(await usher.get(`/api/stage/${enc(master)}/participants`)).participants;
    const p = inMaster.find((x) => x.userId === 'pub' && x.state === 'CONNECTED');
    assert.equal(p.published, true);
    assert.equal(p.seated, false, 'the publisher holds no seat');
    const listed = seen.find((x) => x.participantId === present.participantId);
    assert.equal(listed.state, 'CONNECTED');
    assert.equal(listed.seated, true);
    assert.equal(listed.seat.sameParticipant, true);
    assert.ok(listed.firstJoinTime);
    // A stage usher does not run is 404, and IVS is not asked.
    const unknown = await usher.get(`/api/stage/${enc('arn:aws:ivs:us-east-1:123456789012:stage/unknownStage1')}/participants`);
    assert.equal(unknown.status, 404);
    assert.equal(fake.callsOf('GetStage').filter((c) => c.input?.arn?.endsWith('unknownStage1')).length, 0);
  });

  it('a stage IVS cannot list is skipped and noted; the others are reconciled', async () => {
    const doomed = ok(await usher.post('/api/stage', { name: 'doomed' })).stage.stageArn;
    fake.invoke('DeleteStage', { arn: doomed });   // behind usher's back
    ok(await usher.post('/api/viewer/rejoin', { userId: 'ghost-late', stageArn: master, participantId: 'ghost-late-p' }));
    await waitFor(() => !seated(master, 'ghost-late'), { timeoutMs: 15000, what: 'the ghost in the master removed' });
    await waitFor(async () => {
      const s = ok(await usher.get('/api/stats/stages')).stages.find((x) => x.stageId === doomed);
      return s && /GetStage.*ResourceNotFound/.test(s.reconcile?.error ?? '');
    }, { timeoutMs: 10000, what: 'the doomed stage noted' });
    invariants();
  });

  it('follows the publisher in IVS: offline after the grace, joins 404; back live', async () => {
    fake.disconnectParticipant(master, pub.participantId);
    const t0 = Date.now();
    await waitFor(() => redis.raw('GET', `${PREFIX}publisher:status`) === 'offline', { timeoutMs: 10000, what: 'offline' });
    assert.ok(Date.now() - t0 >= 1000, 'not before the grace');
    const refused = await usher.post('/api/token/viewer', { userId: 'late' });
    assert.equal(refused.status, 404);
    assert.equal(refused.body.error.code, 'NOT_FOUND');
    fake.connectParticipant(master, { participantId: pub.participantId, userId: 'pub', published: true });
    await waitFor(() => redis.raw('GET', `${PREFIX}publisher:status`) === 'live', { timeoutMs: 10000, what: 'live' });
    ok(await usher.post('/api/token/viewer', { userId: 'late' }));
    assert.ok((await events()).some((e) => e.type === 'publisher_offline'));
  });
});

describe('EventBridge events as hints', () => {
  let fake, redis, usher, master, pub;
  const event = (id, time, detailType = 'IVS Stage Update', name = 'Participant Published', arn) => ({
    version: '0', id, 'detail-type': detailType, source: 'aws.ivs', account: fake.accountId, time,
    region: fake.region, resources: [arn ?? master],
    detail: { session_id: 'st-x', event_name: name, user_id: 'pub', participant_id: pub.participantId },
  });
  const status = () => redis.raw('GET', `${PREFIX}publisher:status`);

  before(async () => {
    fake = await startFake();
    redis = await Redis.start();
    ({ usher, master, pub } = await startOn(fake, redis, { PUBLISHER_POLL_INTERVAL: '0',
      RECONCILE_INTERVAL: '0', API_SECRET_KEY: 'k'.repeat(32), SKIP_AUTH: 'false' },
    { 'x-api-key': 'k'.repeat(32) }));
  });
  after(async () => {
    await usher?.close();
    await redis?.close();
    await fake?.close();
  });

  const key = { 'x-api-key': 'k'.repeat(32) };
  const post = (body) => usher.post('/api/ivs/events', body, { headers: key });

  it('a Participant Published event makes the publisher live at once', async () => {
    ok(await usher.put('/api/publisher/status', { status: 'offline' }, { headers: key }));
    assert.equal(status(), 'offline');
    const r = ok(await post(event('e-1', '2026-01-01T00:00:10Z')));
    assert.equal(r.taken, true);
    await waitFor(() => status() === 'live', { timeoutMs: 3000, what: 'live from the hint' });
  });

  it('duplicates, older events and unknown types are harmless', async () => {
    ok(await usher.put('/api/publisher/status', { status: 'offline' }, { headers: key }));
    const calls = fake.callsOf('ListParticipants').length;
    const dup = ok(await post(event('e-1', '2026-01-01T00:00:10Z')));
    assert.equal(dup.taken, false);
    const older = ok(await post(event('e-0', '2026-01-01T00:00:05Z')));
    assert.equal(older.taken, false);
    const unknown = ok(await post(event('e-2', '2026-01-01T00:00:20Z', 'IVS Something Else')));
    assert.equal(unknown.taken, false);
    const otherName = ok(await post(event('e-3', '2026-01-01T00:00:20Z', 'IVS Stage Update', 'Participant Joined')));
    assert.equal(otherName.taken, false);
    const other = ok(await post(event('e-4', '2026-01-01T00:00:20Z', 'IVS Stage Update', 'Participant Published',
      'arn:aws:ivs:us-east-1:123456789012:stage/abcdefabcdef')));
    assert.equal(other.taken, false);
    await sleep(500);
    assert.equal(status(), 'offline', 'nothing looked for, nothing changed');
    assert.equal(fake.callsOf('ListParticipants').length, calls);
    for (const bad of [{}, { id: 'x' }, { id: 'x', time: 'yesterday' }, { id: '', time: '2026-01-01T00:00:00Z' },
      { id: 'x'.repeat(200), time: '2026-01-01T00:00:00Z' }]) {
      const r = await post(bad);
      assert.equal(r.status, 400, JSON.stringify(bad));
    }
    assert.equal((await usher.post('/api/ivs/events', event('e-9', '2026-01-01T00:01:00Z'))).status, 401, 'the API key is needed');
  });

  it('another process sees the same duplicates', async () => {
    const second = await Usher.start(redis, awsEnv(fake, { PUBLISHER_POLL_INTERVAL: '0', RECONCILE_INTERVAL: '0',
      API_SECRET_KEY: 'k'.repeat(32), SKIP_AUTH: 'false' }));
    try {
      const first = ok(await post(event('e-10', '2026-01-01T00:02:00Z')));
      assert.equal(first.taken, true);
      const again = ok(await second.post('/api/ivs/events', event('e-10', '2026-01-01T00:02:00Z'), { headers: key }));
      assert.equal(again.taken, false, 'the duplicate delivered to another process');
      const older = ok(await second.post('/api/ivs/events', event('e-11', '2026-01-01T00:01:30Z'), { headers: key }));
      assert.equal(older.taken, false);
    } finally {
      await second.close();
    }
  });

  // Last here: it takes an event of now, later than the times above.
  it('an event dated ahead of the clock is not taken, and later events still are', async () => {
    const iso = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const ahead = ok(await post(event('e-20', '2099-01-01T00:00:00Z')));
    assert.equal(ahead.taken, false);
    assert.match(ahead.ignored, /ahead of this server's clock/);
    assert.equal(redis.raw('HGET', `${PREFIX}ivs_events`, master), '2026-01-01T00:02:00Z e-10', 'not recorded');
    for (const time of ['2026-13-01T00:00:00Z', '2026-02-30T00:00:00Z', '2026-01-01T24:00:00Z',
      '2026-01-01T00:00:60Z']) {
      const r = await post(event('e-21', time));
      assert.equal(r.status, 400, time);
      assert.deepEqual(r.body.error.details.fields, ['time'], time);
    }
    ok(await usher.put('/api/publisher/status', { status: 'offline' }, { headers: key }));
    const now = Date.now();
    const genuine = ok(await post(event('e-22', iso(now).replace('Z', '.900Z'))));
    assert.equal(genuine.taken, true);
    await waitFor(() => status() === 'live', { timeoutMs: 3000, what: 'live from the hint' });
    // Kept in whole seconds, so a later event with no fraction is later.
    const next = ok(await post(event('e-23', iso(now + 1000))));
    assert.equal(next.taken, true);
  });
});

describe('a full pass at 5 TPS', () => {
  let fake, redis, usher, master;
  before(async () => {
    fake = await startFake({ maxReplicationsPerParticipant: 20 });
    redis = await Redis.start();
    ({ usher, master } = await startOn(fake, redis, { RECONCILE_INTERVAL: '3600', MAX_VIEWERS_PER_STAGE: '400',
      MAX_STAGES: '20', REPLICATION_MAX: '20', PUBLISHER_POLL_INTERVAL: '0' }));
  });
  after(async () => {
    await usher?.close();
    await redis?.close();
    await fake?.close();
  });

  it('10 stages of 300 participants: the pass completes; a stage creation meanwhile is not delayed', async () => {
    const arns = [master];
    for (let i = 0; i < 9; i++) arns.push(ok(await usher.post('/api/stage', { name: `big-${i}` })).stage.stageArn);
    for (const arn of arns) {
      for (let i = 0; i < 300; i++) fake.connectParticipant(arn, { participantId: `${arn.split('/').pop()}-p${i}`, userId: `${arn.split('/').pop()}-u${i}` });
    }
    // A new pass: the interval is long, a restart starts one at once.
    const listed = fake.callsOf('ListParticipants').length;
    await usher.stop();
    await usher.restart();
    await waitFor(() => fake.callsOf('ListParticipants').length > listed + 1, { timeoutMs: 10000,
      what: 'the pass under way' });
    const created = await usher.post('/api/stage', { name: 'during-pass' }, { timed: true });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.ok(created.ms < 1000, `stage creation took ${created.ms} ms during the pass`);
    const createdAt = Date.now();
    await waitFor(async () => {
      const stages = ok(await usher.get('/api/stats/stages')).stages;
      return arns.every((a) => stages.find((s) => s.stageId === a)?.reconcile?.removed !== undefined);
    }, { timeoutMs: 60000, what: 'the pass done', stepMs: 500 });
    const inv = checkInvariants(redis);
    assert.deepEqual(inv.problems, []);
    const notes = ok(await usher.get('/api/stats/stages')).stages.map((s) => s.reconcile);
    assert.equal(inv.total, 3000, JSON.stringify(notes));
    const reads = notes.filter(Boolean).map((n) => Date.parse(n.lastReconciledAt));
    assert.ok(Math.max(...reads) > createdAt, 'the creation came while the pass was reading stages');
    const throttled = fake.calls.filter((c) => c.status === 429).length;
    assert.equal(throttled, 0, 'no call over the rate');
  });
});

describe('a draining stage past DRAIN_TIMEOUT', () => {
  let fake, redis, usher, master;
  before(async () => {
    fake = await startFake();
    redis = await Redis.start();
    ({ usher, master } = await startOn(fake, redis, { AUTO_SCALE_ENABLED: 'true', DRAIN_TIMEOUT: '1',
      RECONCILE_INTERVAL: '0', PUBLISHER_POLL_INTERVAL: '0' }));
  });
  after(async () => {
    await usher?.close();
    await redis?.close();
    await fake?.close();
  });

  it('disconnects its remaining participants, then is deleted', async () => {
    const other = ok(await usher.post('/api/stage', { name: 'closing' })).stage.stageArn;
    await waitFor(() => fake.replications().some((r) => r.destinationStageArn === other || r.destination === other),
      { timeoutMs: 10000, what: 'replication into the stage' });
    const seat = ok(await usher.post('/api/viewer/rejoin', { userId: 'stayer', stageArn: other, participantId: 'stayer-p1' }));
    assert.equal(seat.stageArn, other);
    fake.connectParticipant(other, { participantId: 'stayer-p1', userId: 'stayer' });
    // The stage drains (by hand here), long enough ago.
    const state = JSON.parse(redis.raw('HGET', `${PREFIX}stage_state`, other) || '{}');
    state.drainingSince = Date.now() - 5000;
    redis.raw('HSET', `${PREFIX}stage_state`, other, JSON.stringify(state));
    redis.raw('HSET', `${PREFIX}stage_mode`, other, 'draining');
    await waitFor(() => fake.callsOf('DisconnectParticipant').some((c) => c.input?.participantId === 'stayer-p1'),
      { timeoutMs: 10000, what: 'DisconnectParticipant' });
    const call = fake.callsOf('DisconnectParticipant').find((c) => c.input?.participantId === 'stayer-p1');
    assert.equal(call.input.stageArn, other);
    assert.match(call.input.reason, /closing/);
    await waitFor(() => !fake.stage(other), { timeoutMs: 10000, what: 'the stage deleted in IVS' });
    assert.equal(redis.raw('ZSCORE', `${PREFIX}stages`, other), '');
    const inv = checkInvariants(redis);
    assert.deepEqual(inv.problems, []);
    assert.ok(!inv.seatOf.has('stayer'));
    // The disconnect came before the deletion.
    const del = fake.callsOf('DeleteStage').find((c) => c.input?.arn === other);
    assert.ok(del.time >= call.time);
    void master;
  });
});
