// aws-hostile-replicas.test.mjs — the replication check (reconcile/replicas.c)
// and the publisher search against a fake IVS that answers as a broken or
// hostile server would (tests/fake-ivs rewrite()), with one usher feeding
// one overflow stage from the master. Each bad answer ends the check with
// a clear log line and changes nothing:
//  - ListParticipantReplicas without a replicas array is no "nothing
//    replicated" (no replication judged lost, none started again);
//  - a replica whose destinationStageArn fails the ARN grammar is no
//    "unknown replication" (nothing stopped, no event naming it);
//  - a replica whose destinationSessionId is no StageSessionId (too long
//    to keep, or outside st-{13 of [a-zA-Z0-9]}) ends the listing: kept
//    neither whole nor cut, nothing started or stopped;
//  - the same nextToken again ends the listing;
//  - a participant whose id fails IVS's grammar is never taken for the
//    publisher (no call names it).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { start as startFake } from '../fake-ivs/fake-ivs.mjs';
import { Redis, Usher, PREFIX, waitFor } from './harness.mjs';
import { awsEnv, sharedKey, closeAll } from './aws-usher.mjs';

const STREAM = 'e2e-hostile-replicas';
const CAP = 2;

describe('replication check against hostile IVS answers', () => {
  let fake, redis, usher, key, master, publisher, dest;
  before(async () => {
    fake = await startFake();
    redis = await Redis.start();
    key = sharedKey();
    usher = await Usher.start(redis, awsEnv(fake, STREAM, {
      TOKEN_PRIVATE_KEY_FILE: key.file, AUTO_SCALE_ENABLED: 'true', MAX_VIEWERS_PER_STAGE: String(CAP),
      MAX_STAGES: '5', SCALER_INTERVAL_MS: '200', SCALER_LEASE_MS: '2000', SCALE_DOWN_COOLDOWN: '3600',
      REPLICATION_RETRY_MS: '200', PUBLISHER_POLL_INTERVAL: '1', RECONCILE_INTERVAL: '0', LOG_LEVEL: 'info',
      ORPHAN_SWEEP_INTERVAL: '0' }));
    await waitFor(() => (master = redis.raw('GET', `${PREFIX}master_stage`)), { timeoutMs: 5000, what: 'the master' });
    const pub = (await usher.post('/api/token/publisher', { userId: 'pub' })).body.data;
    fake.connectParticipant(master, { participantId: pub.participantId, userId: 'pub', published: true });
    publisher = pub.participantId;
    for (let i = 0; i < CAP; i++)
      await waitFor(async () => (await usher.post('/api/token/viewer', { userId: `v${i}` })).status === 200,
        { timeoutMs: 30000, what: `viewer v${i} seated`, stepMs: 100 });
    await waitFor(() => fake.replications().some((r) => r.sourceStageArn === master && r.participantId === publisher),
      { timeoutMs: 20000, what: 'the added stage fed' });
    dest = fake.replications().find((r) => r.sourceStageArn === master).destinationStageArn;
  });
  after(() => closeAll(usher, redis, fake, key));

  const events = async (type) => (await usher.get('/api/stage/events')).body.data.events.filter((e) => e.type === type);
  const calls = (op) => fake.callsOf(op).length;
  // Lets the check meet `answer` in 3 looks and says what usher did
  // meanwhile: a 4th call shows the 3rd look done (one process looks, one
  // look at a time).
  async function meet(op, answer) {
    const starts = calls('StartParticipantReplication'), stops = calls('StopParticipantReplication');
    const logFrom = usher.log.length;
    const rewritten = () => fake.callsOf(op).filter((c) => c.rewritten).length;
    const from = rewritten();
    fake.rewrite(op, answer);
    await waitFor(() => rewritten() >= from + 4, { timeoutMs: 15000,
      what: `4 ${op} calls` });
    fake.clearFaults();
    return { starts: calls('StartParticipantReplication') - starts, stops: calls('StopParticipantReplication') - stops,
      log: usher.log.slice(logFrom) };
  }

  it('a ListParticipantReplicas answer without a replicas array judges nothing lost', async () => {
    const r = await meet('ListParticipantReplicas', () => ({ body: { replicas: null } }));
    assert.equal(r.starts, 0, 'no replication started again');
    assert.ok(!(await events('replication_lost')).length, 'no replication_lost event');
    assert.match(r.log, /ListParticipantReplicas: IVS answered an answer without a replicas array/);
  });

  it('a replica whose destination is no stage ARN is not stopped', async () => {
    const odd = 'arn:aws:ivs:us-east-1:1:stage/../../x';
    const r = await meet('ListParticipantReplicas', (out) => ({ body: { replicas: [...(out.replicas ?? []),
      { ...out.replicas?.[0], destinationStageArn: odd }] } }));
    assert.equal(r.stops, 0, 'nothing stopped');
    assert.ok(!(await events('replication_unknown')).some((e) => e.stageArn === odd), 'no event names it');
    assert.match(r.log, /ListParticipantReplicas: IVS answered a replica whose destinationStageArn is no stage ARN/);
  });

  for (const [what, odd] of [['203 bytes', `st-${'a'.repeat(200)}`], ['outside the grammar', 'st-a/../bbbbbbb']]) {
    it(`a replica whose destinationSessionId is ${what} ends the listing`, async () => {
      const r = await meet('ListParticipantReplicas', (out) => ({ body: { replicas: (out.replicas ?? []).map((x) =>
        ({ ...x, destinationSessionId: odd })) } }));
      assert.equal(r.starts + r.stops, 0, 'nothing started or stopped');
      assert.match(r.log, /ListParticipantReplicas: IVS answered a replica whose destinationSessionId is no session id/);
    });
  }

  it('the same nextToken again ends the listing', async () => {
    const before = calls('ListParticipantReplicas');
    const r = await meet('ListParticipantReplicas', (out) => ({ body: { replicas: out.replicas ?? [], nextToken: 'again' } }));
    assert.ok(calls('ListParticipantReplicas') - before < 20, 'a few pages, no loop');
    assert.match(r.log, /ListParticipantReplicas: IVS answered the nextToken of the page before again/);
    assert.equal(r.starts + r.stops, 0, 'nothing started or stopped');
  });

  it('a participant whose id fails the grammar is never the publisher', async () => {
    const bad = 'bad id/../x';
    const named = () => fake.calls.filter((c) => c.input && Object.values(c.input).includes(bad)).length;
    const r = await meet('ListParticipants', (out) => ({ body: { participants: [{ participantId: bad,
      userId: 'x', state: 'CONNECTED', published: true, firstJoinTime: new Date().toISOString() }] } }));
    assert.equal(named(), 0, 'no call names the odd id');
    void r;
  });

  it('afterwards the replication into the added stage still runs', async () => {
    await waitFor(() => fake.replications().some((x) => x.destinationStageArn === dest),
      { timeoutMs: 10000, what: 'the replication running' });
  });
});
