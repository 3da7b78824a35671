import { describe, expect, it } from 'vitest';
import {
  type AcceptedEntry,
  type Ballot,
  type Command,
  type ConfigEntry,
  type ConfigSpec,
  type Configuration,
  configSpecOf,
  configStamp,
  encodeBatch,
  type MatchB,
  NOOP,
  type Phase1b,
  Proposer,
  type ProposerLimits,
  type Value,
} from '../src/index.ts';
import { deliver, fire, promise as phase1b, sends, sendsOf, timers } from './helpers.ts';

const config: Configuration = {
  f: 1,
  groups: [
    { groupId: 10, acceptors: ['a/0/0', 'a/0/1', 'a/0/2'] },
    { groupId: 11, acceptors: ['a/1/0', 'a/1/1', 'a/1/2'] },
  ],
};
const cmd = (requestId: number): Command => ({
  clientId: 'c',
  requestId,
  payload: new Uint8Array([requestId]),
});
const batch = (...ids: number[]): Value => ({ kind: 'batch', batch: encodeBatch(ids.map(cmd)) });

function proposer(id = 1, limits: Partial<ProposerLimits> = {}, proposers = ['p1', 'p2']) {
  return new Proposer({
    address: `p${id}`,
    proposerId: id,
    config,
    members: { proposers, batchers: ['b0'], proxyLeaders: ['x0', 'x1'] },
    random: () => 0.5,
    timing: { resendTimeoutMs: 100, stepDownMs: 300, stallTimeoutMs: 600, electionJitterMs: 100 },
    limits,
  });
}

/** A complete phase-1 answer (one page) of acceptor `acceptorId` of group 10+`group`. */
function promise(
  p: Proposer,
  group: number,
  acceptorId: number,
  accepted: AcceptedEntry[] = [],
  watermark = 0,
  page: Partial<Phase1b> = {},
): Phase1b {
  return phase1b(p.currentBallot, 10 + group, acceptorId, accepted, { watermark, ...page });
}

const batchFrom = (id: number) =>
  ({ type: 'ClientBatch', batch: encodeBatch([cmd(id)]), forwarded: false }) as const;

/** Runs an election and answers phase 1 with f+1 promises from every group. */
function elect(
  p: Proposer,
  reports: Record<string, AcceptedEntry[]> = {},
  watermarks: Record<string, number> = {},
) {
  fire(p, 'election');
  let effects: ReturnType<typeof deliver> = [];
  for (const g of [0, 1]) {
    for (const a of [0, 1]) {
      const key = `${g}/${a}`;
      effects = deliver(p, `a/${key}`, promise(p, g, a, reports[key] ?? [], watermarks[key] ?? 0), 1);
    }
  }
  return effects;
}

