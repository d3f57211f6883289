// shutdown.test.mjs — SIGTERM while the scaler's lease renewal is still on
// its way to Redis: the renewal's answer, arriving after the scaler was
// stopped, takes nothing (no "took the lease", no tick acts), and usher
// exits 0 after releasing the lease.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis, Usher, waitFor } from './harness.mjs';

describe('SIGTERM with a lease renewal in flight', () => {
  let redis, usher;
  before(async () => {
    redis = await Redis.start();
    // Redis may hold a command 2 s below (CLIENT PAUSE): usher's own
    // timeout must not end the renewal first.
    usher = await Usher.start(redis, { SCALER_INTERVAL_MS: '50', SCALER_LEASE_MS: '10000',
      REDIS_TIMEOUT_MS: '10000', LOG_LEVEL: 'info' });
  });
  after(async () => {
    await usher?.close();
    await redis?.close();
  });

  it('the renewal answered after the signal is not used', async () => {
    await waitFor(() => /scaler: took the lease/.test(usher.log), { what: 'the lease taken' });
    // Redis holds writes for 2 s: the next renewal (an FCALL that writes)
    // waits there, seen as a blocked client in CLIENT LIST.
    redis.cli('CLIENT', 'PAUSE', '2000', 'WRITE');
    await waitFor(() => /flags=b .*cmd=fcall/.test(redis.raw('CLIENT', 'LIST')), { timeoutMs: 1500,
      what: 'a renewal held by Redis' });
    const from = usher.log.length;
    const status = await usher.stop();
    assert.deepEqual(status, { code: 0, signal: null });
    const since = usher.log.slice(from);
    assert.match(since, /signal 15/);
    assert.doesNotMatch(since, /scaler: took the lease/, 'the renewal answered after the signal took the lease');
    assert.equal(redis.raw('GET', 'ivs:test:scaler:lease'), '', 'the lease released');
  });
});
