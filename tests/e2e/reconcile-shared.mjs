// reconcile-shared.mjs — what the reconciliation tests share: the same
// logic runs against the fake IVS (reconcile.test.mjs) and the local
// provider's model of who is connected (reconcile-local.test.mjs), each
// test driving its own source of who is connected.
import assert from 'node:assert/strict';
import { PREFIX, checkInvariants, waitFor } from './harness.mjs';

// An answer's data, after checking it is a 2xx.
export const ok = (r) => {
  assert.ok(r.status >= 200 && r.status < 300, `${r.status} ${JSON.stringify(r.body)}`);
  return r.body.data;
};

// Waits until reconcile passes begun after this call have read each stage
// of arns (its note, /api/stats/stages, says when a pass read it): two
// notes newer than the call, since a read under way at the call may have
// been answered before what the test had just arranged. What a test then
// sees is what passes did with it, however slow the machine.
export async function passesRead(usher, arns, { timeoutMs = 15000 } = {}) {
  const since = Date.now();
  const first = new Map();
  await waitFor(async () => {
    const stages = ok(await usher.get('/api/stats/stages')).stages;
    const read = (arn) => {
      const note = stages.find((s) => s.stageId === arn)?.reconcile;
      const at = note?.removed === undefined ? NaN : Date.parse(note.lastReconciledAt);
      if (!(at >= since)) return false;
      if (!first.has(arn)) first.set(arn, at);
      return at > first.get(arn);
    };
    return arns.map(read).every(Boolean);
  }, { timeoutMs, what: `reconcile passes reading ${arns.length} stage(s)`, stepMs: 100 });
}

// Every stage Redis records (the stages zset), for passesRead.
export const stagesOf = (redis) => redis.raw('ZRANGE', `${PREFIX}stages`, 0, -1).split('\n').filter(Boolean);

// The calls a test makes on its usher and Redis; usher() and redis() give
// them at call time (a test's before() starts them).
export function viewerCalls(usher, redis) {
  return {
    join: async (userId) => ok(await usher().post('/api/token/viewer', { userId })),
    seated: (arn, user) => redis().raw('HEXISTS', `${PREFIX}viewer:heartbeat:${arn}`, user) === '1',
    invariants: () => {
      const inv = checkInvariants(redis());
      assert.deepEqual(inv.problems, []);
      return inv;
    },
    events: async () => ok(await usher().get('/api/stage/events?limit=1000')).events,
  };
}

// Ghost seats: a token never used, and a viewer that was connected, left,
// and whose heartbeats go on from a script, are removed after graceS and
// not before; a connected viewer keeps its seat; SPEC §3 holds after; each
// removal is a reconcile_removed event. connect(seat, userId) and
// disconnect(seat, userId) drive who is connected (seat: a join's answer).
export async function ghostsRemoved(calls, { usher, connect, disconnect, graceS, timeoutMs }) {
  const { join, seated, invariants, events } = calls;
  const here = await join('present');
  await connect(here, 'present');
  const neverAt = Date.now();
  const never = await join('never-connected');
  const gone = await join('vanished');
  await connect(gone, 'vanished');
  await passesRead(usher(), [gone.stageArn]);   // passes saw it connected
  await disconnect(gone, 'vanished');
  const goneAt = Date.now();
  const beat = setInterval(() => usher().post('/api/viewer/heartbeat',
    { userId: 'vanished', stageArn: gone.stageArn }).catch(() => {}), 300);
  let neverRemovedAt = 0, goneRemovedAt = 0;
  try {
    await waitFor(() => {
      const now = Date.now();
      if (!neverRemovedAt && !seated(never.stageArn, 'never-connected')) neverRemovedAt = now;
      if (!goneRemovedAt && !seated(gone.stageArn, 'vanished')) goneRemovedAt = now;
      return neverRemovedAt && goneRemovedAt;
    }, { timeoutMs, what: 'ghosts removed', stepMs: 50 });
  } finally {
    clearInterval(beat);
  }
  // Never sooner than the grace: from its join for the token never used,
  // from the last pass that saw it (at most one interval before it left).
  assert.ok(neverRemovedAt - neverAt >= graceS * 1000, `never-connected removed after ${neverRemovedAt - neverAt} ms`);
  assert.ok(goneRemovedAt - goneAt >= (graceS - 1) * 1000, `vanished removed after ${goneRemovedAt - goneAt} ms`);
  assert.ok(seated(here.stageArn, 'present'), 'the connected viewer keeps its seat');
  invariants();
  const removed = (await events()).filter((e) => e.type === 'reconcile_removed');
  assert.ok(removed.some((e) => e.detail.includes('never-connected') && e.detail.includes('RECONCILE_GRACE')));
  assert.ok(removed.some((e) => e.detail.includes('vanished')));
}
