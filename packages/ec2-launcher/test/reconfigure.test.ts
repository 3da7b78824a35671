import { parseAutoscalerSettings, policySettings, ScalingPolicy } from '@paxos/autoscaler';
import type { ConfigSpec } from '@paxos/core';
import { readTargetConfiguration } from '@paxos/runtime';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import {
  DirectoryUnreachableError,
  Ec2LaunchError,
  Ec2ScaleTarget,
  ec2Autoscaler,
  reconfigureEc2,
  replaceEc2,
  UsageError,
} from '../src/index.ts';
import type { FakeInstance } from './fake-ec2.ts';
import { useHarness } from './reconfigure-harness.ts';

/** Acceptor-group reconfiguration (see reconfigure-harness.ts); the directory on ports 22000–22199. */
const harness = useHarness(22000);

const groupsOf = (spec: ConfigSpec | null) => spec?.groups.map((g) => [g.groupId, g.acceptorIds]);

describe('aws scale acceptor-groups', () => {
  it('launches a new group, writes the target once its acceptors are registered, and reports it served', async () => {
    const h = await harness();
    const result = await reconfigureEc2({ groups: 3 }, h.options());

    expect(h.launched()).toEqual(['acceptor-g2-a0', 'acceptor-g2-a1', 'acceptor-g2-a2']);
    const target = await readTargetConfiguration(h.membership);
    expect(target).toEqual({
      version: 1,
      f: 1,
      groups: [
        { groupId: 0, acceptorIds: [0, 1, 2] },
        { groupId: 1, acceptorIds: [0, 1, 2] },
        { groupId: 2, acceptorIds: [0, 1, 2] },
      ],
    });
    expect(result.target).toEqual(target);
    expect(result.dropped).toEqual([]);
    expect(h.terminated()).toEqual([]);
    // Registered before the target, served after it.
    const at = (event: string) => h.events.indexOf(event);
    expect(at('registered acceptor-g2-a2')).toBeGreaterThanOrEqual(0);
    expect(at('registered acceptor-g2-a2')).toBeLessThan(
      at('target written: version 1: groups 0[0,1,2] 1[0,1,2] 2[0,1,2]'),
    );
    expect(at('target 1')).toBeLessThan(at('served 1'));
    // Each new acceptor boots as `up` starts one: a new log on the first boot, then existing.
    const userData = Buffer.from(
      h.ec2.requests
        .filter((r) => r.action === 'RunInstances')
        .at(-1)
        ?.params.get('UserData') ?? '',
      'base64',
    ).toString('utf8');
    for (const line of [
      'ACCEPTOR_GROUP_ID="2"',
      'ACCEPTOR_ID="2"',
      'ACCEPTOR_LOG_STATE="new"',
      'DATA_DIR="/var/lib/paxos"',
      'ANNA_KEY_PREFIX="demo-1-"',
      `ANNA_ROUTING="${h.anna.routingEndpoint}"`,
      'INSTANCE="acceptor-g2-a2"',
    ])
      expect(userData).toContain(line);
    expect(userData).toContain('s|^ACCEPTOR_LOG_STATE=.*$|ACCEPTOR_LOG_STATE="existing"|');
  });

  it('shrinks: terminates the dropped group only after a leader serves the target and they retired', async () => {
    const h = await harness();
    await reconfigureEc2({ groups: 3 }, h.options());
    h.events.length = 0;
    const requestsBefore = h.ec2.requests.length;
    const result = await reconfigureEc2({ groups: 1 }, h.options());

    expect(h.launched()).toHaveLength(3);
    expect(groupsOf(await readTargetConfiguration(h.membership))).toEqual([[0, [0, 1, 2]]]);
    expect(result.dropped).toEqual([
      'acceptor-g1-a0',
      'acceptor-g1-a1',
      'acceptor-g1-a2',
      'acceptor-g2-a0',
      'acceptor-g2-a1',
      'acceptor-g2-a2',
    ]);
    expect(h.terminated()).toEqual([result.dropped]);
    const terminateAt = h.ec2.requests.findIndex(
      (r, i) => i >= requestsBefore && r.action === 'TerminateInstances',
    );
    expect(terminateAt).toBeGreaterThan(requestsBefore);
    expect(h.events.filter((e) => e.startsWith('retired '))).toHaveLength(6);
    expect(h.events.indexOf('served 2')).toBeLessThan(h.events.indexOf('retired acceptor-g1-a0'));
    expect(h.events.at(-1)).toMatch(/^terminating acceptor-g1-a0 \(i-fake\d+\), /);
  });

  it('never reuses a group id: above terminated instances EC2 lists and groups the directory observed', async () => {
    const h = await harness();
    // Group 2 ran once and is terminated (EC2 lists it for about an hour); group 4 registered
    // once in the directory (EC2 no longer lists it).
    h.addTerminated('acceptor-g2-a0');
    await h.membership.register('AcceptorGroups', '4');
    await h.membership.register('4', '1=tcp://10.9.9.9:12000');
    await reconfigureEc2({ groups: 3 }, h.options());
    expect(h.launched()).toEqual(['acceptor-g5-a0', 'acceptor-g5-a1', 'acceptor-g5-a2']);
    expect(groupsOf(await readTargetConfiguration(h.membership))).toEqual([
      [0, [0, 1, 2]],
      [1, [0, 1, 2]],
      [5, [0, 1, 2]],
    ]);
  });

  it('times out in one line when no leader serves the target, and does not terminate anything', async () => {
    const h = await harness();
    h.autoServe = false;
    await expect(reconfigureEc2({ groups: 1 }, h.options({ timeoutMs: 5000 }))).rejects.toThrow(
      new Ec2LaunchError(
        'reconfiguration timed out after 5 s waiting for a leading proposer serving configuration version 1: the leader serves version 0',
        'ReconfigureTimeout',
      ),
    );
    expect(h.terminated()).toEqual([]);
  });

  it('refuses a number of groups below 1 or not an integer, before any request', async () => {
    const h = await harness();
    const before = h.ec2.requests.length;
    for (const groups of [0, -1, 1.5])
      await expect(reconfigureEc2({ groups }, h.options())).rejects.toThrow(
        new UsageError(`acceptor-groups must be an integer >= 1, got "${groups}"`),
      );
    expect(h.ec2.requests.length).toBe(before);
  });

  it('says so in one line when the directory does not answer', async () => {
    const h = await harness();
    const silent = 'tcp://127.0.0.1:22199';
    const err = await reconfigureEc2({ groups: 3 }, h.options({ annaRouting: silent })).catch((e) => e);
    expect(err).toBeInstanceOf(DirectoryUnreachableError);
    expect(err.message).toMatch(
      /^the directory at tcp:\/\/127\.0\.0\.1:22199 did not answer \(.+; answers go to 127\.0\.0\.1\): run `pnpm aws` where it can reach the directory instance's private address and be reached back \(inside the cluster's VPC\), or pass --anna-routing <endpoint> \/ --local-address <ip>$/,
    );
    expect(err.message).not.toContain('\n');
    expect(h.launched()).toEqual([]);
  }, 30_000);
});

