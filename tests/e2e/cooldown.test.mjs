// cooldown.test.mjs — SCALE_DOWN_COOLDOWN holds across usher processes.
// The time of the scaler's last change (a stage added or drained) is kept
// in Redis, so a process that takes the scaler lease over, or one started
// afresh, does not drain a stage at its first tick when another process
// added one within the cooldown (README "Scaling"). Real Redis, real usher
// processes, the local stage provider; capacity 10, so 11 viewers need
// the master and two added stages, and with none seated one of those two
// may be drained once the cooldown allows.
//
//  1. Hand-over: A holds the lease and adds the stages; the viewers leave
//     and A stops (giving the lease back); B takes the lease and ticks
//     within the cooldown, yet drains only once SCALE_DOWN_COOLDOWN has
//     passed since the last stage was added — and then does.
//  2. Restart: the same with the only process stopped and started again.
//  3. A stage recorded between a tick's lease answer (which carries the
//     age of the last change) and its read of the stages: that tick does
//     not drain it (aws provider on the fake IVS, Redis paused so that
//     the order is certain; MONITOR shows it was).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { start as startFake } from '../fake-ivs/fake-ivs.mjs';
import { Redis, Usher, PREFIX, sleep, waitFor } from './harness.mjs';
import { awsEnv, sharedKey, closeAll } from './aws-usher.mjs';

const C = 10;
const COOLDOWN_MS = 10000;
const ENV = {
  AUTO_SCALE_ENABLED: 'true', MAX_VIEWERS_PER_STAGE: String(C), MAX_STAGES: '10',
  SCALER_INTERVAL_MS: '200', SCALER_LEASE_MS: '2000', SCALE_DOWN_COOLDOWN: String(COOLDOWN_MS / 1000),
  // The audience is what the test seats: nobody expires meanwhile.
  HEARTBEAT_TIMEOUT: '600', HEARTBEAT_CLEANUP_INTERVAL: '30',
};
const VIEWERS = 11;                  // stages needed: max(ceil(11/8), ceil(21/10)) = 3
const short = (r) => `${r.status} ${JSON.stringify(r.body).slice(0, 300)}`;

async function stageList(u) {
  const r = await u.get('/api/stage/list');
  assert.equal(r.status, 200, short(r));
  return r.body.data.stages;
}

async function events(u) {
  const r = await u.get('/api/stage/events?limit=1000');
  assert.equal(r.status, 200, short(r));
  return r.body.data.events;
}

// Seats `users` (joins refused for want of room are tried again), waits
// until the three stages they need are open, then has them all leave.
// Returns when the last stage was added (its scale_up event, ms).
async function seatThenLeave(u, users) {
  const seated = new Map();
  await waitFor(async () => {
    for (const userId of users.filter((x) => !seated.has(x))) {
      const r = await u.post('/api/token/viewer', { userId });
      if (r.status === 200) seated.set(userId, r.body.data.stageArn);
      else assert.equal(r.status, 503, short(r));
    }
    return seated.size === users.length;
  }, { timeoutMs: 30000, stepMs: 200, what: `${users.length} viewers seated` });
  await waitFor(async () => {
    const stages = await stageList(u);
    return stages.length === 3 && stages.every((s) => s.mode === 'open');
  }, { timeoutMs: 15000, what: 'three open stages, nothing draining' });
  for (const [userId, stageArn] of seated) {
    const r = await u.post('/api/viewer/leave', { userId, stageArn });
    assert.equal(r.status, 200, short(r));
  }
  const adds = (await events(u)).filter((e) => e.type === 'scale_up').map((e) => Date.parse(e.at));
  assert.ok(adds.length > 0, 'no scale_up event');
  return Math.max(...adds);
}

// Watches the scaler lease in the background: each renewal or taking by a
// holder other than `former` (the lease's TTL jumps back up: one scaler
// tick of that holder's, README "Scaling") is noted with its time.
function watchLease(redis, former) {
  const ticks = [];
  let running = true;
  const script = "return {redis.call('GET', KEYS[1]) or '', redis.call('PTTL', KEYS[1])}";
  const done = (async () => {
    let last = { holder: '', pttl: Infinity };
    while (running) {
      const [holder, pttl] = (await redis.rawAsync('EVAL', script, 1, `${PREFIX}scaler:lease`)).split('\n');
      const now = { holder, pttl: Number(pttl) };
      if (holder !== '' && holder !== former && (holder !== last.holder || now.pttl > last.pttl)) {
        ticks.push(Date.now());
      }
      last = now;
      await sleep(20);
    }
  })();
  return { ticks, stop: async () => { running = false; await done; } };
}

