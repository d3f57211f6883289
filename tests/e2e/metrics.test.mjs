// metrics.test.mjs — GET /metrics, parsed by npm parse-prometheus-text-format
// (a Prometheus text-format parser), its gauges checked against Redis and
// its counters against what the test did; the API key is needed unless
// METRICS_PUBLIC=true.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { Usher, PREFIX, startLive, startUsher, waitFor } from './harness.mjs';

// {name → {type, metrics}} from one scrape, and the text as `raw`.
async function scrape(usher, headers = {}) {
  const res = await fetch(`${usher.base}/metrics`, { headers });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  const raw = await res.text();
  const families = parsePrometheusTextFormat(raw);
  return { ...Object.fromEntries(families.map((f) => [f.name, f])), raw };
}

// The parser keeps the buckets of a labelled histogram but not its labels,
// _sum or _count (it handles unlabelled ones fully): those series are read
// from the text.
function labelled(raw, series) {
  const line = raw.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}
const value = (fam, labels = {}) => {
  const m = fam.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  return m ? Number(m.value) : undefined;
};

describe('GET /metrics', () => {
  let redis, usher;
  before(async () => {
    ({ redis, usher } = await startLive({ HEARTBEAT_TIMEOUT: '1', HEARTBEAT_CLEANUP_INTERVAL: '1' }));
  });
  after(async () => { await usher?.close(); await redis?.close(); });

  it('gauges equal what Redis holds; counters count what was done', async () => {
    assert.equal((await usher.post('/api/stage', { name: 'second' })).status, 201);
    const seats = [];
    for (let i = 0; i < 5; i++) {
      const r = await usher.post('/api/token/viewer', { userId: `m${i}` });
      assert.equal(r.status, 200);
      seats.push({ userId: `m${i}`, stageArn: r.body.data.stageArn });
    }
    for (const seat of seats.slice(0, 2)) assert.equal((await usher.post('/api/viewer/leave', seat)).status, 200);
    assert.equal((await usher.post('/api/viewer/leave', seats[0])).status, 200);   // repeated: no seat freed
    assert.equal((await usher.get('/nope')).status, 404);

    const m = await scrape(usher);
    assert.equal(m.usher_redis_up.type, 'GAUGE');
    assert.equal(value(m.usher_redis_up), 1);
    assert.equal(value(m.usher_viewers), Number(redis.raw('GET', `${PREFIX}total_viewers`)));
    assert.equal(value(m.usher_viewers), 3);
    const stages = redis.raw('ZRANGE', `${PREFIX}stages`, 0, -1).split('\n').filter(Boolean);
    assert.equal(m.usher_stage_viewers.metrics.length, stages.length);
    for (const arn of stages) {
      assert.equal(value(m.usher_stage_viewers, { stage: arn.split('/').pop() }),
        Number(redis.raw('GET', `${PREFIX}viewers:${arn}`) || 0), arn);
    }
    assert.equal(value(m.usher_stages, { mode: 'open' }), stages.length);
    assert.equal(value(m.usher_stages, { mode: 'draining' }), 0);
    assert.equal(value(m.usher_stages, { mode: 'waiting' }), 0);

    assert.equal(m.usher_joins_total.type, 'COUNTER');
    assert.equal(value(m.usher_joins_total), 5);
    assert.equal(value(m.usher_leaves_total), 2);
    assert.equal(value(m.usher_moves_total), 0);
    assert.equal(value(m.usher_http_requests_total, { route: '/api/token/viewer', status: '200' }), 5);
    assert.equal(value(m.usher_http_requests_total, { route: '/api/viewer/leave', status: '200' }), 3);
    assert.equal(value(m.usher_http_requests_total, { route: 'none', status: '404' }), 1);
    assert.equal(m.usher_http_request_duration_seconds.type, 'HISTOGRAM');
    const h = 'usher_http_request_duration_seconds';
    assert.equal(labelled(m.raw, `${h}_count{route="/api/token/viewer"}`), 5);
    assert.equal(labelled(m.raw, `${h}_bucket{route="/api/token/viewer",le="+Inf"}`), 5);
    assert.ok(labelled(m.raw, `${h}_sum{route="/api/token/viewer"}`) > 0);
    const routes = m.raw.match(/^usher_http_request_duration_seconds_count\{route="[^"]*"\}/gm);
    assert.equal(routes.length, new Set(routes).size, 'one histogram per route');
    const redisRt = m.usher_redis_roundtrip_seconds.metrics[0];
    assert.ok(Number(redisRt.count) >= 10, `${redisRt.count} Redis calls timed`);
    assert.equal(value(m.usher_redis_errors_total), 0);
    // The local provider calls nothing: no IVS calls to count (the AWS
    // client's counters fill this family with STAGE_PROVIDER=aws).
    assert.equal(m.usher_provider_calls_total.type, 'COUNTER');
    assert.equal(m.usher_provider_calls_total.metrics.length, 0);
    assert.equal(value(m.usher_signer_queue_depth), 0);
    assert.ok(value(m.usher_signer_precomputed_nonces) >= 0);
    assert.ok([0, 1].includes(value(m.usher_scaler_lease_holder)));
  });

  it('silent viewers expire and are counted', async () => {
    // HEARTBEAT_TIMEOUT 1 s, swept every second: wait for the sweeps, then
    // check the counts (a fixed sleep was too short on a loaded machine).
    await waitFor(async () => value((await scrape(usher)).usher_expiries_total) >= 3,
      { timeoutMs: 20000, stepMs: 250, what: 'the 3 silent viewers to expire' });
    const m = await scrape(usher);
    assert.equal(value(m.usher_expiries_total), 3);
    assert.equal(value(m.usher_viewers), 0);
    assert.equal(Number(redis.raw('GET', `${PREFIX}total_viewers`)), 0);
  });

  it('while Redis is down: usher_redis_up 0 and no Redis gauges', async () => {
    redis.pause();
    try {
      const m = await scrape(usher);
      assert.equal(value(m.usher_redis_up), 0);
      assert.equal(m.usher_viewers, undefined);
      assert.ok(value(m.usher_redis_errors_total) >= 1);
    } finally { redis.resume(); }
  });
});

describe('GET /metrics: the API key', () => {
  let redis, usher, open;
  before(async () => {
    ({ redis, usher } = await startUsher({ SKIP_AUTH: 'false', API_SECRET_KEY: 'metrics-key' }));
    open = await Usher.start(redis, { SKIP_AUTH: 'false', API_SECRET_KEY: 'metrics-key', METRICS_PUBLIC: 'true' });
  });
  after(async () => { await usher?.close(); await open?.close(); await redis?.close(); });

  it('needs X-API-Key or a Bearer key, unless METRICS_PUBLIC=true', async () => {
    assert.equal((await fetch(`${usher.base}/metrics`)).status, 401);
    assert.equal((await fetch(`${usher.base}/metrics`, { headers: { Cookie: 'usher_api_key=metrics-key' } })).status, 401);
    await scrape(usher, { 'X-API-Key': 'metrics-key' });
    await scrape(usher, { Authorization: 'Bearer metrics-key' });       // as Prometheus sends it
    assert.equal((await fetch(`${usher.base}/metrics`, { headers: { Authorization: 'Bearer nope' } })).status, 401);
    assert.equal((await fetch(`${usher.base}/api/stats`, { headers: { Authorization: 'Bearer metrics-key' } })).status, 401);
    await scrape(open);
    // METRICS_PUBLIC opens /metrics only.
    assert.equal((await fetch(`${open.base}/api/stats`)).status, 401);
  });
});
