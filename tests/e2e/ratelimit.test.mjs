// ratelimit.test.mjs — the per-client limit counts what costs, not an
// audience's heartbeats (issue 12 item 4), and TRUST_PROXY picks the
// client's address out of X-Forwarded-For as Express's `trust proxy` does.
//
// RATE_LIMIT_MAX_REQUESTS=100 per minute (the default), all from 127.0.0.1:
// 150 heartbeats and a leave all pass while token requests from the same
// address get 429 past 100. Token requests are also counted per userId,
// wherever they come from (TRUST_PROXY=true, a new address each time). With
// TRUST_PROXY=1, an entry a client put in front of X-Forwarded-For does not
// give it a new count; with TRUST_PROXY=true it does (so only for proxies
// that overwrite the header).
//
// Each check's requests run inside one rate-limit window (inOneWindow): a
// window turning half-way would start the count afresh.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Redis, Usher, USHER_BIN, inOneWindow } from './harness.mjs';

const LIMIT = 100;
const WINDOW_MS = 60000;

function refused(res) {
  assert.equal(res.status, 429, JSON.stringify(res.body));
  assert.equal(res.body.success, false);
  assert.equal(res.body.error.code, 'TOO_MANY_REQUESTS');
  const retry = Number(res.headers['retry-after']);
  assert.ok(Number.isInteger(retry) && retry >= 0 && retry <= 60, `Retry-After ${res.headers['retry-after']}`);
}

describe('rate limit: heartbeats pass, token requests are limited', () => {
  let redis, usher;
  before(async () => {
    redis = await Redis.start();
    usher = await Usher.start(redis, {
      RATE_LIMIT_MAX_REQUESTS: String(LIMIT), RATE_LIMIT_WINDOW_MS: String(WINDOW_MS), MAX_VIEWERS_PER_STAGE: '1000',
    });
  });
  after(async () => {
    const status = await usher?.stop();
    assert.deepEqual(status, { code: 0, signal: null });
    await usher?.close();
    await redis?.close();
  });

  it('150 heartbeats and a leave from one address pass; token requests get 429 past the limit', () => inOneWindow(WINDOW_MS, async () => {
    assert.equal((await usher.post('/api/token/publisher', { userId: 'pub' })).status, 200);  // 1 counted
    const join = await usher.post('/api/token/viewer', { userId: 'v-0' });                     // 2 counted
    assert.equal(join.status, 200);
    const { stageArn } = join.body.data;
    for (let i = 0; i < 150; i++) {
      const hb = await usher.post('/api/viewer/heartbeat', { userId: 'v-0', stageArn });
      assert.equal(hb.status, 200, `heartbeat #${i + 1}: ${JSON.stringify(hb.body)}`);
      assert.equal(hb.headers['ratelimit-remaining'], undefined, 'heartbeats are not counted');
    }
    let passed = 2, first429 = 0;
    for (let i = 1; i <= LIMIT; i++) {
      const res = await usher.post('/api/token/viewer', { userId: `v-${i}` });
      if (res.status === 200) passed++;
      else { refused(res); first429 = i; break; }
    }
    assert.equal(passed, LIMIT, 'token requests pass up to the limit');
    assert.equal(first429, LIMIT - 1, 'and the next one is refused');
    refused(await usher.post('/api/token/publisher', { userId: 'pub' }));
    // The audience keeps its seats meanwhile.
    for (let i = 0; i < 20; i++) {
      assert.equal((await usher.post('/api/viewer/heartbeat', { userId: 'v-5', stageArn })).status, 200);
    }
    const leave = await usher.post('/api/viewer/leave', { userId: 'v-5', stageArn });
    assert.equal(leave.status, 200, JSON.stringify(leave.body));
    assert.equal(leave.body.data.viewerLeft, true);
  }));
});

describe('rate limit per userId and TRUST_PROXY', () => {
  let redis, byHop, trustAll;
  before(async () => {
    redis = await Redis.start();
    const env = { RATE_LIMIT_MAX_REQUESTS: '5', RATE_LIMIT_WINDOW_MS: String(WINDOW_MS) };
    trustAll = await Usher.start(redis, { ...env, TRUST_PROXY: 'true' });
    byHop = await Usher.start(redis, { ...env, TRUST_PROXY: '1' });
    assert.equal((await trustAll.post('/api/token/publisher', { userId: 'pub' },
      { headers: { 'x-forwarded-for': '192.0.2.200' } })).status, 200);
  });
  after(async () => {
    for (const u of [trustAll, byHop]) {
      const status = await u?.stop();
      assert.deepEqual(status, { code: 0, signal: null });
      await u?.close();
    }
    await redis?.close();
  });

  it('one userId gets 429 past the limit even from a new address each time', () => inOneWindow(WINDOW_MS, async () => {
    for (let i = 1; i <= 5; i++) {
      const res = await trustAll.post('/api/token/viewer', { userId: 'same-user' },
        { headers: { 'x-forwarded-for': `198.51.100.${i}` } });
      assert.equal(res.status, 200, `#${i}: ${JSON.stringify(res.body)}`);
    }
    refused(await trustAll.post('/api/token/viewer', { userId: 'same-user' },
      { headers: { 'x-forwarded-for': '198.51.100.6' } }));
    // Another user from that address is not refused.
    assert.equal((await trustAll.post('/api/token/viewer', { userId: 'other-user' },
      { headers: { 'x-forwarded-for': '198.51.100.6' } })).status, 200);
  }));

  it('TRUST_PROXY=1: the entry the proxy appended counts, not what the client wrote before it', () => inOneWindow(WINDOW_MS, async () => {
    for (let i = 1; i <= 5; i++) {
      const res = await byHop.get('/api/stats', { headers: { 'x-forwarded-for': `10.9.9.${i}, 203.0.113.7` } });
      assert.equal(res.status, 200);
      assert.equal(res.headers['ratelimit-remaining'], String(5 - i));
    }
    refused(await byHop.get('/api/stats', { headers: { 'x-forwarded-for': '10.9.9.99, 203.0.113.7' } }));
    assert.equal((await byHop.get('/api/stats', { headers: { 'x-forwarded-for': '203.0.113.8' } })).status, 200);
  }));

  it('TRUST_PROXY=true: the leftmost entry is the client', () => inOneWindow(WINDOW_MS, async () => {
    for (let i = 1; i <= 5; i++) {
      assert.equal((await trustAll.get('/api/stats', { headers: { 'x-forwarded-for': '203.0.113.50, 10.0.0.1' } })).status, 200);
    }
    refused(await trustAll.get('/api/stats', { headers: { 'x-forwarded-for': '203.0.113.50, 10.0.0.2' } }));
    assert.equal((await trustAll.get('/api/stats', { headers: { 'x-forwarded-for': '203.0.113.51, 10.0.0.1' } })).status, 200);
  }));

  it('a bad TRUST_PROXY stops the start with a message naming it', async () => {
    for (const value of ['10.0.0.0/33', 'maybe', '40']) {
      const r = spawnSync(USHER_BIN, [], { env: { PATH: process.env.PATH, TRUST_PROXY: value },
        encoding: 'utf8', timeout: 10000 });
      assert.equal(r.status, 2, `TRUST_PROXY=${value}: exit ${r.status}, ${r.stderr}`);
      assert.match(r.stderr, /TRUST_PROXY/);
    }
  });
});