describe('aws replace', () => {
  it('replaces an acceptor by name with a new id above every one its group had, then terminates it', async () => {
    const h = await harness();
    h.addTerminated('acceptor-g1-a3');
    const old = h.ec2.byName('acceptor-g1-a2') as FakeInstance;
    const result = await replaceEc2('acceptor-g1-a2', h.options());
    expect(h.launched()).toEqual(['acceptor-g1-a4']);
    expect(groupsOf(await readTargetConfiguration(h.membership))).toEqual([
      [0, [0, 1, 2]],
      [1, [0, 1, 4]],
    ]);
    expect(result).toMatchObject({ dropped: ['acceptor-g1-a2'] });
    expect(h.terminated()).toEqual([['acceptor-g1-a2']]);
    expect(old.state).toBe('terminated');
  });

  it('takes an instance id, and does not wait for a dropped acceptor Prometheus no longer scrapes', async () => {
    const h = await harness();
    const old = h.ec2.byName('acceptor-g0-a1') as FakeInstance;
    // Its process is down: it cannot answer the leader's Retire.
    h.prometheus.notUp.add(old.id);
    h.retireDropped = false;
    await replaceEc2(old.id, h.options());
    expect(h.launched()).toEqual(['acceptor-g0-a3']);
    expect(h.terminated()).toEqual([['acceptor-g0-a1']]);
  });

  it('refuses another role, an unknown instance and an acceptor not in the configuration', async () => {
    const h = await harness();
    await expect(replaceEc2('batcher-0', h.options())).rejects.toThrow(
      new UsageError(
        'batcher-0 is a batcher: `replace` takes an acceptor or a matchmaker (a batcher is replaced by `scale batcher` or the autoscaler)',
      ),
    );
    await expect(replaceEc2('i-0123456789abcdef0', h.options())).rejects.toThrow(
      new UsageError(
        'no instance i-0123456789abcdef0 in cluster demo: expected an instance id or a name (acceptor-g1-a2) that `pnpm aws status` lists',
      ),
    );
    await expect(replaceEc2('router-1', h.options())).rejects.toThrow(
      /^no instance named router-1 in cluster demo/,
    );
    await expect(replaceEc2('acceptor-g7-a0', h.options())).rejects.toThrow(
      new UsageError(
        'replace acceptor-g7-a0: acceptor 7/0 is not in the configuration (now version 0: groups 0[0,1,2] 1[0,1,2])',
      ),
    );
    expect(h.launched()).toEqual([]);
    expect(h.terminated()).toEqual([]);
  });
});

