import { type ConfigSpec, configSpecId, encodeBatch, type MatchB } from '@paxos/core';
import { describe, expect, it } from 'vitest';
import { SafetyChecker } from '../src/checker.ts';

const config = { f: 1, groups: [{ groupId: 0, acceptors: ['a0', 'a1', 'a2'] }] };
const spec = (ids: number[]): ConfigSpec => ({
  f: 1,
  version: 0,
  groups: [{ groupId: 0, acceptorIds: ids }],
});
const a = spec([0, 1, 2]);
const b = spec([0, 1, 3]);
const ballot = (round: number, proposerId: number) => ({ round, proposerId });
function matchB(matchmakerId: number, round: number, entries: [number, number, ConfigSpec][]): MatchB {
  return {
    type: 'MatchB',
    epoch: 0,
    ballot: ballot(round, 1),
    matchmakerId,
    gcBallot: ballot(0, 0),
    entries: entries.map(([r, p, s]) => ({ ballot: ballot(r, p), spec: s, startSlot: -1 })),
  };
}

describe('SafetyChecker: one configuration per ballot', () => {
  it('accepts MatchB replies that agree on every ballot, and remembers each ballot’s configuration', () => {
    const checker = new SafetyChecker(config);
    expect(checker.recordMatchB('mm/0', matchB(0, 2, [[0, 0, a]]), a)).toBeNull();
    expect(checker.recordMatchB('mm/1', matchB(1, 2, [[0, 0, a]]), a)).toBeNull();
    expect(
      checker.recordMatchB(
        'mm/2',
        matchB(2, 3, [
          [0, 0, a],
          [2, 1, a],
        ]),
        a,
      ),
    ).toBeNull();
    expect(checker.configurationOf(ballot(2, 1))).toBe(configSpecId(a));
    expect(checker.configurationOf(ballot(9, 9))).toBeUndefined();
  });

  it('two matchmakers that recorded different configurations for one ballot: violation', () => {
    const checker = new SafetyChecker(config);
    expect(checker.recordMatchB('mm/0', matchB(0, 2, [[0, 0, a]]), a)).toBeNull();
    expect(checker.recordMatchB('mm/1', matchB(1, 2, [[0, 0, a]]), b)).toMatch(
      /ballot \(2,1\) has two configurations/,
    );
  });

  it('an entry for ballot j whose configuration differs from another reply’s entry for j: violation', () => {
    const checker = new SafetyChecker(config);
    expect(checker.recordMatchB('mm/0', matchB(0, 5, [[3, 2, a]]), undefined)).toBeNull();
    expect(checker.recordMatchB('mm/1', matchB(1, 6, [[3, 2, b]]), undefined)).toMatch(
      /ballot \(3,2\) has two configurations: spec \d+ \(mm\/0's MatchB for \(5,1\)\) and spec \d+ \(mm\/1's MatchB for \(6,1\)\)/,
    );
  });

  it('an entry that contradicts what a matchmaker recorded for its own ballot earlier: violation', () => {
    const checker = new SafetyChecker(config);
    expect(checker.recordMatchB('mm/0', matchB(0, 2, []), a)).toBeNull();
    expect(checker.recordMatchB('mm/1', matchB(1, 4, [[2, 1, b]]), undefined)).toMatch(
      /ballot \(2,1\) has two configurations/,
    );
  });
});

describe('SafetyChecker: votes, proposals and garbage collection per ballot configuration', () => {
  const two = {
    f: 1,
    groups: [0, 1].map((g) => ({ groupId: g, acceptors: [0, 1, 2].map((i) => `a${g}${i}`) })),
  };
  const command = (n: number) => ({ clientId: 'c', requestId: n, payload: new Uint8Array([n]) });
  const value = (n: number) => ({ kind: 'batch' as const, batch: encodeBatch([command(n)]) });
  /** A checker that has seen commands 0..9 submitted (a chosen batch must hold submitted commands). */
  const checkerFor = (...args: ConstructorParameters<typeof SafetyChecker>) => {
    const checker = new SafetyChecker(...args);
    for (let n = 0; n < 10; n++) checker.recordSubmitted(command(n));
    return checker;
  };
  const grown: ConfigSpec = {
    f: 1,
    version: 1,
    groups: [0, 1, 2].map((groupId) => ({ groupId, acceptorIds: [0, 1, 2] })),
  };

  it('counts a vote by the configuration of its ballot: slot 2 is group 0 at genesis, group 2 once grown', () => {
    const checker = checkerFor(two, true);
    // Genesis ballot (1,1): slot 2 → group 0.
    expect(checker.recordVote(0, 0, 2, ballot(1, 1), value(1))).toBeNull();
    expect(checker.recordVote(0, 1, 2, ballot(1, 1), value(1))).toBeNull();
    expect(checker.chosen.get(2)).toEqual(value(1));
    // Ballot (2,1) has the grown configuration: slot 5 → group 2; a vote from group 2 counts …
    expect(checker.recordMatchB('mm/0', matchB(0, 2, []), grown)).toBeNull();
    expect(checker.recordVote(2, 0, 5, ballot(2, 1), value(2))).toBeNull();
    expect(checker.recordVote(2, 1, 5, ballot(2, 1), value(2))).toBeNull();
    expect(checker.chosen.get(5)).toEqual(value(2));
    // … and one from group 1 (slot 5's group at genesis) is a violation under matchmakers.
    expect(checker.recordVote(1, 0, 5, ballot(2, 1), value(2))).toMatch(
      /acceptor g1\/0 voted for slot 5 in ballot \(2,1\), whose configuration gives it to group 2/,
    );
    expect(new SafetyChecker(two).recordVote(1, 0, 5, ballot(1, 1), value(2))).toBeNull();
  });

  it('a proposal of another value for a slot chosen in an earlier ballot: violation', () => {
    const checker = checkerFor(two);
    checker.recordVote(0, 0, 0, ballot(1, 1), value(1));
    checker.recordVote(0, 2, 0, ballot(1, 1), value(1));
    expect(checker.checkProposal(0, ballot(2, 2), value(1))).toBeNull();
    expect(checker.checkProposal(0, ballot(1, 1), value(3))).toBeNull(); // not earlier: a stale leader
    expect(checker.checkProposal(0, ballot(2, 2), value(3))).toMatch(
      /slot 0 proposed in \(2,2\) with .* but .* is chosen there in \(1,1\)/,
    );
  });

  it('garbage collection before every slot below k is chosen, or before f+1 per group hold watermark k: violation', () => {
    const checker = checkerFor(two);
    for (const slot of [0, 1]) {
      checker.recordVote(slot % 2, 0, slot, ballot(1, 1), value(slot));
      checker.recordVote(slot % 2, 1, slot, ballot(1, 1), value(slot));
    }
    const all = () => 2;
    expect(checker.checkGarbageCollection(ballot(2, 1), 3, all)).toMatch(
      /while slot 2 \(below its start slot 3\) is not chosen/,
    );
    expect(checker.checkGarbageCollection(ballot(2, 1), 2, all)).toBeNull();
    const onlyGroup0 = (g: number) => (g === 0 ? 2 : 1);
    expect(checker.checkGarbageCollection(ballot(2, 1), 2, onlyGroup0)).toMatch(
      /only 0 acceptors of group 1 announced a watermark ≥ 2/,
    );
  });
});