// After handOver() (which ends the lease holder's part), the next holder
// drains one stage, not before COOLDOWN_MS after lastAdd, and having
// ticked under the lease before then.
async function drainsAfterCooldown(t, redis, survivor, handOver, lastAdd) {
  const former = redis.raw('GET', `${PREFIX}scaler:lease`);
  assert.notEqual(former, '', 'a process holds the lease');
  const watch = watchLease(redis, former);
  const drainsBefore = (await events(survivor())).filter((e) => e.type === 'drain').length;
  await handOver();
  let drain;
  try {
    await waitFor(async () => {
      const drains = (await events(survivor())).filter((e) => e.type === 'drain');
      drain = drains.length > drainsBefore ? drains[0] : null;     // newest first
      return drain !== null;
    }, { timeoutMs: COOLDOWN_MS + 20000, stepMs: 100, what: 'a drain' });
  } finally {
    await watch.stop();
  }
  const drainAt = Date.parse(drain.at);
  const early = watch.ticks.filter((at) => at < lastAdd + COOLDOWN_MS);
  t.diagnostic(`new holder's first tick ${watch.ticks[0] - lastAdd} ms after the last add, ` +
    `${early.length} ticks within the cooldown; drain ${drainAt - lastAdd} ms after the last add`);
  assert.ok(drainAt - lastAdd >= COOLDOWN_MS,
    `drained ${drainAt - lastAdd} ms after a stage was added (SCALE_DOWN_COOLDOWN ${COOLDOWN_MS} ms)`);
  // The new holder had its chances within the cooldown (else this run
  // shows nothing: the machine was too slow for the cooldown chosen).
  assert.ok(early.length >= 3, `the new holder ticked ${early.length} times within the cooldown`);
  const stages = await stageList(survivor());
  const drained = stages.find((s) => s.stageArn === drain.stageArn);
  assert.ok(!drained || (drained.autoScaled && !drained.isMasterStage), 'an added stage was drained');
}

describe('SCALE_DOWN_COOLDOWN across processes', () => {
  let redis; let a; let b;

  before(async () => {
    redis = await Redis.start();
    a = await Usher.start(redis, ENV);
    await waitFor(() => redis.raw('GET', `${PREFIX}scaler:lease`) !== '', { timeoutMs: 15000, what: 'A takes the lease' });
    b = await Usher.start(redis, ENV);       // after A: B waits for the lease
    const pub = await a.post('/api/token/publisher', { userId: 'publisher-1' });
    assert.equal(pub.status, 200, short(pub));
  });

  after(async () => {
    await a?.close();
    await b?.close();
    await redis?.close();
  });

  it('a process taking the lease over keeps the cooldown of the stage another added', async (t) => {
    const lastAdd = await seatThenLeave(a, Array.from({ length: VIEWERS }, (_, i) => `h-${i}`));
    await drainsAfterCooldown(t, redis, () => b, () => a.stop(), lastAdd);
  });

  it('a restarted process keeps the cooldown of the stage it added before', async (t) => {
    // The drained stage goes once empty; then B alone adds one again.
    await waitFor(async () => (await stageList(b)).length === 2, { timeoutMs: 15000, what: 'the drained stage removed' });
    const lastAdd = await seatThenLeave(b, Array.from({ length: VIEWERS }, (_, i) => `r-${i}`));
    await drainsAfterCooldown(t, redis, () => b, async () => { await b.stop(); await b.restart(); }, lastAdd);
  });
});

