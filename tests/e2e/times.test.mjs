// times.test.mjs — every time an answer reports agrees with the token and
// with every other place the same moment appears (issue 12, item 1).
//
// With VIEWER_TOKEN_DURATION=120: expiresAt is exactly the token's exp × 1000
// and expiresIn exactly exp − iat, for the publisher token, the viewer token
// and the token a moved heartbeat carries; the envelope's timestamp falls in
// the token's iat second, and so does the Date header; the seat record's timestamp/joinedAt in Redis is the
// envelope's moment; /api/stats' data.timestamp is its envelope's; a stage
// made with POST /api/stage has createdAt = the answer's timestamp = its
// `stages` score = its "created" event's time; watch durations are counted to
// the answer's timestamp.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PREFIX, enc, startLive } from './harness.mjs';

const claimsOf = (token) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
const ms = (iso) => Date.parse(iso);

// The token's times against the answer's fields and envelope.
function assertTokenTimes(res, duration) {
  const d = res.body.data;
  const c = claimsOf(d.token);
  assert.equal(c.exp - c.iat, duration);
  assert.equal(ms(d.expiresAt), c.exp * 1000, `expiresAt ${d.expiresAt} vs exp ${c.exp}`);
  assert.equal(d.expiresIn, c.exp - c.iat);
  const ts = ms(res.body.timestamp);
  assert.ok(c.iat * 1000 <= ts && ts < (c.iat + 1) * 1000,
    `timestamp ${res.body.timestamp} outside iat second ${c.iat}`);
  assert.equal(Date.parse(res.headers.date), c.iat * 1000, `Date ${res.headers.date} vs iat ${c.iat}`);
  return c;
}

describe('times agree with the token and with each other', () => {
  let redis, usher;
  before(async () => {
    ({ redis, usher } = await startLive({ VIEWER_TOKEN_DURATION: '120', PUBLISHER_TOKEN_DURATION: '3600' }));
  });
  after(async () => { await usher?.close(); await redis?.close(); });

  it('publisher token: expiresAt = exp*1000, expiresIn = exp-iat, timestamp in iat second', async () => {
    // Several tries: a reading in the middle of a second is what showed the fault.
    for (let i = 0; i < 5; i++) {
      const res = await usher.post('/api/token/publisher', { userId: 'publisher-1' });
      assert.equal(res.status, 200);
      assertTokenTimes(res, 3600);
    }
  });

  it('viewer token: the same, and the seat record holds the envelope moment', async () => {
    for (let i = 0; i < 5; i++) {
      const res = await usher.post('/api/token/viewer', { userId: `times-v${i}` });
      assert.equal(res.status, 200);
      assertTokenTimes(res, 120);
      const rec = JSON.parse(redis.raw('HGET', `${PREFIX}viewer:heartbeat:${res.body.data.stageArn}`, `times-v${i}`));
      assert.equal(rec.timestamp, ms(res.body.timestamp));
      assert.equal(rec.joinedAt, ms(res.body.timestamp));
    }
  });

  it('heartbeat: the seat record holds the answer moment; duration counts to it', async () => {
    const join = await usher.post('/api/token/viewer', { userId: 'times-hb' });
    const arn = join.body.data.stageArn;
    const hb = await usher.post('/api/viewer/heartbeat', { userId: 'times-hb', stageArn: arn });
    assert.equal(hb.status, 200);
    const rec = JSON.parse(redis.raw('HGET', `${PREFIX}viewer:heartbeat:${arn}`, 'times-hb'));
    assert.equal(rec.timestamp, ms(hb.body.timestamp));
    // Pretend the seat was taken 61.5 s before: the duration is counted to the
    // answer's own timestamp, whole seconds down.
    redis.cli('HSET', `${PREFIX}viewer:heartbeat:${arn}`, 'times-hb',
      JSON.stringify({ timestamp: rec.timestamp, participantId: rec.participantId, joinedAt: rec.joinedAt - 61500 }));
    const d = await usher.get(`/api/viewer/duration?userId=times-hb&stageArn=${enc(arn)}`);
    assert.equal(d.status, 200);
    assert.equal(d.body.data.watchDurationSeconds, Math.floor((ms(d.body.timestamp) - (rec.joinedAt - 61500)) / 1000));
  });

  it('rejoin: the seat record holds the answer moment', async () => {
    const join = await usher.post('/api/token/viewer', { userId: 'times-rj' });
    const { stageArn, participantId } = join.body.data;
    const rj = await usher.post('/api/viewer/rejoin', { userId: 'times-rj', stageArn, participantId });
    assert.equal(rj.status, 200);
    const rec = JSON.parse(redis.raw('HGET', `${PREFIX}viewer:heartbeat:${stageArn}`, 'times-rj'));
    assert.equal(rec.timestamp, ms(rj.body.timestamp));
  });

  it('/api/stats: data.timestamp is the envelope timestamp, also for requests sharing a read', async () => {
    const answers = await Promise.all(Array.from({ length: 20 }, () => usher.get('/api/stats')));
    for (const res of answers) {
      assert.equal(res.status, 200);
      assert.equal(res.body.data.timestamp, res.body.timestamp);
    }
  });

  it('POST /api/stage: createdAt = timestamp = stages score = the created event time', async () => {
    const res = await usher.post('/api/stage', { name: 'times-stage' });
    assert.equal(res.status, 201);
    const stage = res.body.data.stage;
    assert.equal(stage.createdAt, res.body.timestamp);
    assert.equal(Number(redis.raw("ZSCORE", `${PREFIX}stages`, stage.stageArn)), ms(res.body.timestamp));
    const events = (await usher.get('/api/stage/events?limit=50')).body.data.events;
    const created = events.find((e) => e.type === 'created' && e.stageArn === stage.stageArn);
    assert.ok(created, 'a created event');
    assert.equal(created.at, stage.createdAt);
  });
});
