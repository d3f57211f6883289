// dashboard-page.test.mjs — the dashboard in a real browser: Debian's
// headless Chromium, driven by npm playwright-core (no browser download),
// loads /dashboard at a laptop and a phone size, is given the API key, and
// must show the live numbers, follow a viewer joining and leaving, come back by itself
// after the server restarts, and ask again for a refused key. Any console
// error or page error fails the test, except the network errors a test step
// causes on purpose (a refused key, a stopped server), which are named.
//
// The server is a "target": fakeTarget, the test-only fake in
// dashboard-fake-server.mjs, and usherTarget, the real usher (harness.mjs)
// with an API_SECRET_KEY, serving the page from its binary.
//
// Screenshots: build/screenshots/dashboard-{laptop,phone}.png (usher's),
// dashboard-fake-{laptop,phone}.png (the fake's).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { FakeStats, startFakeUsher } from './dashboard-fake-server.mjs';
import { Redis, Usher, freePort, sleep } from './harness.mjs';

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const SHOTS = 'build/screenshots';
const UPDATE_MS = 2000;          // how soon a change must be on the page
const RECONNECT_MS = 20000;      // backoff tops out at 15 s
const SIZES = {
  laptop: { viewport: { width: 1280, height: 800 } },
  phone: { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true },
};

// A target: {url, key, total() → the total viewers the page must show,
// stageCount() → the stages it must list,
// join() → {stageId, viewers, total} after one viewer joined, leave() the
// same after one left,
// restart() → stops the server, changes the count while it is down where it
// can, starts it again; stop(); optionally streamRequests() → [{lastEventId}]
// of the stream requests the server saw}.
// The fake listens on a port from below the kernel's ephemeral range
// (harness freePort), so while it is down for restart() no outgoing
// connection on the machine can be given its port; a port taken anyway
// (another suite's server) is retried: at the first start on a new port,
// at a restart on the same one, a few times.
async function startFakeOn(options, port) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startFakeUsher({ ...options, port: port ?? await freePort() });
    } catch (e) {
      if (e.code !== 'EADDRINUSE' || attempt >= 8) throw e;
      if (port !== undefined) await sleep(250 * attempt);
    }
  }
}

async function fakeTarget() {
  const stats = new FakeStats();
  const options = { stats, pingMs: 300 };   // pings between the events, which the page must pass over
  let fake = await startFakeOn(options);
  return {
    get url() { return fake.url; },
    key: 'test-key',
    streamRequests: () => fake.requests,
    total: async () => stats.data().totalViewers,
    stageCount: async () => stats.stages.length,
    join: async (i = 0) => {
      const total = stats.join(i);
      return { stageId: stats.stages[i].stageId, viewers: stats.stages[i].viewerCount, total };
    },
    leave: async (i = 0) => {
      const total = stats.join(i, -1);
      return { stageId: stats.stages[i].stageId, viewers: stats.stages[i].viewerCount, total };
    },
    restart: async () => {
      const port = fake.port;
      await fake.stop();
      stats.join(1, 5);               // five viewers join while the page is cut off
      await new Promise((r) => setTimeout(r, 1000));
      fake = await startFakeOn(options, port);
    },
    stop: () => fake.stop(),
  };
}

// The real usher: its own Redis, an API key, the publisher live and three
// stages made by hand (so the page has stage events to list). Viewers join
// and leave through the API; a restart is a graceful stop and a start on the
// same port, Redis keeping the counts.
async function usherTarget() {
  const key = 'dash-key';
  const redis = await Redis.start();
  const usher = await Usher.start(redis, { SKIP_AUTH: 'false', API_SECRET_KEY: key, STATS_PUSH_MS: '300' });
  const headers = { 'X-API-Key': key };
  const call = async (method, path, body) => {
    const res = await usher.request(method, path, { body, headers });
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.data;
  };
  await call('POST', '/api/token/publisher', { userId: 'host' });
  for (const name of ['stage-a', 'stage-b', 'stage-c']) await call('POST', '/api/stage', { name });
  const stats = () => call('GET', '/api/stats');
  const seated = [];
  let n = 0;
  const change = async (stageArn) => {
    const s = await stats();
    return { stageId: stageArn, viewers: s.stages.find((st) => st.stageId === stageArn).viewerCount, total: s.totalViewers };
  };
  return {
    url: usher.base,
    key,
    total: async () => (await stats()).totalViewers,
    stageCount: async () => (await stats()).stages.length,
    join: async () => {
      const userId = `page-viewer-${n++}`;
      const seat = await call('POST', '/api/token/viewer', { userId });
      seated.push({ userId, stageArn: seat.stageArn });
      return change(seat.stageArn);
    },
    leave: async () => {
      const { userId, stageArn } = seated.pop();
      await call('POST', '/api/viewer/leave', { userId, stageArn });
      return change(stageArn);
    },
    restart: async () => {
      await usher.stop();
      await new Promise((r) => setTimeout(r, 1000));
      await usher.restart();
    },
    stop: async () => { await usher.close(); await redis.close(); },
  };
}

