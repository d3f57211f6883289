// fake-ivs.test.mjs — the fake IVS itself, called over HTTP with signed
// requests (client.mjs): every operation's happy path, the rules it enforces
// (call rates, replication quota, replica as source (refused, or taken
// with replicaAsSource), key quota, stage quota,
// participant ids, required sessionId), its fault injection and SigV4 checks.
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { execFile, spawnSync } from 'node:child_process';
import { start } from './fake-ivs.mjs';
import { clientFor, ivsCall } from './client.mjs';

const CREDS = { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' };
const FAST = { stage: 1000, participant: 1000, replication: 1000, key: 1000 };
const pem = () => generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey.export({ type: 'spki', format: 'pem' });

function ok(r, what) {
  assert.equal(r.status, 200, `${what}: ${r.status} ${r.code} ${JSON.stringify(r.body)}`);
  assert.equal(r.code, undefined);
  return r.body;
}
function fails(r, status, code) {
  assert.equal(r.status, status, `${r.status} ${r.code} ${JSON.stringify(r.body)}`);
  assert.equal(r.code, code);
  assert.equal(typeof r.body.message, 'string');
}

describe('fake IVS operations', () => {
  let fake; let call;
  before(async () => { fake = await start({ ...CREDS, region: 'eu-west-1', rates: FAST }); call = clientFor(fake, CREDS); });
  after(() => fake.close());
  beforeEach(() => fake.reset());

  test('CreateStage, GetStage, UpdateStage, ListStages, DeleteStage', async () => {
    const { stage } = ok(await call('CreateStage', { name: 'live-1', tags: { 'usher:stream': 'main' },
      participantTokenConfigurations: [{ userId: 'u1', capabilities: ['PUBLISH'] }] }), 'CreateStage');
    assert.match(stage.arn, /^arn:aws:ivs:eu-west-1:123456789012:stage\/[a-zA-Z0-9]{12}$/);
    assert.equal(stage.name, 'live-1');
    assert.deepEqual(stage.tags, { 'usher:stream': 'main' });
    assert.equal(stage.activeSessionId, undefined);
    const id = stage.arn.split('/')[1];
    const whipHost = new URL(stage.endpoints.whip).host;
    assert.match(whipHost, /^[a-z0-9]{12}\.global-bm\.whip\.live-video\.net$/);
    assert.ok(!whipHost.toLowerCase().includes(id.toLowerCase()), 'the WHIP host is not the stage id');
    for (const k of ['events', 'rtmp', 'rtmps']) assert.equal(typeof stage.endpoints[k], 'string');

    assert.deepEqual(ok(await call('GetStage', { arn: stage.arn }), 'GetStage').stage, stage);
    const renamed = ok(await call('UpdateStage', { arn: stage.arn, name: 'live-2' }), 'UpdateStage').stage;
    assert.equal(renamed.name, 'live-2');
    assert.deepEqual(renamed.endpoints, stage.endpoints);
    const list = ok(await call('ListStages', {}), 'ListStages');
    assert.deepEqual(list.stages, [{ arn: stage.arn, name: 'live-2', tags: { 'usher:stream': 'main' } }]);
    assert.equal(list.nextToken, undefined);
    ok(await call('DeleteStage', { arn: stage.arn }), 'DeleteStage');
    fails(await call('GetStage', { arn: stage.arn }), 404, 'ResourceNotFoundException');
    fails(await call('DeleteStage', { arn: stage.arn }), 404, 'ResourceNotFoundException');
    assert.deepEqual(fake.stages(), []);
  });

  test('ListStages pages with maxResults and nextToken', async () => {
    const arns = [];
    for (let i = 0; i < 7; i++) arns.push(fake.createStage({ name: `s${i}`, tags: { n: String(i) } }).arn);
    const seen = [];
    let token; let pages = 0;
    do {
      const r = ok(await call('ListStages', { maxResults: 3, ...(token && { nextToken: token }) }), 'ListStages');
      assert.ok(r.stages.length <= 3);
      seen.push(...r.stages.map((s) => s.arn));
      assert.ok(r.stages.every((s) => s.tags.n !== undefined));
      token = r.nextToken; pages++;
    } while (token);
    assert.equal(pages, 3);
    assert.deepEqual(seen, arns);
    fails(await call('ListStages', { maxResults: 101 }), 400, 'ValidationException');
    fails(await call('ListStages', { nextToken: 'bm90LWEtdG9rZW4=' }), 400, 'ValidationException');
  });

  test('sessions start with the first participant; ListParticipants, GetParticipant, DisconnectParticipant, sessions', async () => {
    const stage = fake.createStage({ name: 'master' });
    fake.connectParticipant(stage.arn, { participantId: 'pub-1', userId: 'publisher', published: true });
    fake.connectParticipant(stage.arn, { participantId: 'sub-1', userId: 'viewer-1' });
    fake.connectParticipant(stage.arn, { participantId: 'sub-2', userId: 'viewer-2' });
    const { activeSessionId: sessionId } = ok(await call('GetStage', { arn: stage.arn }), 'GetStage').stage;
    assert.match(sessionId, /^st-[a-zA-Z0-9]{13}$/);

    const all = ok(await call('ListParticipants', { stageArn: stage.arn, sessionId }), 'ListParticipants').participants;
    assert.deepEqual(all.map((p) => p.participantId), ['pub-1', 'sub-1', 'sub-2']);
    assert.equal(all[0].replicationType, 'NONE');
    const pubs = ok(await call('ListParticipants', { stageArn: stage.arn, sessionId, filterByPublished: true }), 'published').participants;
    assert.deepEqual(pubs.map((p) => p.participantId), ['pub-1']);
    const byUser = ok(await call('ListParticipants', { stageArn: stage.arn, sessionId, filterByUserId: 'viewer-2' }), 'user').participants;
    assert.deepEqual(byUser.map((p) => p.participantId), ['sub-2']);
    fails(await call('ListParticipants', { stageArn: stage.arn }), 400, 'ValidationException');
    fails(await call('ListParticipants', { stageArn: stage.arn, sessionId, filterByState: 'CONNECTED', filterByPublished: true }), 400, 'ValidationException');
    fails(await call('ListParticipants', { stageArn: stage.arn, sessionId, maxResults: 101 }), 400, 'ValidationException');

    const p = ok(await call('GetParticipant', { stageArn: stage.arn, sessionId, participantId: 'sub-1' }), 'GetParticipant').participant;
    assert.equal(p.userId, 'viewer-1');
    assert.equal(p.state, 'CONNECTED');
    fails(await call('GetParticipant', { stageArn: stage.arn, sessionId, participantId: 'nobody' }), 404, 'ResourceNotFoundException');

    ok(await call('DisconnectParticipant', { stageArn: stage.arn, participantId: 'sub-1', reason: 'kicked' }), 'DisconnectParticipant');
    fails(await call('DisconnectParticipant', { stageArn: stage.arn, participantId: 'sub-1' }), 404, 'ResourceNotFoundException');
    const connected = ok(await call('ListParticipants', { stageArn: stage.arn, sessionId, filterByState: 'CONNECTED' }), 'connected').participants;
    assert.deepEqual(connected.map((x) => x.participantId), ['pub-1', 'sub-2']);
    const gone = ok(await call('ListParticipants', { stageArn: stage.arn, sessionId, filterByState: 'DISCONNECTED' }), 'disconnected').participants;
    assert.deepEqual(gone.map((x) => x.participantId), ['sub-1']);

    // The session ends with its last participant; the next join starts another.
    fake.disconnectParticipant(stage.arn, 'pub-1');
    fake.disconnectParticipant(stage.arn, 'sub-2');
    assert.equal(fake.stage(stage.arn).activeSessionId, undefined);
    fake.connectParticipant(stage.arn, { participantId: 'sub-3' });
    const second = fake.stage(stage.arn).activeSessionId;
    assert.notEqual(second, sessionId);
    const sessions = ok(await call('ListStageSessions', { stageArn: stage.arn }), 'ListStageSessions').stageSessions;
    assert.deepEqual(sessions.map((s) => s.sessionId), [second, sessionId]);
    assert.equal(typeof sessions[1].endTime, 'string');
    assert.equal(sessions[0].endTime, undefined);
    const s = ok(await call('GetStageSession', { stageArn: stage.arn, sessionId }), 'GetStageSession').stageSession;
    assert.equal(s.sessionId, sessionId);
    fails(await call('GetStageSession', { stageArn: stage.arn, sessionId: 'st-0000000000000' }), 404, 'ResourceNotFoundException');
  });

  test('ListParticipants pages with at most 100 per page', async () => {
    const stage = fake.createStage({ name: 'big' });
    for (let i = 0; i < 250; i++) fake.connectParticipant(stage.arn, { participantId: `p-${i}` });
    const sessionId = fake.stage(stage.arn).activeSessionId;
    const seen = new Set();
    let token; let pages = 0;
    do {
      const r = ok(await call('ListParticipants', { stageArn: stage.arn, sessionId, filterByState: 'CONNECTED', maxResults: 100, ...(token && { nextToken: token }) }), 'page');
      r.participants.forEach((p) => seen.add(p.participantId));
      token = r.nextToken; pages++;
    } while (token);
    assert.equal(pages, 3);
    assert.equal(seen.size, 250);
  });

  test('replication: start, list replicas, stop; the replica appears in the destination', async () => {
    const master = fake.createStage({ name: 'master' });
    const child = fake.createStage({ name: 'child' });
    fake.connectParticipant(master.arn, { participantId: 'pub-1', userId: 'publisher', published: true });
    const input = { sourceStageArn: master.arn, destinationStageArn: child.arn, participantId: 'pub-1' };
    ok(await call('StartParticipantReplication', { ...input, reconnectWindowSeconds: 60 }), 'Start');
    fails(await call('StartParticipantReplication', input), 409, 'ConflictException');
    const replicas = ok(await call('ListParticipantReplicas', { sourceStageArn: master.arn, participantId: 'pub-1' }), 'List').replicas;
    assert.equal(replicas.length, 1);
    assert.deepEqual(Object.keys(replicas[0]).sort(), ['destinationSessionId', 'destinationStageArn', 'participantId',
      'replicationState', 'sourceSessionId', 'sourceStageArn']);
    assert.equal(replicas[0].destinationStageArn, child.arn);
    assert.equal(replicas[0].replicationState, 'ACTIVE');
    const childSession = fake.stage(child.arn).activeSessionId;
    assert.equal(replicas[0].destinationSessionId, childSession);
    const [replica] = ok(await call('ListParticipants', { stageArn: child.arn, sessionId: childSession }), 'replica').participants;
    assert.equal(replica.participantId, 'pub-1');
    assert.equal(replica.replicationType, 'REPLICA');
    assert.equal(replica.sourceStageArn, master.arn);
    assert.equal(fake.replications().length, 1);

    ok(await call('StopParticipantReplication', input), 'Stop');
    fails(await call('StopParticipantReplication', input), 404, 'ResourceNotFoundException');
    assert.deepEqual(fake.replications(), []);
    const after = ok(await call('ListParticipantReplicas', { sourceStageArn: master.arn, participantId: 'pub-1' }), 'List').replicas;
    assert.deepEqual(after.map((r) => [r.destinationStageArn, r.replicationState]), [[child.arn, 'STOPPED']],
      'a stopped replication is listed STOPPED');
    assert.equal(fake.stage(child.arn).activeSessionId, undefined, 'the replica left, ending the child session');
  });

  test('ListParticipantReplicas: pages of maxResults (1-50), active first, then stopped; bad input 400', async () => {
    const master = fake.createStage({ name: 'master' });
    const children = Array.from({ length: 5 }, (_, i) => fake.createStage({ name: `c${i}` }));
    fake.connectParticipant(master.arn, { participantId: 'pub-1', published: true });
    for (const c of children)
      ok(await call('StartParticipantReplication', { sourceStageArn: master.arn, destinationStageArn: c.arn, participantId: 'pub-1' }), 'Start');
    ok(await call('StopParticipantReplication', { sourceStageArn: master.arn, destinationStageArn: children[0].arn, participantId: 'pub-1' }), 'Stop');
    const seen = [];
    let nextToken; let pages = 0;
    do {
      const body = ok(await call('ListParticipantReplicas', { sourceStageArn: master.arn, participantId: 'pub-1', maxResults: 2,
        ...(nextToken && { nextToken }) }), 'page');
      assert.ok(body.replicas.length <= 2);
      seen.push(...body.replicas);
      nextToken = body.nextToken; pages++;
    } while (nextToken);
    assert.equal(pages, 3);
    assert.deepEqual(seen.map((r) => r.destinationStageArn), [...children.slice(1), children[0]].map((c) => c.arn));
    assert.deepEqual(seen.map((r) => r.replicationState), ['ACTIVE', 'ACTIVE', 'ACTIVE', 'ACTIVE', 'STOPPED']);
    for (const r of seen) {
      assert.equal(r.sourceStageArn, master.arn);
      assert.equal(r.participantId, 'pub-1');
      assert.match(r.sourceSessionId, /^st-[a-zA-Z0-9]{13}$/);
      assert.match(r.destinationSessionId, /^st-[a-zA-Z0-9]{13}$/);
    }
    // Default page: 50, so all five at once; another participant has none.
    assert.equal(ok(await call('ListParticipantReplicas', { sourceStageArn: master.arn, participantId: 'pub-1' }), 'all').replicas.length, 5);
    assert.deepEqual(ok(await call('ListParticipantReplicas', { sourceStageArn: master.arn, participantId: 'nobody' }), 'none'),
      { replicas: [] });
    const input = { sourceStageArn: master.arn, participantId: 'pub-1' };
    for (const bad of [{ sourceStageArn: master.arn }, { participantId: 'pub-1' }, { ...input, maxResults: 0 },
      { ...input, maxResults: 51 }, { ...input, participantId: 'no_underscore' }, { ...input, nextToken: 'bm90IGEgdG9rZW4=' },
      { ...input, sourceStageArn: `${master.arn}x` }, { ...input, destinationStageArn: children[1].arn }])
      fails(await call('ListParticipantReplicas', bad), 400, 'ValidationException');
    // A token of another listing is refused.
    const { nextToken: stagesToken } = ok(await call('ListStages', { maxResults: 1 }), 'ListStages');
    fails(await call('ListParticipantReplicas', { ...input, nextToken: stagesToken }), 400, 'ValidationException');
  });

  test('rejoin: the publisher leaves and joins again under a new participant id', async () => {
    const master = fake.createStage({ name: 'master' });
    const [a, b] = [fake.createStage({ name: 'a' }), fake.createStage({ name: 'b' })];
    fake.connectParticipant(master.arn, { participantId: 'pub-1', userId: 'publisher', published: true });
    for (const d of [a, b]) ok(await call('StartParticipantReplication', { sourceStageArn: master.arn, destinationStageArn: d.arn, participantId: 'pub-1' }), 'Start');
    const fresh = fake.rejoin(master.arn, 'pub-1');
    assert.notEqual(fresh.participantId, 'pub-1');
    assert.equal(fresh.userId, 'publisher');
    const { participants } = ok(await call('ListParticipants', { stageArn: master.arn, sessionId: fake.stage(master.arn).activeSessionId,
      filterByPublished: true }), 'ListParticipants');
    assert.deepEqual(participants.map((p) => [p.participantId, p.state]).sort(), [[fresh.participantId, 'CONNECTED'], ['pub-1', 'DISCONNECTED']].sort());
    assert.deepEqual(fake.replications(), [], 'the old id\'s replications stopped');
    ok(await call('StartParticipantReplication', { sourceStageArn: master.arn, destinationStageArn: a.arn, participantId: fresh.participantId }), 'new id');
    fails(await call('StartParticipantReplication', { sourceStageArn: master.arn, destinationStageArn: b.arn, participantId: 'pub-1' }), 400, 'ValidationException');
    // keepReplications: the old ones stay active until stopped.
    const again = fake.rejoin(master.arn, fresh.participantId, { newParticipantId: 'pub-3', keepReplications: true });
    assert.equal(again.participantId, 'pub-3');
    assert.deepEqual(fake.replications().map((r) => [r.participantId, r.destinationStageArn]), [[fresh.participantId, a.arn]]);
    ok(await call('StartParticipantReplication', { sourceStageArn: master.arn, destinationStageArn: a.arn, participantId: 'pub-3' }), 'beside the old');
    ok(await call('StopParticipantReplication', { sourceStageArn: master.arn, destinationStageArn: a.arn, participantId: fresh.participantId }), 'old stopped');
    assert.deepEqual(fake.replications().map((r) => r.participantId), ['pub-3']);
    assert.throws(() => fake.rejoin(master.arn, 'pub-1'), { code: 'ResourceNotFoundException' });
  });

  test('the 6th concurrent replication of one participant id is 402', async () => {
    const master = fake.createStage({ name: 'master' });
    const children = Array.from({ length: 6 }, (_, i) => fake.createStage({ name: `c${i}` }));
    fake.connectParticipant(master.arn, { participantId: 'pub-1', published: true });
    for (const c of children.slice(0, 5))
      ok(await call('StartParticipantReplication', { sourceStageArn: master.arn, destinationStageArn: c.arn, participantId: 'pub-1' }), 'Start');
    const sixth = { sourceStageArn: master.arn, destinationStageArn: children[5].arn, participantId: 'pub-1' };
    fails(await call('StartParticipantReplication', sixth), 402, 'ServiceQuotaExceededException');
    assert.equal(fake.replications().length, 5);
    // Stopping one frees a slot.
    ok(await call('StopParticipantReplication', { sourceStageArn: master.arn, destinationStageArn: children[0].arn, participantId: 'pub-1' }), 'Stop');
    ok(await call('StartParticipantReplication', sixth), 'Start again');
  });

  test('a replica is no replication source, and the source must be publishing', async () => {
    const master = fake.createStage({ name: 'master' });
    const child = fake.createStage({ name: 'child' });
    const grandchild = fake.createStage({ name: 'grandchild' });
    fake.connectParticipant(master.arn, { participantId: 'pub-1', published: true });
    fake.connectParticipant(master.arn, { participantId: 'viewer-1' });
    ok(await call('StartParticipantReplication', { sourceStageArn: master.arn, destinationStageArn: child.arn, participantId: 'pub-1' }), 'Start');
    fails(await call('StartParticipantReplication', { sourceStageArn: child.arn, destinationStageArn: grandchild.arn, participantId: 'pub-1' }),
      400, 'ValidationException');
    fails(await call('StartParticipantReplication', { sourceStageArn: master.arn, destinationStageArn: grandchild.arn, participantId: 'viewer-1' }),
      400, 'ValidationException');
    fails(await call('StartParticipantReplication', { sourceStageArn: master.arn, destinationStageArn: grandchild.arn, participantId: 'no_underscore' }),
      400, 'ValidationException');
    fails(await call('StartParticipantReplication', { sourceStageArn: master.arn, destinationStageArn: master.arn, participantId: 'pub-1' }),
      400, 'ValidationException');
    fails(await call('StartParticipantReplication', { sourceStageArn: master.arn, destinationStageArn: `${master.arn}x`, participantId: 'pub-1' }),
      404, 'ResourceNotFoundException');
    assert.equal(fake.replications().length, 1);
    // The source leaving stops its replications.
    fake.disconnectParticipant(master.arn, 'pub-1');
    assert.deepEqual(fake.replications(), []);
  });

  test('replicaAsSource: a replica is a source (chained), on the same quota; its leaving stops what it feeds', async () => {
    const [master, child, grandchild, third] = ['master', 'child', 'grandchild', 'third'].map((name) => fake.createStage({ name }));
    fake.connectParticipant(master.arn, { participantId: 'pub-1', published: true });
    ok(await call('StartParticipantReplication', { sourceStageArn: master.arn, destinationStageArn: child.arn, participantId: 'pub-1' }), 'Start');
    const chained = { sourceStageArn: child.arn, destinationStageArn: grandchild.arn, participantId: 'pub-1' };
    const refused = await call('StartParticipantReplication', chained);
    fails(refused, 400, 'ValidationException');
    assert.match(refused.body.message, /pub-1 is a replica/);
    fake.replicaAsSource = true;
    try {
      ok(await call('StartParticipantReplication', chained), 'chained Start');
      const gsession = fake.stage(grandchild.arn).activeSessionId;
      const [replica] = ok(await call('ListParticipants', { stageArn: grandchild.arn, sessionId: gsession }), 'List').participants;
      assert.deepEqual([replica.participantId, replica.replicationType, replica.sourceStageArn], ['pub-1', 'REPLICA', child.arn]);
      const csession = fake.stage(child.arn).activeSessionId;
      const [source] = ok(await call('ListParticipants', { stageArn: child.arn, sessionId: csession }), 'List').participants;
      assert.equal(source.replicationType, 'REPLICA', 'a replica that feeds another stage stays a replica');
      fake.maxReplicationsPerParticipant = 2;
      fails(await call('StartParticipantReplication', { sourceStageArn: grandchild.arn, destinationStageArn: third.arn, participantId: 'pub-1' }),
        402, 'ServiceQuotaExceededException');
      // The intermediate replication stopping takes the chained one with it.
      ok(await call('StopParticipantReplication', { sourceStageArn: master.arn, destinationStageArn: child.arn, participantId: 'pub-1' }), 'Stop');
      assert.deepEqual(fake.replications(), []);
      assert.equal(fake.stage(grandchild.arn).activeSessionId, undefined, 'the chained replica left');
    } finally {
      fake.replicaAsSource = false;
      fake.maxReplicationsPerParticipant = 5;
    }
  });

  test('DeleteStage removes the replications into and out of it', async () => {
    const master = fake.createStage({ name: 'master' });
    const a = fake.createStage({ name: 'a' });
    const b = fake.createStage({ name: 'b' });
    fake.connectParticipant(master.arn, { participantId: 'pub-1', published: true });
    for (const d of [a, b]) ok(await call('StartParticipantReplication', { sourceStageArn: master.arn, destinationStageArn: d.arn, participantId: 'pub-1' }), 'Start');
    ok(await call('DeleteStage', { arn: a.arn }), 'DeleteStage');
    assert.deepEqual(fake.replications().map((r) => r.destinationStageArn), [b.arn]);
    ok(await call('DeleteStage', { arn: master.arn }), 'DeleteStage master');
    assert.deepEqual(fake.replications(), []);
    assert.equal(fake.stage(b.arn).activeSessionId, undefined);
  });

  test('public keys: import, get, list, delete; the 4th is 402; bad material 400', async () => {
    const material = pem();
    const { publicKey } = ok(await call('ImportPublicKey', { publicKeyMaterial: material, name: 'usher', tags: { app: 'usher' } }), 'Import');
    assert.match(publicKey.arn, /^arn:aws:ivs:eu-west-1:123456789012:public-key\/[a-zA-Z0-9]+$/);
    assert.equal(publicKey.publicKeyMaterial, material);
    assert.equal(typeof publicKey.fingerprint, 'string');
    assert.deepEqual(ok(await call('GetPublicKey', { arn: publicKey.arn }), 'Get').publicKey, publicKey);
    ok(await call('ImportPublicKey', { publicKeyMaterial: pem() }), 'Import 2');
    ok(await call('ImportPublicKey', { publicKeyMaterial: pem() }), 'Import 3');
    fails(await call('ImportPublicKey', { publicKeyMaterial: pem() }), 402, 'ServiceQuotaExceededException');
    const listed = ok(await call('ListPublicKeys', { maxResults: 2 }), 'List');
    assert.equal(listed.publicKeys.length, 2);
    assert.deepEqual(listed.publicKeys[0], { arn: publicKey.arn, name: 'usher', tags: { app: 'usher' } });
    const rest = ok(await call('ListPublicKeys', { nextToken: listed.nextToken }), 'List 2');
    assert.equal(rest.publicKeys.length, 1);
    assert.equal(rest.nextToken, undefined);
    ok(await call('DeletePublicKey', { arn: publicKey.arn }), 'Delete');
    fails(await call('GetPublicKey', { arn: publicKey.arn }), 404, 'ResourceNotFoundException');
    ok(await call('ImportPublicKey', { publicKeyMaterial: pem() }), 'Import after delete');
    fails(await call('ImportPublicKey', { publicKeyMaterial: 'not a key' }), 400, 'ValidationException');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' });
    fake.invoke('DeletePublicKey', { arn: fake.publicKeys()[0].arn });
    fails(await call('ImportPublicKey', { publicKeyMaterial: rsa }), 400, 'ValidationException');
  });

  test('the stage quota answers 402', async () => {
    fake.maxStages = 2;
    try {
      ok(await call('CreateStage', { name: 'a' }), 'a');
      ok(await call('CreateStage', { name: 'b' }), 'b');
      fails(await call('CreateStage', { name: 'c' }), 402, 'ServiceQuotaExceededException');
      assert.equal(fake.stages().length, 2);
    } finally { fake.maxStages = 1000; }
  });

  test('bad input: unknown members, bad patterns, not JSON, unknown operation', async () => {
    fails(await call('CreateStage', { name: 'has space' }), 400, 'ValidationException');
    fails(await call('CreateStage', { nmae: 'typo' }), 400, 'ValidationException');
    fails(await call('GetStage', { arn: 'arn:aws:ivs:eu-west-1:123456789012:channel/x' }), 400, 'ValidationException');
    fails(await call('CreateStage', null, { rawBody: '{"name":' }), 400, 'SerializationException');
    fails(await call('NoSuchOperation', {}), 404, 'UnknownOperationException');
    assert.deepEqual(fake.stages(), []);
  });

  test('the call log records operation, time, status and input', async () => {
    const t0 = Date.now();
    await call('CreateStage', { name: 'logged' });
    await call('GetStage', { arn: 'arn:aws:ivs:eu-west-1:123456789012:stage/nope' });
    const [c, g] = fake.calls;
    assert.equal(c.operation, 'CreateStage');
    assert.equal(c.status, 200);
    assert.deepEqual(c.input, { name: 'logged' });
    assert.ok(c.time >= t0 && c.time <= Date.now());
    assert.equal(g.status, 404);
    assert.equal(g.code, 'ResourceNotFoundException');
    assert.equal(fake.callsOf('GetStage').length, 1);
    assert.equal((await fake.waitForCall('GetStage', { status: 404 })).length, 1);
    await assert.rejects(fake.waitForCall('GetStage', { count: 2, timeoutMs: 100 }));
  });
});

describe('fake IVS call rates', () => {
  let fake; let call;
  before(async () => { fake = await start(CREDS); call = clientFor(fake, CREDS); });
  after(() => fake.close());

  test('stage operations: 5 calls/s across callers, the 6th is 429; a second later calls pass again', async () => {
    const other = { accessKeyId: 'AKIDOTHER', secretAccessKey: 'other-secret' };
    fake.addCredentials(other);
    const stage = fake.createStage({ name: 'rated' });
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      ivsCall(fake.url, 'GetStage', { arn: stage.arn }, { creds: i % 2 ? other : CREDS, region: fake.region })));
    const statuses = results.map((r) => r.status).sort();
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    assert.ok(results.filter((r) => r.status === 429).every((r) => r.code === 'TooManyRequestsException'));
    // Participant operations have their own 5/s; key operations 3/s.
    const keys = await Promise.all(Array.from({ length: 4 }, () => call('ListPublicKeys', {})));
    assert.deepEqual(keys.map((r) => r.status).sort(), [200, 200, 200, 429]);
    await new Promise((r) => setTimeout(r, 1050));
    ok(await call('GetStage', { arn: stage.arn }), 'after a second');
  });
});

