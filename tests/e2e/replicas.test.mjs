// replicas.test.mjs — the replications IVS runs kept in agreement with
// Redis (src/reconcile/replicas.c), with STAGE_PROVIDER=aws against the fake
// IVS and two usher processes sharing one Redis:
//  - a replication stopped behind usher's back is started again, once;
//  - a replication usher does not know (into a stage it does not record)
//    is stopped, once;
//  - a check whose lease moved to the other process between its look at
//    IVS and its act acts on nothing: one stop, one event;
//  - a publisher that joins again under a new participant id (IVS gives one
//    per join) gets every overflow stage fed from the new id and none from
//    the old, whether IVS stopped the old ones already or not, each start
//    made once;
// each with its stage event, and Redis's record naming the id replicated.
// The local provider answers ListParticipantReplicas from its own record:
// the same re-replication there, on its participant model, and for stages
// chained (REPLICATION_MAX 1: the local provider has no quota), a chained
// replication kept while it runs and fed anew after a new id.
// And the orphan sweep's grace is counted from the first sweep that saw an
// unrecorded stage in any process (kept in Redis), across restarts.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { start as startFake } from '../fake-ivs/fake-ivs.mjs';
import { Redis, Usher, PREFIX, sleep, waitFor, startLive } from './harness.mjs';
import { awsEnv, sharedKey, closeAll } from './aws-usher.mjs';

const STREAM = 'e2e-replicas';
const CAP = 2;
const VIEWERS = 6;                     // 4 stages with CAP 2: the master and 3 fed from it
const GRACE_S = 5;                     // ORPHAN_GRACE

