// aws-chaining.test.mjs — REPLICATION_CHAINING with STAGE_PROVIDER=aws
// against the fake IVS (tests/fake-ivs), one usher, MAX_VIEWERS_PER_STAGE 2,
// REPLICATION_MAX 1, MAX_STAGES 3: the master feeds one overflow stage, and
// the third stage can only be fed from that one. In the overflow stage the
// publisher is a replica (its participant id, replicationType REPLICA), so
// that replica is what usher asks IVS to replicate. Whether IVS takes a
// replica as a source is not documented; the fake answers either way:
//  (a) taken (replicaAsSource): the chained stage opens and viewers are
//      seated there; StartParticipantReplication names the overflow stage
//      as the source and the publisher's participant id; the replicas check
//      lists the overflow stage's replications too: it leaves the chained
//      one alone while it runs, starts it again when stopped behind usher's
//      back (replication_lost), stops one into a stage usher does not feed
//      from there (replication_unknown); scaling down stops the chained one
//      with StopParticipantReplication from the overflow stage;
//  (b) refused (the fake's default, a 400 ValidationException naming the
//      participant): each try is a replication_failed stage event with IVS's
//      words and the advice to turn REPLICATION_CHAINING off, retried with
//      the back-off; the stage never opens, a join beyond the two open
//      stages gets 503 STAGE_FULL, and the master still runs only its one
//      replication (its quota untouched).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { start as startFake } from '../fake-ivs/fake-ivs.mjs';
import { Redis, Usher, PREFIX, sleep, waitFor, checkInvariants } from './harness.mjs';
import { awsEnv, sharedKey, closeAll } from './aws-usher.mjs';

const STREAM = 'e2e-chaining';
const CAP = 2;
const RETRY_MS = 200;                  // REPLICATION_RETRY_MS

// One usher with chaining on, a fake IVS (opts), the publisher live in the
// master stage: {fake, redis, usher, key, master, publisher}.
async function setUp(fakeOpts) {
  const fake = await startFake(fakeOpts);
  const redis = await Redis.start();
  const key = sharedKey();
  const usher = await Usher.start(redis, awsEnv(fake, STREAM, {
    TOKEN_PRIVATE_KEY_FILE: key.file, AUTO_SCALE_ENABLED: 'true', MAX_VIEWERS_PER_STAGE: String(CAP),
    MAX_STAGES: '3', REPLICATION_MAX: '1', REPLICATION_CHAINING: 'true', SCALER_INTERVAL_MS: '200',
    SCALER_LEASE_MS: '2000', SCALE_DOWN_COOLDOWN: '1', DRAIN_TIMEOUT: '5',
    REPLICATION_RETRY_MS: String(RETRY_MS), PUBLISHER_POLL_INTERVAL: '1', RECONCILE_INTERVAL: '0',
    ORPHAN_SWEEP_INTERVAL: '0', LOG_LEVEL: 'info' }));
  let master;
  await waitFor(() => (master = redis.raw('GET', `${PREFIX}master_stage`)), { timeoutMs: 5000, what: 'the master' });
  const pub = (await usher.post('/api/token/publisher', { userId: 'pub' })).body.data;
  fake.connectParticipant(master, { participantId: pub.participantId, userId: 'pub', published: true });
  return { fake, redis, usher, key, master, publisher: pub.participantId };
}

// Redis's hash `name` as {field: JSON value}.
function hashOf(redis, name) {
  const lines = redis.raw('HGETALL', `${PREFIX}${name}`).split('\n');
  const out = {};
  for (let i = 0; i + 1 < lines.length; i += 2) out[lines[i]] = JSON.parse(lines[i + 1]);
  return out;
}
// A stage's seating mode: 'waiting', 'draining', or '' (open).
const modeOf = (redis, arn) => redis.raw('HGET', `${PREFIX}stage_mode`, arn);
const stageArns = (redis) => redis.raw('ZRANGE', `${PREFIX}stages`, 0, -1).split('\n').filter(Boolean);
// The stage recorded as fed from parent, or undefined.
const childOf = (redis, parent) => Object.entries(hashOf(redis, 'stage_info'))
  .find(([, info]) => info.parentStage === parent)?.[0];

