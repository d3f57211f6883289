// dashboard-app.test.mjs — unit tests of the dashboard's own Server-Sent
// Events parser, reconnect delay and event intake (web/dashboard/app.js), in Node without
// a browser. app.js is a browser module (no package.json marks it ESM for
// Node), so it is imported from a data: URL; it starts the page only where
// there is a document.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const source = readFileSync(new URL('../../web/dashboard/app.js', import.meta.url), 'utf8');
const { createSseParser, reconnectDelay, newModel, applyEvent } =
  await import(`data:text/javascript;base64,${Buffer.from(source).toString('base64')}`);

// Feeds the chunks in order; returns the events and retry values seen.
function parse(chunks, lastId) {
  const events = [], retries = [];
  const parser = createSseParser((e) => events.push(e), lastId, (ms) => retries.push(ms));
  for (const chunk of chunks) parser.feed(chunk);
  return { events, retries };
}

// Every way of cutting text into two chunks.
function splits(text) {
  return Array.from({ length: text.length + 1 }, (_, i) => [text.slice(0, i), text.slice(i)]);
}

const STREAM = ': ping\n\nevent: stats\ndata: {"totalViewers":3}\n\n' +
  'event: stage\nid: 1764480000000-0\ndata: {"type":"scale_up"}\n\n' +
  'data: line one\ndata: line two\n\n';
const EXPECTED = [
  { type: 'stats', data: '{"totalViewers":3}', id: '' },
  { type: 'stage', data: '{"type":"scale_up"}', id: '1764480000000-0' },
  { type: 'message', data: 'line one\nline two', id: '1764480000000-0' },
];

test('events, ids carried to later events, multi-line data, comments', () => {
  assert.deepEqual(parse([STREAM]).events, EXPECTED);
});

test('the same events whatever the chunking, mid-line and mid-field', () => {
  for (const chunks of splits(STREAM)) assert.deepEqual(parse(chunks).events, EXPECTED, JSON.stringify(chunks));
  assert.deepEqual(parse([...STREAM]).events, EXPECTED, 'one character at a time');
});

test('CRLF and CR line ends, a CRLF cut between chunks', () => {
  const crlf = STREAM.replaceAll('\n', '\r\n');
  for (const chunks of splits(crlf)) assert.deepEqual(parse(chunks).events, EXPECTED, JSON.stringify(chunks));
  assert.deepEqual(parse([STREAM.replaceAll('\n', '\r')]).events, EXPECTED);
  assert.deepEqual(parse(['data: a\r', '', '\ndata: b\r\n\r\n']).events, [{ type: 'message', data: 'a\nb', id: '' }],
    'an empty chunk between CR and LF');
});

test('an event without its blank line is not dispatched', () => {
  assert.deepEqual(parse(['event: stats\ndata: {"a":1}\n']).events, []);
  assert.deepEqual(parse(['data: x']).events, []);
});

test('the last event id starts from the one given and survives events without id', () => {
  const { events } = parse(['data: a\n\nid: 7-1\ndata: b\n\nid\ndata: c\n\n'], '5-0');
  assert.deepEqual(events.map((e) => e.id), ['5-0', '7-1', '']);
});

test('field details of the standard', () => {
  const { events, retries } = parse(['\uFEFFdata:no space\n\n', 'data:  two spaces\n\n', 'data\n\n',
    'event: x\n\n', 'data: y\n\n', 'id: a\0b\ndata: z\n\n', 'retry: 3000\nretry: soon\nunknown: q\n\n']);
  assert.deepEqual(events.map((e) => [e.type, e.data, e.id]), [
    ['message', 'no space', ''],
    ['message', ' two spaces', ''],
    ['message', '', ''],            // "data" with no colon: an empty data line
    ['message', 'y', ''],           // an event type without data is dropped, and reset
    ['message', 'z', ''],           // an id containing NUL is ignored
  ]);
  assert.deepEqual(retries, [3000]);
});

test('reconnect delay doubles to a cap, with spread below it', () => {
  const top = () => 0, bottom = () => 1;
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 20].map((n) => reconnectDelay(n, 500, top)),
    [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
  assert.equal(reconnectDelay(0, 500, bottom), 375);
  assert.equal(reconnectDelay(3, 2000, top), 15000);
});

test('events that are not JSON objects, or unknown, change nothing', (t) => {
  t.mock.method(console, 'warn', () => {});
  const model = newModel();
  for (const [type, data] of [['stats', '{"totalViewers":'], ['stats', 'null'], ['stats', '7'],
    ['stage', '"x"'], ['other', '{}'], ['stage', '{}']]) {
    assert.equal(applyEvent(model, { type, data, id: '' }), false, `${type} ${data}`);
  }
  assert.equal(model.stats, null);
  assert.equal(model.events.size, 0);
  assert.equal(model.history.length, 0);
});

test('stage events: newest first by stream id, repeats dropped, 50 kept', () => {
  const model = newModel();
  const stage = (ms, seq) => ({ type: 'stage', id: `${ms}-${seq}`, data: JSON.stringify({ type: 'drain', n: `${ms}-${seq}` }) });
  assert.equal(applyEvent(model, stage(1000, 2)), true);
  assert.equal(applyEvent(model, stage(1000, 10)), true);
  assert.equal(applyEvent(model, stage(999, 5)), true);
  assert.equal(applyEvent(model, stage(1000, 2)), false, 'a repeat after a resume');
  assert.deepEqual([...model.events.keys()], ['1000-10', '1000-2', '999-5']);
  for (let i = 0; i < 60; i++) applyEvent(model, stage(2000 + i, 0));
  assert.equal(model.events.size, 50);
  assert.equal([...model.events.keys()][0], '2059-0');
  assert.equal([...model.events.keys()].at(-1), '2010-0');
});

test('a stats event becomes the shown data and a chart sample', () => {
  const model = newModel();
  assert.equal(applyEvent(model, { type: 'stats', id: '', data: '{"totalViewers":12,"stages":[]}' }), true);
  assert.equal(model.stats.totalViewers, 12);
  assert.deepEqual(model.history.map((p) => p.viewers), [12]);
});
