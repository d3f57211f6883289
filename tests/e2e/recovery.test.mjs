// recovery.test.mjs — Redis loses usher's data, or a key holds a foreign
// value, and usher notices and rebuilds (issue 12, item 3).
//
// (a) FLUSHALL while usher stays connected: within seconds the master stage
//     is recorded again with THE SAME ARN, an added stage the provider still
//     has is recorded again, the log says so as an error and /health reports
//     the repair; the publisher, last seen live, is live again and viewers
//     are seated; its token names the same master; a viewer whose seat was lost gets a heartbeat 404 with
//     details.action "rejoin", rejoins with its participantId and heartbeats.
// (b) FLUSHALL then CLIENT KILL TYPE normal (usher reconnects to an empty
//     Redis): the publisher token names the same master stage.
// (c) Foreign values: `stages` holding a string, `master_stage` holding
//     garbage, a stage record gone, an expiry index that lost its entries
//     and `total_viewers`
//     holding a word are set aside or repaired within seconds, requests
//     work again and /health names the repair.
// (d) FLUSHALL under two processes: one state rebuilt (a new state id), the
//     same master for both, the added stage back, no stray stage.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PREFIX, Usher, startLive } from './harness.mjs';

const short = (r) => `${r.status} ${JSON.stringify(r.body).slice(0, 300)}`;

async function eventually(check, timeoutMs, stepMs = 100) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try { if (await check()) return true; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return check();
}

const ENV = {
  AUTO_SCALE_ENABLED: 'true', MAX_VIEWERS_PER_STAGE: '2', MAX_STAGES: '4', LOG_LEVEL: 'info',
};

async function masterArn(usher) {
  return (await usher.get('/api/stage/master/info')).body.data?.stage?.stageArn;
}

