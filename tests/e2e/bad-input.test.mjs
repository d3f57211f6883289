// bad-input.test.mjs — hostile requests must be refused cleanly and change nothing.
//
// Setup: publisher live, three viewers seated, plus a second usher with
// API_SECRET_KEY on the same Redis. Then a table of hostile requests (bad
// JSON, wrong types, bad user ids, bad UTF-8, oversized bodies, bad ARN
// encodings in paths and queries, wrong methods, missing auth, ...). For each
// one: the SPEC §1 status and error.code, the JSON error envelope with an
// ISO-8601 timestamp, error.details.fields naming the field for field-level
// 400s, and redis.snapshot() (minus background lease keys) identical to the
// one taken after setup. Also a text/plain body (either accepted, or refused
// without change), a 10 KB request path, and at the end: invariants, health,
// exit code 0.
//
// Judgement calls (SPEC leaves them open):
// - a path/query ARN that does not decode (%ZZ), holds a control character,
//   or is not a stage ARN (e.g. a channel ARN) is 400 VALIDATION_ERROR with
//   fields ['stageArn']; a well-formed stage ARN that does not exist is 404.
// - errors the server can only see before it knows any field (bad JSON, a
//   non-object body, invalid UTF-8 that fails JSON parsing) are 400 without
//   a required details.fields.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Redis, Usher, PREFIX, enc, checkInvariants } from './harness.mjs';

// Keys owned by background jobs (the scaler's lease and epoch, any lease or
// lock) change with time, not with requests: left out of "Redis unchanged".
const BACKGROUND = /^scaler:|lease|lock/;
const state = (redis) => Object.fromEntries(Object.entries(redis.snapshot())
  .filter(([k]) => !BACKGROUND.test(k.slice(PREFIX.length))));

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UNKNOWN_STAGE = 'arn:aws:ivs:ap-northeast-1:123456789012:stage/ZZZZZZZZZZZZ';
const CHANNEL_ARN = 'arn:aws:ivs:ap-northeast-1:123456789012:channel/AbCdEfGhIjKl';

// One request on its own connection with an exact body and Content-Length
// (or chunked when chunked is set). Resolves {status, headers, body} or
// {error} when the server closed the connection without an answer.
function send(port, method, path, { body, headers = {}, chunked = false } = {}) {
  const buf = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body);
  const h = { ...(buf ? { 'content-type': 'application/json' } : {}), ...headers };
  if (buf && !chunked) h['content-length'] = String(buf.length);
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent: false, headers: h }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', (error) => resolve({ error }));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed = text;
        try { parsed = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, body: parsed });
      });
    });
    req.on('error', (error) => resolve({ error }));
    if (buf && chunked) { req.write(buf.subarray(0, 1000)); req.write(buf.subarray(1000)); req.end(); } else req.end(buf);
  });
}

function assertErrorEnvelope(res, status, code) {
  assert.ok(!res.error, `got an answer (${res.error?.code})`);
  assert.equal(res.status, status, `status; body ${JSON.stringify(res.body).slice(0, 300)}`);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  assert.equal(typeof res.body, 'object', 'JSON body');
  assert.equal(res.body.success, false);
  assert.equal(res.body.error?.code, code);
  assert.equal(typeof res.body.error.message, 'string');
  assert.ok(res.body.error.message.length > 0);
  assert.match(res.body.timestamp, ISO_MS);
  return res.body.error;
}

const json = (o) => JSON.stringify(o);
const withUser = (userId) => json({ userId });
const rawUser = (bytes) => Buffer.concat([Buffer.from('{"userId":"ab'), Buffer.from(bytes), Buffer.from('cd"}')]);