// Opens Chromium at one size; returns {page, errors, allow(re), close()}.
// errors collects console errors and page errors not matched by an allowed
// pattern.
async function openBrowser(size) {
  const profile = mkdtempSync(join(tmpdir(), 'usher-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    locale: 'en-US',
    ...SIZES[size],
  });
  const errors = [];
  let allowed = [];
  const watch = (page) => {
    page.on('console', (m) => {
      if (process.env.DASH_DEBUG) console.log(`[${m.type()}] ${m.text()}`);
      if (m.type() === 'error' && !allowed.some((re) => re.test(m.text()))) errors.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`page: ${e.message}`));
  };
  context.on('page', watch);
  context.pages().forEach(watch);
  const page = context.pages()[0] || await context.newPage();
  return {
    page, context, errors,
    allow: (patterns) => { allowed = patterns; },
    close: async () => { await context.close(); rmSync(profile, { recursive: true, force: true }); },
  };
}

const fmt = (n) => new Intl.NumberFormat('en-US').format(n);

async function shows(page, selector, text, timeout = UPDATE_MS) {
  await page.waitForFunction(([s, t]) => document.querySelector(s)?.textContent.trim() === t,
    [selector, text], { timeout });
}

async function enterKey(page, key) {
  await page.locator('#key-panel').waitFor({ state: 'visible', timeout: 5000 });
  await page.fill('#key-input', key);
  await page.click('#key-form button[type=submit]');
}

async function openDashboard(page, target) {
  await page.goto(`${target.url}/dashboard`);
  await enterKey(page, target.key);
  await shows(page, '#total', fmt(await target.total()), 5000);
  assert.equal(await page.textContent('#conn-text'), 'Live');
}

// Checks that a change ({stageId, viewers, total}: the answer of join() or
// leave()) reaches the big number and the stage's bar within UPDATE_MS.
async function checkChange(page, change) {
  await shows(page, '#total', fmt(change.total));
  const row = `#stages li[data-stage="${change.stageId}"]`;
  await page.waitForFunction(([r, n]) => document.querySelector(`${r} .stage-count`)?.textContent.split(' / ')[0] === n,
    [row, fmt(change.viewers)], { timeout: UPDATE_MS });
  assert.equal(await page.getAttribute(`${row} .bar`, 'aria-valuenow'), String(change.viewers));
}

function dashboardTests(name, makeTarget, shot = 'dashboard') {
  test(name, async (t) => {
    mkdirSync(SHOTS, { recursive: true });
    const target = await makeTarget();
    t.after(() => target.stop());

    await t.test('the page carries no API key', async () => {
      for (const path of ['/dashboard', '/dashboard/app.js', '/dashboard/style.css']) {
        const res = await fetch(target.url + path);
        assert.equal(res.status, 200, path);
        assert.ok(!(await res.text()).includes(target.key), path);
      }
    });

    await t.test('laptop: live numbers, a join, a leave, a restart', async () => {
      const b = await openBrowser('laptop');
      try {
        await openDashboard(b.page, target);
        assert.equal(await b.page.locator('#stages li').count(), await target.stageCount());
        assert.equal(await b.page.textContent('#publisher'), 'Publisher live');
        assert.ok(await b.page.locator('#stages li .master:visible').count() === 1, 'one master');
        assert.ok(await b.page.locator('#events li').count() >= 3, 'stage events listed');
        await checkChange(b.page, await target.join());
        await checkChange(b.page, await target.leave());
        await checkChange(b.page, await target.join());

        b.allow([/ERR_CONNECTION_REFUSED|ERR_INCOMPLETE_CHUNKED_ENCODING|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE/]);
        await target.restart();
        await b.page.waitForFunction(() => document.body.dataset.conn === 'live', null, { timeout: RECONNECT_MS });
        await shows(b.page, '#total', fmt(await target.total()));
        b.allow([]);
        await checkChange(b.page, await target.join());
        if (target.streamRequests) {
          const resumed = target.streamRequests().at(-1);
          assert.match(resumed.lastEventId, /^\d+-\d+$/, 'the reconnect sent Last-Event-ID');
        }

        await b.page.reload();              // the key is kept for this tab
        await shows(b.page, '#total', fmt(await target.total()), 5000);
        assert.ok(await b.page.locator('#key-panel').isHidden());
        await b.page.waitForTimeout(500);   // let the bars finish their transition
        await b.page.screenshot({ path: `${SHOTS}/${shot}-laptop.png` });
        assert.deepEqual(b.errors, []);
      } finally {
        await b.close();
      }
    });

    await t.test('phone: live numbers and a join', async () => {
      const b = await openBrowser('phone');
      try {
        await openDashboard(b.page, target);
        await checkChange(b.page, await target.join());
        const overflow = await b.page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
        assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
        await b.page.waitForTimeout(500);
        await b.page.screenshot({ path: `${SHOTS}/${shot}-phone.png`, fullPage: true });
        assert.deepEqual(b.errors, []);
      } finally {
        await b.close();
      }
    });

    await t.test('a refused key brings the form back', async () => {
      const b = await openBrowser('laptop');
      try {
        b.allow([/status of 401/]);
        await b.page.goto(`${target.url}/dashboard`);
        await enterKey(b.page, 'not-the-key');
        await b.page.locator('#key-message').waitFor({ state: 'visible', timeout: 5000 });
        assert.match(await b.page.textContent('#key-message'), /refused/);
        assert.equal(await b.page.evaluate(() => sessionStorage.getItem('usher.apiKey')), null);
        b.allow([]);
        await enterKey(b.page, target.key);
        await shows(b.page, '#total', fmt(await target.total()), 5000);
        assert.deepEqual(b.errors, []);
      } finally {
        await b.close();
      }
    });
  });
}

dashboardTests('dashboard page in Chromium, against the fake server', fakeTarget, 'dashboard-fake');
dashboardTests('dashboard page in Chromium, against usher', usherTarget);
