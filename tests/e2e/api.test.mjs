// api.test.mjs — every endpoint's happy path and the exact SPEC shapes.
//
// Covers: the response envelope ({success, data, timestamp} / {success:false,
// error}) with an ISO-8601 ms UTC timestamp on every response; publisher token
// and publisher status; viewer tokens (404 while offline, seating, same seat on
// asking again); heartbeat, leave (idempotent), rejoin (new seat, same seat,
// move), viewer list and duration; /api/stats in exactly the SPEC §2 shape,
// /api/stats/viewers and /api/stats/stages; /health and /api/health; GET /;
// POST /api/stage and GET /api/stage/list; 404 and 405 JSON errors; CORS;
// auth (a second usher with API_SECRET_KEY); the rate limit (a third usher);
// the SPEC §3 Redis keys after joins and checkInvariants(); exit code 0 on
// SIGTERM.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis, Usher, PREFIX, enc, checkInvariants, inOneWindow } from './harness.mjs';

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const STAGE_ARN = /^arn:aws:ivs:[a-z0-9-]+:\d{12}:stage\/[A-Za-z0-9]{12}$/;
const REGION = 'eu-west-1';

function assertIso(ts, what = 'timestamp') {
  assert.equal(typeof ts, 'string', `${what} is a string`);
  assert.match(ts, ISO_MS, `${what} is ISO-8601 with ms, UTC`);
  assert.equal(new Date(ts).toISOString(), ts, `${what} is a real date`);
}

function assertRecent(ts, what) {
  assertIso(ts, what);
  assert.ok(Math.abs(Date.parse(ts) - Date.now()) < 5 * 60_000, `${what} ${ts} is about now`);
}

function assertJson(res) {
  assert.match(String(res.headers['content-type']), /^application\/json/, 'JSON content-type');
  assert.equal(typeof res.body, 'object', `body is JSON: ${JSON.stringify(res.body)}`);
}

// Success envelope; returns data.
function ok(res, status = 200) {
  assert.equal(res.status, status, `status of ${JSON.stringify(res.body)}`);
  assertJson(res);
  assert.equal(res.body.success, true);
  assert.equal(typeof res.body.data, 'object');
  assert.notEqual(res.body.data, null);
  assertRecent(res.body.timestamp, 'envelope timestamp');
  return res.body.data;
}

// Error envelope; returns error.
function fail(res, status, code) {
  assert.equal(res.status, status, `status of ${JSON.stringify(res.body)}`);
  assertJson(res);
  assert.equal(res.body.success, false);
  assert.equal(res.body.error?.code, code);
  assert.equal(typeof res.body.error.message, 'string');
  assert.ok(res.body.error.message.length > 0, 'error.message is not empty');
  assert.equal('data' in res.body, false, 'an error carries no data');
  assertRecent(res.body.timestamp, 'envelope timestamp');
  return res.body.error;
}

const hbKey = (arn) => `${PREFIX}viewer:heartbeat:${arn}`;
const countKey = (arn) => `${PREFIX}viewers:${arn}`;

