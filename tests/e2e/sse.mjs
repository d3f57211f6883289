// sse.mjs — a small Server-Sent Events client for the tests: opens
// GET /api/stats/stream (or another path) on a usher and collects its
// events, comments and all, as they come.
import http from 'node:http';

// Opens a stream; resolves once the answer's head is in, to
// {status, headers, events: [{event, id, data, comment}], until(pred, ms), close()}.
// data is parsed JSON when it is JSON.
export function openStream(port, { path = '/api/stats/stream', headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent: false,
      headers: { Accept: 'text/event-stream', ...headers } }, (res) => {
      const s = {
        status: res.statusCode, headers: res.headers, events: [], body: '', ended: false,
        close: () => req.destroy(),
        until: (pred, ms = 5000) => waitFor(s, pred, ms),
      };
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        s.body += chunk;
        buf += chunk;
        let at;
        while ((at = buf.indexOf('\n\n')) >= 0) {
          s.events.push(parseBlock(buf.slice(0, at)));
          buf = buf.slice(at + 2);
        }
        s.wake?.();
      });
      res.on('end', () => { s.ended = true; s.wake?.(); });
      res.on('error', () => { s.ended = true; s.wake?.(); });
      resolve(s);
    });
    req.on('error', reject);
    req.end();
  });
}

function parseBlock(block) {
  const e = {};
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) { e.comment = line.slice(1).trim(); continue; }
    const colon = line.indexOf(':');
    const field = line.slice(0, colon), value = line.slice(colon + 1).replace(/^ /, '');
    if (field === 'data') e.data = e.data === undefined ? value : `${e.data}\n${value}`;
    else e[field] = value;
  }
  if (e.data !== undefined) { try { e.data = JSON.parse(e.data); } catch { /* text */ } }
  return e;
}

// The first event (from the start of the stream) for which pred is true.
function waitFor(s, pred, ms) {
  return new Promise((resolve, reject) => {
    const check = () => {
      const found = s.events.find(pred);
      if (found) { clearTimeout(timer); s.wake = null; resolve(found); return true; }
      if (s.ended) { clearTimeout(timer); s.wake = null; reject(new Error('stream ended')); return true; }
      return false;
    };
    const timer = setTimeout(() => { s.wake = null; reject(new Error(`no such event in ${ms} ms; got ${JSON.stringify(s.events).slice(0, 2000)}`)); }, ms);
    if (!check()) s.wake = check;
  });
}

export const isStats = (e) => e.event === 'stats';
