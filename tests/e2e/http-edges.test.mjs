// http-edges.test.mjs — every way a client can frame a request, over raw
// bytes (node:net), one connection per case: what status and JSON envelope
// comes back, and whether the connection stays open or is closed.
//
// Covered: pipelining (answers in order), keep-alive reuse, HTTP/1.0 with
// and without keep-alive, absent or repeated Host, Content-Length together with
// Transfer-Encoding, negative / non-numeric / repeated Content-Length,
// chunked bodies (within and over the limit, a chunk announced over it), Expect: 100-continue, header
// size, count and line limits, control bytes in the path, unknown methods,
// HEAD, slow senders (head and body), idle connections, and a client that
// sends many requests and never reads its answers.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { Redis, Usher, sleep } from './harness.mjs';

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const READ_TIMEOUT_MS = 1000;
const IDLE_TIMEOUT_MS = 2000;

// Parses as many complete answers as buf holds; returns [answers, rest].
// heads: how many of the answers are to HEAD requests (no body), in order.
function parseAnswers(buf, state) {
  const answers = [];
  for (;;) {
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) break;
    const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
    const [version, status] = lines[0].split(' ');
    const headers = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    const code = Number(status);
    const isHead = code >= 200 && state.heads.includes(state.finals);
    const len = code < 200 || code === 204 || isHead ? 0 : Number(headers['content-length'] || 0);
    if (buf.length < end + 4 + len) break;
    const text = buf.subarray(end + 4, end + 4 + len).toString('utf8');
    let body = text;
    try { body = JSON.parse(text); } catch { /* not JSON */ }
    answers.push({ version, status: code, headers, body, raw: text });
    if (code >= 200) state.finals++;
    buf = buf.subarray(end + 4 + len);
  }
  return [answers, buf];
}

// Sends steps (strings/Buffers, or {wait: ms}) on a new connection and
// collects answers until `finals` final (non-1xx) answers came and then
// settleMs passed (or the server closed), or timeoutMs passed.
// Resolves {answers, closed, elapsedMs}.
function exchange(port, steps, { finals = 1, settleMs = 400, timeoutMs = 5000, heads = [] } = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    const sock = net.connect(port, '127.0.0.1');
    const state = { heads, finals: 0 };
    let buf = Buffer.alloc(0), answers = [], closed = false, done = false, settle = null;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer); clearTimeout(settle);
      sock.destroy();
      resolve({ answers, closed, elapsedMs: Date.now() - started, rest: buf.toString('latin1') });
    };
    const timer = setTimeout(finish, timeoutMs);
    sock.on('data', (d) => {
      const [more, rest] = parseAnswers(Buffer.concat([buf, d]), state);
      answers = answers.concat(more);
      buf = rest;
      if (!settle && state.finals >= finals) settle = setTimeout(finish, settleMs);
    });
    const gone = () => { closed = true; setImmediate(finish); };
    sock.on('end', gone);
    sock.on('error', gone);
    sock.on('connect', async () => {
      for (const step of steps) {
        if (done) return;
        if (step && step.wait !== undefined) await sleep(step.wait);
        else sock.write(step);
      }
    });
  });
}

function assertEnvelope(a, status, code) {
  assert.ok(a, 'an answer came');
  assert.equal(a.status, status, `status; body ${a.raw.slice(0, 300)}`);
  assert.match(a.headers['content-type'] || '', /^application\/json/);
  assert.equal(typeof a.body, 'object', `JSON body: ${a.raw.slice(0, 200)}`);
  assert.equal(a.body.success, false);
  if (code) assert.equal(a.body.error.code, code);
  assert.equal(typeof a.body.error.message, 'string');
  assert.match(a.body.timestamp, ISO_MS);
}

// One request that must be refused in JSON with the connection closed.
async function refusedAndClosed(port, steps, status, code) {
  const r = await exchange(port, steps, { settleMs: 1500 });
  assert.equal(r.answers.length, 1, `one answer; got ${r.answers.length}: ${r.rest.slice(0, 200)}`);
  assertEnvelope(r.answers[0], status, code);
  assert.equal(r.answers[0].headers.connection, 'close');
  assert.ok(r.closed, 'connection closed');
  return r;
}

