// app.js — the usher dashboard: reads GET /api/stats/stream (Server-Sent
// Events, contract in README.md beside this file) and shows it live.
//
// EventSource cannot send headers, and a key in the query string would be
// written to access logs, so the stream is read with fetch() and parsed
// here (createSseParser). The API key is asked for once and kept in
// sessionStorage (this tab only); it is never part of the page.
// All text from the stream goes into the page with textContent.

const KEY_STORE = 'usher.apiKey';
const STREAM_URL = '/api/stats/stream';
const HOUR_MS = 3600 * 1000;
const STALE_MS = 45 * 1000;      // 3 missed 15 s pings: the stream is dead
const EVENTS_SHOWN = 50;
const SVG = 'http://www.w3.org/2000/svg';

/* ---- Server-Sent Events -------------------------------------------------- */

// Parses an event stream as the HTML standard (§9.2.6) says. Takes
// onEvent({type, data, id}) and the last event id to start from; returns
// {feed(text)} to be given decoded text in chunks of any size. onRetry(ms)
// is called for a "retry:" field. An event not ended by a blank line
// before the stream ends is never dispatched.
export function createSseParser(onEvent, lastId = '', onRetry = () => {}) {
  let pending = '', data = '', type = '', id = lastId;
  let started = false, afterCR = false;

  function field(line) {
    if (line === '') return dispatch();
    if (line[0] === ':') return;                       // a comment, e.g. ": ping"
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (name === 'event') type = value;
    else if (name === 'data') data += value + '\n';
    else if (name === 'id' && !value.includes('\0')) id = value;
    else if (name === 'retry' && /^\d+$/.test(value)) onRetry(Number(value));
  }

  function dispatch() {
    if (data !== '') onEvent({ type: type || 'message', data: data.slice(0, -1), id });
    data = '';
    type = '';
  }

  return {
    feed(text) {
      if (text === '') return;
      if (!started) {
        started = true;
        if (text[0] === '\uFEFF') text = text.slice(1);
      }
      if (afterCR && text[0] === '\n') text = text.slice(1);   // CRLF split across chunks
      afterCR = false;
      pending += text;
      const ends = /\r\n|\r|\n/g;
      let start = 0, m;
      while ((m = ends.exec(pending)) !== null) {
        if (m[0] === '\r' && m.index === pending.length - 1) afterCR = true;
        field(pending.slice(start, m.index));
        start = ends.lastIndex;
      }
      pending = pending.slice(start);
    },
  };
}

// Milliseconds to wait before reconnect attempt n (0, 1, ...): doubling
// from `firstMs` up to 15 s, with up to 25 % random spread so many pages do
// not come back at the same instant after a usher restart.
export function reconnectDelay(attempt, firstMs = 500, random = Math.random) {
  const base = Math.min(15000, firstMs * 2 ** Math.min(attempt, 10));
  return Math.round(base * (1 - 0.25 * random()));
}

// Reads the stream once, until it ends, fails or goes silent. Takes the key
// ('' sends none), the last event id ('' sends none) and handlers; returns
// {status} (HTTP status, 0 for a network failure) and whether any event
// arrived.
async function readStream(key, lastId, on) {
  const headers = { Accept: 'text/event-stream' };
  if (key) headers['X-API-Key'] = key;
  if (lastId) headers['Last-Event-ID'] = lastId;
  const abort = new AbortController();
  let watchdog;
  const arm = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => abort.abort(), STALE_MS);
  };
  let res;
  try {
    arm();
    res = await fetch(STREAM_URL, { headers, cache: 'no-store', signal: abort.signal });
  } catch {
    clearTimeout(watchdog);
    return { status: 0, received: false };
  }
  if (!res.ok || !(res.headers.get('Content-Type') || '').startsWith('text/event-stream')) {
    clearTimeout(watchdog);
    res.body?.cancel().catch(() => {});
    return { status: res.status, received: false };
  }
  on.live();
  let received = false;
  const parser = createSseParser((event) => { received = true; on.event(event); }, lastId, on.retry);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      arm();
      const { value, done } = await reader.read();
      if (done) break;
      parser.feed(value);
    }
  } catch { /* the connection broke or the watchdog cut it */ }
  clearTimeout(watchdog);
  return { status: res.status, received };
}

/* ---- what the page remembers ------------------------------------------- */

export function newModel() {
  return { stats: null, history: [], events: new Map(), lastId: '', retryMs: 500 };
}