test('rateScope operation: each operation has its own window', async () => {
  const fake = await start({ ...CREDS, rateScope: 'operation' });
  try {
    const call = clientFor(fake, CREDS);
    const stage = fake.createStage({ name: 'x' });
    const gets = await Promise.all(Array.from({ length: 6 }, () => call('GetStage', { arn: stage.arn })));
    const lists = await Promise.all(Array.from({ length: 5 }, () => call('ListStages', {})));
    assert.deepEqual(gets.map((r) => r.status).sort(), [200, 200, 200, 200, 200, 429]);
    assert.ok(lists.every((r) => r.status === 200));
    fake.setRate('GetStage', 1000);
    ok(await call('GetStage', { arn: stage.arn }), 'raised rate');
  } finally { await fake.close(); }
});

test('pageLimit answers shorter pages than maxResults asks, with a nextToken', async () => {
  const fake = await start({ ...CREDS, rates: FAST, pageLimit: 2 });
  try {
    const call = clientFor(fake, CREDS);
    for (let i = 0; i < 5; i++) fake.createStage({ name: `s${i}` });
    const first = ok(await call('ListStages', { maxResults: 100 }), 'ListStages');
    assert.equal(first.stages.length, 2);
    const second = ok(await call('ListStages', { maxResults: 100, nextToken: first.nextToken }), 'ListStages 2');
    assert.equal(second.stages.length, 2);
    const third = ok(await call('ListStages', { maxResults: 100, nextToken: second.nextToken }), 'ListStages 3');
    assert.equal(third.stages.length, 1);
    assert.equal(third.nextToken, undefined);
  } finally {
    await fake.close();
  }
});

