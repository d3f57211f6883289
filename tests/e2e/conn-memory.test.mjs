// conn-memory.test.mjs — what an idle keep-alive connection costs usher.
// Viewers' apps each hold one connection open between heartbeats; with
// thousands of them the memory a connection keeps while it waits must be
// small (src/http/conn.h: buffers are held only while a request is in
// progress). Opens N connections, sends one request on each, keeps them
// open and idle, and reads usher's resident memory (VmRSS of
// /proc/<pid>/status) before and after; then checks each connection still
// serves a second request.
//
// Measured growth per idle connection (2,000 connections, after 200 opened
// as a warm-up; GET /health on each; 2026-11-30):
//   ASan build:    old code (8 KB window and buffers kept for a connection's
//                  life) 14,049 bytes; now 2,480 bytes.
//   release build: old 11,194 bytes; now 1,169 bytes.
// The bound, BOUND_BYTES = 6,000, lies between with a margin of more than
// twice on both sides. ASan's quarantine (freed memory held back to catch
// a use after free) is turned off for this usher: it keeps every request's
// freed allocations resident, about 13 KB per request here, and would
// hide what a connection itself holds. Run with USHER_BIN=build/usher
// CONN_MEM_N=10000 for the figures of BENCHMARKS.md.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { Redis, Usher } from './harness.mjs';

const N = Number(process.env.CONN_MEM_N || 2000);
const WARM = 200;
const BATCH = 200;                  // connections opened at once (below the listen backlog)
const BOUND_BYTES = 6000;

function rssBytes(pid) {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) * 1024;
}

// Sends one GET /health on sock and resolves with the status once the
// whole answer (head and Content-Length bytes) has come.
function request(sock) {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      const len = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] || 0);
      if (buf.length < end + 4 + len) return;
      sock.off('data', onData);
      sock.off('close', onClose);
      resolve(Number(head.split(' ')[1]));
    };
    const onClose = () => reject(new Error('closed before the answer'));
    sock.on('data', onData);
    sock.once('close', onClose);
    sock.write('GET /health HTTP/1.1\r\nHost: usher\r\n\r\n');
  });
}

function open(port) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => resolve(sock));
    sock.once('error', reject);
  });
}

// Opens n connections, BATCH at a time, each answered once; returns them.
async function openIdle(port, n) {
  const socks = [];
  for (let i = 0; i < n; i += BATCH) {
    const batch = await Promise.all(Array.from({ length: Math.min(BATCH, n - i) }, () => open(port)));
    const statuses = await Promise.all(batch.map(request));
    assert.ok(statuses.every((s) => s === 200), `statuses ${[...new Set(statuses)]}`);
    socks.push(...batch);
  }
  return socks;
}

describe('memory of idle keep-alive connections', () => {
  let redis, usher, socks = [];
  before(async () => {
    redis = await Redis.start();
    usher = await Usher.start(redis, {
      HTTP_IDLE_TIMEOUT_MS: '600000',
      ASAN_OPTIONS: `${process.env.ASAN_OPTIONS || 'detect_leaks=1:abort_on_error=0'}:quarantine_size_mb=0`,
    });
  });
  after(async () => {
    for (const s of socks) s.destroy();
    await usher?.stop();
    await redis?.close();
  });

  it(`${N} idle connections each cost usher under ${BOUND_BYTES} bytes, and serve again`, async () => {
    socks = await openIdle(usher.port, WARM);
    const before = rssBytes(usher.proc.pid);
    socks.push(...await openIdle(usher.port, N));
    const grown = rssBytes(usher.proc.pid) - before;
    const per = grown / N;
    console.log(`# usher RSS ${(before / 1048576).toFixed(1)} MB -> +${(grown / 1048576).toFixed(1)} MB ` +
      `for ${N} idle connections: ${per.toFixed(0)} bytes each`);
    assert.ok(per < BOUND_BYTES, `${per.toFixed(0)} bytes per idle connection`);
    // Idle connections took their buffers back: every 50th asks again.
    const again = await Promise.all(socks.filter((_, i) => i % 50 === 0).map(request));
    assert.ok(again.every((s) => s === 200), `statuses ${[...new Set(again)]}`);
  });
});
