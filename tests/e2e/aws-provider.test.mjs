// aws-provider.test.mjs — usher with STAGE_PROVIDER=aws against the fake
// IVS control plane (tests/fake-ivs: SigV4 checked independently, 5 TPS,
// replication and key quotas, WHIP hosts unlike stage ids).
//
//  1. Start: without MASTER_STAGE_ARN usher creates the master stage with
//     CreateStage, tagged usher:managed=true, usher:stream and
//     usher:role=master; a restart reuses it, and after Redis lost its data
//     it is found again by its tag (same ARN, no new CreateStage). With
//     MASTER_STAGE_ARN the stage is read (GetStage) and used; a missing one
//     stops the start with an error naming MASTER_STAGE_ARN; an unreachable
//     IVS stops it too (aws never means local).
//     Credentials from the container endpoint work (/health names the
//     source; no secret in the log).
//  2. The public key: no IVS_PUBLIC_KEY_ARN → usher imports its key (the
//     fake holds it, tokens' kid and /api/token/public-key's publicKeyArn
//     are its ARN) and a restart reuses it; an ARN whose key is another →
//     the start stops saying what to do.
//  3. Tokens carry the endpoints IVS gave (whip host ≠ stage id), recorded
//     in stage_endpoints, and verify with node:crypto against the imported
//     key. /health reports the provider (last call, throttles, errors).
//  4. Two usher processes ramp up to the replication ceiling and back down:
//     viewers join with MAX_VIEWERS_PER_STAGE=2; at most 1 + REPLICATION_MAX
//     stages ever exist in IVS; a join beyond the ceiling gets 503
//     STAGE_FULL with Retry-After and the ceiling's reason (also in
//     /api/stats/stages); the fake's stages and replications match Redis
//     afterwards; the publisher's participant id comes from ListParticipants.
//     Injected throttles (429) and 5xx are survived with no lost operation;
//     an injected 402 shows as its quota in the stage events, /health and
//     the log.
//  5. The pace is shared: 20 renames at once over both processes meet at
//     most one throttle (each pacing alone would meet ~10), and a stage
//     creation asked for meanwhile passes the queued renames.
//  6. A dropped CreateStage answer (twice: libcurl may resend once) leaves
//     stages no record names; the orphan sweep deletes them.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start as startFake } from '../fake-ivs/fake-ivs.mjs';
import { Redis, Usher, PREFIX, USHER_BIN, checkInvariants, freePort, waitFor } from './harness.mjs';
import { awsEnv as awsEnvFor, sharedKey, closeAll } from './aws-usher.mjs';

const STREAM = 'e2e-stream';

function decode(token) {
  const [h, p, s] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url')),
    claims: JSON.parse(Buffer.from(p, 'base64url')),
    signingInput: `${h}.${p}`,
    sig: Buffer.from(s, 'base64url'),
  };
}

const verifies = (t, pem) => crypto.verify('sha384', Buffer.from(t.signingInput),
  { key: crypto.createPublicKey(pem), dsaEncoding: 'ieee-p1363' }, t.sig);

// waitFor (harness), answering the check's last value.
async function waitUntil(check, timeoutMs, what) {
  let value;
  await waitFor(async () => (value = await check()), { timeoutMs, what, stepMs: 100 });
  return value;
}

// usher's environment for the fake.
const awsEnv = (fake, extra = {}) => awsEnvFor(fake, STREAM, extra);