test('sessionLingerMs keeps an empty session open that long', async () => {
  const fake = await start({ ...CREDS, sessionLingerMs: 200 });
  try {
    const stage = fake.createStage({ name: 'x' });
    fake.connectParticipant(stage.arn, { participantId: 'a' });
    const first = fake.stage(stage.arn).activeSessionId;
    fake.disconnectParticipant(stage.arn, 'a');
    assert.equal(fake.stage(stage.arn).activeSessionId, first);
    fake.connectParticipant(stage.arn, { participantId: 'b' });
    assert.equal(fake.stage(stage.arn).activeSessionId, first, 'a join within the linger keeps the session');
    fake.disconnectParticipant(stage.arn, 'b');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(fake.stage(stage.arn).activeSessionId, undefined);
    assert.equal(typeof fake.sessions(stage.arn)[0].endTime, 'string');
  } finally { await fake.close(); }
});

describe('fake IVS faults', () => {
  let fake; let call;
  before(async () => { fake = await start({ ...CREDS, rates: FAST }); call = clientFor(fake, CREDS); });
  after(() => fake.close());
  beforeEach(() => fake.reset());

  test('dropAnswer acts on the request, then closes the connection unanswered', async () => {
    fake.dropAnswer('CreateStage');
    await assert.rejects(call('CreateStage', { name: 'orphan', tags: { usher: 'x' } }));
    assert.equal(fake.stages().length, 1, 'the stage was created');
    assert.equal(fake.stages()[0].name, 'orphan');
    assert.equal(fake.callsOf('CreateStage')[0].dropped, true);
    ok(await call('CreateStage', { name: 'answered' }), 'the next call is answered');
    assert.equal(fake.stages().length, 2);
  });

  test('failNext answers the error without acting; throttle answers 429', async () => {
    fake.failNext('CreateStage', { count: 2 });
    fails(await call('CreateStage', { name: 'a' }), 500, 'InternalServerException');
    fails(await call('CreateStage', { name: 'a' }), 500, 'InternalServerException');
    fake.failNext('CreateStage', { code: 'ServiceQuotaExceededException' });
    fails(await call('CreateStage', { name: 'a' }), 402, 'ServiceQuotaExceededException');
    assert.deepEqual(fake.stages(), []);
    fake.throttle('*', 1);
    fails(await call('ListStages', {}), 429, 'TooManyRequestsException');
    ok(await call('CreateStage', { name: 'a' }), 'after the faults');
  });

  test('delay holds the answer', async () => {
    fake.delay('ListStages', 1000);
    const t0 = Date.now();
    const pending = call('ListStages', {});
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(fake.callsOf('ListStages')[0].status, 0, 'still in flight');
    ok(await pending, 'delayed');
    assert.ok(Date.now() - t0 >= 990);
    fake.delay('ListStages', 0);
    const t1 = Date.now();
    ok(await call('ListStages', {}), 'not delayed');
    assert.ok(Date.now() - t1 < 900);
  });
});