describe('replications against IVS, two processes', () => {
  let fake, redis, u1, u2, key, master, publisher;
  before(async () => {
    fake = await startFake({ pageLimit: 2 });   // 3 replicas take 2 pages
    redis = await Redis.start();
    key = sharedKey();
    const env = awsEnv(fake, STREAM, {
      TOKEN_PRIVATE_KEY_FILE: key.file, AUTO_SCALE_ENABLED: 'true', MAX_VIEWERS_PER_STAGE: String(CAP),
      MAX_STAGES: '20', SCALER_INTERVAL_MS: '200', SCALER_LEASE_MS: '2000', SCALE_DOWN_COOLDOWN: '3600',
      REPLICATION_RETRY_MS: '200', PUBLISHER_POLL_INTERVAL: '1', RECONCILE_INTERVAL: '0', LOG_LEVEL: 'info',
      ORPHAN_SWEEP_INTERVAL: '1', ORPHAN_GRACE: String(GRACE_S),
      // The lease test stops a process (SIGSTOP) with a call to IVS under
      // way until the other has acted, up to 15 s on a loaded machine: the
      // call must outlive that pause, or it is tried afresh and answered
      // after the other's stop (then there is nothing left to judge).
      AWS_TIMEOUT_MS: '60000' });
    u1 = await Usher.start(redis, env);
    u2 = await Usher.start(redis, env);
    await waitFor(() => (master = redis.raw('GET', `${PREFIX}master_stage`)), { timeoutMs: 5000, what: 'the master' });
    const pub = (await u1.post('/api/token/publisher', { userId: 'pub' })).body.data;
    fake.connectParticipant(master, { participantId: pub.participantId, userId: 'pub', published: true });
    publisher = pub.participantId;
    for (let i = 0; i < VIEWERS; i++) {
      const u = i % 2 ? u2 : u1;
      await waitFor(async () => (await u.post('/api/token/viewer', { userId: `v${i}` })).status === 200,
        { timeoutMs: 30000, what: `viewer v${i} seated`, stepMs: 100 });
    }
    await waitFor(() => matches(publisher), { timeoutMs: 20000, what: 'every added stage fed' });
  });
  after(() => closeAll(u1, u2, redis, fake, key));

  const added = () => redis.raw('ZRANGE', `${PREFIX}stages`, 0, -1).split('\n').filter((a) => a && a !== master).sort();
  // stage_state: arn → the scaler's record of the stage.
  const records = () => {
    const lines = redis.raw('HGETALL', `${PREFIX}stage_state`).split('\n');
    const out = {};
    for (let i = 0; i + 1 < lines.length; i += 2) out[lines[i]] = JSON.parse(lines[i + 1]);
    return out;
  };
  // [dest, participant] of every replication IVS runs out of the master.
  const inIvs = () => fake.replications().filter((r) => r.sourceStageArn === master)
    .map((r) => [r.destinationStageArn, r.participantId]).sort();
  // IVS runs exactly one replication into each added stage, from id, and
  // Redis records each as running from id.
  function matches(id) {
    const want = added().map((a) => [a, id]);
    const rec = records();
    return want.length === VIEWERS / CAP && JSON.stringify(inIvs()) === JSON.stringify(want) &&
      added().every((a) => rec[a]?.replication === 'running' && rec[a]?.participant === id);
  }
  const calls = (op, pred = () => true) => fake.callsOf(op).filter((c) => c.status === 200 && pred(c.input));
  const events = async (type) => (await u1.get('/api/stage/events')).body.data.events.filter((e) => e.type === type);
  // Waits for two more checks by the lease holder, begun after this call: a
  // check lists from a first page (no nextToken) on, and a third first page
  // shows the second check done.
  const moreChecks = async () => {
    const firsts = () => calls('ListParticipantReplicas', (i) => !i.nextToken).length;
    const from = firsts();
    await waitFor(() => firsts() >= from + 3, { timeoutMs: 15000, what: 'two more checks' });
  };

  it('a replication stopped behind usher\'s back is started again, once', async () => {
    const dest = added()[0];
    const starts = calls('StartParticipantReplication').length;
    fake.invoke('StopParticipantReplication', { sourceStageArn: master, destinationStageArn: dest, participantId: publisher });
    assert.equal(matches(publisher), false);
    await waitFor(() => matches(publisher), { timeoutMs: 15000, what: 'the replication started again' });
    await moreChecks();                // more looks by the lease holder: nothing more is done
    assert.ok(matches(publisher));
    const again = calls('StartParticipantReplication').slice(starts);
    assert.deepEqual(again.map((c) => [c.input.destinationStageArn, c.input.participantId]), [[dest, publisher]],
      'one start, by one of the two processes');
    assert.ok((await events('replication_lost')).some((e) => e.stageArn === dest), 'a replication_lost event');
    assert.ok(calls('ListParticipantReplicas', (i) => i.nextToken).length > 0, 'the replicas listed page after page');
  });

  it('a replication usher does not know is stopped, once', async () => {
    const other = fake.createStage({ name: 'not-ushers' });
    fake.invoke('StartParticipantReplication', { sourceStageArn: master, destinationStageArn: other.arn, participantId: publisher });
    await waitFor(() => !fake.replications().some((r) => r.destinationStageArn === other.arn),
      { timeoutMs: 15000, what: 'the unknown replication stopped' });
    await moreChecks();
    const stops = calls('StopParticipantReplication', (i) => i.destinationStageArn === other.arn);
    assert.equal(stops.length, 1, 'stopped once, by one of the two processes');
    assert.equal(stops[0].input.participantId, publisher);
    assert.ok(matches(publisher), 'usher\'s own replications untouched');
    assert.ok((await events('replication_unknown')).some((e) => e.stageArn === other.arn), 'a replication_unknown event');
  });

  // The lease holder's check reads IVS, then Redis, then acts: when the
  // lease moves to the other process between its read and its act, the
  // new holder acts on what it finds and the old one must act on nothing
  // (its writes are fenced by the lease, and it acts only on a write taken).
  it('a check whose lease moved while IVS answered acts on nothing: one stop, one event', async () => {
    const holds = async (u) => /^usher_scaler_lease_holder 1$/m.test((await u.get('/metrics')).body);
    const [a, b] = (await holds(u1)) ? [u1, u2] : [u2, u1];
    assert.ok((await holds(a)) && !(await holds(b)), 'one process holds the lease');
    const other = fake.createStage({ name: 'not-ushers-either' });
    const stopsInto = () => fake.callsOf('StopParticipantReplication').filter((c) => c.input?.destinationStageArn === other.arn);
    const pageLimit = fake.pageLimit;
    fake.pageLimit = Infinity;         // one page: a's whole answer is the delayed one
    // A check under way may have read its first page before: its later
    // pages, from an offset, would miss what starts now. Once one check has
    // listed in a single page, the next call is a check's first and only.
    const before = fake.callsOf('ListParticipantReplicas').length;
    await waitFor(() => fake.callsOf('ListParticipantReplicas').slice(before)
      .some((c) => c.status === 200 && !c.input?.nextToken), { timeoutMs: 10000, what: 'a check in one page' });
    const lists = fake.callsOf('ListParticipantReplicas').length;
    fake.delay('ListParticipantReplicas', 60000, { count: 1 });
    try {
      // a's next check has asked IVS (its answer held until released, so
      // it lists what starts now; any other call in flight may be answered
      // before this test goes on, and would not)...
      let held;
      await waitFor(() => (held = fake.callsOf('ListParticipantReplicas').slice(lists).find((c) => c.delayed && c.status === 0)),
        { timeoutMs: 10000, what: 'the holder\'s check asking IVS', stepMs: 5 });
      // ... a replication usher does not know starts, a stalls past its
      // lease, and IVS answers a's call, listing it (a reads the answer
      // when it runs again): b takes the lease and stops it.
      fake.invoke('StartParticipantReplication', { sourceStageArn: master, destinationStageArn: other.arn, participantId: publisher });
      a.proc.kill('SIGSTOP');
      fake.release();
      await waitFor(() => held.status !== 0, { timeoutMs: 5000, what: 'the held call answered' });
      try {
        await waitFor(() => stopsInto().length > 0, { timeoutMs: 15000, what: 'the new holder stopping it' });
      } finally {
        a.proc.kill('SIGCONT');
      }
      assert.ok(await holds(b), 'b holds the lease');
      // a reads its answer (listing it active) and Redis, and judges the
      // same: it stops it again, or says why not.
      await waitFor(() => stopsInto().length > 1 || /replication_unknown \S+ not acted on: the lease moved/.test(a.log),
        { timeoutMs: 10000, what: 'a judging it' }).catch((e) => {
        throw new Error(`${e.message}; calls ${JSON.stringify(fake.callsOf('ListParticipantReplicas').slice(lists)
          .map((c) => [c.status, c.time]))}\na's log:\n${a.log.slice(-1500)}\nb's log:\n${b.log.slice(-1500)}`);
      });
      await moreChecks();                  // b's looks after: nothing more is stopped
    } finally {
      fake.pageLimit = pageLimit;
      fake.delay('ListParticipantReplicas', 0);
    }
    assert.equal(stopsInto().length, 1, `stopped once: ${JSON.stringify(stopsInto().map((c) => c.status))}`);
    assert.equal((await events('replication_unknown')).filter((e) => e.stageArn === other.arn).length, 1, 'one event');
    assert.ok(matches(publisher), 'usher\'s own replications untouched');
  });

  for (const keepReplications of [true, false]) {
    it(`a publisher joining again under a new participant id is replicated anew${keepReplications ? ' (the old replications still running)' : ''}`, async () => {
      const old = publisher;
      const starts = calls('StartParticipantReplication').length;
      const stops = calls('StopParticipantReplication').length;
      const rejoined = Date.now();
      const fresh = fake.rejoin(master, old, { keepReplications });
      publisher = fresh.participantId;   // the later tests' publisher, whatever fails here
      assert.equal(inIvs().filter(([, id]) => id === old).length, keepReplications ? VIEWERS / CAP : 0);
      await waitFor(() => matches(fresh.participantId), { timeoutMs: 20000, what: 'every added stage fed from the new id' });
      await moreChecks();
      assert.ok(matches(fresh.participantId), 'none from the old id, every added stage from the new');
      const started = calls('StartParticipantReplication').slice(starts);
      assert.deepEqual(started.map((c) => c.input.participantId), Array(VIEWERS / CAP).fill(fresh.participantId));
      assert.deepEqual(started.map((c) => c.input.destinationStageArn).sort(), added(), 'each stage started once');
      assert.ok(fake.stages().length <= 1 + 5 + 1, 'within REPLICATION_MAX');
      // What was left of the old ones was stopped, each once.
      const stopped = fake.callsOf('StopParticipantReplication').slice(stops).filter((c) => c.input?.participantId === old);
      if (keepReplications) assert.deepEqual(stopped.map((c) => [c.input.destinationStageArn, c.status]).sort(), added().map((a) => [a, 200]));
      assert.ok(stopped.length <= VIEWERS / CAP, `each old one stopped at most once: ${stopped.length}`);
      assert.equal(calls('StopParticipantReplication').slice(stops).filter((c) => c.input.participantId !== old).length, 0);
      // One event per stage, naming the ids. A check whose look found the
      // old id just before the rejoin lists the old id's replications just
      // after it: with IVS having stopped them (keepReplications false) it
      // rightly finds some or all of them gone (replication_lost of the old
      // id; pages read either side of the rejoin split the stages) and the
      // scaler starts those from the new id without a stale one. With them
      // kept, only the stale path can happen. (Asserting stale only failed
      // under load on that ordering; `publisher` set at the rejoin keeps such
      // a failure from failing the orphan test's last check as well.)
      const since = (await u1.get('/api/stage/events?limit=1000')).body.data.events
        .filter((e) => Date.parse(e.at) >= rejoined);
      const stale = since.filter((e) => e.type === 'replication_stale' &&
        e.detail === `the publisher joined again as ${fresh.participantId} (was ${old})`);
      const lost = since.filter((e) => e.type === 'replication_lost' &&
        e.detail === `IVS lists no replication of ${old} into it; started again`);
      assert.deepEqual([...stale, ...(keepReplications ? [] : lost)].map((e) => e.stageArn).sort(), added(),
        `a replication_stale event per stage${keepReplications ? '' : ' (or replication_lost of the old id)'}: ` +
        JSON.stringify(since));
      const judged = ['replication_stale', 'replication_lost', 'replication_adopted', 'replication_unknown'];
      assert.equal(since.filter((e) => judged.includes(e.type)).length, VIEWERS / CAP,
        `no other judgement of the check: ${JSON.stringify(since)}`);
    });
  }

  // Last: it restarts both processes.
  it('the orphan grace counts from the first sweep that saw the stage, in any process, across restarts', async () => {
    const orphan = fake.createStage({ name: 'lost-answer', tags: { 'usher:managed': 'true', 'usher:stream': STREAM } });
    const seen = () => redis.raw('HGET', `${PREFIX}orphan_seen`, orphan.arn);
    await waitFor(() => seen() !== '', { timeoutMs: 5000, what: 'the orphan noted in Redis' });
    const first = Number(seen());
    assert.ok(Math.abs(first - Date.now()) < 3000, `noted by Redis's clock: ${first}`);
    // Both processes restart well inside the grace; the grace still ends
    // when it would have: not counted afresh by the process that sweeps next.
    await sleep(2500);
    await u1.stop();
    await u2.stop();
    await u2.restart();
    await u1.restart();
    assert.equal(Number(seen()), first, 'the first sighting kept');
    await waitFor(() => !fake.stage(orphan.arn), { timeoutMs: 20000, what: 'the orphan deleted' });
    const deleted = fake.callsOf('DeleteStage').find((c) => c.input?.arn === orphan.arn && c.status === 200);
    const after = deleted.time - first;
    assert.ok(after >= GRACE_S * 1000 - 100, `not before the grace: ${after} ms`);
    assert.ok(after < GRACE_S * 1000 + 2000, `when the grace ended, not counted afresh after the restart: ${after} ms`);
    assert.equal(fake.callsOf('DeleteStage').filter((c) => c.input?.arn === orphan.arn).length, 1, 'deleted once');
    await waitFor(() => seen() === '', { timeoutMs: 5000, what: 'the deleted orphan forgotten' });
    assert.ok(matches(publisher), 'the replications untouched');
  });
});

