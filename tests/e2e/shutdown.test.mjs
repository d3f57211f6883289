// shutdown.test.mjs — SIGTERM while the scaler's lease renewal is still on
// its way to Redis: the renewal's answer, arriving after the scaler was
// stopped, takes nothing (no "took the lease", no tick acts), and usher
// exits 0 after releasing the lease.
//
// The renewal is held by a proxy between usher and Redis that reads the
// commands (RESP) and holds the first FCALL usher_lease with the lease's
// time (not 0: that is the release) and everything after it on its
// connection, until the test lets it go: so the command held is the
// renewal, whatever else usher writes meanwhile.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Redis, Usher, waitFor } from './harness.mjs';

const LEASE_MS = '10000';

// One command of a RESP multibulk at buf[at]: {argv, end}, or null while
// it is not all there. hiredis sends every command this way.
function command(buf, at) {
  const line = (from) => {
    const nl = buf.indexOf('\r\n', from);
    return nl < 0 ? null : { text: buf.toString('latin1', from + 1, nl), next: nl + 2 };
  };
  const head = line(at);
  if (!head) return null;
  if (buf[at] !== 0x2a) throw new Error(`not a RESP array at ${at}: ${buf.toString('latin1', at, at + 20)}`);
  const argv = [];
  let pos = head.next;
  for (let i = 0; i < Number(head.text); i++) {
    const len = line(pos);
    if (!len || len.next + Number(len.text) + 2 > buf.length) return null;
    argv.push(buf.toString('utf8', len.next, len.next + Number(len.text)));
    pos = len.next + Number(len.text) + 2;
  }
  return { argv, end: pos };
}

// A proxy to redisPort. hold(match) holds the first command match(argv)
// takes, and what follows it on that connection; resolves to its argv
// once held. release() sends what was held.
async function holdingProxy(redisPort) {
  const p = { armed: null, held: null };
  p.server = net.createServer((client) => {
    const upstream = net.connect(redisPort, '127.0.0.1');
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    let buf = Buffer.alloc(0);
    let holding = null;            // this connection's held bytes
    let passing = false;           // released: bytes go on unread (the held ones may end mid-command)
    client.on('data', (chunk) => {
      if (passing) { upstream.write(chunk); return; }
      if (holding) { holding.push(chunk); return; }
      buf = Buffer.concat([buf, chunk]);
      let at = 0, c;
      while ((c = command(buf, at))) {
        if (p.armed && p.armed.match(c.argv)) {
          upstream.write(buf.subarray(0, at));
          holding = [buf.subarray(at)];
          buf = Buffer.alloc(0);
          const { found } = p.armed;
          p.armed = null;
          p.held = { argv: c.argv, send: () => { for (const b of holding) upstream.write(b); holding = null; passing = true; } };
          found(c.argv);
          return;
        }
        at = c.end;
      }
      upstream.write(buf.subarray(0, at));
      buf = buf.subarray(at);
    });
  });
  await new Promise((ok) => p.server.listen(0, '127.0.0.1', ok));
  p.port = p.server.address().port;
  p.hold = (match) => new Promise((found) => { p.armed = { match, found }; });
  p.release = () => { p.held?.send(); p.held = null; };
  p.close = () => { p.release(); return new Promise((ok) => p.server.close(ok)); };
  return p;
}

describe('SIGTERM with a lease renewal in flight', () => {
  let redis, proxy, usher;
  before(async () => {
    redis = await Redis.start();
    proxy = await holdingProxy(redis.port);
    // usher talks to Redis through the proxy.
    const through = Object.create(redis, { url: { value: `redis://127.0.0.1:${proxy.port}` } });
    // The renewal is held until usher has the signal (well under 10 s):
    // usher's own timeout must not end it first.
    usher = await Usher.start(through, { SCALER_INTERVAL_MS: '50', SCALER_LEASE_MS: LEASE_MS,
      REDIS_TIMEOUT_MS: '10000', LOG_LEVEL: 'info' });
  });
  after(async () => {
    proxy?.release();
    await usher?.close();
    await proxy?.close();
    await redis?.close();
  });

  it('the renewal answered after the signal is not used', async () => {
    await waitFor(() => /scaler: took the lease/.test(usher.log), { what: 'the lease taken' });
    // FCALL usher_lease <numkeys> <keys...> <prefix> <holder> <ttl ms>
    const renewal = (argv) => argv[0].toLowerCase() === 'fcall' && argv[1] === 'usher_lease' &&
      argv.at(-1) === LEASE_MS;
    const held = await Promise.race([proxy.hold(renewal),
      new Promise((_, no) => setTimeout(() => no(new Error('no lease renewal sent in 5 s')), 5000))]);
    assert.equal(held.at(-1), LEASE_MS, `the renewal held: ${held.join(' ')}`);
    const from = usher.log.length;
    const stopped = usher.stop();
    // The answer comes only once usher has the signal.
    await waitFor(() => /signal 15/.test(usher.log.slice(from)), { what: 'the signal taken' });
    proxy.release();
    const status = await stopped;
    assert.deepEqual(status, { code: 0, signal: null });
    const since = usher.log.slice(from);
    assert.doesNotMatch(since, /scaler: took the lease/, 'the renewal answered after the signal took the lease');
    assert.equal(redis.raw('GET', 'ivs:test:scaler:lease'), '', 'the lease released');
  });
});