describe('fake IVS signatures', () => {
  let fake; let call;
  const temp = { accessKeyId: 'ASIATEMP', secretAccessKey: 'temp-secret', sessionToken: 'session-token-1' };
  before(async () => { fake = await start({ ...temp, region: 'us-west-2', rates: FAST }); call = clientFor(fake, temp); });
  after(() => fake.close());

  test('a good signature with its session token passes', async () => {
    ok(await call('ListStages', {}), 'signed');
  });

  test('bad signatures are 403 and change nothing', async () => {
    fake.reset();
    const cases = [
      [{ creds: { ...temp, secretAccessKey: 'wrong' } }, 'InvalidSignatureException'],
      [{ creds: { ...temp, accessKeyId: 'AKIDUNKNOWN' } }, 'UnrecognizedClientException'],
      [{ creds: { ...temp, sessionToken: undefined } }, 'UnrecognizedClientException'],
      [{ creds: { ...temp, sessionToken: 'other' } }, 'UnrecognizedClientException'],
      [{ region: 'us-east-1' }, 'InvalidSignatureException'],
      [{ service: 'ivsrealtime' }, 'InvalidSignatureException'],
      [{ time: new Date(Date.now() - 6 * 60 * 1000) }, 'InvalidSignatureException'],
      [{ time: new Date(Date.now() + 6 * 60 * 1000) }, 'InvalidSignatureException'],
      [{ tamper: (h) => h.filter(([k]) => k !== 'Authorization') }, 'MissingAuthenticationTokenException'],
      [{ tamper: (h) => h.map(([k, v]) => [k, k === 'Content-Type' ? 'text/plain' : v]) }, 'InvalidSignatureException'],
    ];
    for (const [extra, code] of cases) {
      const r = await call('CreateStage', { name: 'x' }, extra);
      fails(r, 403, code);
    }
    // A body changed after signing.
    fails(await call('CreateStage', { name: 'x' }, { sendBody: JSON.stringify({ name: 'y' }) }), 403, 'InvalidSignatureException');
    assert.deepEqual(fake.stages(), []);
    assert.ok(fake.calls.every((c) => c.status === 403));
  });

  test('clock skew within 5 minutes passes', async () => {
    ok(await call('ListStages', {}, { time: new Date(Date.now() - 4 * 60 * 1000) }), '4 min behind');
    fake.setClockOffset(10 * 60 * 1000);
    try { fails(await call('ListStages', {}), 403, 'InvalidSignatureException'); } finally { fake.setClockOffset(0); }
  });
});

