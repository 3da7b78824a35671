/**
 * Reconfiguration in the proposer (Matchmaker MultiPaxos, issue 16): phase 1 over every earlier
 * configuration, the move of a leader to a new configuration without phase 1 (bypass), garbage
 * collection and retirement. The simulator sweeps these under faults; here each rule is pinned.
 */
import { describe, expect, it } from 'vitest';
import {
  type Ballot,
  type ConfigEntry,
  type ConfigSpec,
  type Configuration,
  configSpecOf,
  encodeBatch,
  type MatchB,
  Proposer,
} from '../src/index.ts';
import { deliver, fire, promise, sends, sendsOf } from './helpers.ts';

const config: Configuration = {
  f: 1,
  groups: [
    { groupId: 10, acceptors: ['a/0/0', 'a/0/1', 'a/0/2'] },
    { groupId: 11, acceptors: ['a/1/0', 'a/1/1', 'a/1/2'] },
  ],
};
const genesis = configSpecOf(config, 0);
const mms = ['m0', 'm1', 'm2'];
const addressOf = (groupId: number, acceptorId: number) => `a/${groupId - 10}/${acceptorId}`;
const batch = (id: number) => ({
  kind: 'batch' as const,
  batch: encodeBatch([{ clientId: 'c', requestId: id, payload: new Uint8Array([id]) }]),
});
const clientBatch = (id: number) => ({
  type: 'ClientBatch' as const,
  batch: batch(id).batch,
  forwarded: false,
});

function proposer(): Proposer {
  return new Proposer({
    address: 'p1',
    proposerId: 1,
    config,
    members: { proposers: ['p1', 'p2'], batchers: ['b0'], proxyLeaders: ['x0'] },
    random: () => 0.5,
    timing: { phase1RetryMs: 40 },
    matchmakers: { addresses: mms, f: 1 },
  });
}
const entry = (ballot: Ballot, spec: ConfigSpec = genesis): ConfigEntry => ({ ballot, spec, startSlot: -1 });
const matchB = (
  ballot: Ballot,
  matchmakerId: number,
  entries: ConfigEntry[],
  gc: Ballot = { round: 0, proposerId: 0 },
): MatchB => ({
  type: 'MatchB',
  epoch: 0,
  ballot,
  matchmakerId,
  gcBallot: gc,
  entries,
});
const ZERO = { round: 0, proposerId: 0 };

/** A leader of ballot (1,1) in the genesis configuration, elected through the matchmakers. */
function leader(): Proposer {
  const p = proposer();
  fire(p, 'election');
  const b = p.currentBallot;
  deliver(p, 'm0', matchB(b, 0, [entry(ZERO)]));
  deliver(p, 'm1', matchB(b, 1, [entry(ZERO)]));
  for (const g of config.groups)
    g.acceptors.forEach((a, id) => {
      deliver(p, a, promise(b, g.groupId, id));
    });
  expect(p.status).toBe('leader');
  return p;
}
const spec = (version: number, groups: [number, number[]][]): ConfigSpec => ({
  f: 1,
  version,
  groups: groups.map(([groupId, acceptorIds]) => ({ groupId, acceptorIds })),
});
const known = (p: Proposer, groups: [number, number[]][]) =>
  p.step(0, {
    type: 'acceptors',
    acceptors: groups.flatMap(([groupId, ids]) =>
      ids.map((acceptorId) => ({ groupId, acceptorId, address: addressOf(groupId, acceptorId) })),
    ),
  });

