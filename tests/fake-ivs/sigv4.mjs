// sigv4.mjs — AWS Signature Version 4 (header form) on node:crypto, written
// for the tests so that the fake IVS can check usher's signatures with code
// that shares nothing with usher's C signer.
//
// Source of the algorithm: AWS "Create a signed AWS API request" (SigV4),
// checked stage by stage against the AWS signing test suite cases in
// ../shared/vectors/sigv4 (sigv4.test.mjs). Non-S3 rules: the path is
// normalized and each segment URI-encoded once more ("double encoding"),
// query pairs are decoded, re-encoded and sorted, header values trimmed with
// inner runs of spaces collapsed.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const ALGORITHM = 'AWS4-HMAC-SHA256';

export const sha256Hex = (data) => createHash('sha256').update(data).digest('hex');
const hmac = (key, data) => createHmac('sha256', key).update(data).digest();

// RFC 3986 unreserved characters stay; every other byte becomes %XY (upper
// case). `keepSlash` leaves '/' alone (for whole paths).
export function uriEncode(str, keepSlash = false) {
  let out = '';
  for (const byte of Buffer.from(str, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === '/')) out += c;
    else out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

function safeDecode(s) {
  try { return decodeURIComponent(s); } catch { return s; }
}

// The canonical URI of a raw request path (as sent, still percent-encoded):
// dot segments and empty segments removed, each segment encoded again.
export function canonicalPath(rawPath) {
  const out = [];
  for (const seg of rawPath.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') { out.pop(); continue; }
    out.push(uriEncode(seg));
  }
  const trailing = rawPath.length > 1 && rawPath.endsWith('/') && out.length ? '/' : '';
  return '/' + out.join('/') + trailing;
}

// The canonical query string of a raw query (without '?').
export function canonicalQuery(rawQuery) {
  if (!rawQuery) return '';
  const pairs = rawQuery.split('&').filter((p) => p !== '').map((p) => {
    const i = p.indexOf('=');
    const k = i < 0 ? p : p.slice(0, i);
    const v = i < 0 ? '' : p.slice(i + 1);
    return [uriEncode(safeDecode(k)), uriEncode(safeDecode(v))];
  });
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

// headers: array of [name, value] as received (repeats allowed). Returns a
// Map lower-case name -> canonical value (repeats joined by ',').
export function canonicalHeaderMap(headers) {
  const m = new Map();
  for (const [name, value] of headers) {
    const k = name.toLowerCase();
    const v = String(value).trim().replace(/ +/g, ' ');
    m.set(k, m.has(k) ? `${m.get(k)},${v}` : v);
  }
  return m;
}

// The canonical request. `signedHeaders` is the sorted list of lower-case
// names; `payloadHash` the hex SHA-256 of the body.
export function canonicalRequest({ method, rawPath, rawQuery, headers, signedHeaders, payloadHash }) {
  const hm = canonicalHeaderMap(headers);
  const lines = signedHeaders.map((h) => `${h}:${hm.has(h) ? hm.get(h) : ''}\n`).join('');
  return [method.toUpperCase(), canonicalPath(rawPath), canonicalQuery(rawQuery),
    lines, signedHeaders.join(';'), payloadHash].join('\n');
}

export const credentialScope = (date, region, service) => `${date}/${region}/${service}/aws4_request`;

export function stringToSign(amzDate, scope, canonical) {
  return [ALGORITHM, amzDate, scope, sha256Hex(canonical)].join('\n');
}

export function signingKey(secret, date, region, service) {
  const kDate = hmac('AWS4' + secret, date);
  const kRegion = hmac(kDate, region);
  const kService = hmac(kRegion, service);
  return hmac(kService, 'aws4_request');
}

// '2015-08-30T12:36:00Z' or a Date -> '20150830T123600Z'.
export function amzDateOf(t) {
  const iso = (t instanceof Date ? t : new Date(t)).toISOString();
  return iso.replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

// Signs a request with an Authorization header, the way the AWS SDKs do.
// req: {method, rawPath, rawQuery, headers: [[name, value]...], body}
// creds: {accessKeyId, secretAccessKey, sessionToken?}; time: Date or ISO.
// Returns {headers: the [name, value] pairs to add in order (token, date,
// Authorization), canonicalRequest, stringToSign, signature}.
export function sign(req, creds, { region, service, time = new Date(), signBody = false }) {
  const amzDate = amzDateOf(time);
  const date = amzDate.slice(0, 8);
  const payloadHash = sha256Hex(req.body || '');
  const added = [];
  if (creds.sessionToken) added.push(['X-Amz-Security-Token', creds.sessionToken]);
  added.push(['X-Amz-Date', amzDate]);
  if (signBody) added.push(['X-Amz-Content-Sha256', payloadHash]);
  const all = [...req.headers, ...added];
  const signedHeaders = [...canonicalHeaderMap(all).keys()].sort();
  const canonical = canonicalRequest({ ...req, headers: all, signedHeaders, payloadHash });
  const scope = credentialScope(date, region, service);
  const sts = stringToSign(amzDate, scope, canonical);
  const signature = createHmac('sha256', signingKey(creds.secretAccessKey, date, region, service))
    .update(sts).digest('hex');
  added.push(['Authorization', `${ALGORITHM} Credential=${creds.accessKeyId}/${scope}, ` +
    `SignedHeaders=${signedHeaders.join(';')}, Signature=${signature}`]);
  return { headers: added, canonicalRequest: canonical, stringToSign: sts, signature };
}

export class SigV4Error extends Error {
  constructor(code, message) { super(message); this.code = code; this.status = 403; }
}

const AUTH_RE = /^AWS4-HMAC-SHA256 +Credential=([^,]+), *SignedHeaders=([^,]+), *Signature=([0-9a-f]{64})$/;

function parseAmzDate(s) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s || '');
  return m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) : NaN;
}