describe('Proposer', () => {
  it('runs phase 1 against every acceptor of every group with a ballot above any seen', () => {
    const p = proposer(2);
    deliver(p, 'p1', {
      type: 'Heartbeat',
      ballot: { round: 4, proposerId: 1 },
      watermark: 0,
      progress: 0,
      pending: 0,
    });
    const out = sendsOf(fire(p, 'election'), 'Phase1a');
    expect(out.map((s) => s.to).sort()).toEqual(config.groups.flatMap((g) => g.acceptors).sort());
    expect(out[0]?.message.ballot).toEqual({ round: 5, proposerId: 2 });
    expect(out[0]?.message.config).toEqual(configStamp(config));
    expect(p.status).toBe('candidate');
  });

  it('needs f+1 distinct acceptors from each group; duplicates and strangers do not count', () => {
    const p = proposer();
    fire(p, 'election');
    deliver(p, 'a/0/0', promise(p, 0, 0));
    deliver(p, 'a/0/0', promise(p, 0, 0));
    deliver(p, 'a/0/1', promise(p, 0, 1));
    deliver(p, 'a/1/0', promise(p, 1, 0));
    deliver(p, 'somebody', promise(p, 1, 1));
    expect(p.status).toBe('candidate');
    deliver(p, 'a/1/1', promise(p, 1, 1));
    expect(p.status).toBe('leader');
  });

  it('re-proposes the highest-ballot value reported by the slot’s own group and fills holes with noops', () => {
    const p = proposer();
    const low: Ballot = { round: 1, proposerId: 2 };
    const high: Ballot = { round: 2, proposerId: 2 };
    const effects = elect(p, {
      // slot 1 → group 11, slot 2 → group 10, slot 4 → group 10
      '1/0': [{ slot: 1, ballot: low, value: batch(1) }],
      '1/1': [{ slot: 1, ballot: high, value: batch(2) }],
      '0/0': [{ slot: 4, ballot: low, value: batch(4) }],
      // group 10 reporting slot 3 (group 11's) must be ignored
      '0/1': [{ slot: 3, ballot: high, value: batch(3) }],
    });
    const proposals = new Map(sendsOf(effects, 'Phase2a').map((s) => [s.message.slot, s.message]));
    expect([...proposals.keys()].sort()).toEqual([0, 1, 2, 3, 4]);
    expect(proposals.get(0)?.value).toEqual(NOOP);
    expect(proposals.get(1)?.value).toEqual(batch(2));
    expect(proposals.get(2)?.value).toEqual(NOOP);
    expect(proposals.get(3)?.value).toEqual(NOOP);
    expect(proposals.get(4)?.value).toEqual(batch(4));
    for (const [slot, m] of proposals) expect(m.groupId).toBe(slot % 2 === 0 ? 10 : 11);
    expect(proposals.get(1)?.acceptors).toEqual(config.groups[1]?.acceptors);
  });

  it('starts from the highest watermark any acceptor reported', () => {
    const p = proposer();
    const effects = elect(
      p,
      { '0/0': [{ slot: 6, ballot: { round: 1, proposerId: 2 }, value: batch(6) }] },
      { '1/1': 5 },
    );
    expect(sendsOf(effects, 'Phase2a').map((s) => s.message.slot)).toEqual([5, 6]);
    expect(p.watermark).toBe(5);
  });

  it('as leader assigns consecutive slots, advances the watermark on chosen and re-proposes what times out', () => {
    const p = proposer();
    elect(p);
    const [a] = sendsOf(
      deliver(p, 'b0', { type: 'ClientBatch', batch: encodeBatch([cmd(1)]), forwarded: false }, 10),
      'Phase2a',
    );
    const [b] = sendsOf(
      deliver(p, 'b0', { type: 'ClientBatch', batch: encodeBatch([cmd(2)]), forwarded: false }, 20),
      'Phase2a',
    );
    expect([a?.message.slot, b?.message.slot]).toEqual([0, 1]);
    expect(a?.to).not.toBe(b?.to); // proxy leaders in turn
    deliver(p, 'x1', { type: 'Chosen', slot: 1, ballot: p.currentBallot, value: null });
    expect(p.watermark).toBe(0);
    const resent = sendsOf(fire(p, 'resend', 115), 'Phase2a');
    expect(resent.map((s) => s.message.slot)).toEqual([0]);
    expect(resent[0]?.message.value).toEqual(batch(1));
    deliver(p, 'x0', { type: 'Chosen', slot: 0, ballot: p.currentBallot, value: null });
    expect(p.watermark).toBe(2);
    const [next] = sendsOf(
      deliver(p, 'b0', { type: 'ClientBatch', batch: encodeBatch([cmd(3)]), forwarded: false }),
      'Phase2a',
    );
    expect(next?.message.watermark).toBe(2);
  });

  it('steps down on a nack or heartbeat with a higher ballot, then forwards batches to the leader once', () => {
    const p = proposer();
    elect(p);
    deliver(p, 'x0', {
      type: 'Nack',
      slot: 0,
      ballot: p.currentBallot,
      promised: { round: 7, proposerId: 2 },
      retired: false,
    });
    expect(p.status).toBe('follower');
    const hb = deliver(p, 'p2', {
      type: 'Heartbeat',
      ballot: { round: 7, proposerId: 2 },
      watermark: 3,
      progress: 0,
      pending: 0,
    });
    expect(timers(hb)).toContain('election');
    expect(p.leader).toBe('p2');
    const out = sends(
      deliver(p, 'b0', { type: 'ClientBatch', batch: encodeBatch([cmd(1)]), forwarded: false }),
    );
    expect(out).toEqual([
      { to: 'p2', message: { type: 'ClientBatch', batch: encodeBatch([cmd(1)]), forwarded: true } },
      {
        to: 'b0',
        message: { type: 'LeaderInfo', leader: 'p2', ballot: { round: 7, proposerId: 2 }, backoffMs: 0 },
      },
    ]);
    expect(
      sends(deliver(p, 'p3', { type: 'ClientBatch', batch: encodeBatch([cmd(1)]), forwarded: true })),
    ).toEqual([]);
  });

  it('the leader heartbeats proposers (itself too, as a hearing test) and tells batchers who leads', () => {
    const p = proposer();
    elect(p);
    deliver(p, 'b0', batchFrom(1));
    deliver(p, 'b0', batchFrom(2));
    deliver(p, 'x0', { type: 'Chosen', slot: 0, ballot: p.currentBallot, value: null });
    const out = sends(fire(p, 'heartbeat'));
    const heartbeat = { type: 'Heartbeat', ballot: p.currentBallot, watermark: 1, progress: 1, pending: 1 };
    expect(out).toEqual([
      { to: 'p2', message: heartbeat },
      { to: 'p1', message: heartbeat },
      { to: 'b0', message: { type: 'LeaderInfo', leader: 'p1', ballot: p.currentBallot, backoffMs: 0 } },
    ]);
  });

  it('holds batches that arrive during phase 1 and proposes them once it leads', () => {
    const p = proposer();
    fire(p, 'election');
    deliver(p, 'b0', { type: 'ClientBatch', batch: encodeBatch([cmd(9)]), forwarded: false });
    let effects: ReturnType<typeof deliver> = [];
    for (const g of [0, 1]) for (const a of [0, 1]) effects = deliver(p, `a/${g}/${a}`, promise(p, g, a));
    expect(sendsOf(effects, 'Phase2a').map((s) => s.message.value)).toEqual([batch(9)]);
  });
});

