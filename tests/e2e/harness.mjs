// harness.mjs — what every end-to-end test needs: a real redis-server on a
// free port, the real usher binary in front of it, an HTTP client, and a
// Redis client for checking the SPEC §3 keys from the outside.
//
// The binary is $USHER_BIN (make e2e points it at the ASan build).
//
// Determinism on a busy machine (other suites, builds):
//  - ports come from below the kernel's ephemeral range, so no outgoing
//    connection and no other bind(0) can take one between our check and the
//    child's bind; a child that still cannot bind (another suite picked the
//    same port) is started again on a new port, and a server counts as up
//    only once the listening socket is the child's own (never a stranger's
//    that answers on the port);
//  - waits poll for the condition (waitFor / eventually) with a generous
//    deadline instead of sleeping a guessed time;
//  - checkInvariants reads every key in one atomic script: the keys cannot
//    change half-way through the read, and one redis-cli call blocks the
//    test's event loop (and with it background heartbeats) for one spawn,
//    not one per key.
import { after } from 'node:test';
import { spawn, execFile, execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';

export const USHER_BIN = process.env.USHER_BIN || 'build/asan/usher';
export const PREFIX = 'ivs:test:';

// The ports the kernel hands out for connect() and bind(0); ours come from
// below it. Falls back to Linux's default range.
function ephemeralRange() {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo > 0 && hi >= lo) return [lo, hi];
  } catch { /* not Linux, or no /proc */ }
  return [32768, 60999];
}
const [EPHEMERAL_LO] = ephemeralRange();
export const PORT_LO = EPHEMERAL_LO > 12000 ? 10000 : 1024;
export const PORT_HI = EPHEMERAL_LO > PORT_LO + 1000 ? EPHEMERAL_LO - 1 : 65535;

function canListen(port) {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

// The ports fetch() refuses to connect to ("bad port"), and Chromium with
// it (ERR_UNSAFE_PORT): the WHATWG Fetch Standard's port blocking list,
// https://fetch.spec.whatwg.org/#port-blocking. A usher on one of them never
// answers the harness's /health: a start that picked 10080 (one pick in
// ~22,800 here) waited out its 30 s (a run of the e2e series, 2026-11-30).
export const BAD_PORTS = new Set([1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69,
  77, 79, 87, 95, 101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143,
  161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587,
  601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566,
  6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080]);

// A TCP port on 127.0.0.1 that was free a moment ago, outside the ephemeral
// range (see above) and not one fetch() refuses (BAD_PORTS). The caller's
// server may still lose it to another test suite: start it with a retry on
// bind failure (Redis.start, Usher.start).
export async function freePort() {
  for (let i = 0; i < 200; i++) {
    const port = PORT_LO + Math.floor(Math.random() * (PORT_HI - PORT_LO + 1));
    if (!BAD_PORTS.has(port) && await canListen(port)) return port;
  }
  throw new Error(`no free port in ${PORT_LO}-${PORT_HI}`);
}

// Whether process `pid` holds a socket listening on `port` (any local
// address, IPv4 or IPv6; read from Linux /proc): true or false, null where
// /proc cannot tell (then the caller's readiness check alone decides).
export function listenerOwnedBy(pid, port) {
  let table;
  try {
    table = readFileSync('/proc/net/tcp', 'utf8') + readFileSync('/proc/net/tcp6', 'utf8');
  } catch { return null; }
  const inodes = new Set();
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== '0A') continue;              // 0A: LISTEN
    if (parseInt(f[1].split(':')[1], 16) === port) inodes.add(f[9]);
  }
  if (inodes.size === 0) return false;
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      let link;
      try { link = readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m && inodes.has(m[1])) return true;
    }
  } catch { return false; }                                   // gone
  return false;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The server children of this test file (every startListening start) that
// have not exited. A group whose teardown fails half-way (usher.close()
// throwing on a sanitizer report skips the redis.close() after it) leaves a
// child whose pipes would keep this file's process, and with it the whole
// suite, waiting forever: at the end of the file whatever is left is
// killed, so the failure is reported as one and the suite goes on. Only
// under the test runner (bench/ramp.mjs imports this file too).
const children = new Set();
if (process.env.NODE_TEST_CONTEXT || /\.test\.mjs$/.test(process.argv[1] || '')) {
  after(async () => {
    await Promise.all([...children].map((proc) => {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      return exited;
    }));
  });
}

