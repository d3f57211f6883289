// stats-stream.test.mjs — GET /api/stats/stream (Server-Sent Events) on the
// real usher: the first event is the /api/stats data; a join is pushed within
// STATS_PUSH_MS; stage events carry their stream id and a reconnect with
// Last-Event-ID gets only what came after; an idle stream is pinged every
// 15 s; 1,000 open streams cost Redis no more calls than one (Redis
// MONITOR); a client that never reads is
// dropped and usher's memory stays bounded; while Redis is down the stream
// says so (health) and new streams get 503; the key is taken from the header
// or the usher_api_key cookie, never from the query string.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { sleep, startLive, startUsher, waitFor } from './harness.mjs';
import { openStream, isStats } from './sse.mjs';

const PUSH_MS = 200;

// Commands usher sent in ms milliseconds, and those they ran inside
// functions, by name (Redis's MONITOR: a function's commands follow its
// FCALL, from "lua"). The state check (usher_check, every STATE_CHECK_MS,
// whoever listens) is left out with what it ran: a window of 3 s holds one
// or two of them, some 100 calls each, whatever the streams cost.
async function callsDuring(redis, ms) {
  const monitor = await redis.monitor();
  let text;
  try {
    await sleep(ms);
    text = monitor.text();
  } finally { monitor.stop(); }
  const calls = {};
  let inCheck = false;
  for (const line of text.split('\n')) {
    const m = /^\S+ \[\d+ (lua|[\d.:]+)\] "([^"]+)"(?: "([^"]*)")?/.exec(line);
    if (!m) continue;
    const cmd = m[2].toLowerCase();
    if (m[1] !== 'lua') inCheck = cmd === 'fcall' && m[3] === 'usher_check';
    if (!inCheck) calls[cmd] = (calls[cmd] || 0) + 1;
  }
  return calls;
}
const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);

function rssKb(pid) {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
}

const withoutTimestamp = ({ timestamp, ...rest }) => rest;

