// dashboard-fake-server.mjs — a test-only stand-in for usher's side of the
// dashboard (web/dashboard/README.md): serves web/dashboard/ at /dashboard
// and a scriptable GET /api/stats/stream that requires the API key. It lets
// the browser test prove the page before usher serves the stream itself;
// the same test runs against the real usher by swapping the target.
//
// The statistics live in a FakeStats the test changes (join, stageEvent);
// the HTTP server can be stopped and started again on the same port with the
// same FakeStats, as a usher restart with Redis keeping the counts.
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB = join(dirname(fileURLToPath(import.meta.url)), '../../web/dashboard');
const FILES = {
  '/dashboard': ['index.html', 'text/html; charset=utf-8'],
  '/dashboard/': ['index.html', 'text/html; charset=utf-8'],
  '/dashboard/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/dashboard/style.css': ['style.css', 'text/css; charset=utf-8'],
};
// The headers the contract asks usher to send with the page's files.
const PAGE_HEADERS = {
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; " +
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-cache',
};

const ARN = (id) => `arn:aws:ivs:ap-northeast-1:123456789012:stage/${id}`;

// The numbers the stream reports; listeners are told of every change.
export class FakeStats {
  constructor() {
    this.capacityPerStage = 100;
    this.isPublisherLive = true;
    this.stages = [
      { stageId: ARN('sWyAydfRqqF8'), viewerCount: 87, mode: 'open', replication: 'source', isMasterStage: true,
        info: { name: 'master-stage', autoScaled: false, createdAt: '2026-11-30T05:00:00.000Z' } },
      { stageId: ARN('PvHUfQkBRp1c'), viewerCount: 41, mode: 'open', replication: 'running', isMasterStage: false,
        info: { name: 'auto-stage-1764478800000', autoScaled: true, createdAt: '2026-11-30T05:20:00.000Z' } },
      { stageId: ARN('Qk3mZr7TnW2x'), viewerCount: 0, mode: 'waiting', replication: 'pending', isMasterStage: false,
        info: { name: 'auto-stage-1764480000000', autoScaled: true, createdAt: '2026-11-30T05:40:00.000Z' } },
    ];
    this.events = [];        // {id, type, stageArn, detail, at}, oldest first
    this.listeners = new Set();
    this.seq = 0;
    this.stageEvent('created', this.stages[0].stageId, 'master-stage');
    this.stageEvent('scale_up', this.stages[1].stageId, 'auto-stage-1764478800000');
    this.stageEvent('replication_started', this.stages[1].stageId, this.stages[0].stageId);
    this.stageEvent('scale_up', this.stages[2].stageId, 'auto-stage-1764480000000');
  }

  data() {
    return {
      totalViewers: this.stages.reduce((n, s) => n + s.viewerCount, 0),
      activeStages: this.stages.length,
      isPublisherLive: this.isPublisherLive,
      stages: this.stages,
      timestamp: new Date().toISOString(),
      capacityPerStage: this.capacityPerStage,
      health: { redis: { status: 'up', latencyMs: 0.412 }, ivs: { provider: 'local', region: 'ap-northeast-1' } },
    };
  }

  // Changes stage i's count by delta (a viewer joins: +1) and returns the total.
  join(i = 0, delta = 1) {
    this.stages[i].viewerCount += delta;
    this.changed({ type: 'stats' });
    return this.data().totalViewers;
  }

  stageEvent(type, stageArn, detail = '') {
    const event = { id: `${Date.now()}-${this.seq++}`, type, stageArn, detail, at: new Date().toISOString() };
    this.events.push(event);
    this.changed({ type: 'stage', event });
  }

  changed(change) {
    for (const listener of this.listeners) listener(change);
  }
}

function sseEvent(type, data, id) {
  return `event: ${type}\n${id ? `id: ${id}\n` : ''}data: ${JSON.stringify(data)}\n\n`;
}

// Starts the fake on `port` (0: any free port). key: the API key ('' needs
// none). pingMs: the comment interval. Returns {url, port, stats, requests,
// setKey(k), stop()}; stop() cuts every open stream at once, as a crash.
export async function startFakeUsher({ stats = new FakeStats(), key = 'test-key', port = 0, pingMs = 15000 } = {}) {
  const sockets = new Set();
  const requests = [];             // {path, key, lastEventId} of each stream request
  const server = http.createServer((req, res) => route(req, res));
  const fake = { stats, requests, setKey: (k) => { key = k; } };

  async function route(req, res) {
    const path = new URL(req.url, 'http://x').pathname;
    if (req.method === 'GET' && FILES[path]) {
      const [file, type] = FILES[path];
      res.writeHead(200, { 'Content-Type': type, ...PAGE_HEADERS });
      return res.end(await readFile(join(WEB, file)));
    }
    if (req.method === 'GET' && path === '/api/stats/stream') return stream(req, res);
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ success: false, error: { code: 'NOT_FOUND', message: 'no such route' } }));
  }

  function stream(req, res) {
    const sent = req.headers['x-api-key'] ?? '';
    const lastEventId = req.headers['last-event-id'] ?? '';
    requests.push({ path: '/api/stats/stream', key: sent, lastEventId });
    if (key && sent !== key) {
      res.writeHead(401, { 'Content-Type': 'application/json' });
      return res.end(JSON.stringify({ success: false,
        error: { code: 'UNAUTHORIZED', message: 'missing or wrong X-API-Key' }, timestamp: new Date().toISOString() }));
    }
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
    res.write(sseEvent('stats', stats.data()));
    const after = stats.events.findIndex((e) => e.id === lastEventId);
    const backlog = lastEventId && after >= 0 ? stats.events.slice(after + 1) : stats.events.slice(-20);
    for (const e of backlog) res.write(sseEvent('stage', e, e.id));
    const listener = (change) => res.write(change.type === 'stage'
      ? sseEvent('stage', change.event, change.event.id) : sseEvent('stats', stats.data()));
    const ping = setInterval(() => res.write(': ping\n\n'), pingMs);
    stats.listeners.add(listener);
    res.on('close', () => { clearInterval(ping); stats.listeners.delete(listener); });
  }

  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  fake.port = server.address().port;
  fake.url = `http://127.0.0.1:${fake.port}`;
  fake.stop = () => new Promise((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  });
  return fake;
}

// Run alone (node tests/e2e/dashboard-fake-server.mjs [port]) to look at the
// page by hand: key "test-key", a viewer joins every 2 s.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const fake = await startFakeUsher({ port: Number(process.argv[2]) || 8099 });
  console.log(`${fake.url}/dashboard  (key: test-key)`);
  setInterval(() => fake.stats.join(Math.floor(Math.random() * fake.stats.stages.length)), 2000);
}