describe('(a) FLUSHALL while usher stays connected', () => {
  let redis, usher, master, added, viewer;
  before(async () => {
    ({ redis, usher } = await startLive(ENV));
    master = await masterArn(usher);
    viewer = (await usher.post('/api/token/viewer', { userId: 'lost-1' })).body.data;
    // One viewer at capacity 2 makes the scaler add a spare stage.
    assert.ok(await eventually(async () => {
      const list = (await usher.get('/api/stage/list')).body.data.stages;
      added = list.find((s) => !s.isMasterStage && s.mode === 'open')?.stageArn;
      return !!added;
    }, 8000), 'a stage was added');
  });
  after(async () => { await usher?.close(); await redis?.close(); });

  it('the master (same ARN) and the added stage are recorded again within seconds', async () => {
    redis.cli('FLUSHALL');
    const t0 = Date.now();
    let arns = [];
    assert.ok(await eventually(async () => {
      arns = (await usher.get('/api/stage/list')).body.data.stages.map((s) => s.stageArn);
      return arns.includes(master) && arns.includes(added);
    }, 8000), `stages after the flush: ${arns}`);
    const took = Date.now() - t0;
    assert.ok(took < 6000, `rebuilt after ${took} ms`);
    assert.equal(redis.raw('GET', `${PREFIX}master_stage`), master);
    assert.ok(await eventually(() => / error +redis lost usher's state/.test(usher.log), 3000), 'the log says so');
    const health = await usher.get('/health');
    assert.equal(health.status, 200, short(health));
    assert.match(health.body.data.services.redis.state.lastRepair.what, /lost and rebuilt/);
  });

  it('the publisher, last seen live, is live again: a viewer joins before it asks again', async () => {
    assert.equal(redis.raw('GET', `${PREFIX}publisher:status`), 'live');
    const v = await usher.post('/api/token/viewer', { userId: 'before-publisher' });
    assert.equal(v.status, 200, short(v));
  });

  it('the publisher asks again: same master; viewers are seated', async () => {
    const pub = await usher.post('/api/token/publisher', { userId: 'publisher-1' });
    assert.equal(pub.status, 200, short(pub));
    assert.equal(pub.body.data.stageArn, master);
    const v = await usher.post('/api/token/viewer', { userId: 'after-flush' });
    assert.equal(v.status, 200, short(v));
    const stats = (await usher.get('/api/stats')).body.data;
    assert.ok(stats.activeStages >= 2);
    assert.equal(stats.isPublisherLive, true);
  });

  it('a lost seat: heartbeat 404 with action "rejoin", rejoin, then heartbeats work', async () => {
    const hb = await usher.post('/api/viewer/heartbeat', { userId: 'lost-1', stageArn: viewer.stageArn });
    assert.equal(hb.status, 404, short(hb));
    assert.equal(hb.body.error.code, 'NOT_FOUND');
    assert.equal(hb.body.error.details.action, 'rejoin');
    const rj = await usher.post('/api/viewer/rejoin',
      { userId: 'lost-1', stageArn: viewer.stageArn, participantId: viewer.participantId });
    assert.equal(rj.status, 200, short(rj));
    assert.equal(rj.body.data.participantId, viewer.participantId);
    const hb2 = await usher.post('/api/viewer/heartbeat', { userId: 'lost-1', stageArn: viewer.stageArn });
    assert.equal(hb2.status, 200, short(hb2));
  });

  it('a heartbeat naming a stage that is gone: 404 with action "join"', async () => {
    const arn = master.replace(/stage\/.*/, 'stage/ZZZZZZZZZZZZ');
    const hb = await usher.post('/api/viewer/heartbeat', { userId: 'lost-2', stageArn: arn });
    assert.equal(hb.status, 404, short(hb));
    assert.equal(hb.body.error.details.action, 'join');
  });
});

describe('(b) FLUSHALL, then the connection is killed', () => {
  let redis, usher, master;
  before(async () => {
    ({ redis, usher } = await startLive(ENV));
    master = await masterArn(usher);
  });
  after(async () => { await usher?.close(); await redis?.close(); });

  it('the publisher token names the same master stage', async () => {
    redis.cli('FLUSHALL');
    redis.cli('CLIENT', 'KILL', 'TYPE', 'normal');
    let pub;
    assert.ok(await eventually(async () => {
      pub = await usher.post('/api/token/publisher', { userId: 'publisher-1' });
      return pub.status === 200;
    }, 8000), `publisher token: ${pub && short(pub)}`);
    assert.equal(pub.body.data.stageArn, master);
    assert.equal(redis.raw('GET', `${PREFIX}master_stage`), master);
    const v = await usher.post('/api/token/viewer', { userId: 'after-kill' });
    assert.equal(v.status, 200, short(v));
    assert.equal(v.body.data.stageArn, master);
  });
});

describe('(c) keys holding foreign values', () => {
  let redis, usher, master;
  before(async () => {
    ({ redis, usher } = await startLive(ENV));
    master = await masterArn(usher);
  });
  after(async () => { await usher?.close(); await redis?.close(); });

  it('`stages` of the wrong type is set aside and rebuilt; requests work again', async () => {
    redis.cli('DEL', `${PREFIX}stages`);
    redis.cli('SET', `${PREFIX}stages`, 'garbage');
    let v;
    assert.ok(await eventually(async () => {
      v = await usher.post('/api/token/viewer', { userId: 'foreign-1' });
      return v.status === 200;
    }, 8000), `join: ${v && short(v)}`);
    assert.equal(v.body.data.stageArn, master);
    assert.equal(redis.raw('TYPE', `${PREFIX}stages`), 'zset');
    assert.equal(redis.raw('GET', `${PREFIX}foreign:stages`), 'garbage');
    const health = (await usher.get('/health')).body.data;
    assert.match(JSON.stringify(health.services.redis.state), /stages held a string|lost and rebuilt/);
    assert.ok(await eventually(() => / error +redis: stages held a string/.test(usher.log), 3000), 'the log says so');
  });

  it('`master_stage` naming no stage is repaired to the same master', async () => {
    redis.cli('SET', `${PREFIX}master_stage`, 'not-an-arn');
    assert.ok(await eventually(() => redis.raw('GET', `${PREFIX}master_stage`) === master, 8000));
    assert.ok(await eventually(() => / error +redis: master_stage named not-an-arn/.test(usher.log), 3000), 'the log says so');
    const pub = await usher.post('/api/token/publisher', { userId: 'publisher-1' });
    assert.equal(pub.body.data.stageArn, master);
  });

  it('a live stage without its record gets one again (createdAt from `stages`)', async () => {
    const score = Number(redis.raw('ZSCORE', `${PREFIX}stages`, master));
    redis.cli('HDEL', `${PREFIX}stage_info`, master);
    let entry;
    assert.ok(await eventually(async () => {
      entry = (await usher.get('/api/stage/list')).body.data.stages.find((e) => e.stageArn === master);
      return entry?.name === 'master-stage';
    }, 8000), JSON.stringify(entry));
    assert.equal(entry.createdAt, new Date(score).toISOString());
    assert.equal(entry.autoScaled, false);
  });

  it('an expiry index that lost a seat is rebuilt from the seats', async () => {
    const index = `${PREFIX}viewer:expiry:${master}`;
    const before = redis.raw('ZRANGE', index, 0, -1, 'WITHSCORES');
    assert.match(before, /foreign-1/);
    redis.cli('DEL', index);
    assert.ok(await eventually(() => redis.raw('ZRANGE', index, 0, -1, 'WITHSCORES') === before, 8000),
      'the index is back, with the last heartbeat as score');
  });

  it('`total_viewers` holding a word is recomputed from the seats', async () => {
    redis.cli('SET', `${PREFIX}total_viewers`, 'many');
    assert.ok(await eventually(() => redis.raw('GET', `${PREFIX}total_viewers`) === '1', 8000));
    const v = await usher.post('/api/token/viewer', { userId: 'foreign-2' });
    assert.equal(v.status, 200, short(v));
    assert.equal(redis.raw('GET', `${PREFIX}total_viewers`), '2');
  });
});

describe('(d) FLUSHALL under two processes', () => {
  let redis, a, b, master, added;
  before(async () => {
    ({ redis, usher: a } = await startLive(ENV));
    b = await Usher.start(redis, ENV);
    master = await masterArn(a);
    assert.equal((await b.post('/api/token/viewer', { userId: 'two-1' })).status, 200);
    assert.ok(await eventually(async () => {
      const list = (await a.get('/api/stage/list')).body.data.stages;
      added = list.find((s) => !s.isMasterStage && s.mode === 'open')?.stageArn;
      return !!added;
    }, 8000), 'a stage was added');
  });
  after(async () => { await a?.close(); await b?.close(); await redis?.close(); });

  it('both learn one rebuilt state: the same master, the added stage again, one state id', async () => {
    const before = redis.raw('GET', `${PREFIX}state_id`);
    redis.cli('FLUSHALL');
    let arns = [];
    assert.ok(await eventually(async () => {
      arns = (await b.get('/api/stage/list')).body.data.stages.map((s) => s.stageArn);
      return arns.includes(master) && arns.includes(added);
    }, 8000), `stages after the flush: ${arns}`);
    assert.equal(arns.length, 2, `no stage besides the master and the added one: ${arns}`);
    const after = redis.raw('GET', `${PREFIX}state_id`);
    assert.ok(after && after !== before, 'a new life of the state');
    for (const u of [a, b]) {
      const pub = await u.post('/api/token/publisher', { userId: 'publisher-1' });
      assert.equal(pub.body.data.stageArn, master);
    }
  });
});