describe('GET /api/stats/stream', () => {
  let redis, usher;
  before(async () => {
    ({ redis, usher } = await startLive({ STATS_PUSH_MS: String(PUSH_MS), MAX_STAGES: '200', LOG_LEVEL: 'info' }));
  });
  after(async () => { await usher?.close(); await redis?.close(); });

  it('first event: the /api/stats data, with capacityPerStage and health', async () => {
    const stats = (await usher.get('/api/stats')).body.data;
    const s = await openStream(usher.port);
    try {
      assert.equal(s.status, 200);
      assert.match(s.headers['content-type'], /^text\/event-stream/);
      assert.equal(s.headers['cache-control'], 'no-store');
      const first = await s.until(isStats);
      assert.equal(first.id, undefined, 'stats events carry no id');
      const { capacityPerStage, health, ...data } = first.data;
      assert.deepEqual(withoutTimestamp(data), withoutTimestamp(stats));
      assert.match(data.timestamp, /^\d{4}-\d\d-\d\dT/);
      assert.equal(capacityPerStage, 50);
      assert.equal(health.redis.status, 'up');
      assert.equal(typeof health.redis.latencyMs, 'number');
      assert.equal(health.ivs.provider, 'local');
    } finally { s.close(); }
  });

  it('an idle stream gets a ": ping" comment every 15 s', { timeout: 40000 }, async () => {
    const s = await openStream(usher.port);
    try {
      await s.until(isStats);
      const opened = Date.now();
      await s.until((e) => e.comment === 'ping', 17000);
      const first = Date.now() - opened;
      assert.ok(first <= 16000, `first ping after ${first} ms`);
      assert.match(s.body, /\n: ping\n\n/);
    } finally { s.close(); }
  });

  it('a join is pushed within STATS_PUSH_MS plus a margin', async () => {
    const s = await openStream(usher.port);
    try {
      const first = await s.until(isStats);
      const total = first.data.totalViewers;
      const sent = Date.now();
      assert.equal((await usher.post('/api/token/viewer', { userId: 'joiner-1' })).status, 200);
      const next = await s.until((e) => isStats(e) && e.data.totalViewers === total + 1, PUSH_MS + 1000);
      const took = Date.now() - sent;
      assert.ok(took <= PUSH_MS + 1000, `pushed after ${took} ms`);
      assert.equal(next.data.stages.reduce((n, st) => n + st.viewerCount, 0), total + 1);
      // Nothing changes: no more stats events, only what was there. The
      // feed reads once each STATS_PUSH_MS, one read at a time (each an
      // FCALL usher_live), and sends what changed before it reads again:
      // four reads seen, then a change as a barrier, whose event comes
      // after any the unchanged reads sent (one stream, in order).
      const count = s.events.filter(isStats).length;
      const monitor = await redis.monitor();
      try {
        const reads = () => monitor.fcalls('usher_live');
        await waitFor(() => reads() >= 5, { timeoutMs: PUSH_MS * 5 + 5000, what: 'four reads of the feed' });
      } finally { monitor.stop(); }
      assert.equal((await usher.post('/api/token/viewer', { userId: 'joiner-barrier' })).status, 200);
      await s.until((e) => isStats(e) && e.data.totalViewers === total + 2, PUSH_MS + 5000);
      assert.equal(s.events.filter(isStats).length, count + 1, 'unchanged stats are not sent again');
    } finally { s.close(); }
  });

  it('stage events carry the stream id, after the stats; Last-Event-ID resumes after it', async () => {
    for (const name of ['ev-a', 'ev-b', 'ev-c']) {
      assert.equal((await usher.post('/api/stage', { name })).status, 201);
    }
    const s1 = await openStream(usher.port);
    let ids;
    try {
      await s1.until((e) => e.event === 'stage' && e.data.detail === 'ev-c');
      assert.equal(s1.events[0].event, 'stats', 'the stats first, then the latest events');
      const stage = s1.events.filter((e) => e.event === 'stage');
      assert.ok(stage.length >= 3, 'the latest events on a fresh connect');
      for (const e of stage) {
        assert.match(e.id, /^\d+-\d+$/);
        assert.equal(e.data.id, e.id);
      }
      ids = stage.map((e) => e.id);
      assert.deepEqual(stage.slice(-3).map((e) => e.data.detail), ['ev-a', 'ev-b', 'ev-c']);
      assert.deepEqual(stage.slice(-3).map((e) => e.data.type), ['created', 'created', 'created']);
      // A new event while connected comes at once, with its id.
      assert.equal((await usher.post('/api/stage', { name: 'ev-d' })).status, 201);
      const d = await s1.until((e) => e.event === 'stage' && e.data.detail === 'ev-d', PUSH_MS + 1000);
      ids.push(d.id);
    } finally { s1.close(); }
    const resumeAt = ids.at(-3);         // seen: up to ev-b
    assert.equal((await usher.post('/api/stage', { name: 'ev-e' })).status, 201);  // while away
    const s2 = await openStream(usher.port, { headers: { 'Last-Event-ID': resumeAt } });
    try {
      await s2.until((e) => e.event === 'stage' && e.data.detail === 'ev-e', PUSH_MS + 1000);
      assert.equal(s2.events[0].event, 'stats', 'the stats first, then the events after Last-Event-ID');
      const got = s2.events.filter((e) => e.event === 'stage').map((e) => e.data.detail);
      assert.deepEqual(got, ['ev-c', 'ev-d', 'ev-e'], 'only the events after Last-Event-ID, in order');
    } finally { s2.close(); }
    const s3 = await openStream(usher.port, { headers: { 'Last-Event-ID': 'not-an-id' } });
    try {
      await s3.until((e) => e.event === 'stage' && e.data.detail === 'ev-e');
      assert.ok(s3.events.filter((e) => e.event === 'stage').length >= 5, 'a bad id is a fresh start');
    } finally { s3.close(); }
  });

  it('Redis down: the last stats again with health down, then up; a new stream gets 503', async () => {
    const s = await openStream(usher.port);
    try {
      const first = await s.until(isStats);
      redis.pause();
      try {
        const down = await s.until((e) => isStats(e) && e.data.health.redis.status === 'down', 5000);
        assert.equal(down.data.totalViewers, first.data.totalViewers, 'the last stats, marked down');
        assert.equal(typeof down.data.health.redis.error, 'string');
        // The connection is dropped past REDIS_TIMEOUT_MS (later on a busy
        // machine); from then on a new stream is refused.
        await waitFor(async () => {
          const attempt = await openStream(usher.port);
          attempt.close();
          return attempt.status === 503;
        }, { timeoutMs: 15000, stepMs: 100, what: 'usher to drop its Redis connection' });
        const refused = await usher.get('/api/stats/stream');
        assert.equal(refused.status, 503);
        assert.equal(refused.body.error.code, 'SERVICE_UNAVAILABLE');
      } finally { redis.resume(); }
      const back = s.events.length;
      await s.until((e) => s.events.indexOf(e) >= back && isStats(e) && e.data.health.redis.status === 'up', 10000);
    } finally { s.close(); }
  });

  it('1,000 open streams cost Redis no more calls than one', { timeout: 120000 }, async () => {
    const one = await openStream(usher.port);
    await one.until(isStats);
    await sleep(PUSH_MS);
    const alone = await callsDuring(redis, 3000);
    const streams = [];
    try {
      for (let i = 0; i < 1000; i += 100) {
        streams.push(...await Promise.all(Array.from({ length: 100 }, () => openStream(usher.port))));
      }
      await Promise.all(streams.map((s) => s.until(isStats, 20000)));
      await sleep(PUSH_MS);
      const crowd = await callsDuring(redis, 3000);
      // Every read is one FCALL usher_live (the scaler adds two FCALLs a
      // second, lease and view): 3 s at 200 ms are some 15 reads.
      assert.ok(alone.fcall >= 15, `the feed reads while subscribed: ${JSON.stringify(alone)}`);
      // A window of 3 s holds one read more or less depending on where it
      // starts, and each read is one FCALL and the commands it runs inside
      // (MONITOR shows them too, some 30): the same leeway of 3 reads
      // for both; a cost per stream would be 1,000 calls a read.
      assert.ok(crowd.fcall <= alone.fcall + 3, `FCALL: ${alone.fcall} with 1 stream, ${crowd.fcall} with 1,001`);
      const perRead = Math.ceil(sum(alone) / alone.fcall);
      assert.ok(sum(crowd) <= sum(alone) + 3 * perRead,
        `all calls (${perRead} a read): ${JSON.stringify(alone)} vs ${JSON.stringify(crowd)}`);
      // A change reaches all of them.
      assert.equal((await usher.post('/api/token/viewer', { userId: 'crowd-1' })).status, 200);
      const total = Number(redis.raw('GET', 'ivs:test:total_viewers'));
      await Promise.all(streams.map((s) => s.until((e) => isStats(e) && e.data.totalViewers === total, 10000)));
    } finally {
      streams.forEach((s) => s.close());
      one.close();
    }
    // Without subscribers the feed stops reading.
    await sleep(PUSH_MS * 2);
    const idle = await callsDuring(redis, 3000);
    assert.ok((idle.fcall || 0) + 10 <= alone.fcall,
      `no reads without subscribers: ${idle.fcall} FCALLs in 3 s, ${alone.fcall} with one stream`);
  });
});