// Polls check() (sync or async; a throw counts as "not yet") every stepMs
// until it returns truthy; true then, false once timeoutMs has passed
// (after one last try). For "wait for the condition, not for a sleep".
export async function eventually(check, timeoutMs, stepMs = 100) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try { if (await check()) return true; } catch { /* not yet */ }
    if (Date.now() >= until) return false;
    await sleep(stepMs);
  }
}

// Like eventually(), but throws `timed out waiting for ${what}` instead of
// returning false. opts: {timeoutMs (default 10000), stepMs (50), what}.
export async function waitFor(check, opts = {}) {
  const { timeoutMs = 10000, stepMs = 50, what = 'a condition' } = opts;
  if (!(await eventually(check, timeoutMs, stepMs))) throw new Error(`timed out waiting for ${what}`);
}

// Runs fn() (async) with every request it makes inside one of usher's
// fixed rate-limit windows. usher counts per window of the wall clock
// (ratelimit.c: now_ms / RATE_LIMIT_WINDOW_MS; this machine's clock is
// usher's), so a window that turns while fn runs starts the counts afresh
// half-way, and fn's outcome then says nothing either way: fn is run
// again from the start of the next window (the one it turned into holds
// counts of the discarded try), at most `tries` times. Returns fn's value.
export async function inOneWindow(windowMs, fn, tries = 3) {
  const windowOf = () => Math.floor(Date.now() / windowMs);
  for (let attempt = 1; ; attempt++) {
    const start = windowOf();
    let out, error = null;
    try { out = await fn(); } catch (e) { error = e; }
    if (windowOf() === start) {
      if (error) throw error;
      return out;
    }
    if (attempt >= tries) throw new Error(`the rate-limit window turned during each of ${tries} tries`);
    await sleep((windowOf() + 1) * windowMs - Date.now() + 50);
  }
}

// Starts a server child on a port until it listens there itself:
// spawnOn(port) spawns it and returns {proc, log: () => text};
// ready(proc, port) says whether it serves; bindFailed(log) whether it
// exited for want of the port. A child that is up but not ready in time
// is left running (the caller's close() stops it). When newPort is given, a child that could
// not bind is started again on newPort(); otherwise on the same port, a
// few times (the port was ours a moment ago). Returns {proc, port}.
export async function startListening({ port, spawnOn, ready, bindFailed, newPort, what, timeoutMs }) {
  for (let attempt = 1; ; attempt++) {
    const { proc, log } = spawnOn(port);
    children.add(proc);
    proc.once('exit', () => children.delete(proc));
    proc.once('error', () => children.delete(proc));     // never started: no exit to wait for
    let exit = null;
    proc.once('exit', (code, signal) => { exit = { code, signal }; });
    proc.once('error', (e) => { exit = { error: e.message }; });   // e.g. no such binary
    const up = await eventually(async () => {
      if (exit) return true;
      return listenerOwnedBy(proc.pid, port) !== false && await ready(proc, port);
    }, timeoutMs, 50);
    if (up && !exit) return { proc, port };
    const text = log();
    if (exit && bindFailed(text) && attempt < 8) {
      if (newPort) port = await newPort();
      else await sleep(250 * attempt);
      continue;
    }
    throw new Error(`${what} on port ${port} did not start` +
      `${exit ? ` (exit ${JSON.stringify(exit)})` : ` within ${timeoutMs} ms`}\n${text}`);
  }
}

