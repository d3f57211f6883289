// embedded.test.mjs — the zero-set-up default of ./run.sh: REDIS_EMBEDDED
// makes usher start its own redis-server on a unix socket in DATA_DIR,
// with its append-only file there, wait until it listens, and stop it on
// the way out; a redis-server that cannot start stops the start.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { USHER_BIN, eventually, freePort, startListening } from './harness.mjs';

// pids of redis-server processes whose command line names the socket.
function redisFor(socket) {
  try {
    return execFileSync('pgrep', ['-f', `redis-server.*${socket}`], { encoding: 'utf8' })
      .split('\n').filter(Boolean);
  } catch (e) {
    // pgrep: 1 means no process matched; anything else is no answer at all.
    if (e.status === 1) return [];
    throw e;
  }
}

describe('embedded redis-server', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'usher-embedded-'));
  const socket = join(dataDir, 'redis.sock');
  let proc;
  after(() => {
    if (proc && proc.exitCode === null) proc.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  // Starts usher on its embedded redis on a free port (again on another if
  // that one was taken meanwhile); up once it listens itself and is healthy
  // on its own redis. detached: in a process group of its own, as a shell
  // starts ./run.sh (the terminal signals the whole group).
  async function startEmbedded({ detached = false, env = {} } = {}) {
    let log = '';
    let exited;
    let port;
    try {
      ({ proc, port } = await startListening({
        port: await freePort(),
        spawnOn: (p) => {
          log = '';
          const child = spawn(USHER_BIN, [], {
            env: { PATH: process.env.PATH, REDIS_EMBEDDED: 'true', DATA_DIR: dataDir, API_HOST: '127.0.0.1',
              API_PORT: String(p), SKIP_AUTH: 'true', SIGNER_PRECOMPUTE: '8',
              ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=1', ...env },
            stdio: ['ignore', 'pipe', 'pipe'], detached });
          child.stdout.on('data', (d) => { log += d; });
          child.stderr.on('data', (d) => { log += d; });
          proc = child;
          exited = new Promise((r) => child.once('exit', (code) => r(code)));
          return { proc: child, log: () => log };
        },
        ready: async (child, p) => (await fetch(`http://127.0.0.1:${p}/health`)).status === 200,
        bindFailed: (text) => /cannot listen on/.test(text),
        newPort: freePort,
        what: 'usher with its embedded redis-server',
        timeoutMs: 30000,
      }));
    } catch (e) {
      assert.fail(`usher became healthy on its own redis: ${e.message}`);
    }
    return { port, exited, log: () => log };
  }

  it('starts, serves, persists to DATA_DIR and stops with usher', async () => {
    const { port, exited, log } = await startEmbedded({ env: { AUTO_SCALE_ENABLED: 'false' } });
    assert.ok(existsSync(socket), 'the socket is in DATA_DIR');
    assert.doesNotMatch(log(), /cannot connect/, 'usher connects once its redis-server listens');
    assert.equal(redisFor(socket).length, 1, 'one redis-server of its own');

    const post = (path, body) => fetch(`http://127.0.0.1:${port}${path}`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal((await post('/api/token/publisher', { userId: 'host' })).status, 200);
    const seat = await (await post('/api/token/viewer', { userId: 'v1' })).json();
    assert.equal(seat.data.currentViewers, 1);
    assert.ok(existsSync(join(dataDir, 'appendonlydir')), 'append-only files in DATA_DIR');

    proc.kill('SIGTERM');
    assert.equal(await exited, 0, log());
    assert.doesNotMatch(log(), /ERROR: (Address|Leak)Sanitizer|runtime error:/);
    assert.deepEqual(redisFor(socket), [], 'its redis-server stopped with it');
  });

  // ./run.sh then Ctrl-C: the terminal sends SIGINT to the whole foreground
  // process group. usher stops its redis-server itself, after its own
  // shutdown (the scaler's lease handed back on the way): the redis-server
  // is in a group of its own, so the signal does not end it first.
  it('Ctrl-C (SIGINT to the process group) stops usher first, then its redis-server', async () => {
    const { exited, log } = await startEmbedded({ detached: true });   // the scaler on, as ./run.sh
    const [redisPid] = redisFor(socket);
    assert.ok(redisPid, 'its redis-server runs');
    const upTo = log().length;
    process.kill(-proc.pid, 'SIGINT');
    assert.equal(await exited, 0, log());
    const down = log().slice(upTo);
    // redis-server logs the signals it gets (to the same stderr): SIGINT is
    // the terminal's, which must not reach it; SIGTERM is usher's own stop.
    assert.doesNotMatch(down, /Received SIGINT/, `the terminal's SIGINT reaches no redis-server:\n${down}`);
    assert.doesNotMatch(down, /reset by peer|Connection reset|\b(error|warn)\b/i, `on the way down:\n${down}`);
    assert.match(down, /usher stopped/);
    assert.deepEqual(redisFor(socket), [], 'its redis-server stopped with it');
  });

  // Out of its group, it still dies with usher: killed, usher cannot stop
  // it, and the kernel ends it (PR_SET_PDEATHSIG).
  it('usher killed (SIGKILL): its redis-server does not outlive it', async () => {
    const { exited } = await startEmbedded({ detached: true, env: { AUTO_SCALE_ENABLED: 'false' } });
    assert.equal(redisFor(socket).length, 1, 'its redis-server runs');
    proc.kill('SIGKILL');
    await exited;
    assert.ok(await eventually(() => redisFor(socket).length === 0, 5000), 'its redis-server stopped too');
  });

  it('without redis-server on PATH, the start stops and says why', async () => {
    const child = spawn(USHER_BIN, [], {
      env: { PATH: join(dataDir, 'no-bin'), REDIS_EMBEDDED: 'true', DATA_DIR: dataDir, API_HOST: '127.0.0.1',
        API_PORT: String(await freePort()), SIGNER_PRECOMPUTE: '8',
        ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=1' },
      stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d) => { log += d; });
    child.stderr.on('data', (d) => { log += d; });
    const code = await new Promise((r) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
      child.once('exit', (c) => { clearTimeout(timer); r(c); });
    });
    assert.equal(code, 1, log);
    assert.match(log, /install the redis-server package/);
    assert.match(log, /usher: the embedded redis-server exited \(status 127\)/);
    assert.doesNotMatch(log, /listening on/);
  });
});
