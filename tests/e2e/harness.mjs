// harness.mjs — what every end-to-end test needs: a real redis-server on a
// free port, the real usher binary in front of it, an HTTP client, and a
// Redis client for checking the SPEC §3 keys from the outside.
//
// The binary is $USHER_BIN (make e2e points it at the ASan build).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';

export const USHER_BIN = process.env.USHER_BIN || 'build/asan/usher';
export const PREFIX = 'ivs:test:';

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(check, timeoutMs, what) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try { if (await check()) return; } catch { /* not yet */ }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

// A redis-server of our own; restart() brings it back on the same port.
export class Redis {
  static async start() {
    const r = new Redis(await freePort(), mkdtempSync(join(tmpdir(), 'usher-redis-')));
    await r.restart();
    return r;
  }
  constructor(port, dir) { this.port = port; this.dir = dir; this.proc = null; }
  get url() { return `redis://127.0.0.1:${this.port}`; }
  async restart() {
    this.proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1',
      '--save', '', '--appendonly', 'no', '--dir', this.dir], { stdio: 'ignore' });
    await waitFor(() => this.cli('PING') === 'PONG', 5000, 'redis-server');
  }
  async stop() {
    if (!this.proc) return;
    const p = this.proc; this.proc = null;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  }
  pause() { this.proc.kill('SIGSTOP'); }
  resume() { this.proc.kill('SIGCONT'); }
  // One command through redis-cli; returns its raw text output, trimmed.
  cli(...args) {
    return execFileSync('redis-cli', ['-p', String(this.port), '--no-raw', ...args.map(String)],
      { encoding: 'utf8', timeout: 5000 }).trim();
  }
  raw(...args) {
    return execFileSync('redis-cli', ['-p', String(this.port), '--raw', ...args.map(String)],
      { encoding: 'utf8', timeout: 5000 }).replace(/\n$/, '');
  }
  // Every key with its type and value, for "this request changed nothing".
  // The scaler's lease, its bookkeeping of each stage (replication, mode)
  // and the stage event stream belong to a background duty, not to any
  // request, so they are left out.
  snapshot() {
    const keys = this.raw('--scan').split('\n').filter(Boolean)
      .filter((k) => !/scaler:|stage_events$|stage_state$|stage_mode$/.test(k)).sort();
    const snap = {};
    for (const k of keys) {
      const type = this.raw('TYPE', k);
      if (type === 'string') snap[k] = this.raw('GET', k);
      else if (type === 'hash') snap[k] = this.raw('HGETALL', k);
      else if (type === 'zset') snap[k] = this.raw('ZRANGE', k, 0, -1, 'WITHSCORES');
      else if (type === 'set') snap[k] = this.raw('SMEMBERS', k).split('\n').sort().join('\n');
      else snap[k] = type;
    }
    return snap;
  }
  async close() { await this.stop(); rmSync(this.dir, { recursive: true, force: true }); }
}

// The real usher binary. env adds to/overrides the test defaults.
export class Usher {
  static async start(redis, env = {}) {
    const u = new Usher(await freePort(), redis, env);
    await u.restart();
    return u;
  }
  constructor(port, redis, env) {
    this.port = port; this.redis = redis; this.env = env; this.proc = null; this.log = '';
    this.dataDir = mkdtempSync(join(tmpdir(), 'usher-data-'));
  }
  get base() { return `http://127.0.0.1:${this.port}`; }
  async restart() {
    const env = {
      PATH: process.env.PATH,
      ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=1:abort_on_error=0',
      UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
      API_HOST: '127.0.0.1', API_PORT: String(this.port),
      REDIS_URL: this.redis.url, REDIS_KEY_PREFIX: PREFIX,
      DATA_DIR: this.dataDir, SKIP_AUTH: 'true', LOG_LEVEL: 'warn',
      RATE_LIMIT_MAX_REQUESTS: '0', AUTO_SCALE_ENABLED: 'false',
      // A few nonces ahead exercise the pool without burning test CPU.
      SIGNER_PRECOMPUTE: '32',
      ...this.env,
    };
    this.proc = spawn(USHER_BIN, [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout.on('data', (d) => { this.log += d; });
    this.proc.stderr.on('data', (d) => { this.log += d; });
    this.exited = new Promise((r) => this.proc.once('exit', (code, signal) => r({ code, signal })));
    await waitFor(async () => (await fetch(`${this.base}/health`)).status === 200, 15000,
      `usher on ${this.port}\n${this.log}`);
  }
  // Graceful stop; resolves to the exit status. Sanitizer reports fail it.
  async stop(signal = 'SIGTERM') {
    if (!this.proc) return null;
    this.proc.kill(signal);
    const status = await this.exited;
    this.proc = null;
    if (/ERROR: (Address|Leak)Sanitizer|runtime error:/.test(this.log)) {
      throw new Error(`sanitizer report from usher:\n${this.log}`);
    }
    return status;
  }
  async close() { await this.stop(); rmSync(this.dataDir, { recursive: true, force: true }); }

  // HTTP with keep-alive; returns {status, headers, body (parsed JSON or text)}.
  // agent: an http.Agent of the caller's, to control how many sockets are open.
  request(method, path, { body, headers = {}, raw, agent = Usher.agent } = {}) {
    const payload = raw !== undefined ? raw : body !== undefined ? JSON.stringify(body) : undefined;
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: this.port, method, path, agent,
        headers: { ...(payload !== undefined ? { 'content-type': 'application/json' } : {}), ...headers } },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed = text;
          try { parsed = JSON.parse(text); } catch { /* leave as text */ }
          resolve({ status: res.statusCode, headers: res.headers, body: parsed });
        });
      });
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }
  get(path, opts) { return this.request('GET', path, opts); }
  post(path, body, opts = {}) { return this.request('POST', path, { ...opts, body }); }
  put(path, body, opts = {}) { return this.request('PUT', path, { ...opts, body }); }
}
Usher.agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