describe('Proposer: phase 1 over every earlier configuration', () => {
  it('asks each acceptor identity once, stamped with a configuration that lists it, and leads only with f+1 of every group of each', () => {
    const p = proposer();
    const replaced = spec(1, [
      [10, [0, 1, 3]],
      [11, [0, 1, 2]],
    ]);
    known(p, [[10, [3]]]);
    fire(p, 'election');
    const b = p.currentBallot;
    deliver(p, 'm0', matchB(b, 0, [entry(ZERO), entry({ round: 3, proposerId: 2 }, replaced)]));
    const out = sendsOf(deliver(p, 'm1', matchB(b, 1, [entry(ZERO)])), 'Phase1a');
    expect(out.map((s) => s.to).sort()).toEqual([
      'a/0/0',
      'a/0/1',
      'a/0/2',
      'a/0/3',
      'a/1/0',
      'a/1/1',
      'a/1/2',
    ]);
    expect(out.find((s) => s.to === 'a/0/3')?.message.config.acceptorIds).toEqual([0, 1, 3]);
    expect(out.find((s) => s.to === 'a/0/2')?.message.config.acceptorIds).toEqual([0, 1, 2]);
    // f+1 of group 10 at genesis (0 and 2) and of group 11: not enough, the replaced group 10 has only 0.
    for (const [a, g, id] of [
      ['a/0/0', 10, 0],
      ['a/0/2', 10, 2],
      ['a/1/0', 11, 0],
      ['a/1/1', 11, 1],
    ] as const)
      deliver(p, a, promise(b, g, id));
    expect(p.status).toBe('candidate');
    deliver(p, 'a/0/3', promise(b, 10, 3));
    expect(p.status).toBe('leader');
  });

  it('recovers a slot from the highest ballot any configuration reports, after f+1 of its group in each cover it', () => {
    const p = proposer();
    const reversed = spec(1, [
      [11, [0, 1, 2]],
      [10, [0, 1, 2]],
    ]); // slot 0 → group 11
    fire(p, 'election');
    const b = p.currentBallot;
    deliver(p, 'm0', matchB(b, 0, [entry(ZERO), entry({ round: 3, proposerId: 2 }, reversed)]));
    deliver(p, 'm1', matchB(b, 1, [entry(ZERO)]));
    const accepted = [{ slot: 0, ballot: { round: 3, proposerId: 2 }, value: batch(7) }];
    deliver(p, 'a/1/0', promise(b, 11, 0, accepted));
    deliver(p, 'a/1/1', promise(b, 11, 1));
    deliver(p, 'a/0/0', promise(b, 10, 0));
    const out = deliver(p, 'a/0/1', promise(b, 10, 1));
    expect(p.status).toBe('leader');
    const proposed = sendsOf(out, 'Phase2a');
    expect(proposed.map((s) => [s.message.slot, s.message.value])).toEqual([[0, batch(7)]]);
    // It is proposed in the leader's own configuration, the one its ballot was matched with
    // (genesis: slot 0 → group 10); having learnt a newer one, it moves to it once recovery is done.
    expect(proposed[0]?.message.groupId).toBe(10);
    expect(sendsOf(out, 'MatchA')[0]?.message.spec).toEqual(reversed);
  });
});

