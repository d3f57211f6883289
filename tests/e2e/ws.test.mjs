// ws.test.mjs — /ws, the old service's WebSocket, with npm ws as the client:
// subscribe → subscribed, then stats_update with the true counts (checked
// against Redis), pushed when a viewer joins; ping → pong; bad messages
// answered with an error and nothing changed; binary, oversized and
// broken frames close the connection; a client that never reads is
// dropped; a bad handshake is refused; the key comes from X-API-Key or the
// usher_api_key cookie.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import WebSocket from 'ws';
import { PREFIX, startLive, startUsher, waitFor } from './harness.mjs';

const PUSH_MS = 200;

// A connected client that collects the messages it gets.
function connect(usher, headers = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${usher.port}/ws`, { headers });
    const c = { ws, messages: [], closed: null, wake: null };
    ws.on('message', (data, binary) => {
      c.messages.push(binary ? data : JSON.parse(data.toString()));
      c.wake?.();
    });
    ws.on('close', (code, reason) => { c.closed = { code, reason: reason.toString() }; c.wake?.(); });
    ws.once('open', () => resolve(c));
    ws.once('unexpected-response', (req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
    ws.once('error', reject);
  });
}

function until(c, pred, ms = 3000) {
  return new Promise((resolve, reject) => {
    const check = () => {
      const found = c.messages.find(pred);
      if (found || c.closed) {
        clearTimeout(timer);
        c.wake = null;
        if (found) resolve(found);
        else reject(new Error(`closed ${JSON.stringify(c.closed)}; got ${JSON.stringify(c.messages)}`));
        return true;
      }
      return false;
    };
    const timer = setTimeout(() => { c.wake = null; reject(new Error(`nothing in ${ms} ms; got ${JSON.stringify(c.messages)}`)); }, ms);
    if (!check()) c.wake = check;
  });
}

const closed = (c, ms = 3000) => new Promise((resolve, reject) => {
  if (c.closed) { resolve(c.closed); return; }
  const timer = setTimeout(() => reject(new Error('not closed')), ms);
  c.ws.once('close', (code) => { clearTimeout(timer); resolve({ code }); });
});

const isUpdate = (m) => m.type === 'stats_update';

describe('/ws', () => {
  let redis, usher;
  before(async () => {
    ({ redis, usher } = await startLive({ STATS_PUSH_MS: String(PUSH_MS), LOG_LEVEL: 'info' }));
    for (let i = 0; i < 3; i++) assert.equal((await usher.post('/api/token/viewer', { userId: `w${i}` })).status, 200);
  });
  after(async () => { await usher?.close(); await redis?.close(); });

  const truth = () => ({
    viewerCount: Number(redis.raw('GET', `${PREFIX}total_viewers`)),
    activeStages: Number(redis.raw('ZCARD', `${PREFIX}stages`)),
  });

  it('subscribe → subscribed, then stats_update with the true counts, pushed on a join', async () => {
    const c = await connect(usher);
    try {
      c.ws.send(JSON.stringify({ type: 'subscribe', channel: 'stats' }));
      assert.deepEqual(await until(c, (m) => m.type === 'subscribed'), { type: 'subscribed', channel: 'stats' });
      const first = await until(c, isUpdate);
      const { timestamp, ...counts } = first.data;
      assert.deepEqual(counts, truth());
      assert.equal(counts.viewerCount, 3);
      assert.match(timestamp, /^\d{4}-/);
      const sent = Date.now();
      assert.equal((await usher.post('/api/token/viewer', { userId: 'w-new' })).status, 200);
      const next = await until(c, (m) => isUpdate(m) && m.data.viewerCount === 4, PUSH_MS + 1000);
      assert.ok(Date.now() - sent <= PUSH_MS + 1000);
      assert.equal(next.data.activeStages, truth().activeStages);
      // A leave too.
      const arn = redis.raw('ZRANGE', `${PREFIX}stages`, 0, 0);
      assert.equal((await usher.post('/api/viewer/leave', { userId: 'w-new', stageArn: arn })).status, 200);
      const updates = () => c.messages.filter(isUpdate);
      await until(c, () => updates().length === 3, PUSH_MS + 1000);
      assert.equal(updates()[2].data.viewerCount, 3);
      // None without a change: the feed reads once each STATS_PUSH_MS, one
      // read at a time (an FCALL usher_live), and sends what changed before
      // it reads again. Three reads seen, then a join as a barrier, whose
      // update comes after any the unchanged reads sent (one socket).
      const monitor = await redis.monitor();
      try {
        await waitFor(() => monitor.fcalls('usher_live') >= 4, { timeoutMs: PUSH_MS * 4 + 5000, what: 'three reads of the feed' });
      } finally { monitor.stop(); }
      const barrier = (await usher.post('/api/token/viewer', { userId: 'w-barrier' })).body.data;
      await until(c, () => updates().slice(3).some((m) => m.data.viewerCount === 4), PUSH_MS + 5000);
      assert.equal(updates().length, 4, 'one update per change, none without');
      assert.equal((await usher.post('/api/viewer/leave', { userId: 'w-barrier', stageArn: barrier.stageArn })).status, 200);
    } finally { c.ws.close(); }
  });

  it('no stats_update before subscribing; ping → pong; bad messages get an error and change nothing', async () => {
    const c = await connect(usher);
    try {
      c.ws.send(JSON.stringify({ type: 'ping' }));
      await until(c, (m) => m.type === 'pong');
      for (const bad of ['not json', '[1,2]', '{"type":7}', '{"type":"dance"}',
        '{"type":"subscribe"}', '{"type":"subscribe","channel":""}',
        JSON.stringify({ type: 'subscribe', channel: 'x'.repeat(65) })]) {
        const before = c.messages.length;
        c.ws.send(bad);
        await until(c, (m) => c.messages.indexOf(m) >= before && m.type === 'error');
      }
      assert.equal(c.messages.filter(isUpdate).length, 0, 'not subscribed: no updates');
      assert.equal(c.closed, null, 'still open');
      c.ws.send(JSON.stringify({ type: 'subscribe', channel: 'stats' }));
      await until(c, isUpdate);
    } finally { c.ws.close(); }
  });

  it('binary and oversized messages close the connection (1003, 1009)', async () => {
    const b = await connect(usher);
    b.ws.send(Buffer.from([1, 2, 3]));
    assert.equal((await closed(b)).code, 1003);
    const big = await connect(usher);
    big.ws.send(JSON.stringify({ type: 'ping', pad: 'x'.repeat(5000) }));
    assert.equal((await closed(big)).code, 1009);
  });

  it('a frame that breaks the protocol (unmasked from a client) closes the socket', async () => {
    const sock = net.connect(usher.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    let got = '';
    sock.on('data', (d) => { got += d.toString('latin1'); });
    const ended = new Promise((r) => sock.once('close', r));
    sock.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    // The whole 101 answer, however long the server takes on a busy machine.
    for (const until = Date.now() + 10000; !got.includes('\r\n\r\n') && Date.now() < until;) {
      await new Promise((r) => setTimeout(r, 20));
    }
    // RFC 6455's own example: the key above gives this accept value.
    assert.match(got, /^HTTP\/1\.1 101 /);
    assert.match(got, /Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/);
    sock.write(Buffer.from([0x81, 0x02, 0x68, 0x69]));   // "hi", not masked
    await ended;
  });

  it('a client that sends but never reads is dropped once 64 KiB of answers wait', async () => {
    const sock = net.connect(usher.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.pause();                                   // never read
    sock.on('error', () => {});
    sock.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    // Masked text frames (mask 0) of {"type":"ping"}: each one asks for a pong.
    const ping = Buffer.from('{"type":"ping"}');
    const frame = Buffer.concat([Buffer.from([0x81, 0x80 | ping.length, 0, 0, 0, 0]), ping]);
    const burst = Buffer.concat(Array(10000).fill(frame));
    const started = Date.now();
    while (!/\/ws: a client more than \d+ bytes behind is dropped/.test(usher.log)) {
      assert.ok(Date.now() - started < 60000, 'not dropped');
      if (!sock.destroyed && sock.writableLength < 1 << 20) sock.write(burst);
      await new Promise((r) => setTimeout(r, 20));
    }
    sock.destroy();
    const c = await connect(usher);                 // still serving
    c.ws.send(JSON.stringify({ type: 'ping' }));
    await until(c, (m) => m.type === 'pong');
    c.ws.close();
  });

  it('usher stopping closes with 1001 (going away)', async () => {
    const c = await connect(usher);
    c.ws.send(JSON.stringify({ type: 'subscribe', channel: 'stats' }));
    await until(c, isUpdate);
    const stopped = usher.stop();
    assert.equal((await closed(c, 15000)).code, 1001);
    assert.equal((await stopped).code, 0);
    await usher.restart();
  });

  it('a bad handshake is refused with a JSON error', async () => {
    const plain = await usher.get('/ws');
    assert.equal(plain.status, 426);
    assert.equal(plain.body.error.code, 'UPGRADE_REQUIRED');
    const base = { Upgrade: 'websocket', Connection: 'Upgrade' };
    const v8 = await usher.get('/ws', { headers: { ...base, 'Sec-WebSocket-Version': '8', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' } });
    assert.equal(v8.status, 426);
    assert.equal(v8.headers['sec-websocket-version'], '13');
    for (const key of [undefined, 'short', 'dGhlIHNhbXBsZSBub25jZQ', 'dGhlIHNhbXBsZSBub25jZQ=X', '!!!!!!!!!!!!!!!!!!!!!!==']) {
      const headers = { ...base, 'Sec-WebSocket-Version': '13', ...(key ? { 'Sec-WebSocket-Key': key } : {}) };
      const res = await usher.get('/ws', { headers });
      assert.equal(res.status, 400, String(key));
      assert.equal(res.body.error.code, 'VALIDATION_ERROR');
    }
    // Still serving.
    const c = await connect(usher);
    c.ws.close();
  });
});

describe('/ws: the API key', () => {
  let redis, usher;
  before(async () => {
    ({ redis, usher } = await startUsher({ SKIP_AUTH: 'false', API_SECRET_KEY: 'ws-key' }));
  });
  after(async () => { await usher?.close(); await redis?.close(); });

  it('from X-API-Key or the usher_api_key cookie (not from another origin), else 401', async () => {
    await assert.rejects(connect(usher), { status: 401 });
    await assert.rejects(connect(usher, { 'X-API-Key': 'nope' }), { status: 401 });
    // A page of another origin would have the browser send the cookie too.
    await assert.rejects(connect(usher, { Cookie: 'usher_api_key=ws-key', Origin: 'https://evil.example' }),
      { status: 401 });
    for (const headers of [{ 'X-API-Key': 'ws-key' }, { Cookie: 'usher_api_key=ws-key' },
      { Cookie: 'usher_api_key=ws-key', Origin: `http://127.0.0.1:${usher.port}` }]) {
      const c = await connect(usher, headers);
      c.ws.send(JSON.stringify({ type: 'subscribe', channel: 'stats' }));
      await until(c, isUpdate);
      c.ws.close();
    }
  });
});