// Under ASan freed memory sits in a quarantine (256 MB by default), which
// would hide what is being measured: this usher runs with a small one.
describe('GET /api/stats/stream: a client that never reads', () => {
  let redis, usher;
  before(async () => {
    ({ redis, usher } = await startLive({ STATS_PUSH_MS: String(PUSH_MS), MAX_STAGES: '200', LOG_LEVEL: 'info',
      ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0:quarantine_size_mb=4' }));
  });
  after(async () => { await usher?.close(); await redis?.close(); });

  it('a client that never reads is dropped; memory stays bounded', { timeout: 120000 }, async (t) => {
    // Big stats events: 150 stages, a viewer count that changes every push.
    for (let i = 0; i < 150; i++) {
      assert.equal((await usher.post('/api/stage', { name: `bulk-stage-name-that-is-long-${i}` })).status, 201);
    }
    const sock = net.connect(usher.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.pause();                         // never read
    sock.write('GET /api/stats/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n');
    const reader = await openStream(usher.port);   // a reading client beside it
    await reader.until(isStats);
    const rssBefore = rssKb(usher.proc.pid);
    let i = 0;
    const started = Date.now();
    while (!/client more than \d+ bytes behind is dropped/.test(usher.log)) {
      assert.ok(Date.now() - started < 90000, 'the client that never reads was not dropped');
      await usher.post('/api/token/viewer', { userId: `churn-${i++}` });
      await sleep(PUSH_MS / 2);
    }
    const rssAtDrop = rssKb(usher.proc.pid);
    const pushesToDrop = i;
    // As many pushes again, with the client gone from the feed.
    for (let n = 0; n < pushesToDrop; n++) {
      await usher.post('/api/token/viewer', { userId: `churn-${i++}` });
      await sleep(PUSH_MS / 2);
    }
    const rssAfter = rssKb(usher.proc.pid);
    sock.destroy();
    t.diagnostic(`dropped after ${pushesToDrop} pushes; RSS ${rssBefore} -> ${rssAtDrop} -> ${rssAfter} kB`);
    assert.ok(rssAtDrop - rssBefore < 48 * 1024, `RSS grew by ${rssAtDrop - rssBefore} kB until the drop`);
    assert.ok(rssAfter - rssAtDrop < 16 * 1024, `RSS grew by ${rssAfter - rssAtDrop} kB after it`);
    // The reading client is still served.
    const total = Number(redis.raw('GET', 'ivs:test:total_viewers'));
    await reader.until((e) => isStats(e) && e.data.totalViewers === total, PUSH_MS + 2000);
    reader.close();
  });
});

describe('GET /api/stats/stream: the API key', () => {
  let redis, usher;
  before(async () => {
    ({ redis, usher } = await startUsher({ SKIP_AUTH: 'false', API_SECRET_KEY: 'stream-key' }));
  });
  after(async () => { await usher?.close(); await redis?.close(); });

  it('from X-API-Key or the usher_api_key cookie, not from the query string', async () => {
    const cases = [
      [{}, '', 401],
      [{ 'X-API-Key': 'wrong' }, '', 401],
      [{}, '?apiKey=stream-key', 401],
      [{}, '?api_key=stream-key&key=stream-key', 401],
      [{ Cookie: 'usher_api_key=wrong' }, '', 401],
      [{ 'X-API-Key': 'stream-key' }, '', 200],
      [{ Cookie: 'usher_api_key=stream-key' }, '', 200],
      [{ Cookie: 'theme=dark; usher_api_key=stream-key; other=1' }, '', 200],
      [{ Cookie: 'usher_api_key=stream-key', Origin: 'https://evil.example' }, '', 401],
    ];
    for (const [headers, query, status] of cases) {
      const s = await openStream(usher.port, { path: `/api/stats/stream${query}`, headers });
      assert.equal(s.status, status, `${JSON.stringify(headers)} ${query}`);
      if (status === 200) await s.until(isStats);
      else {
        // The whole refusal, however long a busy machine takes to send it.
        await waitFor(() => s.ended, { timeoutMs: 5000, what: 'the end of the 401 answer' });
        assert.match(s.body, /UNAUTHORIZED/);
      }
      s.close();
    }
    // The cookie opens only the streams, not the rest of /api/*.
    const res = await usher.get('/api/stats', { headers: { Cookie: 'usher_api_key=stream-key' } });
    assert.equal(res.status, 401);
  });
});