export const enc = (arn) => encodeURIComponent(arn);

// What most test groups start from: a Redis, a usher in front of it (env
// as for Usher.start), and the publisher live.
export async function startLive(env = {}) {
  const redis = await Redis.start();
  const usher = await Usher.start(redis, env);
  const pub = await usher.post('/api/token/publisher', { userId: 'publisher-1' });
  if (pub.status !== 200) {
    await usher.close();
    await redis.close();
    throw new Error(`publisher token: ${pub.status} ${JSON.stringify(pub.body)}`);
  }
  return { redis, usher };
}

// The library's own indexes (src/store/lua/usher.lua) agree with the
// seats: the seat index (seat_index:{n}: userId -> the slot of the stage
// where the user sits) holds exactly the seated users, each slot names its
// stage (stage_slot, slot_stage), and open_stages holds exactly the slots
// of the open stages, with the integer part of each score equal to the
// stage's count.
function indexProblems(redis, counts, seatOf) {
  const problems = [];
  // One atomic read, so a stage the scaler adds meanwhile cannot skew it.
  const snap = JSON.parse(redis.raw('EVAL', `local P, out = ARGV[1], {index = {}}
    local function map(key)
      local m, a = {}, redis.call('HGETALL', P .. key)
      for i = 1, #a, 2 do m[a[i]] = a[i + 1] end
      return m
    end
    out.stages = redis.call('ZRANGE', P .. 'stages', 0, -1)
    out.modes, out.slotOf, out.stageOf = map('stage_mode'), map('stage_slot'), map('slot_stage')
    out.open = {}
    local z = redis.call('ZRANGE', P .. 'open_stages', 0, -1, 'WITHSCORES')
    for i = 1, #z, 2 do out.open[redis.call('HGET', P .. 'slot_stage', z[i]) or ('slot ' .. z[i])] = z[i + 1] end
    local cursor = '0'
    repeat
      local r = redis.call('SCAN', cursor, 'MATCH', P .. 'seat_index:*', 'COUNT', 1000)
      cursor = r[1]
      for _, k in ipairs(r[2]) do
        local a = redis.call('HGETALL', k)
        for i = 1, #a, 2 do out.index[a[i]] = a[i + 1] end
      end
    until cursor == '0'
    return cjson.encode(out)`, 0, PREFIX));
  const obj = (x) => (Array.isArray(x) ? {} : x);  // cjson writes {} for an empty table
  const [modes, slotOf, stageOf, open, index] =
    [snap.modes, snap.slotOf, snap.stageOf, snap.open, snap.index].map(obj);
  const stages = Array.isArray(snap.stages) ? snap.stages : [];
  for (const arn of stages) {
    const slot = slotOf[arn];
    if (slot === undefined || stageOf[slot] !== arn) problems.push(`stage ${arn} has no slot (${slot})`);
    const isOpen = !(arn in modes);
    if (isOpen !== arn in open) problems.push(`${arn} open=${isOpen} but in open_stages=${arn in open}`);
    if (arn in open && arn in counts && Math.floor(Number(open[arn])) !== counts[arn]) {
      problems.push(`open_stages score ${open[arn]} for ${arn} but viewers=${counts[arn]}`);
    }
  }
  for (const arn of Object.keys(open)) {
    if (!stages.includes(arn)) problems.push(`open_stages holds ${arn}, not a live stage`);
  }
  if (Object.keys(index).length !== seatOf.size) {
    problems.push(`seat index holds ${Object.keys(index).length} users, ${seatOf.size} seated`);
  }
  for (const [user, arn] of seatOf) {
    if (index[user] !== slotOf[arn]) {
      problems.push(`seat index: ${user} -> slot ${index[user]}, seated in ${arn} (slot ${slotOf[arn]})`);
    }
  }
  return problems;
}

// Checks every SPEC §3 invariant from the outside; returns a list of
// violations (empty when all hold) and the per-stage counts.
export function checkInvariants(redis, { capacity } = {}) {
  const problems = [];
  const stages = redis.raw('ZRANGE', `${PREFIX}stages`, 0, -1).split('\n').filter(Boolean);
  let sum = 0;
  const seatOf = new Map();
  const counts = {};
  for (const arn of stages) {
    const count = Number(redis.raw('GET', `${PREFIX}viewers:${arn}`) || 0);
    const users = redis.raw('HKEYS', `${PREFIX}viewer:heartbeat:${arn}`).split('\n').filter(Boolean);
    counts[arn] = count;
    if (count !== users.length) problems.push(`viewers:${arn}=${count} but HLEN=${users.length}`);
    if (count < 0) problems.push(`negative count ${count} for ${arn}`);
    if (capacity && count > capacity) problems.push(`${arn} holds ${count} > capacity ${capacity}`);
    for (const u of users) {
      if (seatOf.has(u)) problems.push(`user ${u} seated twice: ${seatOf.get(u)} and ${arn}`);
      seatOf.set(u, arn);
    }
    sum += count;
  }
  const total = Number(redis.raw('GET', `${PREFIX}total_viewers`) || 0);
  if (total !== sum) problems.push(`total_viewers=${total} but sum=${sum}`);
  problems.push(...indexProblems(redis, counts, seatOf));
  return { problems, counts, total, seatOf, stages };
}