describe('fake IVS credential sources', () => {
  let fake;
  before(async () => { fake = await start({ ...CREDS, rates: FAST }); });
  after(() => fake.close());

  const get = async (path, headers = {}, method = 'GET') => {
    const r = await fetch(fake.url + path, { method, headers });
    return { status: r.status, text: await r.text() };
  };

  test('env() points a client at the fake', () => {
    assert.deepEqual(fake.env(), { AWS_ENDPOINT_URL: fake.url, AWS_REGION: 'us-east-1', AWS_DEFAULT_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: CREDS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey });
  });

  test('container credentials: fetched with the authorization token, accepted until they expire', async () => {
    const env = fake.containerEnv();
    const url = new URL(env.AWS_CONTAINER_CREDENTIALS_FULL_URI);
    assert.equal((await get(url.pathname)).status, 401);
    const r = await get(url.pathname, { Authorization: env.AWS_CONTAINER_AUTHORIZATION_TOKEN });
    assert.equal(r.status, 200);
    const c = JSON.parse(r.text);
    assert.ok(Date.parse(c.Expiration) > Date.now() + 30 * 60 * 1000);
    const creds = { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.Token };
    ok(await ivsCall(fake.url, 'ListStages', {}, { creds, region: fake.region }), 'signed with container credentials');
    fails(await ivsCall(fake.url, 'ListStages', {}, { creds: { ...creds, sessionToken: undefined }, region: fake.region }),
      403, 'UnrecognizedClientException');
    assert.deepEqual(fake.credentialFetches.map((f) => f.source), ['container', 'container']);
    assert.equal(fake.credentialFetches[1].accessKeyId, c.AccessKeyId);

    const short = fake.issueTemporaryCredentials({ ttlMs: 100 });
    ok(await ivsCall(fake.url, 'ListStages', {}, { creds: short, region: fake.region }), 'before expiry');
    await new Promise((r2) => setTimeout(r2, 150));
    fails(await ivsCall(fake.url, 'ListStages', {}, { creds: short, region: fake.region }), 403, 'ExpiredTokenException');
  });

  test('IMDSv2: a session token, the role, its credentials', async () => {
    assert.equal((await get('/latest/meta-data/iam/security-credentials/')).status, 401);
    assert.equal((await get('/latest/api/token', {}, 'PUT')).status, 400);
    const token = (await get('/latest/api/token', { 'X-aws-ec2-metadata-token-ttl-seconds': '60' }, 'PUT')).text;
    const h = { 'X-aws-ec2-metadata-token': token };
    const role = await get('/latest/meta-data/iam/security-credentials/', h);
    assert.equal(role.status, 200);
    assert.equal((await get('/latest/meta-data/iam/security-credentials/other-role', h)).status, 404);
    const r = await get(`/latest/meta-data/iam/security-credentials/${role.text}`, h);
    const c = JSON.parse(r.text);
    assert.equal(c.Code, 'Success');
    ok(await ivsCall(fake.url, 'ListStages', {}, { creds: { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey,
      sessionToken: c.Token }, region: fake.region }), 'signed with IMDS credentials');
  });
});