describe('replications with the local provider model', () => {
  it('a publisher joining again under a new participant id is replicated anew', async () => {
    const { redis, usher } = await startLive({ LOCAL_PARTICIPANTS_API: 'true', RECONCILE_INTERVAL: '0',
      SCALER_INTERVAL_MS: '200', PUBLISHER_POLL_INTERVAL: '1', AUTO_SCALE_ENABLED: 'true',
      MAX_VIEWERS_PER_STAGE: String(CAP), SCALE_DOWN_COOLDOWN: '3600', REPLICATION_RETRY_MS: '200' });
    try {
      const master = redis.raw('GET', `${PREFIX}master_stage`);
      const publish = async (participantId, connected) => assert.equal((await usher.post('/api/test/participants',
        { stageArn: master, participantId, userId: 'publisher-1', published: true, connected })).status, 200);
      const added = () => redis.raw('ZRANGE', `${PREFIX}stages`, 0, -1).split('\n').filter((a) => a && a !== master);
      const fedFrom = (id) => added().length === 2 && added().every((a) => {
        const st = JSON.parse(redis.raw('HGET', `${PREFIX}stage_state`, a) || '{}');
        return st.replication === 'running' && st.participant === id;
      });
      await publish('pub-1', true);
      for (let i = 0; i < 4; i++)          // 3 stages with CAP 2: 2 fed from the master
        await waitFor(async () => (await usher.post('/api/token/viewer', { userId: `v${i}` })).status === 200,
          { timeoutMs: 15000, what: `viewer v${i} seated`, stepMs: 100 });
      await waitFor(() => fedFrom('pub-1'), { timeoutMs: 15000, what: 'the added stages fed from pub-1' });
      await publish('pub-2', true);
      await publish('pub-1', false);
      await waitFor(() => fedFrom('pub-2'), { timeoutMs: 15000, what: 'the added stages fed from pub-2' });
      const events = (await usher.get('/api/stage/events?limit=1000')).body.data.events;
      assert.deepEqual(events.filter((e) => e.type === 'replication_stale' && e.detail.includes('pub-2'))
        .map((e) => e.stageArn).sort(), added().sort());
    } finally {
      await usher.close();
      await redis.close();
    }
  });

  it('chained stages (REPLICATION_MAX 1) are checked too: kept while fed, fed anew after a new id', async () => {
    const { redis, usher } = await startLive({ LOCAL_PARTICIPANTS_API: 'true', RECONCILE_INTERVAL: '0',
      SCALER_INTERVAL_MS: '200', PUBLISHER_POLL_INTERVAL: '1', AUTO_SCALE_ENABLED: 'true', REPLICATION_MAX: '1',
      MAX_VIEWERS_PER_STAGE: String(CAP), SCALE_DOWN_COOLDOWN: '3600', REPLICATION_RETRY_MS: '200' });
    try {
      const master = redis.raw('GET', `${PREFIX}master_stage`);
      const publish = async (participantId, connected) => assert.equal((await usher.post('/api/test/participants',
        { stageArn: master, participantId, userId: 'publisher-1', published: true, connected })).status, 200);
      const info = (arn) => JSON.parse(redis.raw('HGET', `${PREFIX}stage_info`, arn) || '{}');
      const state = (arn) => JSON.parse(redis.raw('HGET', `${PREFIX}stage_state`, arn) || '{}');
      const added = () => redis.raw('ZRANGE', `${PREFIX}stages`, 0, -1).split('\n').filter((a) => a && a !== master);
      const fedFrom = (id) => added().length === 2 && added().every((a) => state(a).replication === 'running' &&
        state(a).participant === id);
      const events = async (type) => (await usher.get('/api/stage/events?limit=1000')).body.data.events
        .filter((e) => e.type === type);
      await publish('pub-1', true);
      for (let i = 0; i < 4; i++)          // 3 stages with CAP 2: one fed from the master, one from it
        await waitFor(async () => (await usher.post('/api/token/viewer', { userId: `v${i}` })).status === 200,
          { timeoutMs: 15000, what: `viewer v${i} seated`, stepMs: 100 });
      await waitFor(() => fedFrom('pub-1'), { timeoutMs: 15000, what: 'the added stages fed from pub-1' });
      const first = added().find((a) => info(a).parentStage === master);
      const chained = added().find((a) => info(a).parentStage === first);
      assert.ok(first && chained, 'one stage fed from the master, one from it');
      await sleep(3000);                   // 3 checks
      assert.deepEqual(await events('replication_lost'), [], 'a chained replication running is no lost one');
      assert.ok(fedFrom('pub-1'));
      await publish('pub-2', true);
      await publish('pub-1', false);
      await waitFor(() => fedFrom('pub-2'), { timeoutMs: 15000, what: 'both stages fed from pub-2' });
      assert.ok((await events('replication_stale')).some((e) => e.stageArn === chained), 'the chained stage judged stale');
    } finally {
      await usher.close();
      await redis.close();
    }
  });
});