const get = (path, extra = '') => `GET ${path} HTTP/1.1\r\nHost: t\r\n${extra}\r\n`;
const send = (method, path, body, extra = '') =>
  `${method} ${path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

describe('HTTP/1.1 at its edges', () => {
  let redis, usher, port;
  before(async () => {
    redis = await Redis.start();
    usher = await Usher.start(redis, {
      HTTP_READ_TIMEOUT_MS: String(READ_TIMEOUT_MS), HTTP_IDLE_TIMEOUT_MS: String(IDLE_TIMEOUT_MS),
      // ASan keeps freed memory in a quarantine (256 MB by default), which
      // would hide what the memory check below measures: usher's own.
      ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0:quarantine_size_mb=1',
    });
    port = usher.port;
  });
  after(async () => {
    const status = await usher?.stop();
    assert.deepEqual(status, { code: 0, signal: null });
    await usher?.close();
    await redis?.close();
  });

  it('pipelining: three requests in one write get three answers, in order', async () => {
    const r = await exchange(port, [get('/health') + get('/api/stats') + get('/nope')], { finals: 3 });
    assert.deepEqual(r.answers.map((a) => a.status), [200, 200, 404]);
    assert.equal(r.answers[0].body.data.status, 'healthy');
    assert.equal(typeof r.answers[1].body.data.totalViewers, 'number');
    assertEnvelope(r.answers[2], 404, 'NOT_FOUND');
    assert.ok(!r.closed, 'connection kept open');
  });

  it('pipelining with bodies, split at odd places, keeps order', async () => {
    const all = send('PUT', '/api/publisher/status', '{"status":"live"}') + get('/api/stats/publisher') +
      send('PUT', '/api/publisher/status', '{"status":"offline"}') + get('/api/stats/publisher');
    const steps = [];
    for (let i = 0; i < all.length; i += 7) steps.push(all.slice(i, i + 7));
    const r = await exchange(port, steps, { finals: 4 });
    assert.deepEqual(r.answers.map((a) => a.status), [200, 200, 200, 200]);
    assert.deepEqual(r.answers.map((a) => a.body.data.isPublisherLive), [true, true, false, false]);
  });

  it('keep-alive: one connection serves requests one after another', async () => {
    const r = await exchange(port, [get('/health'), { wait: 200 }, get('/api/health'), { wait: 200 }, get('/')],
      { finals: 3 });
    assert.deepEqual(r.answers.map((a) => a.status), [200, 200, 200]);
    assert.ok(!r.closed);
    assert.equal(r.answers[0].headers.connection, undefined);
  });

  it('Connection: close is honoured after the answer', async () => {
    const r = await exchange(port, [get('/health', 'Connection: close\r\n')], { settleMs: 1500 });
    assert.equal(r.answers[0].status, 200);
    assert.equal(r.answers[0].headers.connection, 'close');
    assert.ok(r.closed);
  });

  it('HTTP/1.0 without keep-alive: answered in HTTP/1.0, then closed', async () => {
    const r = await exchange(port, ['GET /health HTTP/1.0\r\n\r\n'], { settleMs: 1500 });
    assert.equal(r.answers[0].version, 'HTTP/1.0');
    assert.equal(r.answers[0].status, 200);
    assert.ok(r.answers[0].headers['content-length']);
    assert.ok(r.closed);
  });

  it('HTTP/1.0 with Connection: keep-alive stays open', async () => {
    const req = 'GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n';
    const r = await exchange(port, [req, { wait: 100 }, req], { finals: 2 });
    assert.deepEqual(r.answers.map((a) => a.status), [200, 200]);
    assert.equal(r.answers[0].headers.connection, 'keep-alive');
    assert.ok(!r.closed);
  });

  it('HTTP/1.1 without Host is 400', async () => {
    await refusedAndClosed(port, ['GET /health HTTP/1.1\r\n\r\n'], 400, 'VALIDATION_ERROR');
  });

  it('two Host headers are 400', async () => {
    await refusedAndClosed(port, ['GET /health HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n'], 400, 'VALIDATION_ERROR');
  });

  it('Content-Length with Transfer-Encoding: chunked is 400 and close', async () => {
    await refusedAndClosed(port, ['POST /api/viewer/heartbeat HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n' +
      'Transfer-Encoding: chunked\r\n\r\n4\r\n{}{}\r\n0\r\n\r\n'], 400, 'VALIDATION_ERROR');
  });

  it('negative Content-Length is 400 and close', async () => {
    await refusedAndClosed(port, ['POST /api/viewer/heartbeat HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n{}'],
      400, 'VALIDATION_ERROR');
  });

  it('non-numeric Content-Length is 400 and close', async () => {
    await refusedAndClosed(port, ['POST /api/viewer/heartbeat HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\n{}'],
      400, 'VALIDATION_ERROR');
  });

  it('two Content-Length headers (2 and 40) are 400 and close, before any body is read', async () => {
    const before = redis.snapshot();
    const body = '{"status":"live"}'.padEnd(40, ' ');
    await refusedAndClosed(port, ['PUT /api/publisher/status HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n' +
      `Content-Length: 40\r\nContent-Type: application/json\r\n\r\n${body}`], 400, 'VALIDATION_ERROR');
    assert.deepEqual(redis.snapshot(), before, 'nothing changed');
  });

  it('an unknown Transfer-Encoding is 400 and close', async () => {
    await refusedAndClosed(port, ['POST /api/viewer/heartbeat HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\nxx'],
      400, 'VALIDATION_ERROR');
  });

  it('a chunked body is decoded and used', async () => {
    const r = await exchange(port, ['PUT /api/publisher/status HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n' +
      'Transfer-Encoding: chunked\r\n\r\n', '5\r\n{"sta\r\n', { wait: 50 }, 'b\r\ntus":"live"\r\n1\r\n}\r\n0\r\n\r\n']);
    assert.equal(r.answers[0].status, 200, r.answers[0].raw);
    assert.equal(r.answers[0].body.data.isPublisherLive, true);
    assert.ok(!r.closed);
  });

  it('a chunked body over the limit is 413 and close', async () => {
    const chunk = 'a'.repeat(4096);
    const steps = ['POST /api/token/viewer HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n'];
    for (let i = 0; i < 6; i++) steps.push(`1000\r\n${chunk}\r\n`);
    steps.push('0\r\n\r\n');
    await refusedAndClosed(port, steps, 413, 'PAYLOAD_TOO_LARGE');
  });

  it('a chunk announced over the limit is 413 at once, without waiting for its bytes', async () => {
    await refusedAndClosed(port, ['POST /api/token/viewer HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n' +
      'FFFFFFFFFFFF\r\n{"userId"'], 413, 'PAYLOAD_TOO_LARGE');
  });

  it('a Content-Length over the limit is 413 at once, without reading the body', async () => {
    const r = await refusedAndClosed(port, ['POST /api/token/viewer HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n{'],
      413, 'PAYLOAD_TOO_LARGE');
    assert.ok(r.elapsedMs < READ_TIMEOUT_MS + 1000, 'not waiting for the body');
  });

  it('Expect: 100-continue gets 100 Continue, then the answer', async () => {
    const body = '{"status":"live"}';
    const r = await exchange(port, [`PUT /api/publisher/status HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`, { wait: 300 }, body]);
    assert.deepEqual(r.answers.map((a) => a.status), [100, 200]);
    assert.ok(!r.closed);
  });

  it('Expect: 100-continue with a Content-Length over the limit is 413 instead', async () => {
    const r = await refusedAndClosed(port, ['POST /api/token/viewer HTTP/1.1\r\nHost: t\r\nContent-Length: 20000\r\n' +
      'Expect: 100-continue\r\n\r\n'], 413, 'PAYLOAD_TOO_LARGE');
    assert.ok(!r.answers.some((a) => a.status === 100));
  });

  it('a 100 KB header is 431 and close', async () => {
    await refusedAndClosed(port, [`GET /health HTTP/1.1\r\nHost: t\r\nX-Big: ${'a'.repeat(100 * 1024)}\r\n\r\n`],
      431, 'HEADERS_TOO_LARGE');
  });

  it('a 40 KB request line is 431 and close', async () => {
    await refusedAndClosed(port, [get(`/api/${'a'.repeat(40 * 1024)}`)], 431, 'HEADERS_TOO_LARGE');
  });

  it('more than 64 headers is 431 and close', async () => {
    let many = '';
    for (let i = 0; i < 100; i++) many += `X-H${i}: ${i}\r\n`;
    await refusedAndClosed(port, [get('/health', many)], 431, 'HEADERS_TOO_LARGE');
  });

  it('a NUL in the path is 400 and close', async () => {
    await refusedAndClosed(port, [Buffer.from('GET /hea\0lth HTTP/1.1\r\nHost: t\r\n\r\n', 'latin1')], 400, 'VALIDATION_ERROR');
  });

  it('control bytes in the path are 400', async () => {
    for (const ch of ['\x01', '\x1b', '\x7f', '\t']) {
      await refusedAndClosed(port, [Buffer.from(`GET /he${ch}alth HTTP/1.1\r\nHost: t\r\n\r\n`, 'latin1')],
        400, 'VALIDATION_ERROR');
    }
  });

  it('an unknown method (BREW) is 501 in JSON and close', async () => {
    await refusedAndClosed(port, ['BREW /pot HTTP/1.1\r\nHost: t\r\n\r\n'], 501, 'NOT_IMPLEMENTED');
  });

  it('a known method no route takes is 405 in JSON, and the connection is kept', async () => {
    const r = await exchange(port, [get('/health').replace('GET', 'PATCH') + get('/health')], { finals: 2 });
    assertEnvelope(r.answers[0], 405, 'METHOD_NOT_ALLOWED');
    assert.equal(r.answers[1].status, 200);
    assert.ok(!r.closed);
  });

  it('HEAD gets the status and Content-Length without a body', async () => {
    const r = await exchange(port, [get('/health').replace('GET', 'HEAD') + get('/health')], { finals: 2, heads: [0] });
    assert.equal(r.answers[0].status, 405);
    assert.ok(Number(r.answers[0].headers['content-length']) > 0);
    assert.equal(r.answers[0].raw, '');
    assert.equal(r.answers[1].status, 200, 'the next answer starts right after the head');
  });

  it('a garbage request line is refused in JSON and closed', async () => {
    await refusedAndClosed(port, ['GET / HTTP/1.1\r\nHost: t\r\nNo colon here\r\n\r\n'], 400, 'VALIDATION_ERROR');
    await refusedAndClosed(port, ['GET / HTTP/9.x\r\nHost: t\r\n\r\n'], 400, 'VALIDATION_ERROR');
    // A TLS ClientHello: its first byte is no method's.
    await refusedAndClosed(port, [Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])], 501, 'NOT_IMPLEMENTED');
  });

  it('a slow sender of the head is answered 408 and closed after the read timeout', async () => {
    const steps = ['GET /health HTTP/1.1\r\n'];
    for (let i = 0; i < 20; i++) steps.push({ wait: 150 }, 'X');
    const r = await exchange(port, steps, { settleMs: 1500, timeoutMs: 6000 });
    assertEnvelope(r.answers[0], 408, 'REQUEST_TIMEOUT');
    assert.ok(r.closed);
    assert.ok(r.elapsedMs >= READ_TIMEOUT_MS && r.elapsedMs < READ_TIMEOUT_MS + 1500, `after ${r.elapsedMs} ms`);
  });

  it('a body that stops short is answered 408 and closed', async () => {
    const r = await exchange(port, ['PUT /api/publisher/status HTTP/1.1\r\nHost: t\r\nContent-Length: 17\r\n\r\n{"sta'],
      { settleMs: 1500, timeoutMs: 6000 });
    assertEnvelope(r.answers[0], 408, 'REQUEST_TIMEOUT');
    assert.ok(r.closed);
  });

  it('an idle connection is closed quietly after the idle timeout', async () => {
    const r = await exchange(port, [], { finals: 1, timeoutMs: IDLE_TIMEOUT_MS + 2000 });
    assert.equal(r.answers.length, 0);
    assert.ok(r.closed, 'closed');
    assert.ok(r.elapsedMs >= IDLE_TIMEOUT_MS - 100, `after ${r.elapsedMs} ms`);
  });

  it('a client that never reads cannot stall others; its requests wait', async () => {
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${usher.proc.pid}/status`, 'utf8'))[1]);
    // Settled: two readings 500 ms apart within 256 KiB (a loaded machine
    // may take a while to answer what fits in the socket buffers).
    const settledRss = async () => {
      let last = rss();
      for (let i = 0; i < 20; i++) {
        await sleep(500);
        const now = rss();
        if (Math.abs(now - last) < 256) return now;
        last = now;
      }
      return last;
    };
    const rssIdle = await settledRss();
    const sock = net.connect(port, '127.0.0.1');
    sock.pause();                                  // never read
    await new Promise((r) => sock.on('connect', r));
    const many = get('/api/stats').repeat(20000);  // ~ 30 MB of answers if all were made
    sock.write(many);
    await sleep(1000);                             // usher answers until the socket buffers are full
    const t0 = Date.now();
    const r = await exchange(port, [get('/health')]);
    assert.equal(r.answers[0].status, 200);
    assert.ok(Date.now() - t0 < 1000, 'another client is served at once');
    // Bounded: what fits in the socket buffers and the capped output queue,
    // far from the 30 MB all 20,000 answers would take; and once the
    // buffers are full usher stops growing.
    const rssBlocked = await settledRss();
    assert.ok(rssBlocked - rssIdle < 16384, `usher grew by ${rssBlocked - rssIdle} KiB for a client that does not read`);
    await sleep(2000);
    const grown = rss() - rssBlocked;
    assert.ok(grown < 2048, `usher grew by ${grown} KiB more while the client still did not read`);
    sock.destroy();
  });
});
