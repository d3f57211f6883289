// webhooks.test.mjs — WEBHOOK_URLS: receivers in the test check each POST's
// X-Usher-Signature (HMAC-SHA256 of the body with WEBHOOK_SECRET, computed
// here with node:crypto), its id and sequence, the order of events, the
// retries after 500s (and the give-up after WEBHOOK_MAX_ATTEMPTS), that a
// receiver that never answers holds up no request, and that two usher
// processes on one Redis deliver each event once.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { Redis, Usher, USHER_BIN, sleep } from './harness.mjs';

const SECRET = 'webhook-secret-1';

// A receiver; fail(id, attempt) → true answers 500 to that attempt.
async function receiver(fail = () => false) {
  const r = { got: [], attempts: new Map() };
  r.server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = JSON.parse(raw.toString('utf8'));
      const expected = `sha256=${createHmac('sha256', SECRET).update(raw).digest('hex')}`;
      const given = String(req.headers['x-usher-signature'] || '');
      const attempt = (r.attempts.get(body.id) || 0) + 1;
      r.attempts.set(body.id, attempt);
      r.got.push({ body, raw: raw.toString('utf8'), headers: req.headers, attempt, method: req.method,
        signed: given.length === expected.length && timingSafeEqual(Buffer.from(given), Buffer.from(expected)) });
      res.writeHead(fail(body.id, attempt) ? 500 : 200).end();
    });
  });
  await new Promise((ok) => r.server.listen(0, '127.0.0.1', ok));
  r.url = `http://127.0.0.1:${r.server.address().port}/hook`;
  r.close = () => new Promise((ok) => r.server.close(ok));
  r.delivered = () => r.got.filter((g) => !fail(g.body.id, g.attempt));
  return r;
}