describe('Proposer: bounded phase 1', () => {
  const entry = (slot: number, id: number): AcceptedEntry => ({
    slot,
    ballot: { round: 1, proposerId: 2 },
    value: batch(id),
  });

  it('proposes a slot only once f+1 acceptors of its group have reported up to it, asking for pages a window ahead', () => {
    const p = proposer(1, { maxOutstandingSlots: 64 });
    fire(p, 'election');
    // Group 10 owns even slots. Its acceptors 0 and 1 send a first page covering slots below 4.
    const first = (a: number) =>
      promise(p, 0, a, [entry(0, 100), entry(2, 102)], 0, { more: true, nextSlot: 4, acceptedEnd: 9 });
    deliver(p, 'a/0/0', first(0));
    deliver(p, 'a/0/1', first(1));
    deliver(p, 'a/1/0', promise(p, 1, 0));
    const elected = deliver(p, 'a/1/1', promise(p, 1, 1));
    expect(p.status).toBe('leader');
    // Slots 0..3 are covered by every group's quorum; slot 4 waits for group 10's next page.
    expect(sendsOf(elected, 'Phase2a').map((s) => s.message.slot)).toEqual([0, 1, 2, 3]);
    const asks = sendsOf(elected, 'Phase1a');
    expect(asks.map((s) => [s.to, s.message.fromSlot])).toEqual([
      ['a/0/0', 4],
      ['a/0/1', 4],
    ]);
    expect(p.recoveringSlots).toBe(5);
    // One acceptor's next page is not enough for slot 4 …
    const page = (a: number) =>
      promise(p, 0, a, [entry(6, 106), entry(8, 108)], 0, { fromSlot: 4, acceptedEnd: 9 });
    expect(sendsOf(deliver(p, 'a/0/0', page(0)), 'Phase2a')).toEqual([]);
    // … the second one is.
    const rest = sendsOf(deliver(p, 'a/0/1', page(1)), 'Phase2a');
    expect(rest.map((s) => [s.message.slot, s.message.value])).toEqual([
      [4, NOOP],
      [5, NOOP],
      [6, batch(106)],
      [7, NOOP],
      [8, batch(108)],
    ]);
    expect(p.recoveringSlots).toBe(0);
    // New batches go after the recovered range.
    expect(sendsOf(deliver(p, 'b0', batchFrom(1)), 'Phase2a')[0]?.message.slot).toBe(9);
  });

  it('ignores duplicated and out-of-order pages', () => {
    const p = proposer();
    fire(p, 'election');
    const first = (a: number) =>
      promise(p, 0, a, [entry(0, 100)], 0, { more: true, nextSlot: 2, acceptedEnd: 5 });
    for (const a of [0, 1]) deliver(p, `a/0/${a}`, first(a));
    for (const a of [0, 1]) deliver(p, `a/1/${a}`, promise(p, 1, a));
    // A page that does not start where the acceptor's coverage ends is dropped.
    const stray = promise(p, 0, 0, [entry(4, 999)], 0, { fromSlot: 3, acceptedEnd: 5 });
    deliver(p, 'a/0/0', stray);
    deliver(p, 'a/0/1', stray);
    const good = (a: number) => promise(p, 0, a, [entry(4, 104)], 0, { fromSlot: 2, acceptedEnd: 5 });
    deliver(p, 'a/0/0', good(0));
    deliver(p, 'a/0/0', good(0));
    const out = sendsOf(deliver(p, 'a/0/1', good(1)), 'Phase2a');
    expect(out.map((s) => [s.message.slot, s.message.value])).toEqual([
      [2, NOOP],
      [3, NOOP],
      [4, batch(104)],
    ]);
  });

  it('asks acceptors that have not promised when a promising one stops answering pages', () => {
    const p = proposer();
    fire(p, 'election');
    const first = (a: number) => promise(p, 0, a, [], 0, { more: true, nextSlot: 2, acceptedEnd: 6 });
    for (const a of [0, 1]) deliver(p, `a/0/${a}`, first(a));
    for (const a of [0, 1]) deliver(p, `a/1/${a}`, promise(p, 1, a));
    const retry = sendsOf(fire(p, 'phase1Retry', 1000), 'Phase1a');
    expect(retry.map((s) => [s.to, s.message.fromSlot]).sort()).toEqual([
      ['a/0/0', 2],
      ['a/0/1', 2],
      ['a/0/2', 2],
    ]);
    // Acceptors 0 and 2 answer; acceptor 1 is gone.
    deliver(p, 'a/0/0', promise(p, 0, 0, [], 0, { fromSlot: 2, acceptedEnd: 6 }));
    const out = deliver(p, 'a/0/2', promise(p, 0, 2, [entry(4, 104)], 0, { fromSlot: 2, acceptedEnd: 6 }));
    expect(sendsOf(out, 'Phase2a').map((s) => s.message.slot)).toEqual([2, 3, 4, 5]);
  });

  it('a page whose watermark is above its first slot marks the slots below it chosen, never noops over them', () => {
    // Simulator seed 1967 (f=1): acceptor 1 of the even group had not promised; asked during
    // recovery from slot 2, it answers with watermark 6 and nothing below it (those slots are
    // chosen, so phase 1 never reports them). Its silence there is not "nothing accepted".
    const p = proposer();
    fire(p, 'election');
    deliver(p, 'a/0/0', promise(p, 0, 0, [], 0, { more: true, nextSlot: 2, acceptedEnd: 8 }));
    deliver(p, 'a/0/2', promise(p, 0, 2, [], 0, { acceptedEnd: 0 }));
    for (const a of [0, 1]) deliver(p, `a/1/${a}`, promise(p, 1, a));
    expect(p.status).toBe('leader');
    fire(p, 'phase1Retry', 1000); // acceptor 1 is asked from slot 2
    const late = deliver(p, 'a/0/1', promise(p, 0, 1, [entry(6, 106)], 6, { fromSlot: 2, acceptedEnd: 8 }));
    // With acceptor 2's complete answer it covers the even slots: 2 and 4 are chosen, not holes.
    expect(sendsOf(late, 'Phase2a').map((s) => [s.message.slot, s.message.value])).toEqual([
      [6, batch(106)],
      [7, NOOP],
    ]);
    expect(p.watermark).toBe(6);
  });

  it('does not re-propose a recovered slot an earlier ballot’s proxy leader already announced', () => {
    const p = proposer();
    fire(p, 'election');
    const first = (a: number) =>
      promise(p, 0, a, [entry(0, 100)], 0, { more: true, nextSlot: 2, acceptedEnd: 3 });
    for (const a of [0, 1]) deliver(p, `a/0/${a}`, first(a));
    for (const a of [0, 1]) deliver(p, `a/1/${a}`, promise(p, 1, a));
    deliver(p, 'x0', { type: 'Chosen', slot: 2, ballot: { round: 1, proposerId: 2 }, value: null });
    deliver(p, 'a/0/0', promise(p, 0, 0, [entry(2, 102)], 0, { fromSlot: 2, acceptedEnd: 3 }));
    const out = deliver(p, 'a/0/1', promise(p, 0, 1, [entry(2, 102)], 0, { fromSlot: 2, acceptedEnd: 3 }));
    expect(sendsOf(out, 'Phase2a')).toEqual([]);
    expect(p.recoveringSlots).toBe(0);
    deliver(p, 'x0', { type: 'Chosen', slot: 0, ballot: p.currentBallot, value: null });
    deliver(p, 'x1', { type: 'Chosen', slot: 1, ballot: p.currentBallot, value: null });
    expect(p.watermark).toBe(3);
    expect(p.inflightSlots).toBe(0);
  });
});