// Adds one total-viewers sample; keeps one sample older than the hour so the
// line starts at the left edge.
function addSample(history, at, viewers) {
  history.push({ at, viewers });
  while (history.length > 1 && history[1].at <= at - HOUR_MS) history.shift();
}

// Stream ids are Redis stream ids, "ms-seq": newest first.
function compareIds(a, b) {
  const [am, as] = a.split('-').map(Number), [bm, bs] = b.split('-').map(Number);
  return bm - am || (bs || 0) - (as || 0);
}

// Takes one event of the stream into the model; returns whether the page
// must be drawn again. An event that is not a JSON object, of an unknown
// type, or a stage event already seen changes nothing.
export function applyEvent(model, event) {
  let body;
  try {
    body = JSON.parse(event.data);
  } catch {
    console.warn('dashboard: an event that is not JSON was skipped');
    return false;
  }
  if (!body || typeof body !== 'object') return false;
  if (event.type === 'stats') {
    model.stats = body;
    addSample(model.history, Date.now(), Number(body.totalViewers) || 0);
  } else if (event.type === 'stage' && event.id && !model.events.has(event.id)) {
    model.events.set(event.id, body);
    const newest = [...model.events.keys()].sort(compareIds).slice(0, EVENTS_SHOWN);
    model.events = new Map(newest.map((id) => [id, model.events.get(id)]));
  } else {
    return false;
  }
  return true;
}

/* ---- drawing ----------------------------------------------------------- */

const $ = (id) => document.getElementById(id);
const numberFormat = new Intl.NumberFormat();
const clock = (ms) =>
  new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const shortArn = (arn) => String(arn || '').split('/').pop();

function stageName(model, arn) {
  const stage = model.stats?.stages?.find((s) => s.stageId === arn);
  return stage?.info?.name || shortArn(arn);
}

function renderSummary(stats) {
  $('total').textContent = numberFormat.format(Number(stats.totalViewers) || 0);
  const n = Number(stats.activeStages) || 0;
  $('stage-count').textContent = `${n} ${n === 1 ? 'stage' : 'stages'}`;
  const live = stats.isPublisherLive === true;
  $('publisher').textContent = live ? 'Publisher live' : 'Publisher offline';
  $('publisher').dataset.live = String(live);
  const at = Date.parse(stats.timestamp);
  $('updated').textContent = Number.isNaN(at) ? '' : `Updated ${clock(at)}`;
}

// One row per stage, kept across updates so the bars animate.
function renderStages(stats) {
  const list = $('stages');
  const capacity = Number(stats.capacityPerStage) || 0;
  const stages = Array.isArray(stats.stages) ? stats.stages.filter((s) => s && typeof s === 'object') : [];
  stages.sort((a, b) => (b.isMasterStage === true) - (a.isMasterStage === true) ||
    String(a.info?.createdAt).localeCompare(String(b.info?.createdAt)));
  const scale = capacity || Math.max(1, ...stages.map((s) => Number(s.viewerCount) || 0));
  const old = new Map([...list.children].map((li) => [li.dataset.stage, li]));
  list.replaceChildren(...stages.map((stage) => stageRow(old.get(stage.stageId), stage, capacity, scale)));
  $('stages-empty').hidden = stages.length > 0;
  $('capacity').textContent = capacity ? `${numberFormat.format(capacity)} seats per stage` : '';
}

function stageRow(li, stage, capacity, scale) {
  if (!li) {
    li = el('li', 'stage');
    li.dataset.stage = stage.stageId;
    const head = el('div', 'stage-head');
    head.append(el('span', 'stage-name'), el('span', 'badge master', 'master'), el('span', 'stage-count'));
    const bar = el('div', 'bar');
    bar.setAttribute('role', 'meter');
    bar.append(el('div', 'fill'));
    const meta = el('div', 'stage-meta');
    meta.append(el('span', 'badge mode'), el('span', 'badge repl'), el('span', 'stage-id'));
    li.append(head, bar, meta);
  }
  const count = Number(stage.viewerCount) || 0;
  const mode = String(stage.mode || 'unknown');
  const repl = stage.replication == null ? 'none' : String(stage.replication);
  li.querySelector('.stage-name').textContent = stage.info?.name || shortArn(stage.stageId);
  li.querySelector('.master').hidden = stage.isMasterStage !== true;
  li.querySelector('.stage-count').textContent =
    capacity ? `${numberFormat.format(count)} / ${numberFormat.format(capacity)}` : numberFormat.format(count);
  const bar = li.querySelector('.bar');
  bar.setAttribute('aria-valuenow', count);
  bar.setAttribute('aria-valuemax', scale);
  bar.setAttribute('aria-label', `${count} viewers`);
  const share = Math.min(1, count / scale);
  bar.firstChild.style.width = `${(share * 100).toFixed(1)}%`;
  bar.dataset.level = share >= 0.9 ? 'full' : share >= 0.7 ? 'high' : 'ok';
  li.dataset.mode = mode;
  li.querySelector('.mode').textContent = mode;
  li.querySelector('.mode').dataset.mode = mode;
  li.querySelector('.repl').textContent = `replication: ${repl}`;
  li.querySelector('.repl').dataset.repl = repl;
  li.querySelector('.stage-id').textContent = shortArn(stage.stageId);
  li.querySelector('.stage-id').title = stage.stageId;
  return li;
}