// what: a function giving the message, made when the time is up.
async function until(check, ms, what) {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out: ${what()}`);
    await sleep(50);
  }
}

// Stream ids in order: <ms>-<seq>.
const earlier = (a, b) => {
  const [am, as] = a.split('-').map(BigInt), [bm, bs] = b.split('-').map(BigInt);
  return am < bm || (am === bm && as < bs);
};

const env = (urls, more = {}) => ({
  WEBHOOK_URLS: urls.join(', '), WEBHOOK_SECRET: SECRET, WEBHOOK_RETRY_MS: '100', ...more,
});

describe('webhooks', () => {
  let redis, usher, hook;
  before(async () => {
    hook = await receiver();
    redis = await Redis.start();
    // No wait after the start: every event from the start on is delivered,
    // also those recorded before the first read of the stream.
    usher = await Usher.start(redis, env([hook.url], { WEBHOOK_VIEWER_THRESHOLDS: '2, 3' }));
  });
  after(async () => { await usher?.close(); await redis?.close(); await hook?.close(); });

  it('signed events with ids, sequence numbers and types, in order', async () => {
    assert.equal((await usher.post('/api/token/publisher', { userId: 'host' })).status, 200);
    assert.equal((await usher.post('/api/stage', { name: 'hook-a' })).status, 201);
    // Each step waits until the events of the one before are delivered: the
    // scaler's replication and the lease holder's poll of the viewer total
    // come on their own time, and the order checked below is the order of
    // the steps.
    const delivered = (n) => until(() => hook.got.length >= n, 15000,
      () => `${n} events; got ${JSON.stringify(hook.got.map((g) => g.body.type))}`);
    await delivered(3);            // the scaler takes its lease and starts the replication
    const seats = [];
    for (let i = 0; i < 3; i++) {
      const r = await usher.post('/api/token/viewer', { userId: `h${i}` });
      assert.equal(r.status, 200);
      seats.push({ userId: `h${i}`, stageArn: r.body.data.stageArn });
      if (i > 0) await delivered(3 + i);   // viewers.above 2, then 3: the total polled
    }
    assert.equal((await usher.post('/api/viewer/leave', seats[2])).status, 200);
    await delivered(6);            // viewers.below 3
    assert.equal((await usher.put('/api/publisher/status', { status: 'offline' })).status, 200);
    assert.equal((await usher.put('/api/publisher/status', { status: 'offline' })).status, 200);  // no change
    // The last step, a barrier: a viewer leaves (2 → 1 seated), and the
    // total polled after it crosses 2. That event is recorded after the
    // second "offline" and after a poll that followed every step above,
    // and events are delivered one at a time in stream order: once it is
    // here, any event too many from the steps above is here too.
    assert.equal((await usher.post('/api/viewer/leave', seats[1])).status, 200);
    const barrier = (g) => g.body.type === 'viewers.below' && g.body.data.threshold === 2;
    await until(() => hook.got.some(barrier), 15000,
      () => `viewers.below 2; got ${JSON.stringify(hook.got.map((g) => g.body.type))}`);

    const want = ['publisher.live', 'stage.opened', 'replication.started', 'viewers.above',
      'viewers.above', 'viewers.below', 'publisher.offline', 'viewers.below'];
    const bodies = hook.got.map((g) => g.body);
    assert.deepEqual(bodies.map((b) => b.type), want);
    for (const g of hook.got) {
      assert.ok(g.signed, `signature of ${g.raw}`);
      assert.equal(g.method, 'POST');
      assert.equal(g.headers['content-type'], 'application/json');
      assert.equal(g.headers['x-usher-delivery'], g.body.id);
      assert.equal(g.headers['x-usher-event'], g.body.type);
      assert.match(g.body.id, /^\d+-\d+$/);
      assert.match(g.body.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.deepEqual(Object.keys(g.body).sort(), ['data', 'id', 'sequence', 'time', 'type']);
    }
    for (let i = 1; i < bodies.length; i++) {
      assert.ok(earlier(bodies[i - 1].id, bodies[i].id), 'ids in stream order');
      assert.equal(bodies[i].sequence, bodies[i - 1].sequence + 1, 'sequence numbers without gaps');
    }
    assert.equal(bodies[1].data.detail, 'hook-a');
    assert.equal(bodies[1].data.event, 'created');
    assert.deepEqual(bodies.filter((b) => b.type.startsWith('viewers.')).map((b) => [b.type, b.data.threshold]),
      [['viewers.above', 2], ['viewers.above', 3], ['viewers.below', 3], ['viewers.below', 2]]);
    // The stream keeps them too, under the same ids.
    const stream = redis.raw('XRANGE', 'ivs:test:stage_events', '-', '+');
    for (const b of bodies) assert.ok(stream.includes(b.id), b.id);
  });
});

describe('webhooks: retries', () => {
  let redis, usher, flaky, down;
  before(async () => {
    flaky = await receiver((id, attempt) => attempt <= 2);   // 500, 500, then 200
    down = await receiver(() => true);                         // always 500
    redis = await Redis.start();
    usher = await Usher.start(redis, env([flaky.url, down.url], { WEBHOOK_MAX_ATTEMPTS: '4' }));
  });
  after(async () => { await usher?.close(); await redis?.close(); await flaky?.close(); await down?.close(); });

  it('a 500 is sent again with backoff; a URL always failing is given up and blocks no other', async () => {
    assert.equal((await usher.post('/api/token/publisher', { userId: 'host' })).status, 200);
    assert.equal((await usher.post('/api/stage', { name: 'retry-a' })).status, 201);
    await until(() => flaky.delivered().length >= 3, 15000, () => `flaky: ${flaky.got.length} requests`);
    await until(() => down.got.length >= 3 * 4, 20000, () => `down: ${down.got.length} requests`);
    // A barrier: one more event, recorded after these three. Each URL gets
    // its events one at a time in stream order, each tried until it is
    // answered 200 or given up: the barrier's first try comes after every
    // try of the events before it, so what came before it is all there is.
    assert.equal((await usher.put('/api/publisher/status', { status: 'offline' })).status, 200);
    const before = (r) => {
      const k = r.got.findIndex((g) => g.body.type === 'publisher.offline');
      return k < 0 ? null : r.got.slice(0, k);
    };
    await until(() => before(flaky) && before(down), 20000,
      () => `the barrier: flaky ${flaky.got.length}, down ${down.got.length} requests`);
    const flakyGot = before(flaky), downGot = before(down);
    const ids = [...new Set(flakyGot.map((g) => g.body.id))];
    assert.equal(ids.length, 3, 'publisher.live, stage.opened, replication.started');
    for (const id of ids) {
      const tries = flakyGot.filter((g) => g.body.id === id);
      assert.equal(tries.length, 3, `${id}: 500, 500, then 200`);
      assert.ok(tries.every((t) => t.raw === tries[0].raw && t.signed), 'the same signed body each time');
    }
    // In order: an event's tries all come before the next event's.
    const order = flakyGot.map((g) => g.body.id);
    assert.deepEqual(order, ids.flatMap((id) => [id, id, id]));
    for (const id of ids) {
      assert.equal(downGot.filter((g) => g.body.id === id).length, 4, `WEBHOOK_MAX_ATTEMPTS tries of ${id}`);
    }
    assert.equal(downGot.length, 12);
    assert.match(usher.log, /given up after 4 tries/);
  });
});

describe('webhooks: a receiver that never answers', () => {
  let redis, usher, silent, sockets = [];
  before(async () => {
    silent = net.createServer((sock) => { sockets.push(sock); });     // accepts, never answers
    await new Promise((ok) => silent.listen(0, '127.0.0.1', ok));
    redis = await Redis.start();
    usher = await Usher.start(redis, env([`http://127.0.0.1:${silent.address().port}/hook`]));
  });
  after(async () => {
    await usher?.close(); await redis?.close();
    sockets.forEach((s) => s.destroy());
    await new Promise((ok) => silent.close(ok));
  });

  it('blocks nothing: requests are answered at once while the delivery waits', async () => {
    assert.equal((await usher.post('/api/token/publisher', { userId: 'host' })).status, 200);
    await until(() => sockets.length >= 1, 5000, () => 'no delivery started');
    for (let i = 0; i < 20; i++) {
      const res = await usher.get('/api/stats', { timed: true });   // the server's part of the time
      assert.equal(res.status, 200);
      assert.ok(res.ms < 500, `GET /api/stats took ${Math.round(res.ms)} ms`);
    }
  });
});

