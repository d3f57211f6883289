// ramp.mjs — how fast usher seats an audience arriving at once (issue 12):
// 0 → VIEWERS viewers at capacity CAPACITY, from CLIENTS concurrent clients,
// against the release build and the local stage provider, with stage
// creations paced as IVS allows them (STAGE_CREATE_RATE, default 5/s).
//
//   make build/usher && node bench/ramp.mjs        # USHER_BIN=build/usher by default
//
// Starts its own redis-server and usher (tests/e2e/harness.mjs), makes the
// publisher live, then each client joins viewers one after another; a 503
// STAGE_FULL is retried after its Retry-After, as a client should (README
// "Retry-After"). Prints the time until every viewer is seated, the share
// of join requests refused, latencies and the stages at the end, as JSON.
import http from 'node:http';
import { Redis, Usher } from '../tests/e2e/harness.mjs';

const num = (name, dflt) => Number(process.env[name] ?? dflt);
const VIEWERS = num('VIEWERS', 1000);
const CAPACITY = num('CAPACITY', 20);
const CLIENTS = num('CLIENTS', 200);
const MAX_STAGES = num('MAX_STAGES', 70);
const CREATE_RATE = num('STAGE_CREATE_RATE', 5);
process.env.USHER_BIN ??= 'build/usher';

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const redis = await Redis.start();
  const usher = await Usher.start(redis, {
    AUTO_SCALE_ENABLED: 'true', MAX_VIEWERS_PER_STAGE: String(CAPACITY),
    MAX_STAGES: String(MAX_STAGES), STAGE_CREATE_RATE: String(CREATE_RATE),
    HEARTBEAT_TIMEOUT: '600', SIGNER_PRECOMPUTE: '16384',
  });
  try {
    const pub = await usher.post('/api/token/publisher', { userId: 'publisher-1' });
    if (pub.status !== 200) throw new Error(`publisher: ${pub.status}`);
    await sleep(2000);                       // the scaler's first spare stage, nonces ahead
    const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
    const latencies = [];
    let requests = 0, refused = 0, noRetryAfter = 0, next = 0, lastSeatedAt = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: CLIENTS }, async () => {
      while (next < VIEWERS) {
        const userId = `ramp-${next++}`;
        for (;;) {
          const s = performance.now();
          const r = await usher.request('POST', '/api/token/viewer', { body: { userId }, agent });
          latencies.push(performance.now() - s);
          requests++;
          if (r.status === 200) { lastSeatedAt = performance.now(); break; }
          if (r.status !== 503) throw new Error(`join: ${r.status} ${JSON.stringify(r.body)}`);
          refused++;
          const after = Number(r.headers['retry-after']);
          if (!after) noRetryAfter++;
          await sleep((after || 1) * 1000);
        }
      }
    }));
    agent.destroy();
    latencies.sort((a, b) => a - b);
    const list = (await usher.get('/api/stage/list')).body.data;
    console.log(JSON.stringify({
      viewers: VIEWERS, capacity: CAPACITY, clients: CLIENTS, maxStages: MAX_STAGES,
      stageCreateRate: CREATE_RATE,
      allSeatedMs: Math.round(lastSeatedAt - t0), requests, refused,
      refusedShare: +(refused / requests).toFixed(4), refusedWithoutRetryAfter: noRetryAfter,
      joinMs: { p50: +pct(latencies, 50).toFixed(1), p99: +pct(latencies, 99).toFixed(1),
        max: +latencies[latencies.length - 1].toFixed(1) },
      stagesAtEnd: list.totalStages,
    }, null, 2));
  } finally {
    await usher.close();
    await redis.close();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
