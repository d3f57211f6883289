// stats-batch.test.mjs — GET /api/stats callers arriving together share one
// Redis call (read_batch): many concurrent requests cost far fewer script
// calls than requests, and every answer still reflects the writes made
// before the request was sent.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLive } from './harness.mjs';

// Function calls (FCALL) Redis has served so far (commandstats).
function fcallCalls(redis) {
  const line = redis.raw('INFO', 'commandstats').split('\n').find((l) => l.startsWith('cmdstat_fcall:'));
  return line ? Number(/calls=(\d+)/.exec(line)[1]) : 0;
}

describe('GET /api/stats batching', () => {
  let redis, usher;
  before(async () => { ({ redis, usher } = await startLive()); });
  after(async () => { await usher?.close(); await redis?.close(); });

  it('200 concurrent requests share calls and all see the same fresh totals', async () => {
    for (let i = 0; i < 5; i++) {
      assert.equal((await usher.post('/api/token/viewer', { userId: `v${i}` })).status, 200);
    }
    const before = fcallCalls(redis);
    const answers = await Promise.all(Array.from({ length: 200 }, () => usher.get('/api/stats')));
    const calls = fcallCalls(redis) - before;
    for (const a of answers) {
      assert.equal(a.status, 200);
      assert.equal(a.body.data.totalViewers, 5);
    }
    assert.ok(calls >= 1 && calls < 100, `${calls} script calls for 200 requests`);
  });

  it('a request sent after a write sees it', async () => {
    for (let i = 5; i < 25; i++) {
      const [join, stats] = await Promise.all([
        usher.post('/api/token/viewer', { userId: `v${i}` }),
        usher.get('/api/stats'),
      ]);
      assert.equal(join.status, 200);
      assert.ok(stats.body.data.totalViewers >= i, 'never older than the writes before it');
      const after = await usher.get('/api/stats');
      assert.equal(after.body.data.totalViewers, i + 1);
    }
  });
});
