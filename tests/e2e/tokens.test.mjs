// tokens.test.mjs — participant tokens checked independently with node:crypto.
//
// Covers SPEC §5: the public key from GET /api/token/public-key (PEM and JWKS
// describe the same P-384 key); header exactly {alg:'ES384', typ:'JWT', kid}
// with kid = the JWKS kid; a 96-byte r‖s signature that verifies with both
// key forms and stops verifying when one payload or signature byte is flipped;
// every claim of the publisher and viewer tokens, with custom durations
// (PUBLISHER_TOKEN_DURATION=7200, VIEWER_TOKEN_DURATION=900) and the response's
// expiresIn/expiresAt agreeing with them; 50 distinct viewers get 50 valid
// tokens with distinct jti; the signing key survives a restart with the same
// DATA_DIR and its file has mode 0600.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Redis, Usher } from './harness.mjs';

const PUB_SECONDS = 7200;
const VIEWER_SECONDS = 900;
const STAGE_ARN = /^arn:aws:ivs:[a-z0-9-]+:\d{12}:stage\/[A-Za-z0-9]{12}$/;
const JTI = /^[A-Za-z0-9-]{1,64}$/;

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const fromB64url = (s) => Buffer.from(s, 'base64url');

// Splits a JWS compact token; checks the parts are canonical base64url.
function decode(token) {
  const parts = token.split('.');
  assert.equal(parts.length, 3, 'three parts');
  for (const p of parts) assert.match(p, /^[A-Za-z0-9_-]+$/, 'unpadded base64url');
  const [h, p, s] = parts;
  return {
    header: JSON.parse(fromB64url(h).toString('utf8')),
    claims: JSON.parse(fromB64url(p).toString('utf8')),
    signingInput: `${h}.${p}`,
    sig: fromB64url(s),
  };
}

function verifies(signingInput, sig, key) {
  return crypto.verify('sha384', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' }, sig);
}

// Every file under dir, recursively.
function filesUnder(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]);
}

function ok(res, status = 200) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(res.body.success, true);
  return res.body.data;
}

