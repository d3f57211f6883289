// stages.test.mjs — the stage management API (SPEC §2 "Stages") and the
// stage event stream, against a real Redis, with the scaler off (harness
// default) so only the operator changes stages. MAX_STAGES=4.
//
//  - list / master info / get by percent-encoded ARN, with the documented
//    extra fields (mode, replication, isMasterStage, scaling);
//  - create: 201 {stage}, validation, recorded in Redis (stages, stage_info,
//    viewers:{arn}=0, stage:{arn} with TTL in (0,3600]);
//  - rename: list, GET and the stage:{arn} key show the new name, TTL fresh;
//  - delete: 403 FORBIDDEN for the master, 400 while viewers remain, 200
//    {stageArn, deleted:true} once empty, then 404; no key or hash field
//    of the deleted stage remains; 404 for an unknown stage;
//  - MAX_STAGES: past it 503 STAGE_LIMIT_REACHED, also under 10 concurrent
//    creates (exactly the free places are taken);
//  - events: created / delete in the stream, newest first, limit checked;
//  - stage:{arn} exists for every live stage with a TTL in (0,3600].
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PREFIX, enc, checkInvariants, startUsher } from './harness.mjs';

const MAX_STAGES = 4;
const ENV = { MAX_STAGES: String(MAX_STAGES), MAX_VIEWERS_PER_STAGE: '20' };
const short = (r) => `${r.status} ${JSON.stringify(r.body).slice(0, 400)}`;
const ARN_RE = /arn:aws:ivs:[a-z0-9-]+:\d{12}:stage\/[A-Za-z0-9]+/g;

const liveStages = (redis) => redis.raw('ZRANGE', `${PREFIX}stages`, 0, -1).split('\n').filter(Boolean);
const hashFields = (redis, key) => redis.raw('HKEYS', `${PREFIX}${key}`).split('\n').filter(Boolean);

// Every key, and every field of the per-stage hashes, that names `arn`.
function traces(redis, arn) {
  const keys = redis.raw('--scan').split('\n').filter((k) => k.includes(arn));
  const fields = ['stage_info', 'stage_mode', 'stage_state']
    .filter((h) => hashFields(redis, h).includes(arn));
  return [...keys, ...fields.map((h) => `${h}[${arn}]`)];
}

// Keys and hash fields naming a stage that is not in {prefix}stages.
function staleTraces(redis) {
  const live = new Set(liveStages(redis));
  const out = [];
  for (const k of redis.raw('--scan').split('\n').filter(Boolean)) {
    if (!k.startsWith(PREFIX)) continue;
    for (const arn of k.match(ARN_RE) ?? []) if (!live.has(arn)) out.push(k);
  }
  for (const h of ['stage_info', 'stage_mode', 'stage_state']) {
    for (const f of hashFields(redis, h)) if (!live.has(f)) out.push(`${h}[${f}]`);
  }
  return out;
}

function stageKey(redis, arn) {
  const text = redis.raw('GET', `${PREFIX}stage:${arn}`);
  const ttl = Number(redis.raw('TTL', `${PREFIX}stage:${arn}`));
  return { doc: text ? JSON.parse(text) : null, ttl };
}

