// harness.test.mjs — the harness's own promises that tests rely on: a port
// from freePort() is one every client can reach. fetch() (and Chromium)
// refuse the Fetch Standard's "bad ports" before connecting, so a usher
// started on one never answers /health and its start waits out 30 s.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BAD_PORTS, PORT_LO, PORT_HI, freePort } from './harness.mjs';

// Why fetch() to 127.0.0.1:port failed: 'bad port' for a refused port.
async function fetchFailure(port) {
  try {
    await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5000) });
    return 'answered';
  } catch (e) {
    return e.cause?.message ?? e.message;
  }
}

describe('freePort', () => {
  it('BAD_PORTS are the ports this fetch() refuses', async () => {
    for (const port of BAD_PORTS) assert.equal(await fetchFailure(port), 'bad port', `port ${port}`);
    assert.notEqual(await fetchFailure(await freePort()), 'bad port', 'a port from freePort');
  });

  it('never gives a bad port, even when the draw lands on one', async (t) => {
    const bad = [...BAD_PORTS].filter((p) => p >= PORT_LO && p <= PORT_HI);
    assert.ok(bad.length > 0, `a bad port within ${PORT_LO}-${PORT_HI} to draw`);
    const draws = [...bad, PORT_LO + Math.floor((PORT_HI - PORT_LO) / 2)]
      .map((p) => (p - PORT_LO + 0.5) / (PORT_HI - PORT_LO + 1));
    let n = 0;
    t.mock.method(Math, 'random', () => draws[Math.min(n++, draws.length - 1)]);
    const port = await freePort();
    assert.ok(!BAD_PORTS.has(port), `freePort gave ${port}`);
    assert.ok(n > bad.length, `each bad port was drawn first (${n} draws)`);
  });
});