// Verifies a received request. req: {method, rawPath, rawQuery, headers:
// [[name, value]...], body (Buffer or string)}. opts: {region, service,
// lookup(accessKeyId) -> {secretAccessKey, sessionToken?} | undefined,
// now (ms), maxSkewMs}. Returns the access key id; throws SigV4Error with the
// code AWS answers (IncompleteSignatureException, MissingAuthenticationToken-
// Exception, UnrecognizedClientException, InvalidSignatureException).
export function verify(req, { region, service, lookup, now = Date.now(), maxSkewMs = 5 * 60 * 1000 }) {
  const hm = canonicalHeaderMap(req.headers);
  const auth = hm.get('authorization');
  if (!auth) throw new SigV4Error('MissingAuthenticationTokenException', 'Missing Authentication Token');
  const m = AUTH_RE.exec(auth);
  if (!m) throw new SigV4Error('IncompleteSignatureException', `Authorization header is not a SigV4 header: ${auth.slice(0, 80)}`);
  const [keyId, date, scopeRegion, scopeService, term, ...rest] = m[1].split('/');
  if (rest.length || term !== 'aws4_request' || !/^\d{8}$/.test(date || ''))
    throw new SigV4Error('IncompleteSignatureException', `Credential is not key/date/region/service/aws4_request: ${m[1]}`);
  const signedHeaders = m[2].split(';');
  const sorted = [...signedHeaders].sort();
  if (signedHeaders.some((h, i) => h !== sorted[i] || h !== h.toLowerCase()))
    throw new SigV4Error('IncompleteSignatureException', 'SignedHeaders are not sorted lower-case names');
  for (const h of ['host', 'x-amz-date'])
    if (!signedHeaders.includes(h)) throw new SigV4Error('IncompleteSignatureException', `SignedHeaders lacks ${h}`);
  const creds = lookup(keyId);
  if (!creds) throw new SigV4Error('UnrecognizedClientException', `The security token included in the request is invalid (unknown access key ${keyId})`);
  if (hm.get('x-amz-security-token') !== creds.sessionToken)
    throw new SigV4Error('UnrecognizedClientException', 'The security token included in the request is invalid (X-Amz-Security-Token missing or wrong)');
  if (scopeService !== service)
    throw new SigV4Error('InvalidSignatureException', `Credential should be scoped to correct service: '${service}', not '${scopeService}'`);
  if (scopeRegion !== region)
    throw new SigV4Error('InvalidSignatureException', `Credential should be scoped to a valid region: '${region}', not '${scopeRegion}'`);
  const amzDate = hm.get('x-amz-date');
  const t = parseAmzDate(amzDate);
  if (Number.isNaN(t)) throw new SigV4Error('IncompleteSignatureException', `X-Amz-Date is not YYYYMMDDTHHMMSSZ: ${amzDate}`);
  if (amzDate.slice(0, 8) !== date)
    throw new SigV4Error('InvalidSignatureException', `Date in Credential scope ${date} does not match X-Amz-Date ${amzDate}`);
  if (Math.abs(now - t) > maxSkewMs)
    throw new SigV4Error('InvalidSignatureException', `Signature expired: ${amzDate} is more than ${maxSkewMs / 1000} s from the server's time ${amzDateOf(new Date(now))}`);
  const payloadHash = sha256Hex(req.body || '');
  const sent = hm.get('x-amz-content-sha256');
  if (sent !== undefined && sent !== payloadHash)
    throw new SigV4Error('InvalidSignatureException', 'X-Amz-Content-Sha256 does not match the body');
  const canonical = canonicalRequest({ ...req, signedHeaders, payloadHash });
  const sts = stringToSign(amzDate, credentialScope(date, region, service), canonical);
  const expected = createHmac('sha256', signingKey(creds.secretAccessKey, date, region, service)).update(sts).digest();
  if (!timingSafeEqual(expected, Buffer.from(m[3], 'hex')))
    throw new SigV4Error('InvalidSignatureException', 'The request signature we calculated does not match the signature you provided.\n' +
      `The Canonical String for this request should have been\n'${canonical}'\n\nThe String-to-Sign should have been\n'${sts}'`);
  return keyId;
}
