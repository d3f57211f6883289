// simulator.test.mjs — the live-event simulator (tools/, build/simulator)
// in a short run against the real usher and Redis, and proof that its
// verdict can fail.
//
// Run 1: 300 viewers join over 3 s, heartbeat every second, and meet their
// fates (leave, vanish, rejoin; every rejoin through POST /api/viewer/rejoin)
// for 8 s against HEARTBEAT_TIMEOUT=4 s / HEARTBEAT_CLEANUP_INTERVAL=1 s;
// then the settled exact check and the finale. It must end `RESULT: PASS`
// with the rejoin check having run on more than zero cases (issue 12.5: it
// once expected 32-hex participant ids, usher issues 20, and no rejoin went
// through the API while the run still passed).
// Run 2: the same audience, but rejoins come later than the activity lasts,
// so the rejoin check the options plan cannot run: the run must FAIL and
// say that this check did not run — and nothing else may be wrong.
//
// The binary is $SIM_BIN (default build/simulator; `make e2e` builds it).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { PREFIX, startUsher } from './harness.mjs';

const SIM_BIN = process.env.SIM_BIN || 'build/simulator';
const ENV = { AUTO_SCALE_ENABLED: 'false', MAX_VIEWERS_PER_STAGE: '1000',
  HEARTBEAT_TIMEOUT: '4', HEARTBEAT_CLEANUP_INTERVAL: '1' };

// Runs the simulator to its end; resolves to {code, out}.
function simulate(usher, redis, extra) {
  const args = ['--url', usher.base, '--redis-url', redis.url, '--prefix', PREFIX,
    '--heartbeat', '1', '--timeout', '4', '--cleanup', '1', '--slack', '2',
    '--report', '2', '--connections', '16', '--max-run', '60', ...extra];
  return new Promise((resolve, reject) => {
    const p = spawn(SIM_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    p.on('error', reject);
    p.on('exit', (code) => resolve({ code, out }));
  });
}

// The tally line of one check: {ok, ran, planned} or null when absent.
function tally(out, name) {
  const line = out.split('\n').find((l) => l.includes(name) && /ran on \d+/.test(l));
  if (!line) return null;
  const m = line.match(/^\s*(ok|FAIL)\s.*ran on (\d+)(?: of (\d+) planned)?/);
  return m && { ok: m[1] === 'ok', ran: Number(m[2]), planned: m[3] === undefined ? null : Number(m[3]), line };
}

describe('the simulator against usher', { timeout: 90000 }, () => {
  let redis; let usher;

  before(async () => { ({ redis, usher } = await startUsher(ENV)); });
  after(async () => { await usher?.close(); await redis?.close(); });

  it('passes a short run whose rejoins go through POST /api/viewer/rejoin', async () => {
    const { code, out } = await simulate(usher, redis, ['--user-prefix', 'sim-pass-',
      '--viewers', '300', '--ramp', '300@3', '--duration', '8', '--checkpoint', '3',
      '--leave', '10', '--vanish', '10', '--rejoin', '30', '--rejoin-api', '100', '--rejoin-gap', '3',
      '--finale', 'leave']);
    assert.match(out, /^RESULT: PASS$/m, out);
    assert.equal(code, 0, out);
    const rejoin = tally(out, 'POST /api/viewer/rejoin re-seated');
    assert.ok(rejoin && rejoin.ok && rejoin.ran > 0 && rejoin.ran === rejoin.planned, rejoin?.line ?? out);
    const answered = Number(out.match(/rejoin \(POST \/api\/viewer\/rejoin\) (\d+)/)?.[1]);
    assert.ok(answered > 0, `no rejoin answered 2xx:\n${out}`);
    for (const name of ['joins answered', 'heartbeats answered', 'leaves answered',
      'expiry grace ran out', 'checkpoints read', 'exact checks read']) {
      const t = tally(out, name);
      assert.ok(t && t.ok && t.ran > 0, t?.line ?? `${name}: no tally\n${out}`);
    }
    assert.doesNotMatch(out, /MISMATCH|ANOMALY/, out);
  });

  it('fails a run whose planned rejoin check cannot run, and says so', async () => {
    const { code, out } = await simulate(usher, redis, ['--user-prefix', 'sim-fail-',
      '--viewers', '100', '--ramp', '100@2', '--duration', '5', '--checkpoint', '2',
      '--leave', '10', '--vanish', '10', '--rejoin', '30', '--rejoin-api', '100',
      '--rejoin-gap', '1000000', '--finale', 'stay']);
    assert.equal(code, 1, out);
    assert.match(out, /^RESULT: FAIL .*0 mismatches.* 1 checks that did not run/m, out);
    const rejoin = tally(out, 'POST /api/viewer/rejoin re-seated');
    assert.ok(rejoin && !rejoin.ok && rejoin.ran === 0, rejoin?.line ?? out);
    assert.match(rejoin.line, /the check did not run/);
  });
});
