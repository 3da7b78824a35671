import type { ConfigSpec } from '@paxos/core';
import { describe, expect, it } from 'vitest';
import {
  changeFor,
  DEFAULT_PORTS,
  DEFAULT_TOPOLOGY,
  describeSpec,
  droppedAcceptors,
  parseAcceptorName,
  planHostPerProcess,
  planHostPerProcessAcceptor,
  planHostPerProcessMatchmaker,
} from '../src/index.ts';

const TWO_GROUPS: ConfigSpec = {
  version: 2,
  f: 1,
  groups: [
    { groupId: 0, acceptorIds: [0, 1, 3] },
    { groupId: 1, acceptorIds: [0, 1, 2] },
  ],
};

describe('changeFor', () => {
  it('gives new groups ids above every group that ever had an acceptor, gone ones included', () => {
    expect(changeFor({ groups: 3 }, TWO_GROUPS, ['acceptor-g0-a2', 'acceptor-g4-a0'])).toEqual({
      kind: 'groups',
      groups: 3,
      nextGroupId: 5,
    });
    expect(changeFor({ groups: 3 }, TWO_GROUPS, [])).toMatchObject({ nextGroupId: 2 });
  });

  it('gives a replacement an id above every acceptor its group ever had, other names ignored', () => {
    expect(
      changeFor({ replace: 'acceptor-g0-a1' }, TWO_GROUPS, ['acceptor-g0-a5', 'acceptor-g1-a9', 'batcher-0']),
    ).toEqual({ kind: 'replace', groupId: 0, acceptorId: 1, newAcceptorId: 6 });
    expect(changeFor({ replace: 'acceptor-g0-a1' }, TWO_GROUPS, [])).toMatchObject({ newAcceptorId: 4 });
  });

  it('refuses a name that is no acceptor', () => {
    expect(() => changeFor({ replace: 'matchmaker-1' }, TWO_GROUPS, [])).toThrow(
      'cannot replace matchmaker-1: expected an acceptor name such as acceptor-g1-a2',
    );
  });
});

describe('acceptor names', () => {
  it('parses acceptor-g<group>-a<id> and nothing else', () => {
    expect(parseAcceptorName('acceptor-g12-a3')).toEqual({ groupId: 12, acceptorId: 3 });
    expect(parseAcceptorName('acceptor-g1')).toBeNull();
    expect(parseAcceptorName('x-acceptor-g1-a2')).toBeNull();
  });

  it('lists what a target drops and describes a configuration in one line', () => {
    const target: ConfigSpec = { ...TWO_GROUPS, version: 3, groups: [TWO_GROUPS.groups[1] as never] };
    expect(droppedAcceptors(TWO_GROUPS, target)).toEqual([
      'acceptor-g0-a0',
      'acceptor-g0-a1',
      'acceptor-g0-a3',
    ]);
    expect(describeSpec(TWO_GROUPS)).toBe('version 2: groups 0[0,1,3] 1[0,1,2]');
  });
});

describe('planHostPerProcessAcceptor', () => {
  const shape = { ...DEFAULT_TOPOLOGY, annaRouting: 'tcp://10.0.0.1:6450', dataDir: '/var/lib/paxos' };

  it("is the plan's acceptor, for any group and id: same env, ports and restart switch", () => {
    const planned = planHostPerProcess(shape).find((p) => p.name === 'acceptor-g1-a2');
    expect(planHostPerProcessAcceptor(shape, 1, 2)).toEqual(planned);
    const added = planHostPerProcessAcceptor(shape, 7, 4);
    expect(added.name).toBe('acceptor-g7-a4');
    expect(added.env).toMatchObject({
      ACCEPTOR_GROUP_ID: '7',
      ACCEPTOR_ID: '4',
      ACCEPTOR_LOG_STATE: 'new',
      ACCEPTOR_PORT: String(DEFAULT_PORTS.ACCEPTOR_PORT),
      INSTANCE: 'acceptor-g7-a4',
    });
    expect(added.env.PRIVATE_IP).toBeUndefined();
    expect(added.restartEnv).toEqual({ ACCEPTOR_LOG_STATE: 'existing' });
  });
});

describe('planHostPerProcessMatchmaker', () => {
  const shape = { ...DEFAULT_TOPOLOGY, annaRouting: 'tcp://10.0.0.1:6450', dataDir: '/var/lib/paxos' };

  it("is the plan's matchmaker with a new id, started as a replacement, existing on every restart", () => {
    const planned = planHostPerProcess(shape).find((p) => p.name === 'matchmaker-1');
    const added = planHostPerProcessMatchmaker(shape, 5);
    expect(added.name).toBe('matchmaker-5');
    expect(added.env).toEqual({
      ...planned?.env,
      MATCHMAKER_ID: '5',
      MATCHMAKER_STATE: 'replacement',
      INSTANCE: 'matchmaker-5',
    });
    expect(added.ports).toEqual([DEFAULT_PORTS.MATCHMAKER_PORT]);
    expect(added.metricsPort).toBe(planned?.metricsPort);
    expect(added.restartEnv).toEqual({ MATCHMAKER_STATE: 'existing' });
  });
});