describe('Proposer: bounded work', () => {
  it('caps the outstanding slots, queues batches, and asks a batcher to back off when the queue is full', () => {
    const p = proposer(1, { maxOutstandingSlots: 2, maxPendingBatches: 1, backoffMs: 40 });
    elect(p);
    expect(sendsOf(deliver(p, 'b0', batchFrom(1)), 'Phase2a')).toHaveLength(1);
    expect(sendsOf(deliver(p, 'b0', batchFrom(2)), 'Phase2a')).toHaveLength(1);
    expect(sends(deliver(p, 'b0', batchFrom(3)))).toEqual([]);
    expect(p.queuedBatches).toBe(1);
    const refused = deliver(p, 'b0', batchFrom(4));
    expect(sends(refused)).toEqual([
      { to: 'b0', message: { type: 'LeaderInfo', leader: 'p1', ballot: p.currentBallot, backoffMs: 40 } },
    ]);
    expect(refused).toContainEqual({ kind: 'metric', name: 'batches_refused', op: 'inc', value: 1 });
    // A slot chosen frees room: the queued batch goes out.
    const next = sendsOf(
      deliver(p, 'x0', { type: 'Chosen', slot: 0, ballot: p.currentBallot, value: null }),
      'Phase2a',
    );
    expect(next.map((s) => [s.message.slot, s.message.value])).toEqual([[2, batch(3)]]);
  });

  it('re-proposes at most maxResendsPerScan slots per scan', () => {
    const p = proposer(1, { maxResendsPerScan: 2 });
    elect(p);
    for (let i = 0; i < 5; i++) deliver(p, 'b0', batchFrom(i), 0);
    expect(sendsOf(fire(p, 'resend', 200), 'Phase2a').map((s) => s.message.slot)).toEqual([0, 1]);
    expect(sendsOf(fire(p, 'resend', 250), 'Phase2a').map((s) => s.message.slot)).toEqual([2, 3]);
  });

  it('re-proposes through another proxy leader, and skips a proxy leader with overdue slots until it answers', () => {
    const p = proposer();
    elect(p);
    const [first] = sendsOf(deliver(p, 'b0', batchFrom(1), 0), 'Phase2a');
    const stuck = first?.to as string;
    const [resent] = sendsOf(fire(p, 'resend', 150), 'Phase2a');
    expect(resent?.to).not.toBe(stuck);
    // New slots avoid the suspect …
    for (let i = 0; i < 4; i++) {
      expect(sendsOf(deliver(p, 'b0', batchFrom(10 + i), 160), 'Phase2a')[0]?.to).not.toBe(stuck);
    }
    // … until it answers again.
    deliver(p, stuck, { type: 'Chosen', slot: 0, ballot: p.currentBallot, value: null }, 170);
    const targets = [0, 1].map((i) => sendsOf(deliver(p, 'b0', batchFrom(20 + i), 170), 'Phase2a')[0]?.to);
    expect(targets).toContain(stuck);
  });

  it('re-proposes at once the slots of a proxy leader that left', () => {
    const p = proposer();
    elect(p);
    const [first] = sendsOf(deliver(p, 'b0', batchFrom(1), 0), 'Phase2a');
    const left = first?.to as string;
    const remaining = ['x0', 'x1'].filter((x) => x !== left);
    const out = sendsOf(p.step(5, { type: 'membership', members: { proxyLeaders: remaining } }), 'Phase2a');
    expect(out.map((s) => [s.to, s.message.slot])).toEqual([[remaining[0], 0]]);
  });
});

