// functions.test.mjs — usher's Redis function library (src/store/lua/usher.lua)
// and key layout:
//  (a) a hash-tagged REDIS_KEY_PREFIX ("{usher}:test:", as Redis Cluster
//      needs): join, heartbeat, stats and leave work, and every key usher
//      writes carries the prefix and hashes to one cluster slot;
//  (b) FUNCTION FLUSH under a running usher: it notices, loads the library
//      again and serves, without a restart;
//  (c) an older library version in Redis is replaced at connect.
//  (d) the replicas check's writes: fenced by the lease, written only while
//      the stage is as read, a stop claimed once.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startLive, startUsher, waitFor, PREFIX } from './harness.mjs';

const TAGGED = '{usher}:test:';
// The library's own version, as usher reads it from the same file.
const VERSION = /\nlocal VERSION = (\d+)/.exec(
  readFileSync(new URL('../../src/store/lua/usher.lua', import.meta.url), 'utf8'))[1];
const short = (r) => `${r.status} ${JSON.stringify(r.body).slice(0, 300)}`;

// Redis Cluster's key slot: CRC16 (XMODEM) of the hash tag, or of the key.
function keySlot(key) {
  const open = key.indexOf('{');
  const close = open >= 0 ? key.indexOf('}', open + 1) : -1;
  const part = close > open + 1 ? key.slice(open + 1, close) : key;
  let crc = 0;
  for (const byte of Buffer.from(part)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

// A viewer's join, tried until usher serves it (after it loaded the
// library again); its answer.
async function joinEventually(usher, userId, what) {
  let joined;
  await waitFor(async () => {
    const r = await usher.post('/api/token/viewer', { userId });
    return (joined = r.status === 200 && r);
  }, { timeoutMs: 8000, stepMs: 100, what });
  return joined;
}

describe('hash-tagged key prefix', () => {
  let redis, usher;
  before(async () => {
    ({ redis, usher } = await startUsher({ REDIS_KEY_PREFIX: TAGGED }));
  });
  after(async () => { await usher?.close(); await redis?.close(); });

  it('join, heartbeat, stats and leave; every key in one slot', async () => {
    assert.equal((await usher.post('/api/token/publisher', { userId: 'host' })).status, 200);
    const join = await usher.post('/api/token/viewer', { userId: 'v1' });
    assert.equal(join.status, 200, short(join));
    const arn = join.body.data.stageArn;
    const hb = await usher.post('/api/viewer/heartbeat', { userId: 'v1', stageArn: arn });
    assert.equal(hb.status, 200, short(hb));
    assert.equal(hb.body.data.heartbeatUpdated, true);
    const stats = await usher.get('/api/stats');
    assert.equal(stats.body.data.totalViewers, 1);
    assert.equal(stats.body.data.isPublisherLive, true);
    assert.equal(Number(redis.raw('GET', `${TAGGED}viewers:${arn}`)), 1);
    assert.ok(redis.raw('HGET', `${TAGGED}viewer:heartbeat:${arn}`, 'v1').includes('participantId'));

    const keys = redis.raw('--scan').split('\n').filter(Boolean);
    assert.ok(keys.length >= 8, keys.join(' '));
    for (const k of keys) assert.ok(k.startsWith(TAGGED), `${k} outside the prefix`);
    assert.deepEqual([...new Set(keys.map(keySlot))], [keySlot(TAGGED)]);

    const leave = await usher.post('/api/viewer/leave', { userId: 'v1', stageArn: arn });
    assert.equal(leave.body.data.wasSeated, true);
    assert.equal(Number(redis.raw('GET', `${TAGGED}total_viewers`)), 0);
    assert.equal((await usher.get('/api/stats')).body.data.totalViewers, 0);
  });
});

describe('the function library in Redis', () => {
  let redis, usher;
  before(async () => { ({ redis, usher } = await startLive()); });
  after(async () => { await usher?.close(); await redis?.close(); });

  it('is loaded at connect, as one library "usher"', () => {
    assert.match(redis.raw('FUNCTION', 'LIST', 'LIBRARYNAME', 'usher'), /usher_seat/);
    assert.equal(redis.raw('FCALL', 'usher_version', 0), VERSION);
  });

  it('FUNCTION FLUSH: usher loads it again and serves without a restart', async () => {
    redis.raw('FUNCTION', 'FLUSH');
    assert.equal(redis.raw('FUNCTION', 'LIST'), '');
    const joined = await joinEventually(usher, 'after-flush', 'a join after FUNCTION FLUSH');
    assert.equal(joined.body.data.isNewViewer, true);
    assert.match(redis.raw('FUNCTION', 'LIST', 'LIBRARYNAME', 'usher'), /usher_heartbeat/);
  });

  it('an older version is replaced', async () => {
    const old = "#!lua name=usher\nredis.register_function{function_name='usher_version', "
      + "callback=function() return 0 end, flags={'no-writes'}}\n";
    redis.raw('FUNCTION', 'LOAD', 'REPLACE', old);
    assert.equal(redis.raw('FCALL', 'usher_version', 0), '0');
    const joined = await joinEventually(usher, 'after-old', 'a join after an old library was loaded');
    assert.equal(joined.body.data.isNewViewer, true);
    assert.equal(redis.raw('FCALL', 'usher_version', 0), VERSION);
    assert.equal((await usher.get('/api/stats')).body.data.totalViewers, 2);
  });
});

describe('stage tags', () => {
  let redis, usher;
  before(async () => {
    ({ redis, usher } = await startUsher());
  });
  after(async () => { await usher?.close(); await redis?.close(); });

  it('POST /api/stage keeps tags in stage_tags, not in the SPEC stage:{arn} record', async () => {
    const r = await usher.post('/api/stage', { name: 'tagged', tags: { team: 'ops', event: 'finale' } });
    assert.equal(r.status, 201, short(r));
    const arn = r.body.data.stage.stageArn;
    assert.deepEqual(JSON.parse(redis.raw('HGET', 'ivs:test:stage_tags', arn)), { team: 'ops', event: 'finale' });
    assert.deepEqual(Object.keys(JSON.parse(redis.raw('GET', `ivs:test:stage:${arn}`))).sort(),
      ['arn', 'autoScaled', 'createdAt', 'name']);
    const del = await usher.request('DELETE', `/api/stage/${encodeURIComponent(arn)}`);
    assert.equal(del.status, 200, short(del));
    assert.equal(redis.raw('HGET', 'ivs:test:stage_tags', arn), '');
  });

  it('tags IVS would refuse are a 400 that changes nothing', async () => {
    const many = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v']));
    const before = redis.raw('ZCARD', 'ivs:test:stages');
    for (const tags of [{ n: 1 }, { k: null }, many, { ['x'.repeat(129)]: 'v' }, { k: 'v'.repeat(257) }, ['a'], 'x']) {
      const r = await usher.post('/api/stage', { name: 'bad-tags', tags });
      assert.equal(r.status, 400, `${JSON.stringify(tags).slice(0, 60)}: ${short(r)}`);
      assert.deepEqual(r.body.error.details.fields, ['tags']);
    }
    assert.equal(redis.raw('ZCARD', 'ivs:test:stages'), before);
    assert.equal(redis.raw('HLEN', 'ivs:test:stage_tags'), '0');
  });
});

// The replicas check's writes (reconcile/replicas.h): a judgement is
// written only under the lease and only while the stage is as the check
// read it; the stop of an unknown replication is claimed once.
describe('the replicas check\'s fenced writes', () => {
  let redis, usher, master;
  before(async () => {
    ({ redis, usher } = await startLive());
    master = redis.raw('GET', `${PREFIX}master_stage`);
    redis.raw('SET', `${PREFIX}scaler:lease`, 'checker', 'PX', 60000);   // held: usher's scaler waits
  });
  after(async () => { await usher?.close(); await redis?.close(); });

  // redis-cli prints an error reply (and may exit non-zero): its text either way.
  const fcall = (...args) => {
    try { return redis.raw('FCALL', ...args); } catch (e) { return String(e.stdout || e.message); }
  };
  const record = (holder, arn, mode, seen, state) => fcall('usher_replica_record', 4,
    ...['scaler:lease', 'stages', 'stage_mode', 'stage_state'].map((k) => PREFIX + k),
    PREFIX, holder, arn, mode, JSON.stringify(seen), JSON.stringify(state));
  const claim = (holder, dest, participant) => fcall('usher_replica_claim', 1, `${PREFIX}scaler:lease`,
    PREFIX, holder, dest, participant, 60000);
  const stateOf = () => redis.raw('HGET', `${PREFIX}stage_state`, master);

  it('a record is written under the lease, while the stage is as read', () => {
    redis.raw('HSET', `${PREFIX}stage_state`, master, JSON.stringify({ replication: 'running', attempts: 0, participant: 'p1', runningSince: 5 }));
    const seen = { replication: 'running', attempts: 0, participant: 'p1', runningSince: 5 };
    const lost = { replication: 'none', attempts: 0 };
    const before = stateOf();
    assert.match(record('another', master, 'open', seen, lost), /NOT_LEADER/);
    assert.equal(record('checker', master, 'draining', seen, lost), '0', 'another mode: not written');
    assert.equal(record('checker', master, 'open', { ...seen, participant: 'p0' }, lost), '0', 'another participant');
    assert.equal(record('checker', master, 'open', { ...seen, runningSince: 4 }, lost), '0', 'another start');
    assert.equal(record('checker', 'arn:aws:ivs:us-east-1:1:stage/gone', 'open', seen, lost), '0', 'no such stage');
    assert.equal(stateOf(), before, 'nothing written');
    assert.equal(record('checker', master, 'open', seen, lost), '1');
    assert.deepEqual(JSON.parse(stateOf()), lost);
    assert.equal(record('checker', master, 'open', seen, lost), '0', 'the same judgement twice: written once');
  });

  it('the stop of an unknown replication is claimed once, under the lease', () => {
    const dest = 'arn:aws:ivs:us-east-1:1:stage/unknown';
    assert.match(claim('another', dest, 'p1'), /NOT_LEADER/);
    assert.equal(claim('checker', dest, 'p1'), '1');
    assert.equal(claim('checker', dest, 'p1'), '0');
    assert.equal(claim('checker', dest, 'p2'), '1', 'another participant: another claim');
    const ttl = Number(redis.raw('PTTL', `${PREFIX}replica_stop:${dest}:p1`));
    assert.ok(ttl > 50000 && ttl <= 60000, `kept 60 s: ${ttl}`);
  });

  // Whoever removes a stage stops its replication; the removal claims that
  // stop in the same step, so a check that listed the replication still
  // active just before does not judge it unknown and stop it again (seen
  // under load: a chained stage's stop made twice, 200 then 404).
  it('removing a stage claims its replication\'s stop', async () => {
    const made = await usher.post('/api/stage', { name: 'removed-while-listed' });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const arn = made.body.data.stage.stageArn;
    const info = JSON.parse(redis.raw('HGET', `${PREFIX}stage_info`, arn));
    redis.raw('HSET', `${PREFIX}stage_info`, arn, JSON.stringify({ ...info, parentStage: master }));
    redis.raw('HSET', `${PREFIX}stage_state`, arn, JSON.stringify({ replication: 'running', attempts: 0, participant: 'p9', runningSince: 5 }));
    assert.equal((await usher.request('DELETE', `/api/stage/${encodeURIComponent(arn)}`)).status, 200);
    assert.equal(redis.raw('ZSCORE', `${PREFIX}stages`, arn), '', 'removed');
    assert.equal(claim('checker', arn, 'p9'), '0', 'the removal claimed the stop');
    const ttl = Number(redis.raw('PTTL', `${PREFIX}replica_stop:${arn}:p9`));
    assert.ok(ttl > 50000 && ttl <= 60000, `kept 60 s: ${ttl}`);
    assert.equal(claim('checker', arn, 'p8'), '1', 'another participant\'s is not claimed');
  });

  // A claim always expires: a key there without a TTL (any type) is none of
  // usher's, and would otherwise keep that stop from ever being made.
  it('a key without a TTL at a stop\'s claim is no claim', () => {
    const dest = 'arn:aws:ivs:us-east-1:1:stage/foreign';
    const k = `${PREFIX}replica_stop:${dest}:p1`;
    redis.raw('HSET', k, 'a', 'b');
    assert.equal(claim('checker', dest, 'p1'), '1', 'a hash there');
    assert.equal(redis.raw('TYPE', k), 'string');
    redis.raw('SET', k, '1');
    assert.equal(claim('checker', dest, 'p1'), '1', 'a string without a TTL');
    assert.equal(claim('checker', dest, 'p1'), '0', 'its own claim holds');
    redis.raw('DEL', k);
  });

  // scaler:last_change holds what Redis's clock said (ms); any other value
  // (a foreign write) counts as no change recorded, never as an age the
  // answer cannot carry (-1e300 gave -2^63: every lease call failed).
  it('the lease answers no last change for a value usher would not write', () => {
    const since = () => redis.raw('FCALL', 'usher_lease', 3,
      ...['scaler:lease', 'scaler:epoch', 'scaler:last_change'].map((k) => PREFIX + k),
      PREFIX, 'checker', 60000).split('\n');
    for (const odd of ['-1e300', '-inf', 'inf', '1e300', 'nan', 'abc', '12.5', ' 7', '0x10']) {
      redis.raw('SET', `${PREFIX}scaler:last_change`, odd);
      const [held, , age] = since();
      assert.equal(held, '1', `renewed with ${odd}`);
      assert.equal(age, '-1', `${odd}: none recorded`);
    }
    const [secs, micros] = redis.raw('TIME').split('\n').map(Number);
    redis.raw('SET', `${PREFIX}scaler:last_change`, String(secs * 1000 + Math.floor(micros / 1000) - 1000));
    const age = Number(since()[2]);
    assert.ok(age >= 1000 && age < 10000, `a second ago: ${age}`);
    // One later than now counts from now, not from that time to come.
    redis.raw('SET', `${PREFIX}scaler:last_change`, '99999999999999');
    assert.equal(since()[2], '0');
    const noted = Number(redis.raw('GET', `${PREFIX}scaler:last_change`));
    assert.ok(noted <= secs * 1000 + 60000, `pulled back to now: ${noted}`);
    redis.raw('DEL', `${PREFIX}scaler:last_change`);
  });

  // scaler:epoch is a count: another value there (a foreign write) made
  // every taking of the lease fail (INCR) and a renewal answer {1} alone.
  it('the lease counts its epoch again over a value that is no count', () => {
    // Under a prefix of its own: usher's scaler never takes this lease.
    const P = 'other:';
    const lease = (holder) => redis.raw('FCALL', 'usher_lease', 3,
      ...['scaler:lease', 'scaler:epoch', 'scaler:last_change'].map((k) => P + k),
      P, holder, 60000).split('\n');
    for (const odd of ['abc', '1.5', '99999999999999999999', '-3']) {
      redis.raw('SET', `${P}scaler:epoch`, odd);
      redis.raw('DEL', `${P}scaler:lease`);
      assert.deepEqual(lease('h'), ['2', '1', '-1'], `taken over ${odd}`);
      redis.raw('SET', `${P}scaler:epoch`, odd);
      assert.deepEqual(lease('h'), ['1', '0', '-1'], `renewed over ${odd}`);
    }
    assert.deepEqual(lease('h'), ['1', '0', '-1'], 'a count is kept');
    redis.raw('DEL', `${P}scaler:lease`);
    assert.deepEqual(lease('h'), ['2', '1', '-1'], 'and counted on');
    redis.raw('DEL', `${P}scaler:lease`, `${P}scaler:epoch`);
  });
});