// The table. body: a string/Buffer (sent as is) or a function of the setup
// context returning one. fields: names error.details.fields must include.
const V = '/api/token/viewer';
const CASES = [
  { name: 'malformed JSON', path: V, body: '{"userId": "x",', status: 400 },
  { name: 'JSON array as body', path: V, body: '[{"userId":"x"}]', status: 400 },
  { name: 'JSON string as body', path: V, body: '"x"', status: 400 },
  { name: 'JSON number as body', path: V, body: '42', status: 400 },
  { name: 'JSON null as body', path: V, body: 'null', status: 400 },
  { name: 'empty body', path: V, body: '', status: 400 },
  { name: 'deeply nested JSON', path: V, body: '['.repeat(5000) + ']'.repeat(5000), status: 400 },
  { name: 'userId is a number', path: V, body: json({ userId: 123 }), status: 400, fields: ['userId'] },
  { name: 'userId is null', path: V, body: json({ userId: null }), status: 400, fields: ['userId'] },
  { name: 'userId is an object', path: V, body: json({ userId: { a: 'b' } }), status: 400, fields: ['userId'] },
  { name: 'stageArn is a number', path: V, body: json({ userId: 'fresh-1', stageArn: 7 }), status: 400, fields: ['stageArn'] },
  { name: 'stageArn is a channel ARN', path: V, body: json({ userId: 'fresh-1', stageArn: CHANNEL_ARN }), status: 400, fields: ['stageArn'] },
  { name: 'stageArn of an unknown stage (404)', path: V, body: json({ userId: 'fresh-1', stageArn: UNKNOWN_STAGE }), status: 404, code: 'NOT_FOUND' },
  { name: 'status "sideways"', method: 'PUT', path: '/api/publisher/status', body: json({ status: 'sideways' }), status: 400, fields: ['status'] },
  { name: 'status true', method: 'PUT', path: '/api/publisher/status', body: json({ status: true }), status: 400, fields: ['status'] },
  { name: 'missing status', method: 'PUT', path: '/api/publisher/status', body: json({}), status: 400, fields: ['status'] },
  { name: 'missing userId (viewer)', path: V, body: json({}), status: 400, fields: ['userId'] },
  { name: 'missing userId (publisher)', path: '/api/token/publisher', body: json({ name: 'x' }), status: 400, fields: ['userId'] },
  { name: 'empty userId', path: V, body: withUser(''), status: 400, fields: ['userId'] },
  { name: 'userId of 129 bytes', path: V, body: withUser('a'.repeat(129)), status: 400, fields: ['userId'] },
  { name: 'userId of 130 UTF-8 bytes in 65 chars', path: V, body: withUser('é'.repeat(65)), status: 400, fields: ['userId'] },
  { name: 'userId of 10,000 chars', path: V, body: withUser('x'.repeat(10000)), status: 400, fields: ['userId'] },
  { name: 'userId of 129 bytes (publisher)', path: '/api/token/publisher', body: withUser('p'.repeat(129)), status: 400, fields: ['userId'] },
  { name: 'userId with \\n', path: V, body: withUser('evil\nuser'), status: 400, fields: ['userId'] },
  { name: 'userId with \\u0000', path: V, body: withUser('evil\u0000user'), status: 400, fields: ['userId'] },
  { name: 'userId with \\u007f', path: V, body: withUser('evil\u007fuser'), status: 400, fields: ['userId'] },
  { name: 'userId with \\u001b', path: V, body: withUser('evil\u001b[31muser'), status: 400, fields: ['userId'] },
  { name: 'userId with \\u0085 (C1 control)', path: V, body: withUser('evil\u0085user'), status: 400, fields: ['userId'] },
  { name: 'invalid UTF-8 bytes ff fe in userId', path: V, body: rawUser([0xff, 0xfe]), status: 400 },
  { name: 'overlong UTF-8 c0 af in userId', path: V, body: rawUser([0xc0, 0xaf]), status: 400 },
  { name: 'UTF-8 surrogate ed a0 80 in userId', path: V, body: rawUser([0xed, 0xa0, 0x80]), status: 400 },
  { name: 'truncated UTF-8 e2 82 in userId', path: V, body: rawUser([0xe2, 0x82]), status: 400 },
  { name: 'lone surrogate escape \\ud800 in userId', path: V, body: '{"userId":"a\\ud800b"}', status: 400 },
  { name: 'unknown fields with a wrong-type field', path: V, body: json({ userId: 'fresh-2', admin: true, extra: { x: 1 }, stageArn: ['x'] }), status: 400, fields: ['stageArn'] },
  { name: '1 MB body (413)', path: V, body: json({ userId: 'big', pad: 'a'.repeat(1 << 20) }), status: 413, code: 'PAYLOAD_TOO_LARGE' },
  { name: 'body of 16385 bytes (413)', path: V, body: () => { const b = json({ userId: 'big', pad: '' }); return json({ userId: 'big', pad: 'a'.repeat(16385 - b.length) }); }, status: 413, code: 'PAYLOAD_TOO_LARGE', bodyLength: 16385 },
  { name: 'body of 16385 bytes, chunked (413)', path: V, chunked: true, body: () => { const b = json({ userId: 'big', pad: '' }); return json({ userId: 'big', pad: 'a'.repeat(16385 - b.length) }); }, status: 413, code: 'PAYLOAD_TOO_LARGE' },
  { name: 'PUT /api/viewer/heartbeat (405)', method: 'PUT', path: '/api/viewer/heartbeat', status: 405, code: 'METHOD_NOT_ALLOWED' },
  // DELETE /api/viewer/{userId} kicks: "heartbeat" is a user id there, without a seat.
  { name: 'DELETE /api/viewer/heartbeat: a kick of a user without a seat (404)', method: 'DELETE', path: '/api/viewer/heartbeat', status: 404, code: 'NOT_FOUND' },
  { name: 'kick with a reason too long', method: 'DELETE', path: `/api/viewer/v1?reason=${'r'.repeat(129)}`, status: 400, fields: ['reason'] },
  // v1 is seated: a reason that cannot go to IVS or into JSON must not free the seat first.
  { name: 'kick with a reason of invalid UTF-8 (%FF)', method: 'DELETE', path: '/api/viewer/v1?reason=a%FFb', status: 400, fields: ['reason'] },
  { name: 'kick with a reason holding a control character', method: 'DELETE', path: '/api/viewer/v1?reason=a%0Ab', status: 400, fields: ['reason'] },
  { name: 'kick of a userId with a control character', method: 'DELETE', path: '/api/viewer/a%0Ab', status: 400, fields: ['userId'] },
  { name: 'participants of a bad stage ARN', method: 'GET', path: '/api/stage/nope/participants', status: 400, fields: ['stageArn'] },
  { name: 'an IVS event without id or time', path: '/api/ivs/events', body: json({ 'detail-type': 'IVS Stage Update' }), status: 400, fields: ['id', 'time'] },
  { name: 'the test participants route, model off (404)', path: '/api/test/participants', body: json({}), status: 404, code: 'NOT_FOUND' },
  { name: 'PUT /api/token/viewer (405)', method: 'PUT', path: V, body: json({ userId: 'fresh-3' }), status: 405, code: 'METHOD_NOT_ALLOWED' },
  { name: 'path ARN %ZZ (400)', method: 'GET', path: '/api/viewer/list/%ZZ', status: 400, fields: ['stageArn'] },
  { name: 'path ARN with %00 (400)', method: 'GET', path: '/api/viewer/list/arn%3Aaws%3Aivs%3Ax%00', status: 400, fields: ['stageArn'] },
  { name: 'path ARN that is a channel ARN, not a stage ARN (400)', method: 'GET', path: `/api/viewer/list/${enc(CHANNEL_ARN)}`, status: 400, fields: ['stageArn'] },
  { name: 'path ARN ..%2F..%2Fetc%2Fpasswd (400)', method: 'GET', path: '/api/viewer/list/..%2F..%2Fetc%2Fpasswd', status: 400, fields: ['stageArn'] },
  { name: 'path ARN of an unknown stage (404)', method: 'GET', path: `/api/viewer/list/${enc(UNKNOWN_STAGE)}`, status: 404, code: 'NOT_FOUND' },
  { name: 'GET /api/stage/<%ZZ> (400)', method: 'GET', path: '/api/stage/%ZZ', status: 400, fields: ['stageArn'] },
  { name: 'rejoin participantId with spaces', path: '/api/viewer/rejoin', body: (c) => json({ userId: 'v1', stageArn: c.master, participantId: 'has spaces in it' }), status: 400, fields: ['participantId'] },
  { name: 'rejoin participantId of 65 chars', path: '/api/viewer/rejoin', body: (c) => json({ userId: 'v1', stageArn: c.master, participantId: 'a'.repeat(65) }), status: 400, fields: ['participantId'] },
  { name: 'rejoin of an unknown stage (404)', path: '/api/viewer/rejoin', body: json({ userId: 'v1', stageArn: UNKNOWN_STAGE, participantId: 'abc-123' }), status: 404, code: 'NOT_FOUND' },
  { name: 'heartbeat for an unknown stage (404)', path: '/api/viewer/heartbeat', body: json({ userId: 'v1', stageArn: UNKNOWN_STAGE }), status: 404, code: 'NOT_FOUND' },
  { name: 'heartbeat of a user without a seat (404)', path: '/api/viewer/heartbeat', body: (c) => json({ userId: 'ghost', stageArn: c.master }), status: 404, code: 'NOT_FOUND' },
  { name: 'heartbeat with userId a number', path: '/api/viewer/heartbeat', body: (c) => json({ userId: 1, stageArn: c.master }), status: 400, fields: ['userId'] },
  { name: 'heartbeat with userId containing \\n', path: '/api/viewer/heartbeat', body: (c) => json({ userId: 'v1\n', stageArn: c.master }), status: 400, fields: ['userId'] },
  { name: 'leave with missing stageArn', path: '/api/viewer/leave', body: json({ userId: 'v1' }), status: 400, fields: ['stageArn'] },
  { name: 'leave with stageArn a number', path: '/api/viewer/leave', body: json({ userId: 'v1', stageArn: 1 }), status: 400, fields: ['stageArn'] },
  { name: 'duration with no query', method: 'GET', path: '/api/viewer/duration', status: 400, fields: ['userId', 'stageArn'] },
  { name: 'duration with stageArn=%ZZ', method: 'GET', path: '/api/viewer/duration?userId=v1&stageArn=%ZZ', status: 400, fields: ['stageArn'] },
  { name: 'duration with userId containing %0A', method: 'GET', path: (c) => `/api/viewer/duration?userId=v1%0A&stageArn=${enc(c.master)}`, status: 400, fields: ['userId'] },
  { name: 'POST /api/stage with name a number', path: '/api/stage', body: json({ name: 42 }), status: 400, fields: ['name'] },
  { name: 'DELETE the master stage (403)', method: 'DELETE', path: (c) => `/api/stage/${enc(c.master)}`, status: 403, code: 'FORBIDDEN' },
  { name: 'DELETE an unknown stage (404)', method: 'DELETE', path: `/api/stage/${enc(UNKNOWN_STAGE)}`, status: 404, code: 'NOT_FOUND' },
  { name: 'missing X-API-Key on an auth-enabled usher (401)', on: 'auth', path: V, body: withUser('sneaky'), status: 401, code: 'UNAUTHORIZED' },
  { name: 'wrong X-API-Key on an auth-enabled usher (401)', on: 'auth', path: '/api/token/publisher', headers: { 'x-api-key': 'guess' }, body: withUser('sneaky'), status: 401, code: 'UNAUTHORIZED' },
  { name: 'missing X-API-Key, PUT publisher offline (401)', on: 'auth', method: 'PUT', path: '/api/publisher/status', body: json({ status: 'offline' }), status: 401, code: 'UNAUTHORIZED' },
];