describe('Proposer: failure detection that sees one-way faults', () => {
  it('a leader that stops hearing its own heartbeats steps down after two scans and does not campaign while deaf', () => {
    const p = proposer();
    elect(p, {}, {});
    let effects = fire(p, 'resend', 200);
    expect(p.status).toBe('leader');
    effects = fire(p, 'resend', 350);
    expect(p.status).toBe('leader'); // one scan over the limit could be a stall of this process
    effects = fire(p, 'resend', 400);
    expect(p.status).toBe('follower');
    expect(effects).toContainEqual({ kind: 'metric', name: 'leader_step_downs', op: 'inc', value: 1 });
    expect(sendsOf(fire(p, 'heartbeat', 410), 'Heartbeat')).toEqual([]);
    // Still deaf: its election timer re-arms instead of campaigning …
    expect(sendsOf(fire(p, 'election', 900), 'Phase1a')).toEqual([]);
    // … until it hears anything again.
    deliver(p, 'b0', batchFrom(1), 950);
    expect(sendsOf(fire(p, 'election', 1000), 'Phase1a').length).toBeGreaterThan(0);
  });

  it('a leader that hears itself stays, alone or not', () => {
    for (const p of [proposer(), proposer(1, {}, ['p1'])]) {
      elect(p);
      for (const now of [100, 200, 300, 400, 500]) {
        const hb = sendsOf(fire(p, 'heartbeat', now), 'Heartbeat').find((s) => s.to === 'p1');
        if (hb !== undefined) deliver(p, 'p1', hb.message, now);
        fire(p, 'resend', now);
      }
      expect(p.status).toBe('leader');
    }
  });

  it('a leader that cannot hear itself steps down even if it never saw another proposer', () => {
    // Simulator seed 200001 (wire, matchmakers): a proposer restarted while the other was paused
    // (out of every view), won, then lost its inbound for good; it kept batchers following it.
    const alone = proposer(1, {}, ['p1']);
    elect(alone);
    for (const now of [200, 400, 600, 800]) fire(alone, 'resend', now);
    expect(alone.status).toBe('follower');
  });

  it('a deaf leader steps down for a proposer its view lost while deaf (a paused one whose lease ran out)', () => {
    // Simulator seed 3544: the other proposer was paused, dropped from the view, then the leader
    // lost its inbound for good; believing itself alone it led on, deaf, and held every batch.
    const p = proposer();
    elect(p);
    p.step(10, { type: 'membership', members: { proposers: ['p1'] } });
    fire(p, 'resend', 200);
    fire(p, 'resend', 350);
    fire(p, 'resend', 400);
    expect(p.status).toBe('follower');
  });

  it('a leader whose slots hear nothing steps down although it hears itself', () => {
    const p = proposer();
    elect(p);
    deliver(p, 'b0', batchFrom(1), 0);
    for (const now of [100, 200, 300, 400, 500]) {
      const hb = sendsOf(fire(p, 'heartbeat', now), 'Heartbeat').find((s) => s.to === 'p1');
      if (hb !== undefined) deliver(p, 'p1', hb.message, now);
      fire(p, 'resend', now);
    }
    expect(p.status).toBe('follower');
  });

  it('a follower runs for election when heartbeats keep coming but show pending slots and no progress', () => {
    const p = proposer(2);
    fire(p, 'election');
    const leaderBallot = { round: 9, proposerId: 1 };
    const hb = (progress: number, pending: number) =>
      ({ type: 'Heartbeat', ballot: leaderBallot, watermark: 0, progress, pending }) as const;
    deliver(p, 'p1', hb(0, 0), 0);
    expect(p.status).toBe('follower');
    // Progress while slots are pending: fine.
    for (let t = 100; t <= 1000; t += 100) deliver(p, 'p1', hb(t, 3), t);
    expect(p.status).toBe('follower');
    // Pending slots and no progress since t=1000: after the stall timeout (600) plus jitter (50), an election.
    for (let t = 1100; t <= 1600; t += 100) deliver(p, 'p1', hb(1000, 3), t);
    expect(p.status).toBe('follower');
    const out = deliver(p, 'p1', hb(1000, 3), 1700);
    expect(p.status).toBe('candidate');
    expect(sendsOf(out, 'Phase1a')[0]?.message.ballot).toEqual({ round: 10, proposerId: 2 });
  });
});