// A redis-server of our own; restart() brings it back on the same port.
export class Redis {
  static async start() {
    const r = new Redis(await freePort(), mkdtempSync(join(tmpdir(), 'usher-redis-')));
    await r.restart({ newPortIfTaken: true });
    return r;
  }
  constructor(port, dir) { this.port = port; this.dir = dir; this.proc = null; this.log = ''; }
  get url() { return `redis://127.0.0.1:${this.port}`; }
  // Starts redis-server on this.port. Once a usher points at the port it
  // must stay: only the first start (Redis.start) may move to another port
  // when the chosen one was taken meanwhile (opts.newPortIfTaken).
  async restart({ newPortIfTaken = false } = {}) {
    const { proc, port } = await startListening({
      port: this.port,
      spawnOn: (port) => {
        this.log = '';
        const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1',
          '--save', '', '--appendonly', 'no', '--dir', this.dir], { stdio: ['ignore', 'pipe', 'pipe'] });
        p.stdout.on('data', (d) => { this.log += d; });
        p.stderr.on('data', (d) => { this.log += d; });
        return { proc: p, log: () => this.log };
      },
      ready: (p, port) => this.cliOn(port, 'PING') === 'PONG',
      bindFailed: (log) => /Address already in use|Could not create server TCP listening socket/i.test(log),
      newPort: newPortIfTaken ? freePort : null,
      what: 'redis-server',
      timeoutMs: 20000,
    });
    this.proc = proc;
    this.port = port;
  }
  cliOn(port, ...args) {
    return execFileSync('redis-cli', ['-p', String(port), '--no-raw', ...args.map(String)],
      { encoding: 'utf8', timeout: 5000 }).trim();
  }
  async stop() {
    if (!this.proc) return;
    const p = this.proc; this.proc = null;
    if (p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  }
  // Redis's MONITOR from now on (redis-cli writing to a file): what Redis
  // ran, in the order it ran it. Resolves once Redis has started it (its
  // OK written: redis-cli takes a while to start on a busy machine, and
  // what ran before is not shown). fcalls(name) counts the FCALLs of the
  // function name seen so far; stop() ends it. For "usher had its chance
  // to act": a duty that reads with one FCALL at a time shows each read.
  async monitor() {
    const dir = mkdtempSync(join(tmpdir(), 'usher-monitor-'));
    const out = openSync(join(dir, 'out'), 'w');
    const proc = spawn('redis-cli', ['-p', String(this.port), 'MONITOR'], { stdio: ['ignore', out, 'ignore'] });
    closeSync(out);                // redis-cli has its own copy
    const text = () => readFileSync(join(dir, 'out'), 'utf8');
    const m = {
      text,
      fcalls: (name) => text().split(`"FCALL" "${name}"`).length - 1,
      stop: () => { proc.kill(); rmSync(dir, { recursive: true, force: true }); },
    };
    try {
      await waitFor(() => text().startsWith('OK\n'), { timeoutMs: 10000, stepMs: 10, what: 'MONITOR started' });
    } catch (e) { m.stop(); throw e; }
    return m;
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
  // raw() without blocking the event loop: for checks made while requests
  // of the test's own (heartbeats) must keep going out on time.
  rawAsync(...args) {
    return new Promise((resolve, reject) => {
      execFile('redis-cli', ['-p', String(this.port), '--raw', ...args.map(String)],
        { encoding: 'utf8', timeout: 5000 },
        (err, out) => (err ? reject(err) : resolve(out.replace(/\n$/, ''))));
    });
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
  // Starts the binary and waits until it listens (its own socket) and
  // /health is 200. When the port was taken by someone else meanwhile it
  // starts again on a new one: clients use this.port, which follows.
  async restart() {
    const env = {
      PATH: process.env.PATH,
      ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=1:abort_on_error=0',
      UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
      API_HOST: '127.0.0.1',
      REDIS_URL: this.redis.url, REDIS_KEY_PREFIX: PREFIX,
      DATA_DIR: this.dataDir, SKIP_AUTH: 'true', LOG_LEVEL: 'warn',
      RATE_LIMIT_MAX_REQUESTS: '0', AUTO_SCALE_ENABLED: 'false',
      // A few nonces ahead exercise the pool without burning test CPU.
      SIGNER_PRECOMPUTE: '32',
      ...this.env,
    };
    const spawnOn = (port) => {
      this.log = '';
      this.port = port;
      const proc = spawn(USHER_BIN, [], { env: { ...env, API_PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
      proc.stdout.on('data', (d) => { this.log += d; });
      proc.stderr.on('data', (d) => { this.log += d; });
      this.proc = proc;
      this.exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
      return { proc, log: () => this.log };
    };
    await startListening({
      port: this.port,
      spawnOn,
      ready: async (proc, port) => (await fetch(`http://127.0.0.1:${port}/health`)).status === 200,
      bindFailed: (log) => /cannot listen on/.test(log),
      newPort: async () => {                // not the port kept for its Redis
        let p;
        do p = await freePort(); while (p === this.redis?.port);
        return p;
      },
      what: 'usher',
      timeoutMs: 30000,
    });
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
  // timed: also return ms, the time from the whole request being handed to
  // the kernel to the response head arriving: the server's part, without
  // the client's connect and set-up (for bounds such as SPEC §1's 1 s).
  request(method, path, { body, headers = {}, raw, agent = Usher.agent, timed = false } = {}) {
    const payload = raw !== undefined ? raw : body !== undefined ? JSON.stringify(body) : undefined;
    return new Promise((resolve, reject) => {
      const t0 = performance.now(); let sentAt = null; let headAt = null;
      const req = http.request({ host: '127.0.0.1', port: this.port, method, path, agent,
        headers: { ...(payload !== undefined ? { 'content-type': 'application/json' } : {}), ...headers } },
      (res) => {
        headAt = performance.now();
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed = text;
          try { parsed = JSON.parse(text); } catch { /* leave as text */ }
          const out = { status: res.statusCode, headers: res.headers, body: parsed };
          if (timed) out.ms = headAt - (sentAt ?? t0);
          resolve(out);
        });
      });
      if (timed) req.once('finish', () => { sentAt = performance.now(); });
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

// A Redis and a usher in front of it (env as for Usher.start).
export async function startUsher(env = {}) {
  const redis = await Redis.start();
  return { redis, usher: await Usher.start(redis, env) };
}

// What most test groups start from: startUsher, and the publisher live.
export async function startLive(env = {}) {
  const { redis, usher } = await startUsher(env);
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
// stage's count. Read in the same script as the seats (SEATS_LUA), so
// nothing can change between the two reads.
const INDEX_LUA = `
local function indexes(P)
    local out = {index = {}}
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
    return out
end`;

function indexProblems(snap, counts, seatOf) {
  const problems = [];
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

// Every stage's count and seated users, and total_viewers, read in one
// Lua script: one atomic step, so a join, leave, sweep or scaler move can
// never fall between two of the reads. JSON: {stages: [[arn, count|false,
// [user...]]...], total: string|false, indexes: see INDEX_LUA}.
const SEATS_LUA = `${INDEX_LUA}
local P = ARGV[1]
local out = {}
for _, arn in ipairs(redis.call('ZRANGE', P .. 'stages', 0, -1)) do
  out[#out + 1] = { arn, redis.call('GET', P .. 'viewers:' .. arn),
    redis.call('HKEYS', P .. 'viewer:heartbeat:' .. arn) }
end
return cjson.encode({ stages = out, total = redis.call('GET', P .. 'total_viewers'), indexes = indexes(P) })`;

// Checks every SPEC §3 invariant from the outside; returns a list of
// violations (empty when all hold) and the per-stage counts.
export function checkInvariants(redis, { capacity } = {}) {
  const problems = [];
  const read = JSON.parse(redis.raw('EVAL', SEATS_LUA, 0, PREFIX));
  const list = (x) => (Array.isArray(x) ? x : []);           // cjson: {} for an empty table
  let sum = 0;
  const seatOf = new Map();
  const counts = {};
  const stages = [];
  for (const [arn, rawCount, rawUsers] of list(read.stages)) {
    const count = Number(rawCount || 0);
    const users = list(rawUsers);
    stages.push(arn);
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
  const total = Number(read.total || 0);
  if (total !== sum) problems.push(`total_viewers=${total} but sum=${sum}`);
  problems.push(...indexProblems(read.indexes, counts, seatOf));
  return { problems, counts, total, seatOf, stages };
}
