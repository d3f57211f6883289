// fd-exhaustion.test.mjs — a flood of connections that uses up usher's file
// descriptors. accept() then fails with EMFILE while the listening socket
// stays readable: usher must pause accepting (not spin on accept(), which
// starves every other event and writes a log line per turn), say so once,
// and accept again as soon as descriptors are free.
//
// The running usher's open files limit is lowered with prlimit(1)
// (util-linux) to a few above what it holds, so a few dozen sockets do it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { Redis, Usher, sleep, eventually } from './harness.mjs';

const SPARE_FDS = 6;          // descriptors left for connections
const FLOOD = 40;             // connections opened: far more than SPARE_FDS
const WINDOW_MS = 2000;       // how long the CPU time is measured
const CLK_TCK = 100;          // /proc/<pid>/stat's unit (getconf CLK_TCK on Linux)

// utime + stime of the process, in seconds.
function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

function connect(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

describe('file descriptors used up by a flood of connections', () => {
  let redis, usher;
  before(async () => {
    redis = await Redis.start();
    // Idle connections are kept for the whole test (the default 30 s).
    usher = await Usher.start(redis, { LOG_LEVEL: 'info' });
  });
  after(async () => { await usher?.close(); await redis?.stop(); });

  it('pauses accepting instead of spinning, logs it once, and recovers', async () => {
    const pid = usher.proc.pid;
    const open = readdirSync(`/proc/${pid}/fd`).length;
    const limit = open + SPARE_FDS;
    const soft = /Max open files\s+(\d+)/.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))[1];
    execFileSync('prlimit', ['--pid', String(pid), `--nofile=${limit}:`]);   // the soft limit

    // The kernel completes every handshake into the listen backlog; usher
    // can accept only SPARE_FDS of them.
    const socks = [];
    for (let i = 0; i < FLOOD; i++) socks.push(await connect(usher.port));
    assert.ok(await eventually(() => /accept\(\) failed|Error from accept/.test(usher.log), 5000),
      'accept() failed');

    const before = cpuSeconds(pid);
    await sleep(WINDOW_MS);
    const spent = cpuSeconds(pid) - before;
    // A spinning accept() uses the whole window (or as much of a core as the
    // machine gives); a paused one next to nothing.
    assert.ok(spent < 0.25 * WINDOW_MS / 1000,
      `usher used ${spent.toFixed(2)} s of CPU in ${WINDOW_MS} ms while out of descriptors`);
    const lines = usher.log.split('\n');
    const warned = lines.filter((l) => /accept\(\) failed: Too many open files/.test(l));
    assert.equal(warned.length, 1, `one warning, not a flood:\n${lines.slice(-5).join('\n')}`);
    assert.ok(!/Error from accept/.test(usher.log), 'libevent\'s own per-call warning is not printed');

    for (const s of socks) s.destroy();
    execFileSync('prlimit', ['--pid', String(pid), `--nofile=${soft}:`]);
    assert.ok(await eventually(
      async () => (await usher.get('/api/health', { agent: false })).status === 200, 5000),
    'usher answers again once descriptors are free');
  });
});
