// stats-batch.test.mjs — GET /api/stats callers arriving together share one
// Redis call (read_batch): many concurrent requests cost far fewer script
// calls than requests, and every answer still reflects the writes made
// before the request was sent.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLive } from './harness.mjs';

// Counts the calls of one Redis function made from now on: the slow log
// set to keep every command, and its entries read back. Counting FCALLs
// by commandstats counted usher's background calls too (the scaler's lease,
// the state check), which on a loaded machine pushed the count past the bound.
function countCalls(redis, fn) {
  redis.raw('CONFIG', 'SET', 'slowlog-log-slower-than', '0');
  redis.raw('CONFIG', 'SET', 'slowlog-max-len', '100000');
  redis.raw('SLOWLOG', 'RESET');
  return () => redis.raw('SLOWLOG', 'GET', '100000').split('\n').filter((l) => l === fn).length;
}

describe('GET /api/stats batching', () => {
  let redis, usher;
  before(async () => { ({ redis, usher } = await startLive()); });
  after(async () => { await usher?.close(); await redis?.close(); });

  it('200 concurrent requests share calls and all see the same fresh totals', async () => {
    for (let i = 0; i < 5; i++) {
      assert.equal((await usher.post('/api/token/viewer', { userId: `v${i}` })).status, 200);
    }
    const counted = countCalls(redis, 'usher_stats');
    const answers = await Promise.all(Array.from({ length: 200 }, () => usher.get('/api/stats')));
    const calls = counted();
    for (const a of answers) {
      assert.equal(a.status, 200);
      assert.equal(a.body.data.totalViewers, 5);
    }
    assert.ok(calls >= 1 && calls < 100, `${calls} usher_stats calls for 200 requests`);
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