// Seats viewer userId, waiting until there is room; its stage ARN.
async function seat(usher, userId) {
  let arn;
  await waitFor(async () => {
    const r = await usher.post('/api/token/viewer', { userId });
    return r.status === 200 && (arn = r.body.data.stageArn);
  }, { timeoutMs: 30000, what: `viewer ${userId} seated`, stepMs: 100 });
  return arn;
}

describe('REPLICATION_CHAINING, IVS taking a replica as a source', () => {
  let s;
  before(async () => { s = await setUp({ replicaAsSource: true }); });
  after(() => closeAll(s?.usher, s?.redis, s?.fake, s?.key));

  it('feeds the third stage from the overflow stage, seats viewers there, stops it on the way down', async () => {
    const { fake, redis, usher, master, publisher } = s;
    const seated = new Map();
    for (let i = 0; i < 3 * CAP; i++) seated.set(`v${i}`, await seat(usher, `v${i}`));
    const first = childOf(redis, master);
    const chained = childOf(redis, first);
    assert.ok(first && chained, 'an overflow stage fed from the master, and one fed from it');
    assert.equal(stageArns(redis).length, 3);
    assert.equal([...seated.values()].filter((a) => a === chained).length, CAP, 'viewers seated in the chained stage');
    // IVS was asked to replicate the publisher's replica in the overflow stage.
    const starts = fake.callsOf('StartParticipantReplication').filter((c) => c.status === 200);
    assert.deepEqual(starts.map((c) => [c.input.sourceStageArn, c.input.destinationStageArn, c.input.participantId]),
      [[master, first, publisher], [first, chained, publisher]]);
    assert.deepEqual(fake.replications().map((r) => [r.sourceStageArn, r.destinationStageArn]).sort(),
      [[master, first], [first, chained]].sort());
    const state = hashOf(redis, 'stage_state')[chained];
    assert.equal(state.replication, 'running');
    assert.equal(state.participant, publisher);
    assert.equal(modeOf(redis, chained), '', 'the chained stage is open');
    assert.deepEqual(checkInvariants(redis, { capacity: CAP }).problems, []);
    // Full at MAX_STAGES.
    const refused = await usher.post('/api/token/viewer', { userId: 'one-too-many' });
    assert.equal(refused.status, 503);
    assert.equal(refused.body.error.code, 'STAGE_FULL');
    assert.equal(refused.body.error.details.stageCeiling, 3);
    // Replicas checks (every second) list the overflow stage's replications
    // too, and leave the chained one alone while it runs.
    const looks = () => fake.callsOf('ListParticipantReplicas')
      .filter((c) => c.status === 200 && c.input.sourceStageArn === first && c.input.participantId === publisher).length;
    const before = looks();
    await waitFor(() => looks() >= before + 2, { timeoutMs: 10000, what: 'two checks of the overflow stage' });
    const events = async (type) => (await usher.get('/api/stage/events')).body.data.events.filter((e) => e.type === type);
    for (const type of ['replication_unknown', 'replication_lost', 'replication_stale'])
      assert.deepEqual(await events(type), [], type);
    assert.equal(fake.callsOf('StopParticipantReplication').length, 0);
    assert.ok(fake.replications().some((r) => r.sourceStageArn === first && r.destinationStageArn === chained));
    // Stopped behind usher's back: judged lost and started again, from the
    // overflow stage.
    fake.invoke('StopParticipantReplication', { sourceStageArn: first, destinationStageArn: chained, participantId: publisher });
    await waitFor(async () => (await events('replication_lost')).some((e) => e.stageArn === chained),
      { timeoutMs: 10000, what: 'replication_lost for the chained stage' });
    await waitFor(() => fake.replications().some((r) => r.sourceStageArn === first && r.destinationStageArn === chained),
      { timeoutMs: 10000, what: 'the chained replication started again' });
    assert.equal(fake.callsOf('StartParticipantReplication').filter((c) => c.status === 200 &&
      c.input.sourceStageArn === first && c.input.destinationStageArn === chained).length, 2);
    // A replication out of the overflow stage into a stage usher does not
    // feed from it is stopped, from the overflow stage.
    const foreign = fake.createStage({ name: 'foreign' }).arn;
    fake.invoke('StartParticipantReplication', { sourceStageArn: first, destinationStageArn: foreign, participantId: publisher });
    await waitFor(() => !fake.replications().some((r) => r.destinationStageArn === foreign),
      { timeoutMs: 10000, what: 'the unknown replication stopped' });
    assert.deepEqual(fake.callsOf('StopParticipantReplication').filter((c) => c.input.destinationStageArn === foreign)
      .map((c) => [c.status, c.input.sourceStageArn, c.input.participantId]), [[200, first, publisher]]);
    assert.ok((await events('replication_unknown')).some((e) => e.stageArn === foreign && e.detail.includes(first)));
    // Everyone leaves: the chained stage (no children) goes first, its
    // replication stopped from the overflow stage by the publisher's id.
    for (const [user, arn] of seated)
      assert.equal((await usher.post('/api/viewer/leave', { userId: user, stageArn: arn })).status, 200);
    await waitFor(() => !stageArns(redis).includes(chained) && !fake.stages().some((x) => x.arn === chained),
      { timeoutMs: 40000, what: 'the chained stage removed' });
    const stops = fake.callsOf('StopParticipantReplication').filter((c) => c.input.destinationStageArn === chained);
    assert.deepEqual(stops.map((c) => [c.status, c.input.sourceStageArn, c.input.participantId]), [[200, first, publisher]]);
  });
});

