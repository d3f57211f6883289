// client.mjs — a small IVS Real-Time client for the tests of the fake IVS
// (and any test that wants to call it directly): signs each call with the
// test's own SigV4 (sigv4.mjs) the way the AWS SDKs do and POSTs it.
import http from 'node:http';
import { sign } from './sigv4.mjs';

// Calls `operation` with `input` on the fake at `url`. opts: {creds:
// {accessKeyId, secretAccessKey, sessionToken?}, region, service ('ivs'),
// time (Date: the signing time), tamper(headers) (changes the [name, value]
// list after signing), rawBody (a string signed and sent instead of JSON),
// sendBody (a string sent instead of the signed body)}.
// Resolves {status, code (x-amzn-ErrorType before ':'), body (parsed JSON),
// headers}; rejects when the connection ends without an answer.
export function ivsCall(url, operation, input, opts) {
  const { creds, region, service = 'ivs', time = new Date(), tamper, rawBody, sendBody } = opts;
  const u = new URL(url);
  const body = rawBody ?? JSON.stringify(input ?? {});
  const path = `/${operation}`;
  let headers = [['Host', u.host], ['Content-Type', 'application/json']];
  const signed = sign({ method: 'POST', rawPath: path, rawQuery: '', headers, body }, creds, { region, service, time });
  headers = [...headers, ...signed.headers];
  if (tamper) headers = tamper(headers);
  const sent = sendBody ?? body;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method: 'POST', path,
      headers: Object.fromEntries([...headers, ['Content-Length', String(Buffer.byteLength(sent))]]), agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed;
        try { parsed = text ? JSON.parse(text) : {}; } catch { parsed = text; }
        const code = res.headers['x-amzn-errortype']?.split(':')[0];
        resolve({ status: res.statusCode, code, body: parsed, headers: res.headers });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(sent);
  });
}

// A client bound to one fake: client(fake)(operation, input, extraOpts).
export function clientFor(fake, creds, region = fake.region) {
  return (operation, input, extra = {}) => ivsCall(fake.url, operation, input, { creds, region, ...extra });
}
