// sigv4.test.mjs — the fake IVS's SigV4 code against every case folder of
// the AWS signing test suite in ../shared/vectors/sigv4: canonical request,
// string to sign, signature and signed request must equal the expected files
// byte for byte, and the verifier must accept the expected signed request and
// refuse it once altered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sign, verify, SigV4Error, canonicalPath, canonicalQuery, canonicalHeaderMap } from './sigv4.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const VECTORS = resolve(here, '../../../shared/vectors/sigv4');

// request.txt / header-signed-request.txt: request line, `Name:value` lines,
// a blank line, the body.
function parseRequest(text) {
  const blank = text.indexOf('\n\n');
  const head = blank < 0 ? text.replace(/\n$/, '') : text.slice(0, blank);
  const body = blank < 0 ? '' : text.slice(blank + 2);
  const [requestLine, ...lines] = head.split('\n');
  const [method, target] = requestLine.split(' ');
  const q = target.indexOf('?');
  return {
    requestLine, method, body,
    rawPath: q < 0 ? target : target.slice(0, q),
    rawQuery: q < 0 ? '' : target.slice(q + 1),
    headers: lines.map((l) => { const i = l.indexOf(':'); return [l.slice(0, i), l.slice(i + 1)]; }),
  };
}

const cases = existsSync(VECTORS)
  ? readdirSync(VECTORS, { withFileTypes: true }).filter((d) => d.isDirectory()
    && existsSync(join(VECTORS, d.name, 'context.json'))).map((d) => d.name)
  : [];

test('the vector folder holds cases', () => {
  assert.ok(cases.length > 0, `no SigV4 cases found in ${VECTORS}`);
});

for (const name of cases) {
  test(`sigv4 vector ${name}`, () => {
    const dir = join(VECTORS, name);
    const read = (f) => readFileSync(join(dir, f), 'utf8');
    const ctx = JSON.parse(read('context.json'));
    const creds = {
      accessKeyId: ctx.credentials.access_key_id,
      secretAccessKey: ctx.credentials.secret_access_key,
      sessionToken: ctx.credentials.token,
    };
    const req = parseRequest(read('request.txt'));
    const out = sign(req, creds, { region: ctx.region, service: ctx.service, time: ctx.timestamp, signBody: ctx.sign_body });
    assert.equal(out.canonicalRequest, read('header-canonical-request.txt'), 'canonical request');
    assert.equal(out.stringToSign, read('header-string-to-sign.txt'), 'string to sign');
    assert.equal(out.signature, read('header-signature.txt'), 'signature');
    const signed = [req.requestLine, ...[...req.headers, ...out.headers].map(([k, v]) => `${k}:${v}`)].join('\n')
      + '\n\n' + req.body;
    assert.equal(signed, read('header-signed-request.txt'), 'signed request');

    // The verifier accepts the expected signed request at the case's time...
    const received = parseRequest(read('header-signed-request.txt'));
    const opts = {
      region: ctx.region, service: ctx.service, now: Date.parse(ctx.timestamp),
      lookup: (id) => (id === creds.accessKeyId ? creds : undefined),
    };
    assert.equal(verify(received, opts), creds.accessKeyId);
    // ...and refuses it altered in each signed part.
    const refuses = (r, o, code) => assert.throws(() => verify(r, o),
      (e) => e instanceof SigV4Error && e.code === code, `expected ${code}`);
    refuses({ ...received, method: received.method === 'GET' ? 'POST' : 'GET' }, opts, 'InvalidSignatureException');
    refuses({ ...received, rawPath: '/x' }, opts, 'InvalidSignatureException');
    refuses({ ...received, body: 'x' }, opts, 'InvalidSignatureException');
    refuses({ ...received, headers: received.headers.map(([k, v]) => [k, k === 'Host' ? 'other.example' : v]) },
      opts, 'InvalidSignatureException');
    refuses(received, { ...opts, region: 'eu-west-1' }, 'InvalidSignatureException');
    refuses(received, { ...opts, service: 'ivs' }, 'InvalidSignatureException');
    refuses(received, { ...opts, now: opts.now + 6 * 60 * 1000 }, 'InvalidSignatureException');
    refuses(received, { ...opts, lookup: () => undefined }, 'UnrecognizedClientException');
    refuses(received, { ...opts, lookup: () => ({ ...creds, secretAccessKey: 'wrong' }) }, 'InvalidSignatureException');
    refuses(received, { ...opts, lookup: () => ({ ...creds, sessionToken: 'other-token' }) }, 'UnrecognizedClientException');
  });
}

// Rules of the AWS SigV4 documentation the six cases above do not reach.
test('canonical path: dot segments and empty segments go, segments are encoded again', () => {
  assert.equal(canonicalPath('/'), '/');
  assert.equal(canonicalPath('/CreateStage'), '/CreateStage');
  assert.equal(canonicalPath('/a/./b/../c'), '/a/c');
  assert.equal(canonicalPath('//a//b'), '/a/b');
  assert.equal(canonicalPath('/a b'), '/a%20b');
  assert.equal(canonicalPath('/a%20b'), '/a%2520b');
  assert.equal(canonicalPath('/a/'), '/a/');
});

test('canonical query: decoded, encoded, sorted by name then value', () => {
  assert.equal(canonicalQuery(''), '');
  assert.equal(canonicalQuery('b=2&a=1'), 'a=1&b=2');
  assert.equal(canonicalQuery('a=2&a=1'), 'a=1&a=2');
  assert.equal(canonicalQuery('k=a%20b&e'), 'e=&k=a%20b');
  assert.equal(canonicalQuery('k=%2F~_.-'), 'k=%2F~_.-');
});

test('canonical headers: lower-case names, values trimmed, runs of spaces collapsed, repeats joined', () => {
  const m = canonicalHeaderMap([['My-Header1', '  a   b  c '], ['X-Rep', 'one'], ['x-rep', 'two']]);
  assert.equal(m.get('my-header1'), 'a b c');
  assert.equal(m.get('x-rep'), 'one,two');
});