// libcurl's own SigV4 (CURLOPT_AWS_SIGV4, the route usher's C client may
// take), through the curl tool: the fake must accept what libcurl signs and
// refuse it signed for the wrong service. Skipped, saying so, without curl.
const CURL = spawnSync('curl', ['--version'], { encoding: 'utf8' });
const hasCurlSigv4 = CURL.status === 0 && spawnSync('curl', ['--help', 'all'], { encoding: 'utf8' }).stdout.includes('--aws-sigv4');
describe('fake IVS and libcurl SigV4', { skip: !hasCurlSigv4 && 'the curl tool with --aws-sigv4 is not installed' }, () => {
  let fake;
  const temp = { accessKeyId: 'ASIACURL', secretAccessKey: 'curl-secret', sessionToken: 'curl-token' };
  before(async () => { fake = await start({ ...temp, region: 'eu-central-1', rates: FAST }); });
  after(() => fake.close());
  const curl = (service, op, body) => new Promise((resolve) => execFile('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}',
    '--aws-sigv4', `aws:amz:eu-central-1:${service}`, '--user', `${temp.accessKeyId}:${temp.secretAccessKey}`,
    '-H', `x-amz-security-token: ${temp.sessionToken}`, '-H', 'Content-Type: application/json',
    '-d', JSON.stringify(body), `${fake.url}/${op}`], { encoding: 'utf8' }, (e, out) => resolve(e ? String(e) : out)));

  test('curl --aws-sigv4 aws:amz:REGION:ivs is accepted; service ivsrealtime is refused', async () => {
    assert.equal(await curl('ivs', 'CreateStage', { name: 'by-curl', tags: { via: 'libcurl' } }), '200');
    assert.deepEqual(fake.stages().map((x) => x.tags), [{ via: 'libcurl' }]);
    assert.equal(await curl('ivsrealtime', 'ListStages', {}), '403');
    assert.equal(fake.calls.at(-1).code, 'InvalidSignatureException');
  });
});