// Runs usher expecting it to stop at start; resolves to {code, log}.
async function startFails(redis, env) {
  const dir = mkdtempSync(join(tmpdir(), 'usher-data-'));
  const port = await freePort();
  const proc = spawn(USHER_BIN, [], {
    env: { PATH: process.env.PATH, ASAN_OPTIONS: 'detect_leaks=1', API_HOST: '127.0.0.1',
      API_PORT: String(port), REDIS_URL: redis.url, REDIS_KEY_PREFIX: PREFIX, DATA_DIR: dir,
      SKIP_AUTH: 'true', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const timer = setTimeout(() => proc.kill('SIGKILL'), 30000);
  const code = await new Promise((r) => proc.once('exit', (c) => r(c)));
  clearTimeout(timer);
  rmSync(dir, { recursive: true, force: true });
  return { code, log };
}

// Each usher below has a data directory (a signing key) of its own: the
// region's 3 public keys are freed between tests.
const dropKeys = (fake) => { for (const k of fake.publicKeys()) fake.invoke('DeletePublicKey', { arn: k.arn }); };

const ours = (s) => s.tags['usher:managed'] === 'true' && s.tags['usher:stream'] === STREAM;

describe('AWS provider: start, keys, tokens', () => {
  let fake, redis;
  before(async () => {
    fake = await startFake();
    redis = await Redis.start();
  });
  after(async () => {
    await redis?.close();
    await fake?.close();
  });

  it('without MASTER_STAGE_ARN creates a tagged master stage and imports the key', async () => {
    const usher = await Usher.start(redis, awsEnv(fake));
    try {
      const master = await waitUntil(() => redis.raw('GET', `${PREFIX}master_stage`), 5000, 'the master');
      const stage = fake.stage(master);
      assert.ok(stage, `the master ${master} exists in IVS`);
      assert.ok(ours(stage), `tagged as usher's: ${JSON.stringify(stage.tags)}`);
      assert.equal(fake.callsOf('CreateStage').filter((c) => c.status === 200).length, 1);
      // The key was imported; its ARN is the kid.
      const keys = fake.publicKeys();
      assert.equal(keys.length, 1);
      const pk = (await usher.get('/api/token/public-key')).body.data;
      assert.equal(pk.publicKeyArn, keys[0].arn);
      assert.ok(crypto.createPublicKey(pk.publicKeyPem).equals(crypto.createPublicKey(keys[0].publicKeyMaterial)));
      // Tokens carry IVS's endpoints and verify.
      const pub = (await usher.post('/api/token/publisher', { userId: 'pub' })).body.data;
      const t = decode(pub.token);
      assert.equal(t.header.kid, keys[0].arn);
      assert.equal(t.claims.whip_url, stage.endpoints.whip);
      assert.equal(t.claims.events_url, stage.endpoints.events);
      assert.equal(pub.whipEndpoint, stage.endpoints.whip);
      assert.ok(!stage.endpoints.whip.includes(master.split('/').pop()), 'whip host is not the stage id');
      assert.equal(t.claims.resource, master);
      assert.ok(verifies(t, keys[0].publicKeyMaterial), 'the token verifies with the imported key');
      const viewer = (await usher.post('/api/token/viewer', { userId: 'v1' })).body.data;
      const vt = decode(viewer.token);
      assert.equal(vt.claims.whip_url, stage.endpoints.whip);
      assert.ok(verifies(vt, keys[0].publicKeyMaterial));
      // The endpoints are recorded beside the stage.
      assert.deepEqual(JSON.parse(redis.raw('HGET', `${PREFIX}stage_endpoints`, master)),
        { whip: stage.endpoints.whip, events: stage.endpoints.events });
      // /health reports the provider.
      const h = (await usher.get('/health')).body.data.services.ivs;
      assert.equal(h.provider, 'aws');
      assert.equal(h.region, fake.region);
      assert.equal(typeof h.lastCall.operation, 'string');
      assert.equal(h.lastCall.outcome, 'ok');
      assert.ok(h.lastCall.ageMs >= 0);
      assert.equal(h.throttlesLastMinute, 0);
      assert.equal(h.errorsLastMinute, 0);
      // A restart on the same data reuses the imported key and the master.
      await usher.stop();
      await usher.restart();
      assert.equal(fake.publicKeys().length, 1, 'no second import');
      assert.equal(fake.callsOf('CreateStage').filter((c) => c.status === 200).length, 1, 'no second master');
      const again = decode((await usher.post('/api/token/publisher', { userId: 'pub' })).body.data.token);
      assert.equal(again.header.kid, keys[0].arn);
      // Redis loses its data: the master is found again in IVS by its tag
      // (usher:role=master), not made anew.
      assert.equal(stage.tags['usher:role'], 'master');
      await usher.stop();
      redis.cli('FLUSHALL');
      await usher.restart();
      assert.equal(await waitUntil(() => redis.raw('GET', `${PREFIX}master_stage`), 5000, 'the master'), master);
      assert.equal(fake.callsOf('CreateStage').filter((c) => c.status === 200).length, 1, 'no new master');
      assert.deepEqual(JSON.parse(redis.raw('HGET', `${PREFIX}stage_endpoints`, master)).whip, stage.endpoints.whip);
    } finally {
      await usher.close();
    }
  });

  it('with MASTER_STAGE_ARN reads that stage and uses its endpoints', async () => {
    redis.cli('FLUSHALL');
    dropKeys(fake);
    const stage = fake.createStage({ name: 'operators-master' });
    const usher = await Usher.start(redis, awsEnv(fake, { MASTER_STAGE_ARN: stage.arn }));
    try {
      await waitUntil(() => redis.raw('GET', `${PREFIX}master_stage`), 5000, 'the master recorded');
      assert.ok(fake.callsOf('GetStage').some((c) => c.input?.arn === stage.arn && c.status === 200));
      assert.equal(redis.raw('GET', `${PREFIX}master_stage`), stage.arn);
      const pub = (await usher.post('/api/token/publisher', { userId: 'pub' })).body.data;
      assert.equal(pub.stageArn, stage.arn);
      assert.equal(decode(pub.token).claims.whip_url, stage.endpoints.whip);
      // IVS refusing a stage (402: the stage quota) is a 503 in IVS's words,
      // a stage event and /health's lastQuotaExceeded; nothing is recorded.
      const stagesBefore = redis.raw('ZCARD', `${PREFIX}stages`);
      fake.failNext('CreateStage', { status: 402, code: 'ServiceQuotaExceededException',
        message: 'stages per region: 1000 reached' });
      const refused = await usher.post('/api/stage', { name: 'one-more' });
      assert.equal(refused.status, 503);
      assert.equal(refused.body.error.code, 'SERVICE_UNAVAILABLE');
      assert.match(refused.body.error.details.provider, /ServiceQuotaExceededException.*stages per region/);
      assert.ok(Number(refused.headers['retry-after']) > 0);
      assert.equal(redis.raw('ZCARD', `${PREFIX}stages`), stagesBefore);
      const events = (await usher.get('/api/stage/events')).body.data.events;
      assert.ok(events.some((e) => e.type === 'provider_error' && /stages per region/.test(e.detail)));
      const h = (await usher.get('/health')).body.data.services.ivs;
      assert.match(h.lastQuotaExceeded.error, /CreateStage: ServiceQuotaExceededException/);
      assert.ok(h.errorsLastMinute >= 1);
    } finally {
      await usher.close();
    }
  });

  it('credentials from the container endpoint: /health names the source', async () => {
    redis.cli('FLUSHALL');
    dropKeys(fake);
    const env = { STAGE_PROVIDER: 'aws', STREAM_NAME: STREAM, AWS_EC2_METADATA_DISABLED: 'true',
      LOG_LEVEL: 'debug', ...fake.containerEnv() };
    const usher = await Usher.start(redis, env);
    try {
      await waitUntil(() => redis.raw('GET', `${PREFIX}master_stage`), 5000, 'the master');
      const h = (await usher.get('/health')).body.data.services.ivs;
      assert.equal(h.credentials, 'container');
      const fetched = fake.credentialFetches.filter((r) => r.source === 'container' && r.accessKeyId);
      assert.ok(fetched.length >= 1, 'the container endpoint was asked');
      assert.match(usher.log, /container/);
      for (const r of fetched) {
        const secret = fake.credentials.get(r.accessKeyId)?.secretAccessKey;
        assert.ok(secret && !usher.log.includes(secret), 'no secret in the log');
      }
    } finally {
      await usher.close();
    }
  });

  it('a MASTER_STAGE_ARN that does not exist stops the start, naming the setting', async () => {
    dropKeys(fake);
    const missing = `arn:aws:ivs:${fake.region}:${fake.accountId}:stage/NoSuchStage1`;
    const { code, log } = await startFails(redis, awsEnv(fake, { MASTER_STAGE_ARN: missing }));
    assert.notEqual(code, 0);
    assert.match(log, /MASTER_STAGE_ARN/);
    assert.match(log, /does not exist/);
  });

  it('an IVS_PUBLIC_KEY_ARN of another key stops the start, saying what to do', async () => {
    dropKeys(fake);
    const other = crypto.generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const key = fake.importPublicKey({ publicKeyMaterial: other.publicKey.export({ type: 'spki', format: 'pem' }) });
    const { code, log } = await startFails(redis, awsEnv(fake, { IVS_PUBLIC_KEY_ARN: key.arn }));
    assert.notEqual(code, 0);
    assert.match(log, /IVS_PUBLIC_KEY_ARN/);
    assert.match(log, /not the public half/);
    assert.match(log, /ImportPublicKey/);
  });

  it('STAGE_PROVIDER=aws never means local: an unreachable IVS stops the start', async () => {
    const { code, log } = await startFails(redis, awsEnv(fake, {
      AWS_ENDPOINT_URL: `http://127.0.0.1:${await freePort()}`, AWS_TIMEOUT_MS: '300' }));
    assert.notEqual(code, 0);
    assert.match(log, /IVS_PUBLIC_KEY_ARN|ListPublicKeys/);
  });
});

describe('AWS provider: scaling inside the replication quota, two processes', () => {
  let fake, redis, u1, u2, key;
  const CAP = 2;
  const ceiling = 6;                   // the master + REPLICATION_MAX (5)
  before(async () => {
    fake = await startFake();
    redis = await Redis.start();
    key = sharedKey();
    const env = awsEnv(fake, {
      TOKEN_PRIVATE_KEY_FILE: key.file, AUTO_SCALE_ENABLED: 'true', MAX_VIEWERS_PER_STAGE: String(CAP),
      MAX_STAGES: '20', SCALER_INTERVAL_MS: '200', SCALER_LEASE_MS: '2000', SCALE_DOWN_COOLDOWN: '1',
      DRAIN_TIMEOUT: '5', REPLICATION_RETRY_MS: '200', ORPHAN_SWEEP_INTERVAL: '1', ORPHAN_GRACE: '3',
      LOG_LEVEL: 'info' });
    u1 = await Usher.start(redis, env);
    u2 = await Usher.start(redis, env);
  });
  after(() => closeAll(u1, u2, redis, fake, key));

  const redisStages = () => redis.raw('ZRANGE', `${PREFIX}stages`, 0, -1).split('\n').filter(Boolean).sort();
  const fakeStages = () => fake.stages().filter(ours).map((s) => s.arn).sort();
  // Waits until the lease holder's scaler has decided on what is there
  // now, and IVS has seen what it did. Each tick of the lease holder
  // starts an orphan sweep when one is due (ORPHAN_SWEEP_INTERVAL=1), a
  // ListStages, and then decides; a sweep starts only once the one before
  // is answered, and ticks do not overlap. So of three sweeps whose first
  // page IVS sees after this call, the second was started by a tick begun
  // after it, and the third by a later tick, which began after that
  // tick's decisions were acted on: its stage changes made in Redis (the
  // same connection, earlier), its CreateStage or DeleteStage (scaling
  // calls, which pass a queued ListStages) sent before the third page.
  const decided = async () => {
    const firsts = () => fake.callsOf('ListStages').filter((c) => !c.input?.nextToken).length;
    const from = firsts();
    await waitFor(() => firsts() >= from + 3, { timeoutMs: 20000, what: 'three more orphan sweeps (scaler ticks)' });
  };

  it('ramps to the ceiling and back, IVS matching Redis; joins beyond get STAGE_FULL with Retry-After', async () => {
    const master = await waitUntil(() => redis.raw('GET', `${PREFIX}master_stage`), 5000, 'the master');
    // The publisher connects to the master stage with the token usher signed.
    const pub = (await u1.post('/api/token/publisher', { userId: 'pub' })).body.data;
    fake.connectParticipant(master, { participantId: pub.participantId, userId: 'pub', published: true });
    // Faults on the way: throttles and 5xx are retried, nothing is lost.
    fake.throttle('CreateStage', 2);
    fake.failNext('StartParticipantReplication', { status: 500, code: 'InternalServerException', count: 2 });
    // A 402 is reported as the quota it is (log, stage events, /health).
    fake.failNext('StartParticipantReplication', { status: 402, code: 'ServiceQuotaExceededException',
      count: 1, message: 'concurrent participant replications per participant: 5 reached' });
    const seated = new Map();
    const unexpected = [];               // answers other than 200 and 503 STAGE_FULL
    let most = 0;
    const watch = setInterval(() => { most = Math.max(most, fake.stages().filter(ours).length); }, 50);
    try {
      for (let i = 0; i < ceiling * CAP; i++) {
        const u = i % 2 ? u2 : u1;
        const r = await waitUntil(async () => {
          const a = await u.post('/api/token/viewer', { userId: `v${i}` });
          if (a.status !== 200 && !(a.status === 503 && a.body.error.code === 'STAGE_FULL')) unexpected.push(a);
          return a.status === 200 ? a : null;
        }, 30000, `viewer v${i} seated`);
        seated.set(`v${i}`, r.body.data.stageArn);
        // Each viewer's token names its stage's own endpoints.
        const t = decode(r.body.data.token);
        assert.equal(t.claims.whip_url, fake.stage(r.body.data.stageArn).endpoints.whip);
      }
      assert.deepEqual(unexpected.map((a) => [a.status, a.body]), []);
      // Full at the ceiling: a join is refused with Retry-After, and no
      // sixth added stage is ever planned.
      await decided();
      const refused = await u1.post('/api/token/viewer', { userId: 'one-too-many' });
      assert.equal(refused.status, 503);
      assert.equal(refused.body.error.code, 'STAGE_FULL');
      assert.ok(Number(refused.headers['retry-after']) > 0, 'Retry-After set');
      assert.equal(refused.body.error.details.stageCeiling, ceiling);
      assert.match(refused.body.error.details.ceilingReason, /REPLICATION_MAX/);
      const stats = (await u2.get('/api/stats/stages')).body.data;
      assert.equal(stats.scaling.stageCeiling, ceiling);
      assert.match(stats.scaling.ceilingReason, /REPLICATION_MAX/);
      assert.equal(redisStages().length, ceiling);
      assert.deepEqual(fakeStages(), redisStages(), 'IVS holds exactly the stages Redis records');
      assert.ok(most <= ceiling, `at most ${ceiling} stages in IVS, saw ${most}`);
      // Every added stage is fed from the master, by the publisher's id.
      const reps = fake.replications();
      assert.equal(reps.length, ceiling - 1);
      for (const r of reps) {
        assert.equal(r.sourceStageArn, master);
        assert.equal(r.participantId, pub.participantId);
      }
      assert.deepEqual(reps.map((r) => r.destinationStageArn).sort(), redisStages().filter((a) => a !== master));
      assert.ok(fake.callsOf('ListParticipants').some((c) => c.status === 200 && c.input.filterByPublished === true),
        'the publisher was found with ListParticipants');
      assert.ok(fake.callsOf('CreateStage').some((c) => c.status === 429), 'a throttle was met');
      assert.ok(fake.callsOf('StartParticipantReplication').some((c) => c.status === 500), 'a 5xx was met');
      assert.ok(fake.callsOf('StartParticipantReplication').some((c) => c.status === 402), 'a 402 was met');
      const events = (await u1.get('/api/stage/events')).body.data.events;
      assert.ok(events.some((e) => e.type === 'replication_failed' && /ServiceQuotaExceededException.*5 reached/.test(e.detail)),
        'the 402 is a stage event naming the quota');
      const quota = await Promise.all([u1, u2].map(async (u) => (await u.get('/health')).body.data.services.ivs.lastQuotaExceeded));
      assert.ok(quota.some((q) => q && /ServiceQuotaExceededException.*replications per participant/.test(q.error)),
        `/health shows the quota: ${JSON.stringify(quota)}`);
      assert.match(u1.log + u2.log, /error.*StartParticipantReplication: quota_exceeded.*5 reached/);
      assert.deepEqual(checkInvariants(redis, { capacity: CAP }).problems, []);
      // Everyone leaves: the added stages drain and are deleted in IVS too,
      // down to the master and the one spare stage the policy keeps.
      for (const [user, arn] of seated) {
        const u = user.length % 2 ? u1 : u2;
        assert.equal((await u.post('/api/viewer/leave', { userId: user, stageArn: arn })).status, 200);
      }
      await waitUntil(() => redisStages().length === 2 && fakeStages().length === 2, 40000, 'down to 2 stages');
      await decided();                   // nothing more goes
      assert.deepEqual(fakeStages(), redisStages());
      assert.equal(redisStages().length, 2);
      assert.ok(redisStages().includes(master));
      assert.deepEqual(fake.replications().map((r) => [r.sourceStageArn, r.destinationStageArn]),
        [[master, redisStages().find((a) => a !== master)]]);
      assert.ok(most <= ceiling, `at most ${ceiling} stages in IVS, saw ${most}`);
    } finally {
      clearInterval(watch);
    }
  });

  it('two processes together stay under the stage-operation rate (pace shared in Redis), scaling calls first', async () => {
    const master = redis.raw('GET', `${PREFIX}master_stage`);
    const since = fake.calls.length;
    const started = Date.now();
    // 20 renames (UpdateStage, a stage operation: 5/s) at once, over both;
    // a stage creation (a scaling call) asked for meanwhile passes them.
    const renames = Promise.all(Array.from({ length: 20 }, (_, i) =>
      (i % 2 ? u2 : u1).put(`/api/stage/${encodeURIComponent(master)}`, { name: `master renamed ${i}` })));
    // The creation is asked once the renames hold the pace: the first is
    // at IVS, the others wait behind it.
    await waitFor(() => fake.calls.slice(since).some((c) => c.operation === 'UpdateStage'),
      { timeoutMs: 10000, what: 'the first rename at IVS', stepMs: 20 });
    const askedAt = Date.now();
    const created = await u2.post('/api/stage', { name: 'urgent' });
    const createdIn = Date.now() - askedAt;
    const answers = await renames;
    const took = Date.now() - started;
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.ok(createdIn < 1200, `the creation waited ${createdIn} ms behind the renames`);
    assert.ok(took - (askedAt - started) - createdIn > 1500, 'renames were still queued after it');
    for (const a of answers) assert.equal(a.status, 200, JSON.stringify(a.body));
    const calls = fake.calls.slice(since).filter((c) => c.operation === 'UpdateStage');
    // Each process pacing alone (5/s each) would meet about 10 throttles;
    // a shared pace meets none, or one when a timer fires late under load.
    const throttled = calls.filter((c) => c.status === 429).length;
    assert.ok(throttled <= 1, `throttled ${throttled}: ${calls.map((c) => c.status)}`);
    assert.equal(calls.filter((c) => c.status === 200).length, 20, 'each rename made once');
    assert.ok(took >= 3500, `20 calls at 5/s take about 4 s, took ${took} ms`);
    // IVS's name allows [a-zA-Z0-9-_]: the space became '-'; Redis keeps the name.
    assert.match(fake.stage(master).name, /^master-renamed-\d+$/);
    assert.match(JSON.parse(redis.raw('GET', `${PREFIX}stage:${master}`)).name, /^master renamed \d+$/);
  });

  it('a lost CreateStage answer leaves no orphan after the sweep', async () => {
    const before = fake.callsOf('CreateStage').length;
    fake.dropAnswer('CreateStage', { count: 2 });
    const r = await u1.post('/api/stage', { name: 'operator-stage' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const made = fake.callsOf('CreateStage').slice(before);
    assert.ok(made.filter((c) => c.dropped).length >= 1, 'an answer was dropped');
    assert.ok(fakeStages().length > redisStages().length, 'the lost answers left stages behind');
    await waitUntil(() => JSON.stringify(fakeStages()) === JSON.stringify(redisStages()), 20000,
      'the orphans deleted');
    assert.ok(fake.callsOf('DeleteStage').length >= 1);
    assert.ok(redisStages().includes(r.body.data.stage.stageArn));
    const events = (await u1.get('/api/stage/events')).body.data.events;
    assert.ok(events.some((e) => e.type === 'orphan_deleted'), 'the deletion is a stage event');
  });
});