// A stage IVS answers for while a tick is under way: the tick's lease
// answer (the age of the last change) was read before the stage was
// recorded, its read of the stages after, so the tick sees the new stage
// and must still count the cooldown from it. Redis is paused while the
// tick's lease call and the recording of the stages wait in it: with
// SCALE_DOWN_COOLDOWN an hour, nothing is drained.
describe('SCALE_DOWN_COOLDOWN: a stage added while a tick is under way', () => {
  const CAP = 2, DELAY_MS = 11000;     // past the 10 s a refused join counts as demand
  let fake, redis, usher, key;
  before(async () => {
    fake = await startFake();
    redis = await Redis.start();
    key = sharedKey();
    usher = await Usher.start(redis, awsEnv(fake, 'e2e-cooldown', {
      TOKEN_PRIVATE_KEY_FILE: key.file, AUTO_SCALE_ENABLED: 'true', MAX_VIEWERS_PER_STAGE: String(CAP),
      MAX_STAGES: '10', SCALER_INTERVAL_MS: '100', SCALER_LEASE_MS: '10000', REDIS_TIMEOUT_MS: '10000',
      SCALE_DOWN_COOLDOWN: '3600', JOIN_WAIT_MS: '0', PUBLISHER_POLL_INTERVAL: '1', AWS_TIMEOUT_MS: '20000',
      HEARTBEAT_TIMEOUT: '600', HEARTBEAT_CLEANUP_INTERVAL: '30', LOG_LEVEL: 'info' }));
    let master;
    await waitFor(() => (master = redis.raw('GET', `${PREFIX}master_stage`)), { timeoutMs: 5000, what: 'the master' });
    const pub = (await usher.post('/api/token/publisher', { userId: 'pub' })).body.data;
    fake.connectParticipant(master, { participantId: pub.participantId, userId: 'pub', published: true });
  });
  after(() => closeAll(usher, redis, fake, key));

  it('the stage recorded between the tick\'s lease and its read is not drained at once', async () => {
    fake.delay('CreateStage', DELAY_MS);
    // Two seated fill the master, one refused join is demand: 3 stages
    // needed, two added; then the two leave, and the demand lapses.
    const seated = [];
    await waitFor(async () => {
      const userId = `s${seated.length}`;
      const r = await usher.post('/api/token/viewer', { userId });
      if (r.status === 200) seated.push({ userId, stageArn: r.body.data.stageArn });
      return seated.length === CAP;
    }, { timeoutMs: 15000, what: 'the master full', stepMs: 100 });
    assert.equal((await usher.post('/api/token/viewer', { userId: 'refused' })).status, 503);
    const inFlight = () => fake.callsOf('CreateStage').filter((c) => c.status === 0).length;
    await waitFor(() => inFlight() === 2, { timeoutMs: 5000, what: 'two CreateStage calls', stepMs: 10 });
    const asked = Date.now();
    for (const s of seated) {
      assert.equal((await usher.post('/api/viewer/leave', s)).status, 200);
    }
    // Redis holds every command from just before IVS answers until after:
    // the tick's lease call, then both recordings, wait there in that order
    // (MONITOR shows the order Redis ran them in).
    const monitor = await redis.monitor();
    // The scaler's calls Redis ran, in order.
    const monitored = () => monitor.text().split('\n')
      .map((l) => /^\S+ \[\d+ [\d.:]+\] "FCALL" "(usher_lease|usher_stats|usher_stage_add)"/.exec(l)?.[1])
      .filter(Boolean).join(' ');
    let seen, ran;
    try {
      await sleep(asked + DELAY_MS - 700 - Date.now());
      redis.cli('CLIENT', 'PAUSE', '1500', 'ALL');
      await sleep(1700);               // no call to Redis meanwhile: it would block this process (the fake IVS too)
      const types = async () => (await usher.get('/api/stage/events?limit=100')).body.data.events.map((e) => e.type);
      await waitFor(async () => (await types()).filter((t) => t === 'scale_up').length === 2,
        { timeoutMs: 10000, what: 'both stages recorded' });
      // The ticks after: the one under way, and two more, have read the
      // stages and decided. A tick begins with its lease call, sent once
      // the tick before has made its decisions, whose writes go to Redis
      // on the same connection, earlier: three lease calls after the
      // recordings, and a drain, if any, is recorded. (usher_stats is
      // not counted: requests read it too.)
      const ticked = () => monitored().split(' usher_stage_add').at(-1).split(' ')
        .filter((f) => f === 'usher_lease').length >= 3;
      await waitFor(ticked, { timeoutMs: 15000, stepMs: 50, what: 'two more ticks after the recordings' })
        .catch((e) => { e.message += `; the scaler's calls: ${monitored().slice(-300)}`; throw e; });
      seen = await types();
    } finally {
      ran = monitored();
      monitor.stop();
    }
    assert.match(ran, /usher_lease usher_stage_add usher_stage_add usher_stats/,
      'a tick\'s lease call ran before both recordings, its read after');
    assert.deepEqual(seen.filter((t) => t === 'drain'), [], `drained within the cooldown: ${seen.join(', ')}`);
    assert.equal(redis.raw('ZCARD', `${PREFIX}stages`), '3', 'both added stages kept');
  });
});