describe('Proposer: moving to a new configuration while leading', () => {
  const grown = spec(1, [
    [10, [0, 1, 2]],
    [11, [0, 1, 2]],
    [12, [0, 1, 2]],
  ]);

  it('matches a new ballot with the target and keeps serving in the old one meanwhile; then switches at the next slot without phase 1', () => {
    const p = leader();
    const b = p.currentBallot;
    deliver(p, 'b0', clientBatch(1)); // slot 0
    deliver(p, 'b0', clientBatch(2)); // slot 1
    known(p, [[12, [0, 1, 2]]]);
    const matchA = sendsOf(p.step(0, { type: 'target', spec: grown }), 'MatchA');
    const b2 = { round: b.round + 1, proposerId: 1 };
    expect(matchA.map((s) => [s.to, s.message.ballot, s.message.spec])).toEqual(
      mms.map((m) => [m, b2, grown]),
    );
    // Still serving in the old ballot and configuration.
    const during = sendsOf(deliver(p, 'b0', clientBatch(3)), 'Phase2a');
    expect(during.map((s) => [s.message.slot, s.message.ballot])).toEqual([[2, b]]);
    deliver(p, 'm0', matchB(b2, 0, [entry(ZERO), entry(b)]));
    const switched = deliver(p, 'm2', matchB(b2, 2, [entry(ZERO), entry(b)]));
    expect(sendsOf(switched, 'Phase1a')).toEqual([]);
    expect(p.currentBallot).toEqual(b2);
    expect(p.configuration).toEqual(grown);
    expect(sendsOf(switched, 'Heartbeat').map((s) => s.message.ballot)).toContainEqual(b2);
    // The next batch goes to slot 3 in the new ballot; slot 5 belongs to the new group 12.
    const next = sendsOf(deliver(p, 'b0', clientBatch(4)), 'Phase2a');
    expect(next.map((s) => [s.message.slot, s.message.ballot, s.message.groupId])).toEqual([[3, b2, 10]]);
    deliver(p, 'b0', clientBatch(5));
    const fifth = sendsOf(deliver(p, 'b0', clientBatch(6)), 'Phase2a')[0]?.message;
    expect([fifth?.slot, fifth?.groupId, fifth?.acceptors, fifth?.config.acceptorIds]).toEqual([
      5,
      12,
      ['a/2/0', 'a/2/1', 'a/2/2'],
      [0, 1, 2],
    ]);
  });

  it('proposes an old slot again, same value, in the new ballot and configuration when the new ballot made an acceptor refuse it', () => {
    const p = leader();
    const b = p.currentBallot;
    deliver(p, 'b0', clientBatch(1));
    deliver(p, 'b0', clientBatch(2)); // slot 1, group 11 in both
    known(p, [[12, [0, 1, 2]]]);
    p.step(0, { type: 'target', spec: grown });
    const b2 = { round: b.round + 1, proposerId: 1 };
    deliver(p, 'm0', matchB(b2, 0, [entry(b)]));
    deliver(p, 'm1', matchB(b2, 1, [entry(b)]));
    const again = sendsOf(
      deliver(p, 'x0', { type: 'Nack', slot: 0, ballot: b, promised: b2, retired: false }),
      'Phase2a',
    );
    expect(again.map((s) => [s.message.slot, s.message.ballot, s.message.value, s.message.groupId])).toEqual([
      [0, b2, batch(1), 10],
    ]);
    expect(p.status).toBe('leader');
  });

  it('steps down when another proposer matched a ballot between its old and new ones', () => {
    const p = leader();
    const b = p.currentBallot;
    known(p, [[12, [0, 1, 2]]]);
    p.step(0, { type: 'target', spec: grown });
    const b2 = { round: b.round + 1, proposerId: 1 };
    const between = { round: b.round, proposerId: 5 };
    deliver(p, 'm0', matchB(b2, 0, [entry(b), entry(between)]));
    const out = deliver(p, 'm1', matchB(b2, 1, [entry(b)]));
    expect(p.status).toBe('follower');
    expect(out).toContainEqual({ kind: 'metric', name: 'match_preempted', op: 'inc', value: 1 });
  });

  it('collects garbage: watermark durable at f+1 of each group, then GarbageA, then Retire to acceptors only older configurations list', () => {
    const p = leader();
    const b = p.currentBallot;
    deliver(p, 'b0', clientBatch(1)); // slot 0
    const shrunk = spec(1, [[10, [0, 1, 2]]]);
    p.step(0, { type: 'target', spec: shrunk });
    const b2 = { round: b.round + 1, proposerId: 1 };
    deliver(p, 'm0', matchB(b2, 0, [entry(b)]));
    deliver(p, 'm1', matchB(b2, 1, [entry(b)]));
    expect(p.collected).toBe(false);
    // Slot 0 (below the start slot 1) chosen: the watermark goes to the new configuration's acceptors.
    const watermarks = sendsOf(
      deliver(p, 'x0', { type: 'Chosen', slot: 0, ballot: b, value: null }),
      'WatermarkA',
    );
    expect(watermarks.map((s) => [s.to, s.message.watermark, s.message.ballot])).toEqual(
      ['a/0/0', 'a/0/1', 'a/0/2'].map((a) => [a, 1, b2]),
    );
    expect(
      sendsOf(
        deliver(p, 'a/0/0', { type: 'WatermarkB', groupId: 10, acceptorId: 0, watermark: 1 }),
        'GarbageA',
      ),
    ).toEqual([]);
    const garbage = sendsOf(
      deliver(p, 'a/0/2', { type: 'WatermarkB', groupId: 10, acceptorId: 2, watermark: 1 }),
      'GarbageA',
    );
    expect(garbage.map((s) => [s.to, s.message])).toEqual(
      mms.map((m) => [m, { type: 'GarbageA', epoch: 0, gcBallot: b2, startSlot: 1, spec: shrunk }]),
    );
    deliver(p, 'm0', { type: 'GarbageB', epoch: 0, matchmakerId: 0, gcBallot: b2 });
    const out = deliver(p, 'm2', { type: 'GarbageB', epoch: 0, matchmakerId: 2, gcBallot: b2 });
    expect(p.collected).toBe(true);
    expect(sendsOf(out, 'Retire').map((s) => [s.to, s.message.groupId, s.message.acceptorId])).toEqual([
      ['a/1/0', 11, 0],
      ['a/1/1', 11, 1],
      ['a/1/2', 11, 2],
    ]);
    expect(deliver(p, 'a/1/1', { type: 'RetireB', groupId: 11, acceptorId: 1 })).toContainEqual({
      kind: 'metric',
      name: 'retired_acceptors',
      op: 'inc',
      value: 1,
    });
    // Resent only to those that have not answered.
    expect(sendsOf(fire(p, 'control'), 'Retire').map((s) => s.to)).toEqual(['a/1/0', 'a/1/2']);
  });

  it('a candidate told its configuration is older than one recorded adopts the newer one for its next election', () => {
    const p = proposer();
    fire(p, 'election');
    const b = p.currentBallot;
    const out = deliver(p, 'm0', {
      type: 'MatchNack',
      epoch: 0,
      ballot: b,
      higher: { round: 3, proposerId: 2 },
      newer: grown,
    });
    expect(out).toContainEqual({ kind: 'metric', name: 'stale_configurations', op: 'inc', value: 1 });
    expect(p.status).toBe('follower');
    expect(p.latestConfiguration).toEqual(grown);
    expect(sendsOf(fire(p, 'election'), 'MatchA')[0]?.message.spec).toEqual(grown);
    expect(sends(fire(p, 'phase1Retry')).length).toBeGreaterThan(0);
  });
});