describe('REPLICATION_CHAINING, IVS refusing a replica as a source', () => {
  let s;
  before(async () => { s = await setUp({}); });
  after(() => closeAll(s?.usher, s?.redis, s?.fake, s?.key));

  it('says so in replication_failed events, retries with back-off, opens nothing beyond the master\'s one', async () => {
    const { fake, redis, usher, master, publisher } = s;
    for (let i = 0; i < 2 * CAP; i++) await seat(usher, `v${i}`);
    const first = childOf(redis, master);
    assert.ok(first, 'the overflow stage fed from the master');
    let chained;
    await waitFor(() => (chained = childOf(redis, first)), { timeoutMs: 10000, what: 'a stage planned from the overflow stage' });
    const tries = () => fake.callsOf('StartParticipantReplication').filter((c) => c.input.sourceStageArn === first && c.status);
    await waitFor(() => tries().length >= 4, { timeoutMs: 20000, what: '4 chained starts' });
    for (const c of tries()) {
      assert.equal(c.status, 400);
      assert.equal(c.code, 'ValidationException');
      assert.equal(c.input.participantId, publisher);
      assert.equal(c.input.destinationStageArn, chained);
    }
    // The back-off: the 4th try waits at least 4 × REPLICATION_RETRY_MS after the 3rd.
    const [, , third, fourth] = tries();
    assert.ok(fourth.time - third.time >= 4 * RETRY_MS - 50, `back-off: ${fourth.time - third.time} ms`);
    const failed = (await usher.get('/api/stage/events')).body.data.events
      .filter((e) => e.type === 'replication_failed' && e.stageArn === chained);
    assert.ok(failed.length >= 3, `replication_failed events: ${failed.length}`);
    for (const e of failed) {
      assert.match(e.detail, /StartParticipantReplication: ValidationException \(validation\): participant \S+ is a replica/);
      assert.match(e.detail, /REPLICATION_CHAINING=false/);
    }
    assert.match(usher.log, /replication of \S+ from \S+ into \S+ refused: .*ValidationException/);
    assert.equal(modeOf(redis, chained), 'waiting', 'the chained stage never opens');
    const state = hashOf(redis, 'stage_state')[chained];
    assert.equal(state.replication, 'failed');
    assert.ok(state.attempts >= 4);
    // No stage beyond the two open: a join waits, then 503 STAGE_FULL.
    const refused = await usher.post('/api/token/viewer', { userId: 'one-too-many' });
    assert.equal(refused.status, 503);
    assert.equal(refused.body.error.code, 'STAGE_FULL');
    assert.equal(stageArns(redis).length, 3);
    // The master's quota untouched: its one replication, nothing else ran.
    assert.deepEqual(fake.replications().map((r) => [r.sourceStageArn, r.destinationStageArn, r.participantId]),
      [[master, first, publisher]]);
    assert.equal(fake.callsOf('StartParticipantReplication').filter((c) => c.input.sourceStageArn === master).length, 1);
    await sleep(500);
    assert.deepEqual(checkInvariants(redis, { capacity: CAP }).problems, []);
  });
});