function healthRow(name, ok, text) {
  const row = el('div', 'health-row');
  const dot = el('span', 'dot');
  dot.dataset.ok = String(ok);
  row.append(dot, el('span', 'health-name', name), el('span', 'health-text', text));
  return row;
}

// Redis and the stage provider, as "services" of GET /health; any further
// provider fields (lastCall, ...) are shown as they come.
function renderHealth(stats) {
  const box = $('health');
  const redis = stats.health?.redis, ivs = stats.health?.ivs;
  if (!redis && !ivs) return box.replaceChildren(el('p', 'muted', 'Not reported by this server.'));
  const rows = [];
  if (redis) {
    const latency = typeof redis.latencyMs === 'number' ? ` · ${redis.latencyMs.toFixed(1)} ms` : '';
    const error = redis.error ? ` · ${redis.error}` : '';
    rows.push(healthRow('Redis', redis.status === 'up', `${redis.status ?? '?'}${latency}${error}`));
  }
  if (ivs) {
    const failed = ivs.lastCall && /fail|error|throttl|quota/i.test(JSON.stringify(ivs.lastCall));
    rows.push(healthRow('Provider', !failed, [ivs.provider, ivs.region].filter(Boolean).join(' · ')));
    for (const [k, v] of Object.entries(ivs)) {
      if (k === 'provider' || k === 'region') continue;
      const text = v && typeof v === 'object'
        ? Object.entries(v).map(([a, b]) => `${a}: ${b}`).join(', ') : String(v);
      rows.push(el('div', 'health-extra', `${k}: ${text}`));
    }
  }
  box.replaceChildren(...rows);
}

// An event's detail is free text, or a stage ARN (replication's source),
// shown by the stage's name; a detail that only repeats the name is left out.
function eventDetail(model, e) {
  const detail = String(e.detail ?? '');
  if (detail.startsWith('arn:')) return `from ${stageName(model, detail)}`;
  return detail === stageName(model, e.stageArn) ? '' : detail;
}

function renderEvents(model) {
  const items = [...model.events.values()].map((e) => {
    const li = el('li', 'event');
    const at = Date.parse(e.at);
    li.append(el('time', 'event-time', Number.isNaN(at) ? '' : clock(at)),
      el('span', 'badge event-type', String(e.type ?? 'event')),
      el('span', 'event-stage', stageName(model, e.stageArn)));
    li.querySelector('.event-type').dataset.type = String(e.type);
    const detail = eventDetail(model, e);
    if (detail) li.append(el('span', 'event-detail', detail));
    return li;
  });
  $('events').replaceChildren(...items);
  $('events-empty').hidden = items.length > 0;
}