describe('usher HTTP API', () => {
  let redis, usher, master, extra;
  const pid = {};          // userId -> participantId

  const count = (arn) => Number(redis.raw('GET', countKey(arn)) || 0);
  const total = () => Number(redis.raw('GET', `${PREFIX}total_viewers`) || 0);
  const hbField = (arn, user) => {
    const raw = redis.raw('HGET', hbKey(arn), user);
    return raw ? JSON.parse(raw) : null;
  };
  const noProblems = () => assert.deepEqual(checkInvariants(redis).problems, []);

  before(async () => {
    redis = await Redis.start();
    usher = await Usher.start(redis, {
      AUTO_SCALE_ENABLED: 'false',
      AWS_REGION: REGION,
      CORS_ORIGINS: 'http://a.example, http://b.example',
    });
  });
  after(async () => {
    await usher?.close();
    await redis?.close();
  });

  describe('service endpoints', () => {
    for (const path of ['/health', '/api/health']) {
      it(`GET ${path} has {status, uptime, version, services{redis, ivs}}`, async () => {
        const d = ok(await usher.get(path));
        assert.equal(d.status, 'healthy');
        assert.equal(typeof d.uptime, 'number');
        assert.ok(d.uptime >= 0);
        assert.equal(typeof d.version, 'string');
        assert.ok(d.version.length > 0);
        assert.equal(typeof d.services?.redis?.status, 'string');
        assert.equal(typeof d.services.redis.latencyMs, 'number');
        assert.ok(d.services.redis.latencyMs >= 0);
        assert.equal(typeof d.services.ivs?.provider, 'string');
        assert.equal(d.services.ivs.region, REGION);
      });
    }

    it('GET / names the service, its version and lists the endpoints', async () => {
      const d = ok(await usher.get('/'));
      assert.equal(typeof d.version, 'string');
      assert.match(JSON.stringify(d).toLowerCase(), /usher/, 'names the service');
      const text = JSON.stringify(d);
      for (const p of ['/api/token/publisher', '/api/token/viewer', '/api/viewer/heartbeat',
        '/api/viewer/leave', '/api/stats', '/api/stage', '/health']) {
        assert.ok(text.includes(p), `endpoint list mentions ${p}`);
      }
    });

    it('GET / lists only the routes that exist: the test participants route only with LOCAL_PARTICIPANTS_API', async () => {
      const listed = (d) => d.endpoints.map((e) => `${e.method} ${e.path}`);
      assert.ok(!listed(ok(await usher.get('/'))).includes('POST /api/test/participants'));
      fail(await usher.post('/api/test/participants', {}), 404, 'NOT_FOUND');
      const withModel = await Usher.start(redis, { LOCAL_PARTICIPANTS_API: 'true' });
      try {
        assert.ok(listed(ok(await withModel.get('/'))).includes('POST /api/test/participants'));
        assert.equal((await withModel.post('/api/test/participants', {})).status, 400, 'served: the empty body is refused');
      } finally {
        await withModel.close();
      }
    });

    it('unknown routes are 404 NOT_FOUND JSON', async () => {
      fail(await usher.get('/api/nope'), 404, 'NOT_FOUND');
      fail(await usher.get('/nope'), 404, 'NOT_FOUND');
      fail(await usher.post('/api/token/nope', { userId: 'x' }), 404, 'NOT_FOUND');
    });

    it('known paths with the wrong method are 405 METHOD_NOT_ALLOWED JSON', async () => {
      fail(await usher.request('DELETE', '/api/stats'), 405, 'METHOD_NOT_ALLOWED');
      fail(await usher.get('/api/token/viewer'), 405, 'METHOD_NOT_ALLOWED');
      fail(await usher.get('/api/viewer/heartbeat'), 405, 'METHOD_NOT_ALLOWED');
      fail(await usher.post('/health', {}), 405, 'METHOD_NOT_ALLOWED');
    });
  });

  describe('publisher', () => {
    it('is offline before any publisher token', async () => {
      assert.deepEqual(ok(await usher.get('/api/stats/publisher')).isPublisherLive, false);
    });

    it('POST /api/token/viewer is 404 NOT_FOUND while the publisher is offline', async () => {
      fail(await usher.post('/api/token/viewer', { userId: 'early-bird' }), 404, 'NOT_FOUND');
      assert.equal(total(), 0, 'nobody seated');
    });

    it('POST /api/token/publisher returns a master-stage token and marks the publisher live', async () => {
      const d = ok(await usher.post('/api/token/publisher', { userId: 'pub-1' }));
      assert.equal(typeof d.token, 'string');
      assert.equal(d.token.split('.').length, 3, 'a JWS compact token');
      assert.match(d.participantId, /^[A-Za-z0-9-]{1,64}$/);
      assert.equal(d.userId, 'pub-1');
      assert.match(d.stageArn, STAGE_ARN);
      master = d.stageArn;
      assert.equal(redis.raw('GET', `${PREFIX}master_stage`), master, 'the master stage');
      assert.ok(d.capabilities, 'capabilities present');
      const caps = JSON.stringify(d.capabilities).toLowerCase();
      assert.ok(caps.includes('publish') && caps.includes('subscribe'), `capabilities ${caps}`);
      assert.equal(d.expiresIn, 14400, 'default PUBLISHER_TOKEN_DURATION');
      assertIso(d.expiresAt, 'expiresAt');
      assert.ok(Math.abs(Date.parse(d.expiresAt) - (Date.now() + 14400_000)) < 60_000, 'expiresAt = now + expiresIn');
      assert.match(d.whipEndpoint, /^https:\/\/[^\s/]+/);

      assert.equal(ok(await usher.get('/api/stats/publisher')).isPublisherLive, true);
      assert.equal(redis.raw('GET', `${PREFIX}publisher:status`), 'live');
      const ttl = Number(redis.raw('TTL', `${PREFIX}publisher:status`));
      assert.ok(ttl > 0 && ttl <= 86400, `publisher:status TTL ${ttl}`);
    });

    it('PUT /api/publisher/status offline then live', async () => {
      assert.deepEqual(ok(await usher.put('/api/publisher/status', { status: 'offline' })).isPublisherLive, false);
      assert.equal(ok(await usher.get('/api/stats/publisher')).isPublisherLive, false);
      assert.equal(redis.raw('GET', `${PREFIX}publisher:status`), 'offline');
      fail(await usher.post('/api/token/viewer', { userId: 'too-early' }), 404, 'NOT_FOUND');
      assert.equal(hbField(master, 'too-early'), null, 'no seat while offline');

      assert.equal(ok(await usher.put('/api/publisher/status', { status: 'live' })).isPublisherLive, true);
      assert.equal(ok(await usher.get('/api/stats/publisher')).isPublisherLive, true);
      assert.equal(redis.raw('GET', `${PREFIX}publisher:status`), 'live');
      const ttl = Number(redis.raw('TTL', `${PREFIX}publisher:status`));
      assert.ok(ttl > 0 && ttl <= 86400, `publisher:status TTL ${ttl}`);
    });
  });

  describe('viewers', () => {
    it('POST /api/token/viewer seats a new viewer in the master stage', async () => {
      const d = ok(await usher.post('/api/token/viewer', { userId: 'alice' }));
      assert.equal(d.token.split('.').length, 3);
      assert.match(d.participantId, /^[A-Za-z0-9-]{1,64}$/);
      assert.equal(d.userId, 'alice');
      assert.equal(d.stageArn, master);
      assert.ok(d.capabilities, 'capabilities present');
      assert.ok(!JSON.stringify(d.capabilities).toLowerCase().includes('publish'), 'viewer cannot publish');
      assert.equal(d.expiresIn, 3600, 'default VIEWER_TOKEN_DURATION');
      assertIso(d.expiresAt, 'expiresAt');
      assert.ok(Math.abs(Date.parse(d.expiresAt) - (Date.now() + 3600_000)) < 60_000);
      assert.equal(d.currentViewers, 1);
      assert.equal(d.isNewViewer, true);
      pid.alice = d.participantId;
    });

    it('asking again gets the same seat: isNewViewer false, counts unchanged', async () => {
      const again = ok(await usher.post('/api/token/viewer', { userId: 'alice' }));
      assert.equal(again.isNewViewer, false);
      assert.equal(again.stageArn, master);
      assert.equal(again.participantId, pid.alice);
      assert.equal(again.currentViewers, 1);
      const same = ok(await usher.post('/api/token/viewer', { userId: 'alice', stageArn: master }));
      assert.equal(same.isNewViewer, false);
      assert.equal(same.stageArn, master);
      assert.equal(same.currentViewers, 1);
      assert.equal(count(master), 1);
      assert.equal(total(), 1);
    });

    it('a second viewer raises currentViewers', async () => {
      const d = ok(await usher.post('/api/token/viewer', { userId: 'bob' }));
      assert.equal(d.isNewViewer, true);
      assert.equal(d.stageArn, master);
      assert.equal(d.currentViewers, 2);
      assert.notEqual(d.participantId, pid.alice);
      pid.bob = d.participantId;
    });

    it('Redis holds the SPEC §3 keys after the joins', () => {
      assert.equal(redis.raw('TYPE', countKey(master)), 'string');
      assert.equal(redis.raw('GET', countKey(master)), '2');
      assert.equal(redis.raw('TYPE', `${PREFIX}total_viewers`), 'string');
      assert.equal(redis.raw('GET', `${PREFIX}total_viewers`), '2');
      assert.equal(redis.raw('TTL', countKey(master)), '-1', 'viewers:{arn} has no TTL');
      assert.equal(redis.raw('TTL', `${PREFIX}total_viewers`), '-1', 'total_viewers has no TTL');

      assert.equal(redis.raw('TYPE', hbKey(master)), 'hash');
      assert.equal(redis.raw('HLEN', hbKey(master)), '2');
      for (const user of ['alice', 'bob']) {
        const f = hbField(master, user);
        assert.deepEqual(Object.keys(f).sort(), ['joinedAt', 'participantId', 'timestamp']);
        assert.equal(f.participantId, pid[user]);
        assert.ok(Number.isInteger(f.timestamp) && Number.isInteger(f.joinedAt), 'ms integers');
        assert.ok(Math.abs(f.timestamp - Date.now()) < 60_000, 'timestamp is in ms, about now');
        assert.ok(f.joinedAt <= f.timestamp);
      }

      assert.equal(redis.raw('TYPE', `${PREFIX}stage:${master}`), 'string');
      const stage = JSON.parse(redis.raw('GET', `${PREFIX}stage:${master}`));
      assert.equal(stage.arn, master);
      assert.equal(typeof stage.name, 'string');
      assert.equal(stage.autoScaled, false);
      assertIso(stage.createdAt, 'stage createdAt');
      const ttl = Number(redis.raw('TTL', `${PREFIX}stage:${master}`));
      assert.ok(ttl > 0 && ttl <= 3600, `stage TTL ${ttl}`);

      assert.equal(redis.raw('GET', `${PREFIX}publisher:status`), 'live');
      const pttl = Number(redis.raw('TTL', `${PREFIX}publisher:status`));
      assert.ok(pttl > 0 && pttl <= 86400, `publisher:status TTL ${pttl}`);
      noProblems();
    });

    it('POST /api/viewer/heartbeat refreshes the timestamp, keeps joinedAt', async () => {
      const before = hbField(master, 'alice');
      await new Promise((r) => setTimeout(r, 20));
      const d = ok(await usher.post('/api/viewer/heartbeat', { userId: 'alice', stageArn: master }));
      assert.deepEqual({ userId: d.userId, stageArn: d.stageArn, heartbeatUpdated: d.heartbeatUpdated },
        { userId: 'alice', stageArn: master, heartbeatUpdated: true });
      const afterHb = hbField(master, 'alice');
      assert.ok(afterHb.timestamp > before.timestamp, 'timestamp moved forward');
      assert.equal(afterHb.joinedAt, before.joinedAt);
      assert.equal(afterHb.participantId, pid.alice);
      assert.equal(count(master), 2);
    });

    it('heartbeat for a viewer without a seat there is 404 NOT_FOUND', async () => {
      fail(await usher.post('/api/viewer/heartbeat', { userId: 'nobody', stageArn: master }), 404, 'NOT_FOUND');
      assert.equal(hbField(master, 'nobody'), null);
    });

    it('GET /api/viewer/list/:stageArn lists the seated viewers', async () => {
      const d = ok(await usher.get(`/api/viewer/list/${enc(master)}`));
      assert.equal(d.stageArn, master);
      assert.equal(d.totalViewers, 2);
      assert.equal(d.activeViewers, 2);
      assert.deepEqual([...d.viewers].sort(), ['alice', 'bob']);
    });

    it('GET /api/viewer/duration reports seconds and HH:MM:SS', async () => {
      const d = ok(await usher.get(`/api/viewer/duration?userId=alice&stageArn=${enc(master)}`));
      assert.equal(d.userId, 'alice');
      assert.equal(d.stageArn, master);
      assert.equal(typeof d.watchDurationSeconds, 'number');
      assert.ok(d.watchDurationSeconds >= 0 && d.watchDurationSeconds < 600);
      assert.match(d.watchDurationFormatted, /^\d{2}:\d{2}:\d{2}$/);
      fail(await usher.get(`/api/viewer/duration?userId=nobody&stageArn=${enc(master)}`), 404, 'NOT_FOUND');
    });
  });

  describe('statistics', () => {
    // The SPEC fixes the top level and `info`; each stage entry also carries
    // its seating mode and replication state (README: the scaling issue
    // asks for replication per stage in /api/stats), and nothing else.
    it('GET /api/stats has no fields beyond the SPEC shape and the documented stage state', async () => {
      const d = ok(await usher.get('/api/stats'));
      assert.deepEqual(Object.keys(d).sort(),
        ['activeStages', 'isPublisherLive', 'stages', 'timestamp', 'totalViewers']);
      assert.ok(d.stages.length > 0, 'at least the master stage is listed');
      for (const s of d.stages) {
        assert.deepEqual(Object.keys(s).sort(),
          ['info', 'isMasterStage', 'mode', 'replication', 'stageId', 'viewerCount']);
        assert.deepEqual(Object.keys(s.info).sort(), ['autoScaled', 'createdAt', 'name']);
        assert.ok(['open', 'waiting', 'draining'].includes(s.mode), s.mode);
      }
    });

    it('GET /api/stats has every SPEC field with the right values', async () => {
      const d = ok(await usher.get('/api/stats'));
      assert.equal(d.totalViewers, 2);
      assert.equal(d.isPublisherLive, true);
      assert.ok(Array.isArray(d.stages));
      assert.equal(d.activeStages, d.stages.length);
      assert.equal(d.activeStages, 1);
      assertRecent(d.timestamp, 'data.timestamp');
      const [s] = d.stages;
      assert.equal(s.stageId, master);
      assert.equal(s.viewerCount, 2);
      assert.equal(typeof s.info.name, 'string');
      assert.ok(s.info.name.length > 0);
      assert.equal(s.info.autoScaled, false);
      assertIso(s.info.createdAt, 'info.createdAt');
    });

    it('GET /api/stats/viewers and /api/stats/stages', async () => {
      assert.equal(ok(await usher.get('/api/stats/viewers')).totalViewers, 2);
      const st = ok(await usher.get('/api/stats/stages'));
      assert.ok(Array.isArray(st.stages));
      assert.equal(st.totalStages, 1);
      assert.equal(st.stages.length, 1);
    });
  });

  describe('stages', () => {
    it('POST /api/stage creates a stage (201) that GET /api/stage/list shows', async () => {
      const d = ok(await usher.post('/api/stage', { name: 'extra-1' }), 201);
      assert.match(d.stage?.stageArn, STAGE_ARN);
      assert.equal(d.stage.name, 'extra-1');
      assert.equal(d.stage.autoScaled, false);
      assertRecent(d.stage.createdAt, 'stage.createdAt');
      extra = d.stage.stageArn;
      assert.notEqual(extra, master);

      const list = ok(await usher.get('/api/stage/list'));
      assert.equal(list.totalStages, 2);
      assert.equal(list.stages.length, 2);
      const byArn = Object.fromEntries(list.stages.map((s) => [s.stageArn, s]));
      for (const s of list.stages) {
        for (const k of ['stageArn', 'name', 'viewerCount', 'autoScaled', 'createdAt']) assert.ok(k in s, `stage has ${k}`);
      }
      assert.equal(byArn[master].viewerCount, 2);
      assert.equal(byArn[extra].viewerCount, 0);
      assert.equal(byArn[extra].name, 'extra-1');
      assert.equal(byArn[extra].autoScaled, false);

      assert.notEqual(redis.raw('ZSCORE', `${PREFIX}stages`, extra), '', 'in the live-stage set');
      const stage = JSON.parse(redis.raw('GET', `${PREFIX}stage:${extra}`));
      assert.equal(stage.arn, extra);
      assert.equal(stage.name, 'extra-1');
      const ttl = Number(redis.raw('TTL', `${PREFIX}stage:${extra}`));
      assert.ok(ttl > 0 && ttl <= 3600, `stage TTL ${ttl}`);

      const stats = ok(await usher.get('/api/stats'));
      assert.equal(stats.activeStages, stats.stages.length);
      assert.ok(stats.stages.some((s) => s.stageId === extra && s.viewerCount === 0));
      assert.equal(ok(await usher.get('/api/stats/stages')).totalStages, 2);
      noProblems();
    });
  });

  describe('leave and rejoin', () => {
    it('POST /api/viewer/leave frees the seat', async () => {
      const d = ok(await usher.post('/api/viewer/leave', { userId: 'alice', stageArn: master }));
      assert.equal(d.userId, 'alice');
      assert.equal(d.stageArn, master);
      assert.equal(d.viewerLeft, true);
      assert.equal(d.wasSeated, true);
      assert.equal(count(master), 1);
      assert.equal(total(), 1);
      assert.equal(hbField(master, 'alice'), null);
      noProblems();
    });

    it('a second leave answers 200 and changes nothing', async () => {
      // without the background jobs' own keys (scaler lease/epoch), which change with time
      const state = () => Object.fromEntries(Object.entries(redis.snapshot())
        .filter(([k]) => !/^scaler:|lease|lock/.test(k.slice(PREFIX.length))));
      const snap = state();
      const d = ok(await usher.post('/api/viewer/leave', { userId: 'alice', stageArn: master }));
      assert.equal(d.viewerLeft, true);
      assert.equal(d.wasSeated, false);
      assert.deepEqual(state(), snap);
    });

    it('POST /api/viewer/rejoin re-seats a viewer with its participantId', async () => {
      const d = ok(await usher.post('/api/viewer/rejoin', { userId: 'alice', stageArn: master, participantId: pid.alice }));
      assert.deepEqual(
        { userId: d.userId, stageArn: d.stageArn, participantId: d.participantId, currentViewers: d.currentViewers, isNewViewer: d.isNewViewer },
        { userId: 'alice', stageArn: master, participantId: pid.alice, currentViewers: 2, isNewViewer: true });
      assert.equal(hbField(master, 'alice').participantId, pid.alice);
      assert.equal(count(master), 2);
      assert.equal(total(), 2);
    });

    it('rejoining the same seat again is not a new viewer', async () => {
      const d = ok(await usher.post('/api/viewer/rejoin', { userId: 'alice', stageArn: master, participantId: pid.alice }));
      assert.equal(d.isNewViewer, false);
      assert.equal(d.currentViewers, 2);
      assert.equal(count(master), 2);
      assert.equal(total(), 2);
      noProblems();
    });

    it('rejoin into another stage moves the seat', async () => {
      const d = ok(await usher.post('/api/viewer/rejoin', { userId: 'alice', stageArn: extra, participantId: pid.alice }));
      assert.equal(d.stageArn, extra);
      assert.equal(d.isNewViewer, false);
      assert.equal(count(master), 1);
      assert.equal(count(extra), 1);
      assert.equal(total(), 2);
      assert.equal(hbField(master, 'alice'), null);
      assert.equal(hbField(extra, 'alice').participantId, pid.alice);
      noProblems();
    });

    it('a viewer token for a given stageArn seats the viewer there', async () => {
      const d = ok(await usher.post('/api/token/viewer', { userId: 'carol', stageArn: extra }));
      assert.equal(d.stageArn, extra);
      assert.equal(d.isNewViewer, true);
      assert.equal(count(extra), 2);
      assert.equal(total(), 3);
      assert.equal(ok(await usher.get('/api/stats/viewers')).totalViewers, 3);
      const stats = ok(await usher.get('/api/stats'));
      assert.equal(stats.totalViewers, 3);
      const byId = Object.fromEntries(stats.stages.map((s) => [s.stageId, s.viewerCount]));
      assert.deepEqual(byId, { [master]: 1, [extra]: 2 });
      noProblems();
    });

    // A user holds one seat: a leave naming another stage (say, the one the
    // scaler moved the viewer from) still frees it, and says where it was.
    it('a leave naming another stage frees the seat the user holds', async () => {
      ok(await usher.post('/api/token/viewer', { userId: 'dave', stageArn: extra }));
      assert.equal(count(extra), 3);
      const d = ok(await usher.post('/api/viewer/leave', { userId: 'dave', stageArn: master }));
      assert.equal(d.wasSeated, true);
      assert.equal(d.seatStageArn, extra);
      assert.equal(count(extra), 2);
      assert.equal(count(master), 1);
      assert.equal(total(), 3);
      assert.equal(hbField(extra, 'dave'), null);
      noProblems();
    });
  });

  describe('stage management', () => {
    const stageArnOf = (s) => s?.stageArn ?? s?.arn;

    it('GET /api/stage/master/info', async () => {
      const d = ok(await usher.get('/api/stage/master/info'));
      assert.equal(d.isMasterStage, true);
      assert.equal(stageArnOf(d.stage), master);
      assert.equal(d.viewerCount, 1);
    });

    it('GET /api/stage/:stageArn', async () => {
      const d = ok(await usher.get(`/api/stage/${enc(extra)}`));
      assert.equal(stageArnOf(d.stage), extra);
      assert.equal(d.stage.name, 'extra-1');
      assert.equal(d.viewerCount, 2);
    });

    it('PUT /api/stage/:stageArn renames the stage', async () => {
      ok(await usher.put(`/api/stage/${enc(extra)}`, { name: 'extra-renamed' }));
      assert.equal(ok(await usher.get(`/api/stage/${enc(extra)}`)).stage.name, 'extra-renamed');
      assert.equal(JSON.parse(redis.raw('GET', `${PREFIX}stage:${extra}`)).name, 'extra-renamed');
      const listed = ok(await usher.get('/api/stage/list')).stages.find((s) => s.stageArn === extra);
      assert.equal(listed.name, 'extra-renamed');
    });

    it('DELETE refuses the master stage (403) and a stage with viewers (400)', async () => {
      fail(await usher.request('DELETE', `/api/stage/${enc(master)}`), 403, 'FORBIDDEN');
      fail(await usher.request('DELETE', `/api/stage/${enc(extra)}`), 400, 'VALIDATION_ERROR');
      assert.equal(ok(await usher.get('/api/stage/list')).totalStages, 2);
    });

    it('DELETE /api/stage/:stageArn removes an empty stage', async () => {
      const doomed = ok(await usher.post('/api/stage', { name: 'doomed' }), 201).stage.stageArn;
      const d = ok(await usher.request('DELETE', `/api/stage/${enc(doomed)}`));
      assert.equal(d.stageArn, doomed);
      assert.equal(d.deleted, true);
      const list = ok(await usher.get('/api/stage/list'));
      assert.equal(list.totalStages, 2);
      assert.ok(!list.stages.some((s) => s.stageArn === doomed));
      assert.equal(redis.raw('ZSCORE', `${PREFIX}stages`, doomed), '', 'out of the live-stage set');
      assert.equal(redis.raw('EXISTS', `${PREFIX}stage:${doomed}`), '0');
      fail(await usher.get(`/api/stage/${enc(doomed)}`), 404, 'NOT_FOUND');
      noProblems();
    });
  });

  describe('CORS', () => {
    it('echoes an allowed origin (list items are trimmed)', async () => {
      for (const origin of ['http://a.example', 'http://b.example']) {
        const res = await usher.get('/api/stats', { headers: { origin } });
        assert.equal(res.status, 200);
        assert.equal(res.headers['access-control-allow-origin'], origin);
      }
    });

    it('sends no Access-Control-Allow-Origin for an origin not in the list', async () => {
      const res = await usher.get('/api/stats', { headers: { origin: 'http://evil.example' } });
      assert.equal(res.headers['access-control-allow-origin'], undefined);
    });

    it('answers a preflight with the allowed methods and headers', async () => {
      const res = await usher.request('OPTIONS', '/api/token/viewer', {
        headers: {
          origin: 'http://a.example',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type, x-api-key',
        },
      });
      assert.ok(res.status === 204 || res.status === 200, `preflight status ${res.status}`);
      assert.equal(res.headers['access-control-allow-origin'], 'http://a.example');
      const methods = String(res.headers['access-control-allow-methods']).toUpperCase();
      for (const m of ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS']) assert.ok(methods.includes(m), `allows ${m}: ${methods}`);
      const hdrs = String(res.headers['access-control-allow-headers']).toLowerCase();
      for (const h of ['content-type', 'authorization', 'x-api-key']) assert.ok(hdrs.includes(h), `allows ${h}: ${hdrs}`);
    });
  });

  describe('auth (API_SECRET_KEY=s3cret, SKIP_AUTH=false)', () => {
    let r2, secured;
    before(async () => {
      r2 = await Redis.start();
      secured = await Usher.start(r2, {
        API_SECRET_KEY: 's3cret', SKIP_AUTH: 'false', AUTO_SCALE_ENABLED: 'false',
        CORS_ORIGINS: 'http://a.example',
      });
    });
    after(async () => {
      await secured?.close();
      await r2?.close();
    });

    it('no key is 401 UNAUTHORIZED', async () => {
      fail(await secured.get('/api/stats'), 401, 'UNAUTHORIZED');
    });

    it('a wrong key is 401: other, same length, prefix, longer', async () => {
      fail(await secured.get('/api/stats', { headers: { 'x-api-key': 'nope' } }), 401, 'UNAUTHORIZED');
      fail(await secured.get('/api/stats', { headers: { 'x-api-key': 's3creT' } }), 401, 'UNAUTHORIZED');
      fail(await secured.get('/api/stats', { headers: { 'x-api-key': 's3cre' } }), 401, 'UNAUTHORIZED');
      fail(await secured.get('/api/stats', { headers: { 'x-api-key': 's3cret2' } }), 401, 'UNAUTHORIZED');
    });

    it('an unauthorized publisher token request does not mark the publisher live', async () => {
      fail(await secured.post('/api/token/publisher', { userId: 'pub-x' }), 401, 'UNAUTHORIZED');
      assert.notEqual(r2.raw('GET', `${PREFIX}publisher:status`), 'live');
    });

    it('the right key is 200', async () => {
      const d = ok(await secured.get('/api/stats', { headers: { 'x-api-key': 's3cret' } }));
      assert.equal(d.isPublisherLive, false);
    });

    it('/api/health and /health need no key', async () => {
      assert.equal(ok(await secured.get('/api/health')).status, 'healthy');
      assert.equal(ok(await secured.get('/health')).status, 'healthy');
    });

    it('a CORS preflight needs no key', async () => {
      const res = await secured.request('OPTIONS', '/api/stats', {
        headers: { origin: 'http://a.example', 'access-control-request-method': 'GET',
          'access-control-request-headers': 'x-api-key' },
      });
      assert.ok(res.status === 204 || res.status === 200, `preflight status ${res.status}`);
      assert.equal(res.headers['access-control-allow-origin'], 'http://a.example');
    });
  });

  describe('rate limit (RATE_LIMIT_MAX_REQUESTS=5)', () => {
    let r3, limited;
    before(async () => {
      r3 = await Redis.start();
      limited = await Usher.start(r3, {
        RATE_LIMIT_MAX_REQUESTS: '5', RATE_LIMIT_WINDOW_MS: '60000', AUTO_SCALE_ENABLED: 'false',
      });
    });
    after(async () => {
      await limited?.close();
      await r3?.close();
    });

    it('/health is not limited', async () => {
      for (let i = 0; i < 12; i++) assert.equal((await limited.get('/health')).status, 200, `/health #${i + 1}`);
    });

    // usher counts in fixed windows on the wall clock (ratelimit.c:
    // now_ms / RATE_LIMIT_WINDOW_MS): each check runs inside one window.
    it('the 6th request to /api/stats is 429 with Retry-After and RateLimit-* headers', () => inOneWindow(60000, async () => {
      for (let i = 0; i < 5; i++) ok(await limited.get('/api/stats'));
      const res = await limited.get('/api/stats');
      fail(res, 429, 'TOO_MANY_REQUESTS');
      const retry = Number(res.headers['retry-after']);
      assert.ok(Number.isInteger(retry) && retry >= 0 && retry <= 60, `Retry-After ${res.headers['retry-after']}`);
      assert.equal(res.headers['ratelimit-limit'], '5');
      assert.equal(res.headers['ratelimit-remaining'], '0');
      const reset = Number(res.headers['ratelimit-reset']);
      assert.ok(Number.isInteger(reset) && reset >= 0 && reset <= 60, `RateLimit-Reset ${res.headers['ratelimit-reset']}`);
    }));

    it('/health still answers while /api is limited', () => inOneWindow(60000, async () => {
      // Limited since the test before, or (its window gone) again.
      let res;
      for (let i = 0; i < 6 && res?.status !== 429; i++) res = await limited.get('/api/stats');
      assert.equal(res.status, 429);
      assert.equal(ok(await limited.get('/health')).status, 'healthy');
      assert.equal(ok(await limited.get('/api/health')).status, 'healthy');
    }));
  });

  describe('shutdown', () => {
    it('the invariants hold at the end', () => noProblems());

    it('SIGTERM stops usher with exit code 0 and no sanitizer report', async () => {
      const status = await usher.stop();
      assert.deepEqual(status, { code: 0, signal: null });
    });
  });
});
