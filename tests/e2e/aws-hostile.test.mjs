// aws-hostile.test.mjs — usher with STAGE_PROVIDER=aws against a fake IVS
// that answers as a broken or hostile server would (tests/fake-ivs
// rewrite()): every such answer must end in a clear error that names the
// operation, and change nothing it should not. All of it at start, where
// usher calls ListPublicKeys (paged), GetPublicKey, ImportPublicKey,
// ListStages (paged: its master, by tag) and CreateStage or GetStage:
//  1. pagination that never ends (a new nextToken each page, or the same
//     one again) stops after a bound with an error saying so;
//  2. a page with more items than maxResults asked is refused;
//  3. a CreateStage answer whose ARN fails the stage ARN grammar, whose
//     WHIP endpoint is not an https URL, or whose activeSessionId is no
//     StageSessionId (st- and 13 of [a-zA-Z0-9]), is refused and recorded
//     nowhere;
//  4. a GetPublicKey answer holding our key's material without an ARN is
//     refused (no token is signed with an empty or "(null)" kid);
//  5. a 50 MB body is cut at the size cap; an answer that drips or never
//     completes ends at AWS_TIMEOUT_MS; an answer that is not JSON and
//     every error status with a malformed body get an error naming the
//     operation and the status.
// Then: GetStage answering another stage than MASTER_STAGE_ARN records
// nothing of it; SIGTERM while the rebuild's GetStage hangs ends cleanly;
// a newline in IVS's error words forges no log line; container credentials
// with control characters are refused before any IVS call; a
// firstJoinTime out of range is no time; a session id that is no
// StageSessionId, from GetStage or in the request, is refused with a clear
// error, and no call carries it or a cut of it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start as startFake } from '../fake-ivs/fake-ivs.mjs';
import { Redis, Usher, PREFIX, USHER_BIN, freePort, waitFor } from './harness.mjs';
import { awsEnv, sharedKey, closeAll } from './aws-usher.mjs';

const STREAM = 'e2e-hostile';

