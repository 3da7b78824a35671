import { describe, expect, it } from 'vitest';
import {
  type AcceptedEntry,
  type Ballot,
  type Command,
  type Configuration,
  NOOP,
  type Phase1b,
  Proposer,
  type Value,
} from '../src/index.ts';
import { deliver, fire, sends, sendsOf, timers } from './helpers.ts';

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
const batch = (...ids: number[]): Value => ({ kind: 'batch', commands: ids.map(cmd) });

function proposer(id = 1) {
  return new Proposer({
    address: `p${id}`,
    proposerId: id,
    config,
    members: { proposers: ['p1', 'p2'], batchers: ['b0'], proxyLeaders: ['x0', 'x1'] },
    random: () => 0.5,
    timing: { resendTimeoutMs: 100 },
  });
}

function promise(
  p: Proposer,
  group: number,
  acceptorId: number,
  accepted: AcceptedEntry[] = [],
  watermark = 0,
): Phase1b {
  return { type: 'Phase1b', ballot: p.currentBallot, groupId: 10 + group, acceptorId, watermark, accepted };
}

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
    deliver(p, 'p1', { type: 'Heartbeat', ballot: { round: 4, proposerId: 1 }, watermark: 0 });
    const out = sendsOf(fire(p, 'election'), 'Phase1a');
    expect(out.map((s) => s.to).sort()).toEqual(config.groups.flatMap((g) => g.acceptors).sort());
    expect(out[0]?.message.ballot).toEqual({ round: 5, proposerId: 2 });
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
      deliver(p, 'b0', { type: 'ClientBatch', commands: [cmd(1)], forwarded: false }, 10),
      'Phase2a',
    );
    const [b] = sendsOf(
      deliver(p, 'b0', { type: 'ClientBatch', commands: [cmd(2)], forwarded: false }, 20),
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
      deliver(p, 'b0', { type: 'ClientBatch', commands: [cmd(3)], forwarded: false }),
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
    });
    expect(p.status).toBe('follower');
    const hb = deliver(p, 'p2', { type: 'Heartbeat', ballot: { round: 7, proposerId: 2 }, watermark: 3 });
    expect(timers(hb)).toContain('election');
    expect(p.leader).toBe('p2');
    const out = sends(deliver(p, 'b0', { type: 'ClientBatch', commands: [cmd(1)], forwarded: false }));
    expect(out).toEqual([
      { to: 'p2', message: { type: 'ClientBatch', commands: [cmd(1)], forwarded: true } },
      { to: 'b0', message: { type: 'LeaderInfo', leader: 'p2', ballot: { round: 7, proposerId: 2 } } },
    ]);
    expect(sends(deliver(p, 'p3', { type: 'ClientBatch', commands: [cmd(1)], forwarded: true }))).toEqual([]);
  });

  it('the leader heartbeats proposers and tells batchers who leads', () => {
    const p = proposer();
    elect(p);
    const out = sends(fire(p, 'heartbeat'));
    expect(out).toEqual([
      { to: 'p2', message: { type: 'Heartbeat', ballot: p.currentBallot, watermark: 0 } },
      { to: 'b0', message: { type: 'LeaderInfo', leader: 'p1', ballot: p.currentBallot } },
    ]);
  });

  it('holds batches that arrive during phase 1 and proposes them once it leads', () => {
    const p = proposer();
    fire(p, 'election');
    deliver(p, 'b0', { type: 'ClientBatch', commands: [cmd(9)], forwarded: false });
    let effects: ReturnType<typeof deliver> = [];
    for (const g of [0, 1]) for (const a of [0, 1]) effects = deliver(p, `a/${g}/${a}`, promise(p, g, a));
    expect(sendsOf(effects, 'Phase2a').map((s) => s.message.value)).toEqual([batch(9)]);
  });
});
