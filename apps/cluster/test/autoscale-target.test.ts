/**
 * LocalScaleTarget's mapping, over a stand-in for LocalCluster (no process is started): acceptor
 * groups of the configuration as instances of `acceptor-group`, and their scaling through a
 * reconfiguration to the current count ± n.
 */
import type { ConfigSpec } from '@paxos/core';
import { describe, expect, it } from 'vitest';
import { LocalScaleTarget } from '../src/autoscale.ts';
import type { InstancePhaseView, LocalCluster } from '../src/cluster.ts';

type Phase = InstancePhaseView['phase'];

/** The part of LocalCluster the target reads, with processes in the given phases. */
function fakeCluster(phases: Record<string, Phase>) {
  const scaled: string[] = [];
  const names = Object.keys(phases);
  const cluster = {
    topology: { host: '127.0.0.1' },
    phases: async (): Promise<InstancePhaseView[]> =>
      Object.entries(phases).map(([name, phase]) => ({
        name,
        role: name.replace(/-(g\d+-a\d+|\d+)$/, ''),
        pid: 1,
        restarts: 0,
        phase,
      })),
    spec: (name: string) => ({ metricsPort: 9000 + names.indexOf(name) }),
    members: (role: string) => names.filter((n) => n.startsWith(`${role}-`) && phases[n] !== 'stopped'),
    scale: async (role: string, count: number) => {
      scaled.push(`${role} ${count}`);
      return { added: [], removed: [], exited: Promise.resolve() };
    },
  };
  return {
    cluster: cluster as unknown as LocalCluster,
    scaled,
    url: (n: string) => `http://127.0.0.1:${9000 + names.indexOf(n)}/metrics`,
  };
}

const config = (groups: Record<number, number[]>): ConfigSpec =>
  ({
    version: 3,
    f: 1,
    groups: Object.entries(groups).map(([g, ids]) => ({ groupId: Number(g), acceptorIds: ids })),
  }) as unknown as ConfigSpec;

describe('LocalScaleTarget', () => {
  it('lists one acceptor-group per group of the configuration, its running acceptors as members', async () => {
    const { cluster, url } = fakeCluster({
      'batcher-0': 'ready',
      'acceptor-g0-a0': 'ready',
      'acceptor-g0-a1': 'ready',
      'acceptor-g0-a2': 'ready',
      // Group 1: a replacement (a3) in place of a1, which retired and was stopped; a2 restarts.
      'acceptor-g1-a0': 'ready',
      'acceptor-g1-a1': 'stopped',
      'acceptor-g1-a2': 'restarting',
      'acceptor-g1-a3': 'ready',
      // Group 2 was dropped by an earlier reconfiguration: its acceptors are no group's.
      'acceptor-g2-a0': 'stopped',
      // Group 3 is being started for a reconfiguration not written yet.
      'acceptor-g3-a0': 'starting',
      // Group 4: every member stopped.
      'acceptor-g4-a0': 'stopped',
    });
    const target = new LocalScaleTarget(cluster, {
      configuration: async () => config({ 0: [0, 1, 2], 1: [0, 2, 3], 4: [0] }),
      reconfigure: async () => {},
    });
    expect(target.roles).toContain('acceptor-group');
    const listed = await target.instances();
    expect(listed.filter((i) => i.role === 'batcher').map((i) => i.name)).toEqual(['batcher-0']);
    expect(listed.filter((i) => i.role === 'acceptor-group')).toEqual([
      {
        name: 'acceptor-g0',
        role: 'acceptor-group',
        phase: 'ready',
        metricsUrl: null,
        members: ['acceptor-g0-a0', 'acceptor-g0-a1', 'acceptor-g0-a2'].map((name) => ({
          name,
          metricsUrl: url(name),
        })),
      },
      {
        name: 'acceptor-g1',
        role: 'acceptor-group',
        phase: 'starting',
        metricsUrl: null,
        members: ['acceptor-g1-a0', 'acceptor-g1-a2', 'acceptor-g1-a3'].map((name) => ({
          name,
          metricsUrl: url(name),
        })),
      },
      { name: 'acceptor-g4', role: 'acceptor-group', phase: 'starting', metricsUrl: null, members: [] },
    ]);
  });

  it('without acceptor groups, lists the process roles only and never reads the configuration', async () => {
    const { cluster } = fakeCluster({ 'batcher-0': 'ready', 'acceptor-g0-a0': 'ready' });
    const target = new LocalScaleTarget(cluster, {
      acceptorGroups: false,
      configuration: async () => {
        throw new Error('read');
      },
      reconfigure: async () => {},
    });
    expect(target.roles).not.toContain('acceptor-group');
    expect((await target.instances()).map((i) => i.name)).toEqual(['batcher-0']);
  });

  it('keeps the last configuration for a period in which the directory does not answer, and fails without one', async () => {
    const { cluster } = fakeCluster({ 'acceptor-g0-a0': 'ready' });
    let answers = false;
    const target = new LocalScaleTarget(cluster, {
      configuration: async () => {
        if (!answers) throw new Error('directory did not answer');
        return config({ 0: [0] });
      },
      reconfigure: async () => {},
    });
    await expect(target.instances()).rejects.toThrow('directory did not answer');
    answers = true;
    expect((await target.instances()).map((i) => i.name)).toEqual(['acceptor-g0']);
    answers = false;
    expect((await target.instances()).map((i) => i.name)).toEqual(['acceptor-g0']);
  });

  it('scales acceptor groups by reconfiguring to the current count ± n (at least 1), the other roles through scale', async () => {
    const { cluster, scaled } = fakeCluster({ 'batcher-0': 'ready', 'batcher-1': 'ready' });
    const asked: number[] = [];
    const target = new LocalScaleTarget(cluster, {
      configuration: async () => config({ 0: [0, 1, 2], 2: [0, 1, 2] }),
      reconfigure: async (groups) => {
        asked.push(groups);
      },
    });
    await target.scaleOut('acceptor-group', 1);
    await target.scaleIn('acceptor-group', 1);
    await target.scaleIn('acceptor-group', 5);
    await target.scaleOut('batcher', 2);
    expect(asked).toEqual([3, 1, 1]);
    expect(scaled).toEqual(['batcher 4']);
  });
});