describe('participant tokens', () => {
  let redis, usher, keyInfo, pemKey, jwkKey, jwk;

  before(async () => {
    redis = await Redis.start();
    usher = await Usher.start(redis, {
      AUTO_SCALE_ENABLED: 'false',
      MAX_VIEWERS_PER_STAGE: '200',
      PUBLISHER_TOKEN_DURATION: String(PUB_SECONDS),
      VIEWER_TOKEN_DURATION: String(VIEWER_SECONDS),
    });
  });
  after(async () => {
    await usher?.close();
    await redis?.close();
  });

  // Checks header, signature and the claims shared by both token kinds.
  function checkToken(data, { userId, seconds, capabilities }) {
    const t = decode(data.token);
    assert.deepEqual(t.header, { alg: 'ES384', typ: 'JWT', kid: jwk.kid });
    assert.equal(t.sig.length, 96, 'r‖s is 96 bytes');
    assert.ok(verifies(t.signingInput, t.sig, pemKey), 'verifies with the PEM key');
    assert.ok(verifies(t.signingInput, t.sig, jwkKey), 'verifies with the JWK key');

    const c = t.claims;
    const now = Math.floor(Date.now() / 1000);
    assert.ok(Number.isInteger(c.iat) && Number.isInteger(c.exp), 'iat/exp are integer seconds');
    assert.ok(Math.abs(c.iat - now) <= 60, `iat ${c.iat} is about now ${now}`);
    assert.equal(c.exp - c.iat, seconds);
    assert.match(c.jti, JTI);
    assert.equal(c.jti, data.participantId);
    assert.equal(c.user_id, userId);
    assert.equal(data.userId, userId);
    assert.match(data.stageArn, STAGE_ARN);
    assert.equal(c.resource, data.stageArn);
    assert.equal(c.topic, data.stageArn.split('/').pop());
    assert.equal(c.events_url, 'wss://global.events.live-video.net');
    assert.match(c.whip_url, /^https:\/\/[A-Za-z0-9-]+\.global-bm\.whip\.live-video\.net\/?$/);
    assert.deepEqual(c.capabilities, capabilities);
    assert.equal(c.version, '1.0');
    assert.equal(typeof c.attributes, 'object');
    assert.ok(c.attributes !== null && !Array.isArray(c.attributes), 'attributes is an object');
    for (const [k, v] of Object.entries(c.attributes)) assert.equal(typeof v, 'string', `attribute ${k} is a string`);
    assert.ok(Buffer.byteLength(JSON.stringify(c.attributes)) <= 1024, 'attributes ≤ 1 KB');

    assert.equal(data.expiresIn, seconds);
    assert.match(data.expiresAt, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    assert.ok(Math.abs(Date.parse(data.expiresAt) / 1000 - c.exp) <= 1, `expiresAt ${data.expiresAt} = exp ${c.exp}`);
    return t;
  }

  it('GET /api/token/public-key gives one P-384 key as PEM and JWKS', async () => {
    keyInfo = ok(await usher.get('/api/token/public-key'));
    assert.match(keyInfo.publicKeyPem, /^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n?$/);
    pemKey = crypto.createPublicKey(keyInfo.publicKeyPem);
    assert.equal(pemKey.asymmetricKeyType, 'ec');
    assert.equal(pemKey.asymmetricKeyDetails.namedCurve, 'secp384r1');

    assert.ok(Array.isArray(keyInfo.jwks?.keys), 'jwks.keys');
    assert.equal(keyInfo.jwks.keys.length, 1);
    [jwk] = keyInfo.jwks.keys;
    assert.equal(jwk.kty, 'EC');
    assert.equal(jwk.crv, 'P-384');
    assert.equal(typeof jwk.kid, 'string');
    assert.ok(jwk.kid.length > 0);
    assert.equal(jwk.d, undefined, 'no private part');
    if (jwk.alg !== undefined) assert.equal(jwk.alg, 'ES384');
    jwkKey = crypto.createPublicKey({ key: jwk, format: 'jwk' });
    assert.ok(jwkKey.export({ type: 'spki', format: 'der' })
      .equals(pemKey.export({ type: 'spki', format: 'der' })), 'PEM and JWK are the same key');
  });

  let pub;
  it('the publisher token verifies and carries the SPEC §5 claims', async () => {
    const data = ok(await usher.post('/api/token/publisher', { userId: 'pub-1' }));
    pub = checkToken(data, { userId: 'pub-1', seconds: PUB_SECONDS,
      capabilities: { allow_publish: true, allow_subscribe: true } });
  });

  it('a flipped byte in the payload or the signature fails verification', () => {
    const [h, p, s] = [...pub.signingInput.split('.'), b64url(pub.sig)];
    const payload = fromB64url(p);
    for (const i of [0, Math.floor(payload.length / 2), payload.length - 1]) {
      const bad = Buffer.from(payload);
      bad[i] ^= 0x01;
      assert.equal(verifies(`${h}.${b64url(bad)}`, pub.sig, pemKey), false, `payload byte ${i} flipped`);
    }
    const badSig = fromB64url(s);
    badSig[50] ^= 0x80;
    assert.equal(verifies(pub.signingInput, badSig, pemKey), false, 'signature byte flipped');
    const badHeader = `${b64url(JSON.stringify({ ...pub.header, kid: 'other' }))}.${p}`;
    assert.equal(verifies(badHeader, pub.sig, pemKey), false, 'header changed');
    assert.ok(verifies(pub.signingInput, pub.sig, pemKey), 'the untouched token still verifies');
  });

  it('the viewer token verifies, is subscribe-only and lasts VIEWER_TOKEN_DURATION', async () => {
    const data = ok(await usher.post('/api/token/viewer', { userId: 'viewer-1' }));
    const t = checkToken(data, { userId: 'viewer-1', seconds: VIEWER_SECONDS,
      capabilities: { allow_subscribe: true } });
    assert.equal(t.claims.resource, pub.claims.resource, 'seated in the master stage');
    assert.notEqual(t.claims.jti, pub.claims.jti);
  });

  it('a user id of 128 multi-byte UTF-8 bytes round-trips into user_id', async () => {
    const userId = 'é'.repeat(64); // 128 bytes
    const data = ok(await usher.post('/api/token/viewer', { userId }));
    checkToken(data, { userId, seconds: VIEWER_SECONDS, capabilities: { allow_subscribe: true } });
  });

  const tokens = [];
  it('50 distinct viewers get 50 valid tokens with distinct jti', async () => {
    const users = Array.from({ length: 50 }, (_, i) => `crowd-${i}`);
    const all = await Promise.all(users.map((userId) => usher.post('/api/token/viewer', { userId })));
    const jtis = new Set();
    all.forEach((res, i) => {
      const data = ok(res);
      const t = checkToken(data, { userId: users[i], seconds: VIEWER_SECONDS,
        capabilities: { allow_subscribe: true } });
      jtis.add(t.claims.jti);
      tokens.push(t);
    });
    assert.equal(jtis.size, 50);
    assert.ok(!jtis.has(pub.claims.jti));
  });

  describe('key persistence', () => {
    let keyFile;
    it('SIGTERM exits 0', async () => {
      assert.deepEqual(await usher.stop(), { code: 0, signal: null });
    });

    it('the private key file in DATA_DIR has mode 0600', () => {
      const pems = filesUnder(usher.dataDir).filter((f) => /PRIVATE KEY-----/.test(readFileSync(f, 'latin1')));
      assert.equal(pems.length, 1, `one private key file in ${usher.dataDir}: ${pems}`);
      [keyFile] = pems;
      assert.equal(statSync(keyFile).mode & 0o777, 0o600, `${keyFile} mode`);
      const priv = crypto.createPrivateKey(readFileSync(keyFile));
      assert.ok(crypto.createPublicKey(priv).export({ type: 'spki', format: 'der' })
        .equals(pemKey.export({ type: 'spki', format: 'der' })), 'it is the served key');
    });

    it('a restart with the same DATA_DIR keeps the same key', async () => {
      await usher.restart();
      const again = ok(await usher.get('/api/token/public-key'));
      assert.equal(again.publicKeyPem, keyInfo.publicKeyPem);
      assert.deepEqual(again.jwks, keyInfo.jwks);
      const key = crypto.createPublicKey(again.publicKeyPem);
      for (const t of [pub, ...tokens.slice(0, 5)]) assert.ok(verifies(t.signingInput, t.sig, key), 'old tokens still verify');
      const data = ok(await usher.post('/api/token/viewer', { userId: 'after-restart' }));
      checkToken(data, { userId: 'after-restart', seconds: VIEWER_SECONDS, capabilities: { allow_subscribe: true } });
      assert.equal(statSync(keyFile).mode & 0o777, 0o600, 'still 0600');
    });
  });
});