describe('Proposer: election through matchmakers', () => {
  const mms = ['m0', 'm1', 'm2'];
  const own = configSpecOf(config, 0);
  function matched(id = 1) {
    return new Proposer({
      address: `p${id}`,
      proposerId: id,
      config,
      members: { proposers: ['p1', 'p2'], batchers: ['b0'], proxyLeaders: ['x0'] },
      random: () => 0.5,
      timing: { phase1RetryMs: 40 },
      matchmakers: { addresses: mms, f: 1 },
    });
  }
  const entry = (round: number, proposerId: number, spec: ConfigSpec = own): ConfigEntry => ({
    ballot: { round, proposerId },
    spec,
    startSlot: -1,
  });
  function matchB(p: Proposer, matchmakerId: number, entries: ConfigEntry[] = [entry(0, 0)], gc = 0): MatchB {
    return {
      type: 'MatchB',
      epoch: 0,
      ballot: p.currentBallot,
      matchmakerId,
      gcBallot: { round: gc, proposerId: 0 },
      entries,
    };
  }

  it('sends MatchA with its spec to every matchmaker first, and resends only to those that have not answered', () => {
    const p = matched();
    const first = fire(p, 'election');
    expect(sendsOf(first, 'Phase1a')).toEqual([]);
    const out = sendsOf(first, 'MatchA');
    expect(out.map((s) => s.to)).toEqual(mms);
    expect(out[0]?.message).toEqual({
      type: 'MatchA',
      epoch: 0,
      ballot: { round: 1, proposerId: 1 },
      spec: own,
    });
    expect(timers(first)).toContain('phase1Retry');
    expect(p.status).toBe('candidate');
    deliver(p, 'm1', matchB(p, 1));
    expect(sendsOf(fire(p, 'phase1Retry'), 'MatchA').map((s) => s.to)).toEqual(['m0', 'm2']);
  });

  it('runs phase 1 once f+1 distinct matchmakers answered; duplicates, strangers and other ballots do not count', () => {
    const p = matched();
    fire(p, 'election');
    expect(sendsOf(deliver(p, 'm0', matchB(p, 0)), 'Phase1a')).toEqual([]);
    expect(sendsOf(deliver(p, 'm0', matchB(p, 0)), 'Phase1a')).toEqual([]);
    expect(sendsOf(deliver(p, 'stranger', matchB(p, 5)), 'Phase1a')).toEqual([]);
    const stale = { ...matchB(p, 2), ballot: { round: 0, proposerId: 1 } };
    expect(sendsOf(deliver(p, 'm2', stale), 'Phase1a')).toEqual([]);
    const phase1 = sendsOf(deliver(p, 'm2', matchB(p, 2)), 'Phase1a');
    expect(phase1.map((s) => s.to).sort()).toEqual(config.groups.flatMap((g) => g.acceptors).sort());
    // The phase-1 timer now resends Phase1a, no longer MatchA.
    const retry = fire(p, 'phase1Retry');
    expect(sendsOf(retry, 'MatchA')).toEqual([]);
    expect(sendsOf(retry, 'Phase1a')).toHaveLength(6);
    for (const [g, a] of [
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1],
    ] as const)
      deliver(p, `a/${g}/${a}`, promise(p, g, a));
    expect(p.status).toBe('leader');
  });

  it('a MatchNack above its ballot makes it a follower that runs later with a higher round', () => {
    const p = matched();
    fire(p, 'election');
    // A nack that is not above its ballot changes nothing.
    deliver(p, 'm0', {
      type: 'MatchNack',
      epoch: 0,
      ballot: p.currentBallot,
      higher: p.currentBallot,
      newer: null,
    });
    expect(p.status).toBe('candidate');
    const out = deliver(p, 'm0', {
      type: 'MatchNack',
      epoch: 0,
      ballot: p.currentBallot,
      higher: { round: 7, proposerId: 2 },
      newer: null,
    });
    expect(p.status).toBe('follower');
    expect(out).toContainEqual({ kind: 'metric', name: 'match_preempted', op: 'inc', value: 1 });
    expect(timers(out)).toContain('election');
    // Matching state is gone: a late MatchB of the old ballot does nothing.
    deliver(p, 'm1', matchB(p, 1));
    deliver(p, 'm2', matchB(p, 2));
    expect(p.status).toBe('follower');
    expect(sendsOf(fire(p, 'election'), 'MatchA')[0]?.message.ballot).toEqual({ round: 8, proposerId: 1 });
  });

  it('stepping down on a higher heartbeat while matching clears the matching state', () => {
    const p = matched();
    fire(p, 'election');
    const ballot = p.currentBallot;
    deliver(p, 'p2', {
      type: 'Heartbeat',
      ballot: { round: 5, proposerId: 2 },
      watermark: 0,
      progress: 0,
      pending: 0,
    });
    expect(p.status).toBe('follower');
    const late = { ...matchB(p, 0), ballot };
    expect(sendsOf(deliver(p, 'm0', late), 'Phase1a')).toEqual([]);
    expect(sendsOf(deliver(p, 'm1', { ...late, matchmakerId: 1 }), 'Phase1a')).toEqual([]);
    expect(sendsOf(fire(p, 'phase1Retry'), 'MatchA')).toEqual([]);
  });

  it('prior configurations: the union of entries at or above the highest gcBallot, one per ballot', () => {
    class Exposed extends Proposer {
      priors(replies: MatchB[]) {
        return this.priorConfigurations(replies);
      }
    }
    const p = new Exposed({
      address: 'p1',
      proposerId: 1,
      config,
      members: { proposers: ['p1'], batchers: [], proxyLeaders: [] },
      random: () => 0.5,
      matchmakers: { addresses: mms, f: 1 },
    });
    const priors = p.priors([
      matchB(p, 0, [entry(0, 0), entry(2, 1)], 0),
      matchB(p, 1, [entry(2, 1), entry(3, 2), entry(4, 1)], 2),
    ]);
    expect(priors.map((e) => e.ballot)).toEqual([
      { round: 2, proposerId: 1 },
      { round: 3, proposerId: 2 },
      { round: 4, proposerId: 1 },
    ]);
    // An entry above the gcBallot with an older version than the gcBallot's own never reached
    // f+1 matchmakers (they refuse older versions), so it was never used: it is left out.
    const v2: ConfigSpec = { ...own, version: 2 };
    const filtered = p.priors([
      matchB(p, 0, [entry(4, 0, v2), entry(6, 2, v2)], 4),
      matchB(p, 1, [entry(5, 3, own)], 2),
    ]);
    expect(filtered.map((e) => e.ballot)).toEqual([
      { round: 4, proposerId: 0 },
      { round: 6, proposerId: 2 },
    ]);
  });

  it('without matchmakers (absent or empty) elections go straight to phase 1', () => {
    const p = new Proposer({
      address: 'p1',
      proposerId: 1,
      config,
      members: { proposers: ['p1'], batchers: [], proxyLeaders: [] },
      random: () => 0.5,
      matchmakers: { addresses: [], f: 1 },
    });
    const out = fire(p, 'election');
    expect(sendsOf(out, 'MatchA')).toEqual([]);
    expect(sendsOf(out, 'Phase1a')).toHaveLength(6);
  });
});