describe('stage management API', () => {
  let redis; let usher; let master;
  let created;                         // the ARN made by the create test

  before(async () => { ({ redis, usher } = await startUsher(ENV)); });
  after(async () => { await usher?.close(); await redis?.close(); });

  it('lists the master stage alone at first, with the documented fields', async () => {
    const r = await usher.get('/api/stage/list');
    assert.equal(r.status, 200, short(r));
    assert.equal(r.body.success, true);
    const { stages, totalStages, scaling } = r.body.data;
    assert.equal(totalStages, 1);
    assert.equal(stages.length, 1);
    const m = stages[0];
    master = m.stageArn;
    assert.match(master, /^arn:aws:ivs:[a-z0-9-]+:\d{12}:stage\/[A-Za-z0-9]+$/);
    assert.equal(m.name, 'master-stage');
    assert.equal(m.viewerCount, 0);
    assert.equal(m.autoScaled, false);
    assert.equal(m.isMasterStage, true);
    assert.equal(m.mode, 'open');
    assert.equal(m.replication, 'source');
    assert.ok(!Number.isNaN(Date.parse(m.createdAt)), `createdAt ${m.createdAt}`);
    assert.deepEqual(scaling, { spareSeats: 20, capacityPerStage: 20, spareInUse: false });
    assert.equal(redis.raw('GET', `${PREFIX}master_stage`), master);
  });

  it('master info: {stage, viewerCount, isMasterStage: true}', async () => {
    const r = await usher.get('/api/stage/master/info');
    assert.equal(r.status, 200, short(r));
    assert.equal(r.body.data.isMasterStage, true);
    assert.equal(r.body.data.viewerCount, 0);
    assert.equal(r.body.data.stage.stageArn, master);
    assert.equal(r.body.data.stage.name, 'master-stage');

    // A seated viewer shows in the master's count.
    const pub = await usher.post('/api/token/publisher', { userId: 'host-1' });
    assert.equal(pub.status, 200, short(pub));
    const v = await usher.post('/api/token/viewer', { userId: 'mi-1' });
    assert.equal(v.status, 200, short(v));
    assert.equal(v.body.data.stageArn, master);
    const again = await usher.get('/api/stage/master/info');
    assert.equal(again.body.data.viewerCount, 1);
    const left = await usher.post('/api/viewer/leave', { userId: 'mi-1', stageArn: master });
    assert.equal(left.status, 200, short(left));
  });

  it('create: 201 {stage}, recorded in Redis with stage:{arn} (TTL in (0,3600])', async () => {
    const r = await usher.post('/api/stage', { name: 'ops-stage', tags: { team: 'ops' } });
    assert.equal(r.status, 201, short(r));
    const s = r.body.data.stage;
    created = s.stageArn;
    assert.match(created, /^arn:aws:ivs:[a-z0-9-]+:\d{12}:stage\/[A-Za-z0-9]+$/);
    assert.notEqual(created, master);
    assert.equal(s.name, 'ops-stage');
    assert.equal(s.autoScaled, false);
    assert.ok(Math.abs(Date.parse(s.createdAt) - Date.now()) < 60000, `createdAt ${s.createdAt}`);

    assert.ok(liveStages(redis).includes(created));
    assert.equal(redis.raw('GET', `${PREFIX}viewers:${created}`), '0');
    const { doc, ttl } = stageKey(redis, created);
    assert.deepEqual({ name: doc.name, arn: doc.arn, autoScaled: doc.autoScaled, createdAt: doc.createdAt },
      { name: 'ops-stage', arn: created, autoScaled: false, createdAt: s.createdAt });
    assert.ok(ttl > 0 && ttl <= 3600, `stage:{arn} TTL ${ttl}`);
    // An operator's stage seats viewers at once.
    assert.equal(redis.raw('HGET', `${PREFIX}stage_mode`, created), '');

    const list = await usher.get('/api/stage/list');
    assert.equal(list.body.data.totalStages, 2);
    const entry = list.body.data.stages.find((e) => e.stageArn === created);
    assert.ok(entry, 'the new stage is listed');
    assert.equal(entry.mode, 'open');
    assert.equal(entry.isMasterStage, false);
    assert.equal(entry.autoScaled, false);
  });

  it('create refuses a bad body with 400 VALIDATION_ERROR', async () => {
    const before = liveStages(redis).length;
    for (const [body, field] of [[{}, 'name'], [{ name: '' }, 'name'], [{ name: 42 }, 'name'],
      [{ name: 'x'.repeat(129) }, 'name'], [{ name: 'ok', tags: 'no' }, 'tags']]) {
      const r = await usher.post('/api/stage', body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${short(r)}`);
      assert.equal(r.body.error.code, 'VALIDATION_ERROR');
      assert.ok(r.body.error.details.fields.includes(field), short(r));
    }
    assert.equal(liveStages(redis).length, before, 'a refused create adds no stage');
  });

  it('get by percent-encoded ARN: {stage, viewerCount}; 404 unknown; 400 not an ARN', async () => {
    const r = await usher.get(`/api/stage/${enc(created)}`);
    assert.equal(r.status, 200, short(r));
    assert.equal(r.body.data.stage.stageArn, created);
    assert.equal(r.body.data.stage.name, 'ops-stage');
    assert.equal(r.body.data.viewerCount, 0);
    const m = await usher.get(`/api/stage/${enc(master)}`);
    assert.equal(m.status, 200, short(m));
    assert.equal(m.body.data.stage.isMasterStage, true);

    const unknown = 'arn:aws:ivs:ap-northeast-1:123456789012:stage/NoSuchStage1';
    const u = await usher.get(`/api/stage/${enc(unknown)}`);
    assert.equal(u.status, 404, short(u));
    assert.equal(u.body.error.code, 'NOT_FOUND');
    const bad = await usher.get('/api/stage/not-an-arn');
    assert.equal(bad.status, 400, short(bad));
    assert.equal(bad.body.error.code, 'VALIDATION_ERROR');
  });

  it('rename: PUT {name} shows in the list, in GET and in stage:{arn} (TTL in (0,3600])', async () => {
    redis.raw('EXPIRE', `${PREFIX}stage:${created}`, 100);   // the rename sets it afresh
    const r = await usher.put(`/api/stage/${enc(created)}`, { name: 'renamed-stage' });
    assert.equal(r.status, 200, short(r));
    assert.equal(r.body.data.stage.name, 'renamed-stage');
    assert.equal(r.body.data.stage.stageArn, created);

    const list = await usher.get('/api/stage/list');
    assert.equal(list.body.data.stages.find((e) => e.stageArn === created)?.name, 'renamed-stage');
    const one = await usher.get(`/api/stage/${enc(created)}`);
    assert.equal(one.body.data.stage.name, 'renamed-stage');
    const st = await usher.get('/api/stats');
    assert.equal(st.body.data.stages.find((e) => e.stageId === created)?.info.name, 'renamed-stage');

    const { doc, ttl } = stageKey(redis, created);
    assert.equal(doc.name, 'renamed-stage');
    assert.equal(doc.arn, created);
    assert.equal(doc.autoScaled, false);
    assert.ok(ttl > 100 && ttl <= 3600, `stage:{arn} TTL after rename ${ttl}`);
    assert.equal(JSON.parse(redis.raw('HGET', `${PREFIX}stage_info`, created)).name, 'renamed-stage');

    const unknown = 'arn:aws:ivs:ap-northeast-1:123456789012:stage/NoSuchStage2';
    const u = await usher.put(`/api/stage/${enc(unknown)}`, { name: 'x' });
    assert.equal(u.status, 404, short(u));
    assert.equal(redis.raw('EXISTS', `${PREFIX}stage:${unknown}`), '0', 'a 404 rename writes no key');
    const bad = await usher.put(`/api/stage/${enc(created)}`, { name: '' });
    assert.equal(bad.status, 400, short(bad));
  });

  it('delete: 403 for the master, 400 while viewers remain, 200 once empty, then 404', async () => {
    const m = await usher.request('DELETE', `/api/stage/${enc(master)}`);
    assert.equal(m.status, 403, short(m));
    assert.equal(m.body.error.code, 'FORBIDDEN');
    assert.ok(liveStages(redis).includes(master));

    const v = await usher.post('/api/token/viewer', { userId: 'del-1', stageArn: created });
    assert.equal(v.status, 200, short(v));
    const busy = await usher.request('DELETE', `/api/stage/${enc(created)}`);
    assert.equal(busy.status, 400, short(busy));
    assert.equal(busy.body.error.code, 'VALIDATION_ERROR');
    assert.ok(liveStages(redis).includes(created), 'refused delete keeps the stage');
    assert.equal(redis.raw('GET', `${PREFIX}viewers:${created}`), '1');
    assert.deepEqual(checkInvariants(redis, { capacity: 20 }).problems, []);

    const left = await usher.post('/api/viewer/leave', { userId: 'del-1', stageArn: created });
    assert.equal(left.status, 200, short(left));
    const d = await usher.request('DELETE', `/api/stage/${enc(created)}`);
    assert.equal(d.status, 200, short(d));
    assert.deepEqual({ stageArn: d.body.data.stageArn, deleted: d.body.data.deleted },
      { stageArn: created, deleted: true });

    const g = await usher.get(`/api/stage/${enc(created)}`);
    assert.equal(g.status, 404, short(g));
    const again = await usher.request('DELETE', `/api/stage/${enc(created)}`);
    assert.equal(again.status, 404, short(again));
    assert.equal(again.body.error.code, 'NOT_FOUND');
    const unknown = 'arn:aws:ivs:ap-northeast-1:123456789012:stage/NoSuchStage3';
    const u = await usher.request('DELETE', `/api/stage/${enc(unknown)}`);
    assert.equal(u.status, 404, short(u));

    const list = await usher.get('/api/stage/list');
    assert.ok(!list.body.data.stages.some((e) => e.stageArn === created));
    assert.deepEqual(checkInvariants(redis, { capacity: 20 }).problems, []);
  });

  it('after a delete no key or hash field of that stage remains', async () => {
    assert.deepEqual(traces(redis, created), []);
    // A late heartbeat / leave / join aimed at the deleted stage leaves none either.
    const hb = await usher.post('/api/viewer/heartbeat', { userId: 'del-1', stageArn: created });
    assert.equal(hb.status, 404, short(hb));
    const lv = await usher.post('/api/viewer/leave', { userId: 'del-1', stageArn: created });
    assert.equal(lv.status, 200, short(lv));
    const j = await usher.post('/api/token/viewer', { userId: 'del-2', stageArn: created });
    assert.equal(j.status, 404, short(j));
    const rn = await usher.put(`/api/stage/${enc(created)}`, { name: 'ghost' });
    assert.equal(rn.status, 404, short(rn));
    assert.deepEqual(traces(redis, created), []);
    assert.deepEqual(staleTraces(redis), []);
  });

  it('past MAX_STAGES: 503 STAGE_LIMIT_REACHED, also under concurrent creates', async () => {
    const have = liveStages(redis).length;                // master + earlier leftovers
    const free = MAX_STAGES - have;
    assert.ok(free >= 2, `room for the test: ${have} stages`);
    const res = await Promise.all(Array.from({ length: 10 }, (_, i) =>
      usher.post('/api/stage', { name: `limit-${i}` })));
    const ok = res.filter((r) => r.status === 201);
    const refused = res.filter((r) => r.status === 503);
    assert.equal(ok.length, free, res.map(short).join('\n'));
    assert.equal(refused.length, 10 - free, res.map(short).join('\n'));
    for (const r of refused) assert.equal(r.body.error.code, 'STAGE_LIMIT_REACHED', short(r));
    assert.equal(liveStages(redis).length, MAX_STAGES);

    const one = await usher.post('/api/stage', { name: 'one-too-many' });
    assert.equal(one.status, 503, short(one));
    assert.equal(one.body.error.code, 'STAGE_LIMIT_REACHED');
    const list = await usher.get('/api/stage/list');
    assert.equal(list.body.data.totalStages, MAX_STAGES);
    assert.ok(!list.body.data.stages.some((e) => e.name === 'one-too-many'));
    assert.deepEqual(staleTraces(redis), [], 'a refused create leaves no key');

    // Deleting one makes room again.
    const victim = ok[0].body.data.stage.stageArn;
    const d = await usher.request('DELETE', `/api/stage/${enc(victim)}`);
    assert.equal(d.status, 200, short(d));
    const again = await usher.post('/api/stage', { name: 'room-again' });
    assert.equal(again.status, 201, short(again));
    assert.deepEqual(traces(redis, victim), []);
  });

  it('the event stream shows created and delete, newest first; limit is checked', async () => {
    const r = await usher.get('/api/stage/events?limit=100');
    assert.equal(r.status, 200, short(r));
    const events = r.body.data.events;
    assert.ok(Array.isArray(events) && events.length > 0);
    for (const e of events) {
      assert.equal(typeof e.id, 'string');
      assert.ok(['scale_up', 'created', 'drain', 'delete', 'drain_timeout',
        'replication_started', 'replication_failed', 'publisher_live', 'publisher_offline',
        'viewers_above', 'viewers_below'].includes(e.type), `type ${e.type}`);
      assert.match(e.stageArn, /^arn:aws:ivs:/);
      assert.ok(!Number.isNaN(Date.parse(e.at)), `at ${e.at}`);
    }
    const ids = events.map((e) => e.id.split('-').map(Number));
    for (let i = 1; i < ids.length; i++) {
      const [a, b] = [ids[i - 1], ids[i]];
      assert.ok(a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]), `not newest first: ${events[i - 1].id} ${events[i].id}`);
    }
    const of = (arn) => events.filter((e) => e.stageArn === arn).map((e) => e.type);
    assert.ok(of(created).includes('created'), `events of ${created}: ${of(created)}`);
    assert.ok(of(created).includes('delete'), `events of ${created}: ${of(created)}`);
    assert.ok(of(created).indexOf('delete') < of(created).indexOf('created'), 'delete is newer');
    assert.equal(events.find((e) => e.stageArn === created && e.type === 'created').detail, 'ops-stage');
    assert.ok(!of(master).includes('delete'), 'the master is never deleted');
    // A refused create or delete writes no event.
    assert.ok(!events.some((e) => e.detail === 'one-too-many'));

    const two = await usher.get('/api/stage/events?limit=2');
    assert.equal(two.status, 200, short(two));
    assert.equal(two.body.data.events.length, 2);
    assert.deepEqual(two.body.data.events.map((e) => e.id), events.slice(0, 2).map((e) => e.id));
    for (const q of ['0', '-1', 'abc', '1001', '5x']) {
      const bad = await usher.get(`/api/stage/events?limit=${q}`);
      assert.equal(bad.status, 400, `limit=${q}: ${short(bad)}`);
      assert.equal(bad.body.error.code, 'VALIDATION_ERROR');
    }
  });

  it('stage:{arn} exists for every live stage, matching stage_info, TTL in (0,3600]', async () => {
    const stages = liveStages(redis);
    assert.equal(stages.length, MAX_STAGES);
    const list = await usher.get('/api/stage/list');
    assert.deepEqual(list.body.data.stages.map((e) => e.stageArn).sort(), [...stages].sort());
    for (const arn of stages) {
      const { doc, ttl } = stageKey(redis, arn);
      assert.ok(doc, `stage:${arn} missing`);
      assert.ok(ttl > 0 && ttl <= 3600, `stage:${arn} TTL ${ttl}`);
      assert.equal(doc.arn, arn);
      assert.deepEqual(doc, JSON.parse(redis.raw('HGET', `${PREFIX}stage_info`, arn)));
      const entry = list.body.data.stages.find((e) => e.stageArn === arn);
      assert.equal(entry.name, doc.name);
      assert.equal(entry.createdAt, doc.createdAt);
    }
    assert.deepEqual(hashFields(redis, 'stage_info').sort(), [...stages].sort());
    assert.deepEqual(staleTraces(redis), []);
    assert.deepEqual(checkInvariants(redis, { capacity: 20 }).problems, []);
  });

  it('the stages survive a restart of usher (state lives in Redis)', async () => {
    const before = liveStages(redis);
    await usher.stop();
    await usher.restart();
    const list = await usher.get('/api/stage/list');
    assert.equal(list.status, 200, short(list));
    assert.deepEqual(list.body.data.stages.map((e) => e.stageArn).sort(), [...before].sort());
    const m = await usher.get('/api/stage/master/info');
    assert.equal(m.body.data.stage.stageArn, master, 'the same master after a restart');
  });
});