// Runs usher, expecting it to stop at start within limitMs; resolves to
// {code, log, ms}; code is null when it had to be killed (it did not stop,
// or its log matched `until`, a RegExp or a function of the log: then
// `matched` is true).
async function startStops(redis, env, limitMs = 15000, until = null) {
  const dir = mkdtempSync(join(tmpdir(), 'usher-data-'));
  const port = await freePort();
  const t0 = Date.now();
  const proc = spawn(USHER_BIN, [], {
    env: { PATH: process.env.PATH, ASAN_OPTIONS: 'detect_leaks=1', API_HOST: '127.0.0.1',
      API_PORT: String(port), REDIS_URL: redis.url, REDIS_KEY_PREFIX: PREFIX, DATA_DIR: dir,
      SKIP_AUTH: 'true', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  let matched = false;
  const watch = until && setInterval(() => {
    if (typeof until === 'function' ? until(log) : until.test(log)) { matched = true; proc.kill('SIGTERM'); clearInterval(watch); }
  }, 50);
  const timer = setTimeout(() => proc.kill('SIGKILL'), limitMs);
  const code = await new Promise((r) => proc.once('exit', (c) => r(c)));
  clearTimeout(timer);
  if (watch) clearInterval(watch);
  rmSync(dir, { recursive: true, force: true });
  return { code, log, ms: Date.now() - t0, matched };
}

describe('AWS provider: hostile answers at start', () => {
  let fake, redis;
  const env = (extra = {}) => awsEnv(fake, STREAM, extra);
  before(async () => {
    fake = await startFake();
    redis = await Redis.start();
  });
  after(() => closeAll(redis, fake));
  const fresh = async () => {
    fake.reset();
    await redis.raw('FLUSHALL');
  };
  const stops = async (what, extra, pattern, limitMs) => {
    const r = await startStops(redis, env(extra), limitMs);
    assert.ok(r.code !== null, `${what}: usher did not stop within ${limitMs ?? 15000} ms; log:\n${r.log.slice(-2000)}`);
    assert.notEqual(r.code, 0, `${what}: usher exited 0`);
    assert.match(r.log, pattern, `${what}: the log says why`);
    assert.doesNotMatch(r.log, /runtime error|AddressSanitizer|LeakSanitizer/, `${what}: sanitizers clean`);
    return r;
  };
  // usher runs on (the master stage is looked for and made after it
  // listens); within 10 s its log says pattern, and no master is recorded.
  const refuses = async (what, pattern) => {
    const r = await startStops(redis, env(), 10000, pattern);
    assert.ok(r.matched, `${what}: the log says ${pattern}; log:\n${r.log.slice(-1500)}`);
    assert.ok(!(await redis.raw('GET', `${PREFIX}master_stage`)), `${what}: no master recorded`);
    assert.doesNotMatch(r.log, /runtime error|AddressSanitizer/, `${what}: sanitizers clean`);
  };

  it('a nextToken returned forever, or the same one again, stops after a bound', async () => {
    await fresh();
    let n = 0;
    fake.rewrite('ListPublicKeys', () => ({ body: { publicKeys: [], nextToken: `page-${n++}` } }));
    const r = await stops('endless pages', {}, /ListPublicKeys.*(pages|page)/i, 60000);
    assert.equal(n, 10, 'ListPublicKeys asked for 10 pages, no more');
    assert.ok(r.ms < 60000);

    await fresh();
    fake.rewrite('ListStages', () => ({ body: { stages: [], nextToken: 'again' } }));
    await refuses('the same nextToken again', /ListStages.*nextToken.*again/i);
    assert.equal(fake.stages().length, 0, 'no stage made');
  });

  it('a page with more items than maxResults asked is refused', async () => {
    await fresh();
    // 100,000 items within the 1 MiB body cap: empty objects.
    const items = Array.from({ length: 100000 }, () => ({}));
    fake.rewrite('ListStages', () => ({ body: { stages: items } }));
    await refuses('100,000 stages in one page', /ListStages.*100000.*more than/i);
    assert.equal(fake.stages().length, 0, 'no stage made');
  });

  it('a list of the wrong type is refused, not read as empty', async () => {
    await fresh();
    fake.rewrite('ListStages', () => ({ body: { stages: { arn: 'x' } } }));
    await refuses('stages as an object', /ListStages.*without a stages array/i);
    assert.equal(fake.stages().length, 0, 'no stage made');
  });

  for (const [what, change, pattern] of [
    ['an ARN outside the grammar', (s) => { s.arn = 'arn:aws:ivs:us-east-1:1:stage/../../x y'; }, /CreateStage: IVS answered a stage ARN outside/],
    ['a stage: null', (s, out) => { out.stage = null; }, /CreateStage: IVS answered no stage object/],
    ['a WHIP endpoint that is not https', (s) => { s.endpoints.whip = 'http://evil.example/whip'; }, /CreateStage.*whip/i],
    ['a WHIP endpoint of another type', (s) => { s.endpoints.whip = 42; }, /CreateStage.*whip/i],
    ['an events endpoint with a space', (s) => { s.endpoints.events = 'wss://a b'; }, /CreateStage.*events/i],
    ['an activeSessionId of 203 bytes', (s) => { s.activeSessionId = `st-${'a'.repeat(200)}`; },
      /CreateStage: IVS answered an activeSessionId outside st-/],
    ['an activeSessionId outside the grammar', (s) => { s.activeSessionId = 'st-a/../bbbbbbb'; },
      /CreateStage: IVS answered an activeSessionId outside st-/],
  ]) {
    it(`a CreateStage answer with ${what} is refused and recorded nowhere`, async () => {
      await fresh();
      fake.rewrite('CreateStage', (out) => { change(out.stage, out); return { body: out }; });
      await refuses(what, pattern);
    });
  }

  it('a GetPublicKey answer with our key but no ARN is refused', async () => {
    await fresh();
    const key = sharedKey();
    try {
      const pem = crypto.createPublicKey(readFileSync(key.file)).export({ type: 'spki', format: 'pem' });
      fake.importPublicKey({ publicKeyMaterial: pem, name: 'ours' });
      fake.rewrite('GetPublicKey', () => ({ body: { publicKey: { publicKeyMaterial: pem } } }));
      await stops('no key ARN', { TOKEN_PRIVATE_KEY_FILE: key.file }, /GetPublicKey.*ARN/i);
    } finally {
      key.close();
    }
  });

  it('a 50 MB body is cut at the size cap', async () => {
    await fresh();
    fake.rewrite('ListPublicKeys', () => ({ body: '{"publicKeys":[' + '{"arn":"x"},'.repeat(1000), bytes: 50 * 1024 * 1024 }));
    await stops('50 MB', {}, /ListPublicKeys.*too large/i, 30000);
  });

  it('an answer that drips or never completes ends at AWS_TIMEOUT_MS', async () => {
    await fresh();
    fake.rewrite('ListPublicKeys', () => ({ body: '{"publicKeys":[]}', bytes: 1 << 20, dripMs: 20 }));
    const drip = await stops('slow drip', { AWS_TIMEOUT_MS: '300' }, /ListPublicKeys.*timeout/i, 20000);
    assert.ok(drip.ms < 20000);
    await fresh();
    fake.rewrite('ListPublicKeys', () => ({ hold: true }));
    await stops('held open', { AWS_TIMEOUT_MS: '300' }, /ListPublicKeys.*timeout/i, 20000);
  });

  it('an answer that is not JSON, and error statuses with a malformed body', async () => {
    await fresh();
    fake.rewrite('ListPublicKeys', () => ({ body: '<html>not json' }));
    await stops('not JSON', {}, /ListPublicKeys.*JSON/i);
    for (const status of [400, 402, 403, 404, 409, 429, 500, 503]) {
      await fresh();
      fake.rewrite('ListPublicKeys', () => ({ status, body: '{"message": [unterminated' }));
      const r = await stops(`HTTP ${status}`, {}, new RegExp(`ListPublicKeys.*HTTP ${status}`), 30000);
      const retried = status === 429 || status >= 500;
      const calls = fake.callsOf('ListPublicKeys').length;
      assert.ok(retried ? calls > 1 : calls === 1, `HTTP ${status}: ${calls} call(s)`);
      assert.equal(fake.publicKeys().length, 0, `HTTP ${status}: no key imported`);
      void r;
    }
  });
});

describe('AWS provider: a GetStage answer about another stage', () => {
  let fake, redis;
  before(async () => {
    fake = await startFake();
    redis = await Redis.start();
  });
  after(() => closeAll(redis, fake));

  it('MASTER_STAGE_ARN stays the master when GetStage answers another stage', async () => {
    const mine = fake.createStage({ name: 'mine' });
    const other = fake.createStage({ name: 'other' });
    fake.rewrite('GetStage', (out) => ({ body: out.stage ? { stage: { ...out.stage, arn: other.arn } } : out }));
    const r = await startStops(redis, awsEnv(fake, STREAM, { MASTER_STAGE_ARN: mine.arn }), 10000,
      /master stage: arn|GetStage: IVS answered a stage other than the one asked for/);
    await new Promise((res) => setTimeout(res, 0));
    assert.ok(r.matched, `the log says what happened; log:\n${r.log.slice(-1500)}`);
    await new Promise((res) => setTimeout(res, 500));
    const master = await redis.raw('GET', `${PREFIX}master_stage`);
    assert.notEqual(master, other.arn, `the other stage is not taken for the master (${master}; mine ${mine.arn})`);
    assert.doesNotMatch(r.log, new RegExp(`master stage: ${other.arn}`), 'the other stage is not named the master');
    assert.match(r.log, /GetStage: IVS answered a stage other than the one asked for/);
  });
});

describe('AWS provider: stopped while the master is read', () => {
  let fake, redis;
  before(async () => {
    fake = await startFake();
    redis = await Redis.start();
  });
  after(() => closeAll(redis, fake));

  it('SIGTERM while the rebuild reading of MASTER_STAGE_ARN hangs ends cleanly', async () => {
    const mine = fake.createStage({ name: 'mine' });
    let n = 0, flushed = false, lostAt = 0;
    // The start's check and the first record answered; the rebuild's read hangs.
    fake.rewrite('GetStage', () => (n++ < 2 ? {} : { hold: true }));
    const r = await startStops(redis, awsEnv(fake, STREAM, { MASTER_STAGE_ARN: mine.arn }), 20000, (log) => {
      if (!flushed && /master stage: arn/.test(log)) { flushed = true; redis.raw('FLUSHALL'); }
      if (!lostAt && /lost usher's state.*rebuilding/.test(log)) lostAt = Date.now();
      return lostAt && Date.now() - lostAt > 300;   // its GetStage in flight, held
    });
    assert.ok(r.matched, `the rebuild read the master again; log:\n${r.log.slice(-1500)}`);
    assert.equal(r.code, 0, `usher ended cleanly; log:\n${r.log.slice(-1500)}`);
    assert.doesNotMatch(r.log, /runtime error|AddressSanitizer/);
  });
});

describe('AWS provider: an error message that forges log lines', () => {
  let fake, redis;
  before(async () => {
    fake = await startFake();
    redis = await Redis.start();
  });
  after(() => closeAll(redis, fake));

  it('a newline in IVS error words stays inside its log line', async () => {
    fake.failNext('ListPublicKeys', { code: 'AccessDeniedException', status: 403,
      message: 'denied\n2026-01-01T00:00:00.000Z error FORGED line\r\nFORGED too' });
    const r = await startStops(redis, awsEnv(fake, STREAM));
    assert.notEqual(r.code, 0);
    assert.match(r.log, /ListPublicKeys.*denied\?2026-01-01T00:00:00.000Z error FORGED line\?\?FORGED too/);
    const forged = r.log.split('\n').filter((l) => /^(2026-01-01|FORGED)/.test(l));
    assert.deepEqual(forged, [], 'no line of its own');
  });
});

describe('AWS provider: hostile container credentials', () => {
  let fake, redis, server, answer;
  before(async () => {
    fake = await startFake();
    redis = await Redis.start();
    const http = await import('node:http');
    server = http.createServer((req, res) => {
      const text = JSON.stringify(answer());
      res.writeHead(200, { 'content-type': 'application/json' }).end(text);
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
  });
  after(async () => {
    await new Promise((r) => server?.close(r));
    await closeAll(redis, fake);
  });
  const containerEnv = () => {
    const env = awsEnv(fake, STREAM, {
      AWS_CONTAINER_CREDENTIALS_FULL_URI: `http://127.0.0.1:${server.address().port}/creds` });
    delete env.AWS_ACCESS_KEY_ID; delete env.AWS_SECRET_ACCESS_KEY; delete env.AWS_SESSION_TOKEN;
    return env;
  };
  const inTwoHours = () => new Date(Date.now() + 7200e3).toISOString();

  for (const [field, value] of [['AccessKeyId', 'AKIA\r\nX-Injected: 1'], ['Token', 'tok\r\nX-Injected: 1'],
    ['SecretAccessKey', 'secret\nmore']]) {
    it(`a ${field} with a line break is refused, and sent nowhere`, async () => {
      const t = fake.issueTemporaryCredentials();
      answer = () => ({ AccessKeyId: t.accessKeyId, SecretAccessKey: t.secretAccessKey, Token: t.sessionToken,
        Expiration: inTwoHours(), [field]: value });
      const calls = fake.calls.length;
      const r = await startStops(redis, containerEnv());
      assert.notEqual(r.code, 0, `usher stopped; log:\n${r.log.slice(-1500)}`);
      assert.match(r.log, new RegExp(`aws credentials: .*${field}.*control`));
      assert.equal(fake.calls.length, calls, 'no IVS call went out with it');
    });
  }
});

describe('AWS provider: a participant list with odd members', () => {
  let fake, redis, usher;
  before(async () => {
    fake = await startFake();
    redis = await Redis.start();
    usher = await Usher.start(redis, awsEnv(fake, STREAM));
  });
  after(() => closeAll(usher, redis, fake));

  it('a firstJoinTime out of any range is no time, not garbage', async () => {
    let master;
    await waitFor(() => (master = redis.raw('GET', `${PREFIX}master_stage`)), { timeoutMs: 5000, what: 'the master' });
    fake.connectParticipant(master, { participantId: 'p1', userId: 'u1', published: true });
    const times = [];
    for (const first of [1e300, -1e300, -5, 1.7e9]) {
      fake.rewrite('ListParticipants', (out) => ({ body: { participants: (out.participants ?? []).map((p) =>
        ({ ...p, firstJoinTime: first })) } }));   // every ListParticipants meanwhile (the publisher look too)
      const res = await usher.get(`/api/stage/${encodeURIComponent(master)}/participants`);
      fake.clearFaults();
      assert.equal(res.status, 200, JSON.stringify(res.body));
      times.push(res.body.data.participants.find((p) => p.participantId === 'p1')?.firstJoinTime);
    }
    assert.deepEqual(times.slice(0, 3), ['', '', ''], `out of range: no time (${times})`);
    assert.match(times[3], /^2023-11-14T22:13:20/, 'epoch seconds in range: the time');
  });
  // The participant list reads the session from GetStage (or the request)
  // and names it in ListParticipants: one IVS would not give (StageSessionId:
  // 16 bytes, st- and 13 of [a-zA-Z0-9]) is an error, never sent, whole or cut.
  it('a session id that is no StageSessionId is refused, never sent whole or cut', async () => {
    let master;
    await waitFor(() => (master = redis.raw('GET', `${PREFIX}master_stage`)), { timeoutMs: 5000, what: 'the master' });
    const sent = () => fake.callsOf('ListParticipants').map((c) => c.input?.sessionId);
    const long = `st-${'a'.repeat(200)}`;
    for (const odd of [long, 'st-a/../bbbbbbb', `st-${'a'.repeat(14)}`, 'xx-aaaaaaaaaaaaa']) {
      const before = sent().length;
      fake.rewrite('GetStage', (out) => ({ body: out.stage ? { stage: { ...out.stage, activeSessionId: odd } } : out }));
      const res = await usher.get(`/api/stage/${encodeURIComponent(master)}/participants`);
      fake.clearFaults();
      assert.equal(res.status, 503, `${odd.slice(0, 20)}: ${JSON.stringify(res.body)}`);
      assert.match(JSON.stringify(res.body), /GetStage: IVS answered an activeSessionId outside st-/);
      const named = sent().slice(before).filter((s) => s && !/^st-[a-zA-Z0-9]{13}$/.test(s));
      assert.deepEqual(named, [], `${odd.slice(0, 20)}: no ListParticipants call names it or a cut of it`);
    }
    // In the request: 128 token bytes, or 17, or one of another form, is the
    // client's mistake (400 naming sessionId, not a 503 to retry), never sent
    // whole or cut.
    for (const asked of [`st${'A'.repeat(126)}`, `st-${'A'.repeat(14)}`, 'xx-AAAAAAAAAAAAA', 'st-AAAAAA_AAAAAA']) {
      const before = sent().length;
      const res = await usher.get(`/api/stage/${encodeURIComponent(master)}/participants?sessionId=${asked}`);
      assert.equal(res.status, 400, `${asked.slice(0, 20)}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error?.code, 'VALIDATION_ERROR', JSON.stringify(res.body));
      assert.deepEqual(res.body.error?.details, { fields: ['sessionId'] }, JSON.stringify(res.body));
      assert.deepEqual(sent().slice(before).filter((s) => s && (s === asked || asked.startsWith(s))), [],
        `${asked.slice(0, 20)}: no ListParticipants call names it or a cut of it`);
    }
    const good = `st-${'A'.repeat(13)}`;   // IVS's form: asked of IVS as it is
    const res = await usher.get(`/api/stage/${encodeURIComponent(master)}/participants?sessionId=${good}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.ok(sent().includes(good), 'ListParticipants names the session asked');
    assert.equal((await usher.get(`/api/stage/${encodeURIComponent(master)}/participants`)).status, 200,
      'the list works again with IVS answering as it should');
  });
});