describe('the EC2 autoscaler on acceptor groups', () => {
  const CAPACITY = {
    batcher: { messagesPerSecond: 1000 },
    'proxy-leader': { messagesPerSecond: 1000 },
    unbatcher: { messagesPerSecond: 1000 },
    'acceptor-group': { messagesPerSecond: 1000 },
  };

  it('lists one instance per group of the configuration, its acceptors as members', async () => {
    const h = await harness();
    const target = new Ec2ScaleTarget({
      cluster: h.cluster,
      prometheusUrl: h.prometheusUrl,
      logger: pino({ level: 'silent' }),
      acceptorGroups: {
        configuration: async () => ({
          version: 3,
          f: 1,
          groups: [
            { groupId: 0, acceptorIds: [0, 1, 2] },
            { groupId: 1, acceptorIds: [0, 1, 3] },
          ],
        }),
        reconfigure: async () => {},
      },
    });
    expect(target.roles).toContain('acceptor-group');
    const groups = (await target.instances()).filter((i) => i.role === 'acceptor-group');
    // acceptor-g1-a3 has no instance: group 1 is ready with the members that run, read by name.
    expect(groups.map((g) => [g.name, g.phase, g.members?.map((m) => m.name)])).toEqual([
      ['acceptor-g0', 'ready', ['acceptor-g0-a0', 'acceptor-g0-a1', 'acceptor-g0-a2']],
      ['acceptor-g1', 'ready', ['acceptor-g1-a0', 'acceptor-g1-a1']],
    ]);
    expect(groups.flatMap((g) => g.members ?? []).every((m) => m.metricsUrl === null)).toBe(true);
    // A member still booting makes its group starting.
    const booting = h.ec2.byName('acceptor-g0-a1') as FakeInstance;
    h.prometheus.notUp.add(booting.id);
    expect((await target.instances()).find((i) => i.name === 'acceptor-g0')?.phase).toBe('starting');
  });

  it('turns a decision on acceptor groups into `scale acceptor-groups` (reconfigureEc2) of the cluster', async () => {
    const h = await harness();
    const asked: number[] = [];
    let now = 0;
    const controller = ec2Autoscaler({
      cluster: h.cluster,
      prometheusUrl: h.prometheusUrl,
      policy: new ScalingPolicy(policySettings(parseAutoscalerSettings({}, 'ec2'), CAPACITY)),
      intervalMs: 15_000,
      logger: pino({ level: 'silent' }),
      clock: () => now,
      acceptorGroups: {
        configuration: async () =>
          (await readTargetConfiguration(h.membership)) ?? {
            version: 0,
            f: 1,
            groups: [
              { groupId: 0, acceptorIds: [0, 1, 2] },
              { groupId: 1, acceptorIds: [0, 1, 2] },
            ],
          },
        reconfigure: async (groups) => {
          asked.push(groups);
          await reconfigureEc2({ groups }, h.options());
        },
      },
    });
    // Every acceptor at 1,400 msg/s: twice what 0.7 of one acceptor's capacity allows.
    for (const i of h.ec2.instances) {
      const role = i.tags.get('paxos:role');
      h.prometheus.rates.set(i.id, role === 'acceptor' ? 1400 : 700);
    }
    await controller.tick();
    // A reconfiguration runs beside the periods: wait until it has.
    for (let i = 0; i < 200 && (await readTargetConfiguration(h.membership))?.version !== 1; i++)
      await new Promise((resolve) => setTimeout(resolve, 10));
    now += 15_000;
    await controller.tick();
    expect(asked).toEqual([4]);
    expect(h.launched()).toEqual([2, 3].flatMap((g) => [0, 1, 2].map((a) => `acceptor-g${g}-a${a}`)));
    expect(groupsOf(await readTargetConfiguration(h.membership))).toEqual(
      [0, 1, 2, 3].map((g) => [g, [0, 1, 2]]),
    );
  });
});
