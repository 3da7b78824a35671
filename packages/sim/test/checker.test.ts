import { type ConfigSpec, configSpecId, type MatchB } from '@paxos/core';
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
    expect(checker.recordMatchB('mm/0', matchB(0, 2, [[0, 0, a]]), configSpecId(a))).toBeNull();
    expect(checker.recordMatchB('mm/1', matchB(1, 2, [[0, 0, a]]), configSpecId(a))).toBeNull();
    expect(
      checker.recordMatchB(
        'mm/2',
        matchB(2, 3, [
          [0, 0, a],
          [2, 1, a],
        ]),
        configSpecId(a),
      ),
    ).toBeNull();
    expect(checker.configurationOf(ballot(2, 1))).toBe(configSpecId(a));
    expect(checker.configurationOf(ballot(9, 9))).toBeUndefined();
  });

  it('two matchmakers that recorded different configurations for one ballot: violation', () => {
    const checker = new SafetyChecker(config);
    expect(checker.recordMatchB('mm/0', matchB(0, 2, [[0, 0, a]]), configSpecId(a))).toBeNull();
    expect(checker.recordMatchB('mm/1', matchB(1, 2, [[0, 0, a]]), configSpecId(b))).toMatch(
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
    expect(checker.recordMatchB('mm/0', matchB(0, 2, []), configSpecId(a))).toBeNull();
    expect(checker.recordMatchB('mm/1', matchB(1, 4, [[2, 1, b]]), undefined)).toMatch(
      /ballot \(2,1\) has two configurations/,
    );
  });
});
