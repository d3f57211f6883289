// flat.test.mjs — costs that must not grow with the event (issue 11):
// heartbeats arriving together share one FCALL yet each gets its own
// answer, and a join or a leave runs the same Redis commands whatever the
// number of stages (the seat index and open_stages, src/store/lua/usher.lua).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { PREFIX, checkInvariants, startLive } from './harness.mjs';

function fcallCalls(redis) {
  const line = redis.raw('INFO', 'commandstats').split('\n').find((l) => l.startsWith('cmdstat_fcall:'));
  return line ? Number(/calls=(\d+)/.exec(line)[1]) : 0;
}

// Watches Redis with MONITOR. A function's own commands come as lines from
// "lua" right after its FCALL line, so they are counted per call of `name`.
async function monitor(redis) {
  const sock = net.connect(redis.port, '127.0.0.1');
  let text = '';
  sock.on('data', (d) => { text += d; });
  sock.write('MONITOR\r\n');
  await new Promise((r) => { const t = setInterval(() => { if (text.includes('+OK')) { clearInterval(t); r(); } }, 5); });
  return {
    async stop() {
      const mark = `flat-test-end-${Math.random()}`;
      redis.raw('ECHO', mark);
      await new Promise((r) => { const t = setInterval(() => { if (text.includes(mark)) { clearInterval(t); r(); } }, 5); });
      sock.destroy();
      return text.split('\r\n');
    },
  };
}

// The number of commands each FCALL of `name` ran, in order.
function innerCounts(lines, name) {
  const counts = [];
  let current = null;
  for (const line of lines) {
    if (/\[\d+ lua\]/.test(line)) {
      if (current !== null) counts[current]++;
    } else if (line.includes(`"FCALL" "${name}"`)) {
      current = counts.length;
      counts.push(0);
    } else if (/^\+\d/.test(line)) {
      current = null;
    }
  }
  return counts;
}

describe('costs flat in the size of the event', () => {
  let redis, usher;
  before(async () => {
    ({ redis, usher } = await startLive({ MAX_STAGES: '60', MAX_VIEWERS_PER_STAGE: '1000' }));
  });
  after(async () => { await usher?.close(); await redis?.close(); });

  // Redis commands run by one join of a new user, then by its leave.
  async function joinLeaveCost(user) {
    const mon = await monitor(redis);
    const j = await usher.post('/api/token/viewer', { userId: user });
    assert.equal(j.status, 200);
    const l = await usher.post('/api/viewer/leave', { userId: user, stageArn: j.body.data.stageArn });
    assert.equal(l.status, 200);
    const lines = await mon.stop();
    const seat = innerCounts(lines, 'usher_seat');
    const leave = innerCounts(lines, 'usher_leave');
    assert.equal(seat.length, 1, 'one usher_seat call');
    assert.equal(leave.length, 1, 'one usher_leave call');
    return { seat: seat[0], leave: leave[0] };
  }

  it('a join and a leave run as many Redis commands at 2 stages as at 50', async () => {
    assert.equal((await usher.post('/api/stage', { name: 'extra-0' })).status, 201);
    const small = await joinLeaveCost('flat-a');
    for (let i = 1; i < 49; i++) {
      assert.equal((await usher.post('/api/stage', { name: `extra-${i}` })).status, 201);
    }
    const big = await joinLeaveCost('flat-b');
    assert.ok(small.seat > 0 && small.leave > 0, JSON.stringify(small));
    assert.deepEqual(big, small);
    assert.deepEqual(checkInvariants(redis).problems, []);
  });

  it('heartbeats sent together share FCALLs, each answered for its own viewer', async () => {
    const seated = [];
    for (let i = 0; i < 120; i++) {
      const r = await usher.post('/api/token/viewer', { userId: `beat-${i}` });
      assert.equal(r.status, 200);
      seated.push({ userId: `beat-${i}`, stageArn: r.body.data.stageArn });
    }
    // Unseated users, and a seated user naming another stage, mixed in.
    const other = seated.find((s) => s.stageArn !== seated[0].stageArn)?.stageArn;
    assert.ok(other, 'viewers spread over stages');
    const unseated = [...Array.from({ length: 20 }, (_, i) => ({ userId: `nobody-${i}`, stageArn: seated[0].stageArn })),
      { userId: seated[0].userId, stageArn: other }];
    const before = fcallCalls(redis);
    const [ok, gone] = await Promise.all([
      Promise.all(seated.map((b) => usher.post('/api/viewer/heartbeat', b))),
      Promise.all(unseated.map((b) => usher.post('/api/viewer/heartbeat', b))),
    ]);
    const calls = fcallCalls(redis) - before;
    for (const r of ok) assert.equal(r.status, 200, JSON.stringify(r.body));
    for (const r of gone) assert.equal(r.status, 404, JSON.stringify(r.body));
    assert.ok(calls >= 1 && calls < seated.length + unseated.length,
      `${calls} FCALLs for ${seated.length + unseated.length} heartbeats`);
    assert.deepEqual(checkInvariants(redis).problems, []);
  });

  it('seats recorded before the seat index existed (library before version 5) are indexed at connect', async () => {
    const seated = checkInvariants(redis).seatOf;
    assert.ok(seated.size > 100);
    await usher.stop();
    // What a library before version 5 left: seats, counts and stages, none of the indexes.
    redis.raw('EVAL', `local cursor = '0'
      repeat
        local r = redis.call('SCAN', cursor, 'MATCH', ARGV[1] .. 'seat_index:*', 'COUNT', 1000)
        cursor = r[1]
        for _, k in ipairs(r[2]) do redis.call('DEL', k) end
      until cursor == '0'
      redis.call('DEL', ARGV[1] .. 'stage_slot', ARGV[1] .. 'slot_stage', ARGV[1] .. 'stage_slot_seq',
                 ARGV[1] .. 'open_stages')`, 0, PREFIX);
    assert.notDeepEqual(checkInvariants(redis).problems, []);
    await usher.restart();
    // The index is built right after usher's connection to Redis is ready.
    let problems = checkInvariants(redis).problems;
    for (const until = Date.now() + 5000; problems.length && Date.now() < until;) {
      await new Promise((r) => setTimeout(r, 50));
      problems = checkInvariants(redis).problems;
    }
    assert.deepEqual(problems, []);
    const [user, arn] = seated.entries().next().value;
    const again = await usher.post('/api/token/viewer', { userId: user });
    assert.equal(again.status, 200);
    assert.equal(again.body.data.isNewViewer, false);
    assert.equal(again.body.data.stageArn, arn);
  });
});