// Chooses 3 or 4 round y-axis steps covering max.
function niceStep(max) {
  const raw = Math.max(1, max) / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw && Number.isInteger(s)) || Math.ceil(raw);
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// Total viewers over the last hour as a step line, drawn at the chart's
// pixel size so text stays its CSS size.
function renderChart(history, now) {
  const chart = $('chart');
  const w = Math.max(200, chart.clientWidth), h = Math.max(120, chart.clientHeight);
  const pad = { l: 44, r: 12, t: 10, b: 24 };
  const iw = w - pad.l - pad.r, ih = h - pad.t - pad.b;
  const peak = Math.max(0, ...history.map((p) => p.viewers));
  const step = niceStep(peak), top = Math.max(step, Math.ceil(peak / step) * step);
  const x = (at) => pad.l + iw * Math.max(0, (at - (now - HOUR_MS)) / HOUR_MS);
  const y = (v) => pad.t + ih * (1 - v / top);
  const parts = [];
  for (let v = 0; v <= top; v += step) {
    parts.push(svg('line', { class: 'grid', x1: pad.l, x2: w - pad.r, y1: y(v), y2: y(v) }),
      svg('text', { class: 'axis', x: pad.l - 6, y: y(v) + 4, 'text-anchor': 'end' }, numberFormat.format(v)));
  }
  for (let m = 60; m >= 0; m -= iw < 360 ? 30 : 15) {
    parts.push(svg('text', { class: 'axis', x: x(now - m * 60000), y: h - 6,
      'text-anchor': m === 60 ? 'start' : m === 0 ? 'end' : 'middle' }, m ? `−${m} min` : 'now'));
  }
  if (history.length) {
    let d = `M${x(history[0].at)},${y(history[0].viewers)}`;
    for (const p of history.slice(1)) d += `H${x(p.at)}V${y(p.viewers)}`;
    d += `H${x(now)}`;
    const last = history[history.length - 1].viewers;
    parts.push(svg('path', { class: 'area', d: `${d}V${y(0)}H${x(history[0].at)}Z` }),
      svg('path', { class: 'line', d }),
      svg('circle', { class: 'now', cx: x(now), cy: y(last), r: 4 }));
  }
  chart.setAttribute('viewBox', `0 0 ${w} ${h}`);
  chart.replaceChildren(...parts);
}

function render(model) {
  if (model.stats) {
    renderSummary(model.stats);
    renderStages(model.stats);
    renderHealth(model.stats);
  }
  renderEvents(model);
  renderChart(model.history, Date.now());
}

// state: "live" | "connecting" | "reconnecting" | "key"; detail: a note.
function setConnection(state, detail = '') {
  document.body.dataset.conn = state;
  const words = { live: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting', key: 'API key needed' };
  $('conn-text').textContent = detail ? `${words[state]} · ${detail}` : words[state];
}

/* ---- the API key --------------------------------------------------------- */

// Shows the key form with a message; resolves with the key entered ('' for
// none) after storing it in sessionStorage.
function askForKey(message) {
  setConnection('key');
  const form = $('key-form');
  $('key-message').textContent = message;
  $('key-message').hidden = !message;
  $('key-panel').hidden = false;
  $('key-input').value = '';
  $('key-input').focus();
  return new Promise((resolve) => {
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const key = $('key-input').value.trim();
      sessionStorage.setItem(KEY_STORE, key);
      $('key-panel').hidden = true;
      resolve(key);
    }, { once: true });
  });
}

/* ---- the loop ------------------------------------------------------------ */

const sleep = (ms) => new Promise((resolve) => {
  const wake = () => { clearTimeout(timer); window.removeEventListener('online', wake); resolve(); };
  const timer = setTimeout(wake, ms);
  window.addEventListener('online', wake);
});

async function run(model) {
  let key = sessionStorage.getItem(KEY_STORE);
  let attempt = 0;
  for (;;) {
    if (key === null) key = await askForKey('');
    setConnection(attempt ? 'reconnecting' : 'connecting');
    const result = await readStream(key, model.lastId, {
      live: () => setConnection('live'),
      retry: (ms) => { model.retryMs = ms; },
      event: (event) => {
        if (event.id) model.lastId = event.id;
        if (applyEvent(model, event)) render(model);
      },
    });
    if (result.status === 401) {
      sessionStorage.removeItem(KEY_STORE);
      key = await askForKey('That key was refused. Enter the API key again.');
      attempt = 0;
      continue;
    }
    if (result.received) attempt = 0;
    const delay = reconnectDelay(attempt++, model.retryMs);
    const why = result.status === 200 ? 'stream ended' : result.status ? `HTTP ${result.status}` : 'no connection';
    setConnection('reconnecting', `${why}, retry in ${Math.ceil(delay / 1000)} s`);
    await sleep(delay);
  }
}

function start() {
  const model = newModel();
  render(model);
  setInterval(() => renderChart(model.history, Date.now()), 10000);
  new ResizeObserver(() => renderChart(model.history, Date.now())).observe($('chart'));
  $('forget-key').addEventListener('click', () => {
    sessionStorage.removeItem(KEY_STORE);
    location.reload();
  });
  run(model);
}

if (typeof document !== 'undefined') start();
