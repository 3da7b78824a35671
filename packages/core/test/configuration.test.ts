import { describe, expect, it } from 'vitest';
import {
  type ConfigSpec,
  configSpecId,
  configSpecOf,
  configurationId,
  planConfigChange,
  validateConfigSpec,
} from '../src/index.ts';

const spec = (f: number, version: number, ...groups: Array<[number, number[]]>): ConfigSpec => ({
  f,
  version,
  groups: groups.map(([groupId, acceptorIds]) => ({ groupId, acceptorIds })),
});

describe('configurationId', () => {
  it('keeps the ids of existing configurations (acceptor logs and stamps on the wire hold them)', () => {
    const group = (groupId: number) => ({ groupId, acceptors: [] });
    expect(configurationId({ f: 1, groups: [group(0), group(1)] })).toBe(1334613050);
    expect(configurationId({ f: 2, groups: [group(3)] })).toBe(2846968435);
  });
});

describe('configSpecId', () => {
  const base = spec(1, 1, [0, [0, 1, 2]], [1, [0, 1, 2]]);

  it("digests f, the group order and each group's acceptor ids, not the version", () => {
    const id = configSpecId(base);
    expect(id).not.toBe(0);
    expect(configSpecId(spec(1, 9, [0, [0, 1, 2]], [1, [0, 1, 2]]))).toBe(id);
    expect(configSpecId(spec(1, 1, [1, [0, 1, 2]], [0, [0, 1, 2]]))).not.toBe(id);
    // Acceptor 2 of group 1 replaced by a new acceptor 3: another configuration.
    expect(configSpecId(spec(1, 1, [0, [0, 1, 2]], [1, [0, 1, 3]]))).not.toBe(id);
    expect(configSpecId(spec(2, 1, [0, [0, 1, 2]], [1, [0, 1, 2]]))).not.toBe(id);
    // Acceptor ids never run into the next group's.
    expect(configSpecId(spec(0, 1, [1, [23]]))).not.toBe(configSpecId(spec(0, 1, [12, [3]])));
  });
});

describe('validateConfigSpec', () => {
  it('accepts 2f+1 distinct acceptors per group, and ids that repeat across groups', () => {
    expect(() => validateConfigSpec(spec(1, 1, [0, [0, 1, 2]], [4, [0, 5, 7]]))).not.toThrow();
    expect(() => validateConfigSpec(spec(0, 0, [0, [9]]))).not.toThrow();
  });

  it('refuses what cannot work, saying what is wrong', () => {
    const cases: Array<[ConfigSpec, string]> = [
      [spec(-1, 1, [0, [0]]), 'f must be a non-negative integer, got -1'],
      [spec(0.5, 1, [0, [0]]), 'f must be a non-negative integer, got 0.5'],
      [spec(0, -2, [0, [0]]), 'version must be a non-negative integer, got -2'],
      [spec(1, 1), 'a configuration needs at least one acceptor group'],
      [spec(0, 1, [0, [0]], [0, [1]]), 'acceptor group 0 appears twice'],
      [spec(1, 1, [3, [0, 1]]), 'acceptor group 3 has 2 acceptors, expected 2f+1 = 3'],
      [spec(1, 1, [3, [0, 1, 1]]), 'acceptor 1 appears twice in group 3'],
      [spec(0, 1, [-3, [0]]), 'acceptor group id -3 is not a non-negative integer'],
      [spec(0, 1, [3, [2 ** 32]]), 'acceptor id 4294967296 of group 3 is not a non-negative integer'],
    ];
    for (const [bad, message] of cases) expect(() => validateConfigSpec(bad)).toThrow(message);
  });
});

describe('configSpecOf', () => {
  it('lists each group with acceptor ids 0..2f, keeps the order and the version', () => {
    const config = {
      f: 1,
      groups: [
        { groupId: 7, acceptors: ['x', 'y', 'z'] },
        { groupId: 3, acceptors: ['u', 'v', 'w'] },
      ],
    };
    const spec = configSpecOf(config, 4);
    expect(spec).toEqual({
      f: 1,
      version: 4,
      groups: [
        { groupId: 7, acceptorIds: [0, 1, 2] },
        { groupId: 3, acceptorIds: [0, 1, 2] },
      ],
    });
    expect(() => validateConfigSpec(spec)).not.toThrow();
    expect(configSpecId(configSpecOf(config, 9))).toBe(configSpecId(spec));
  });
});

describe('planConfigChange', () => {
  const v3: ConfigSpec = {
    f: 1,
    version: 3,
    groups: [
      { groupId: 0, acceptorIds: [0, 1, 2] },
      { groupId: 2, acceptorIds: [0, 3, 2] },
    ],
  };

  it('grows with new group ids (never reused) and lists their 2f+1 acceptors to start first', () => {
    const plan = planConfigChange(v3, { kind: 'groups', groups: 3, nextGroupId: 4 });
    expect(plan.target).toEqual({
      f: 1,
      version: 4,
      groups: [...v3.groups, { groupId: 4, acceptorIds: [0, 1, 2] }],
    });
    expect(plan.start).toEqual([0, 1, 2].map((acceptorId) => ({ groupId: 4, acceptorId })));
    // nextGroupId below an id in use is raised above it.
    expect(
      planConfigChange(v3, { kind: 'groups', groups: 3, nextGroupId: 0 }).target.groups[2]?.groupId,
    ).toBe(3);
  });

  it('shrinks by dropping the last groups, or one named group; never below one group', () => {
    expect(planConfigChange(v3, { kind: 'groups', groups: 1, nextGroupId: 3 })).toEqual({
      target: { f: 1, version: 4, groups: [v3.groups[0]] },
      start: [],
    });
    expect(planConfigChange(v3, { kind: 'removeGroup', groupId: 0 }).target.groups).toEqual([v3.groups[1]]);
    expect(() => planConfigChange(v3, { kind: 'groups', groups: 0, nextGroupId: 3 })).toThrow(
      /at least one acceptor group/,
    );
    expect(() => planConfigChange(v3, { kind: 'removeGroup', groupId: 7 })).toThrow(
      /group 7 is not in the configuration/,
    );
    const one = planConfigChange(v3, { kind: 'groups', groups: 1, nextGroupId: 3 }).target;
    expect(() => planConfigChange(one, { kind: 'removeGroup', groupId: 0 })).toThrow(/last acceptor group/);
  });

  it('replaces one acceptor by a new id in its place, and refuses an id the group has used', () => {
    const plan = planConfigChange(v3, { kind: 'replace', groupId: 2, acceptorId: 3, newAcceptorId: 4 });
    expect(plan.target.groups[1]).toEqual({ groupId: 2, acceptorIds: [0, 4, 2] });
    expect(plan.start).toEqual([{ groupId: 2, acceptorId: 4 }]);
    expect(() =>
      planConfigChange(v3, { kind: 'replace', groupId: 2, acceptorId: 3, newAcceptorId: 1 }),
    ).toThrow(/never reused/);
    expect(() =>
      planConfigChange(v3, { kind: 'replace', groupId: 2, acceptorId: 1, newAcceptorId: 9 }),
    ).toThrow(/acceptor 2\/1 is not in the configuration/);
  });
});