describe('webhooks: two usher processes', () => {
  let redis, a, b, hook;
  before(async () => {
    hook = await receiver();
    redis = await Redis.start();
    a = await Usher.start(redis, env([hook.url]));
    b = await Usher.start(redis, env([hook.url]));
  });
  after(async () => { await a?.close(); await b?.close(); await redis?.close(); await hook?.close(); });

  it('deliver each event once', async () => {
    assert.equal((await a.post('/api/token/publisher', { userId: 'host' })).status, 200);
    for (let i = 0; i < 6; i++) {
      assert.equal((await (i % 2 ? a : b).post('/api/stage', { name: `pair-${i}` })).status, 201);
    }
    // What should go out: every stage event of a webhook type, read once
    // the lease holder has started the six replications (one read before a
    // late replication_started would leave it out of what is expected).
    const kinds = ['publisher_live', 'publisher_offline', 'created', 'replication_started'];
    // Every stage event type a webhook is sent for (webhooks.c).
    const webhookKinds = [...kinds, 'scale_up', 'drain', 'delete', 'replication_failed',
      'viewers_above', 'viewers_below', 'orphan_deleted'];
    const events = () => {
      const entries = redis.raw('XRANGE', 'ivs:test:stage_events', '-', '+').split('\n');
      return entries.flatMap((line, k) => (/^\d+-\d+$/.test(line) ? [{ id: line, type: entries[k + 2] }] : []));
    };
    const count = (type) => events().filter((e) => e.type === type).length;
    await until(() => count('replication_started') >= 6, 15000, () => `${count('replication_started')} replications started`);
    assert.equal((await b.put('/api/publisher/status', { status: 'offline' })).status, 200);
    const expected = events().filter((e) => kinds.includes(e.type)).map((e) => e.id);
    assert.equal(expected.length, 14, 'publisher live and offline, 6 stages opened, 6 replications');
    await until(() => hook.got.length >= expected.length, 15000, () => `${hook.got.length} of ${expected.length} deliveries`);
    // A barrier for each process: a stage opened while the other process
    // is stopped (SIGSTOP) is claimed and delivered by this one. A process
    // reads and claims events in stream order and delivers its claimed
    // ones one at a time in that order: once it has delivered the barrier,
    // it has delivered every event before it that it claimed, a second
    // delivery too.
    const barrier = async (via, stopped, name) => {
      stopped.proc.kill('SIGSTOP');
      try {
        assert.equal((await via.post('/api/stage', { name })).status, 201);
        await until(() => hook.got.some((g) => g.body.type === 'stage.opened' && g.body.data.detail === name),
          15000, () => `${name} delivered`);
      } finally {
        stopped.proc.kill('SIGCONT');
      }
    };
    await barrier(b, a, 'barrier-b');
    await barrier(a, b, 'barrier-a');
    // The publisher is offline: the barriers' stages start no replication,
    // so the stream holds the 14 events and the 2 barriers.
    const all = events().filter((e) => webhookKinds.includes(e.type)).map((e) => e.id);
    assert.equal(all.length, expected.length + 2, `the 14 events and the 2 barriers: ${JSON.stringify(events())}`);
    const ids = hook.got.map((g) => g.body.id);
    assert.deepEqual([...ids].sort(), [...all].sort(), 'every event delivered');
    assert.equal(new Set(ids).size, ids.length, 'no event delivered twice');
    assert.deepEqual(hook.got.map((g) => g.body.sequence).sort((x, y) => x - y),
      Array.from({ length: ids.length }, (_, i) => i + 1), 'one sequence number per event');
    assert.ok(hook.got.every((g) => g.signed));
  });
});

describe('webhooks: settings', () => {
  it('WEBHOOK_URLS needs a secret; bad URLs and thresholds are refused at start', () => {
    const cases = [
      [{ WEBHOOK_URLS: 'http://127.0.0.1:9/x' }, /WEBHOOK_URLS is set without WEBHOOK_SECRET/],
      [{ WEBHOOK_URLS: 'ftp://127.0.0.1/x', WEBHOOK_SECRET: 's' }, /WEBHOOK_URLS: .*not an http/],
      [{ WEBHOOK_URLS: 'http://a b', WEBHOOK_SECRET: 's' }, /WEBHOOK_URLS: /],
      [{ WEBHOOK_VIEWER_THRESHOLDS: '10, ten' }, /WEBHOOK_VIEWER_THRESHOLDS: .*viewer count/],
      [{ WEBHOOK_VIEWER_THRESHOLDS: '0' }, /WEBHOOK_VIEWER_THRESHOLDS: /],
    ];
    for (const [vars, message] of cases) {
      const run = spawnSync(USHER_BIN, [], { env: { PATH: process.env.PATH, ...vars }, encoding: 'utf8', timeout: 10000 });
      assert.equal(run.status, 2, JSON.stringify(vars));
      assert.match(run.stderr, message);
    }
  });
});