describe('hostile input', () => {
  let redis, usher, secured, baseline;
  const ctx = {};

  before(async () => {
    redis = await Redis.start();
    const env = { AUTO_SCALE_ENABLED: 'false', HEARTBEAT_TIMEOUT: '3600' };
    usher = await Usher.start(redis, env);
    secured = await Usher.start(redis, { ...env, API_SECRET_KEY: 's3cret', SKIP_AUTH: 'false' });
    const pub = await usher.post('/api/token/publisher', { userId: 'pub-1' });
    assert.equal(pub.status, 200, JSON.stringify(pub.body));
    ctx.master = pub.body.data.stageArn;
    for (const userId of ['v1', 'v2', 'v3']) {
      const res = await usher.post('/api/token/viewer', { userId });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    }
    baseline = state(redis);
  });
  after(async () => {
    await secured?.close();
    await usher?.close();
    await redis?.close();
  });

  it('setup: the baseline holds the seated viewers', () => {
    const { problems, total, seatOf } = checkInvariants(redis);
    assert.deepEqual(problems, []);
    assert.equal(total, 3);
    assert.deepEqual([...seatOf.keys()].sort(), ['v1', 'v2', 'v3']);
  });

  for (const c of CASES) {
    const code = c.code || 'VALIDATION_ERROR';
    it(`${c.name} → ${c.status} ${code}`, async () => {
      const target = c.on === 'auth' ? secured : usher;
      const path = typeof c.path === 'function' ? c.path(ctx) : c.path;
      const body = typeof c.body === 'function' ? c.body(ctx) : c.body;
      if (c.bodyLength) assert.equal(Buffer.byteLength(body), c.bodyLength, 'case is built right');
      const res = await send(target.port, c.method || 'POST', path, { body, headers: c.headers, chunked: c.chunked });
      const err = assertErrorEnvelope(res, c.status, code);
      if (c.fields) {
        assert.ok(Array.isArray(err.details?.fields), `details.fields in ${JSON.stringify(err)}`);
        for (const f of c.fields) assert.ok(err.details.fields.includes(f), `details.fields ${JSON.stringify(err.details.fields)} names ${f}`);
      }
      assert.deepEqual(state(redis), baseline, 'Redis unchanged');
    });
  }

  it('a 16384-byte body is not refused as too large', async () => {
    const b = json({ userId: '', pad: '' });
    const body = json({ userId: '', pad: 'a'.repeat(16384 - b.length) }); // empty userId: refused as 400, not 413
    assert.equal(Buffer.byteLength(body), 16384);
    const err = assertErrorEnvelope(await send(usher.port, 'POST', V, { body }), 400, 'VALIDATION_ERROR');
    assert.ok(err.details?.fields?.includes('userId'));
    assert.deepEqual(state(redis), baseline);
  });

  it('Content-Type text/plain with a JSON body: accepted, or refused without any change', async () => {
    const res = await send(usher.port, 'POST', V, { body: withUser('plain-user'), headers: { 'content-type': 'text/plain' } });
    assert.ok(!res.error, 'answered');
    if (res.status >= 400) {
      assert.ok([400, 415].includes(res.status), `status ${res.status}`);
      assert.equal(res.body.success, false);
      assert.equal(typeof res.body.error?.code, 'string');
      assert.match(res.body.timestamp, ISO_MS);
      assert.deepEqual(state(redis), baseline, 'Redis unchanged');
    } else {
      assert.equal(res.status, 200);
      assert.equal(res.body.success, true);
      assert.equal(res.body.data.userId, 'plain-user');
      const { problems, seatOf } = checkInvariants(redis);
      assert.deepEqual(problems, []);
      assert.equal(seatOf.get('plain-user'), res.body.data.stageArn);
      // put the baseline back for what follows
      const left = await usher.post('/api/viewer/leave', { userId: 'plain-user', stageArn: res.body.data.stageArn });
      assert.equal(left.status, 200);
      baseline = state(redis);
    }
  });

  it('a request with a 10 KB path is answered 404/414 in JSON, or the connection is closed', async () => {
    const res = await send(usher.port, 'GET', `/api/${'a'.repeat(10 * 1024)}`);
    if (!res.error) {
      assert.ok([404, 414].includes(res.status), `status ${res.status}`);
      assert.equal(res.body.success, false, `JSON error envelope: ${String(JSON.stringify(res.body)).slice(0, 200)}`);
      assert.equal(typeof res.body.error?.code, 'string');
      if (res.status === 404) assert.equal(res.body.error.code, 'NOT_FOUND');
      assert.match(res.body.timestamp, ISO_MS);
    }
    assert.equal((await usher.get('/health')).status, 200, 'usher still serves');
    assert.deepEqual(state(redis), baseline);
  });

  it('after all of it: invariants hold, both ushers healthy, SIGTERM exits 0', async () => {
    assert.deepEqual(checkInvariants(redis).problems, []);
    assert.equal((await usher.get('/health')).status, 200);
    assert.equal((await secured.get('/api/health')).status, 200);
    assert.deepEqual(await secured.stop(), { code: 0, signal: null });
    assert.deepEqual(await usher.stop(), { code: 0, signal: null });
  });
});
