import { EC2Client } from '@aws-sdk/client-ec2';
import { AnnaClient, Membership, startLocalAnna } from '@paxos/anna-client';
import { parseAutoscalerSettings, policySettings, ScalingPolicy } from '@paxos/autoscaler';
import type { ConfigSpec } from '@paxos/core';
import { parseAcceptorName } from '@paxos/launcher';
import { readTargetConfiguration } from '@paxos/runtime';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AwsCluster,
  DirectoryUnreachableError,
  Ec2LaunchError,
  Ec2Launcher,
  type Ec2ReconfigureOptions,
  Ec2ScaleTarget,
  ec2Autoscaler,
  MATCHMAKER_REPLACE_REFUSAL,
  reconfigureEc2,
  replaceEc2,
  UsageError,
} from '../src/index.ts';
import { FakeEc2, type FakeInstance } from './fake-ec2.ts';
import { FakePrometheus } from './fake-prometheus.ts';
import { LAUNCH_CONFIG } from './fixtures.ts';

/**
 * Reconfiguring acceptor groups on EC2 with the real SDK client against the stand-in EC2, the
 * real local directory server (ports 33000–33199 on 127.0.0.1) and a stand-in Prometheus. The
 * cluster's processes are played by `step()`, which runs at every wait of the operation: a
 * running acceptor instance registers in the directory; a leader (proposer-0) serves the
 * directory's target a step later; the acceptors it dropped retire a step after that.
 */

const SHAPE = {
  f: 1,
  groups: 2,
  proposers: 2,
  batchers: 1,
  proxyLeaders: 1,
  unbatchers: 1,
  batchSize: 40,
  keyPrefix: 'demo-1-',
  directoryPollMs: 3000,
  logLevel: 'info',
};

let nextPort = 33000;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function harness() {
  const ec2 = new FakeEc2();
  const endpoint = await ec2.start();
  cleanups.push(() => ec2.stop());
  const prometheus = new FakePrometheus(ec2);
  const prometheusUrl = await prometheus.start();
  cleanups.push(() => prometheus.stop());
  const anna = await startLocalAnna({ host: '127.0.0.1', routingPort: nextPort++, storagePort: nextPort++ });
  cleanups.push(() => anna.close());
  const client = await AnnaClient.connect({ routing: anna.routingEndpoint, timeoutMs: 500, retries: 2 });
  cleanups.push(() => client.close());
  const membership = new Membership(client, { keyPrefix: SHAPE.keyPrefix });

  const launcher = new Ec2Launcher(
    { ...LAUNCH_CONFIG },
    {
      ec2: new EC2Client({
        region: 'us-west-1',
        endpoint,
        credentials: { accessKeyId: 'AKIDPAXOSTEST', secretAccessKey: 'not-a-real-secret' },
        maxAttempts: 1,
      }),
      sleep: async () => {},
    },
  );
  const cluster = new AwsCluster(launcher, { log: () => {}, pollMs: 0, drainMs: 0, sleep: async () => {} });
  await cluster.up({ ...SHAPE, annaRouting: anna.routingEndpoint });
  const launchedByUp = ec2.requests.filter((r) => r.action === 'RunInstances').length;

  const events: string[] = [];
  const registered = new Set<string>();
  const gauge = (i: FakeInstance, metric: string, value: number) => {
    const gauges = prometheus.gauges.get(i.id) ?? new Map<string, number>();
    gauges.set(metric, value);
    prometheus.gauges.set(i.id, gauges);
  };
  const named = (name: string) => ec2.byName(name) as FakeInstance;
  const h = {
    ec2,
    anna,
    prometheus,
    prometheusUrl,
    membership,
    cluster,
    events,
    /** What the cluster's processes do between two reads of the operation. */
    autoServe: true,
    served: 0,
    retireDropped: true,
    async register(name: string) {
      const identity = parseAcceptorName(name);
      if (identity === null) throw new Error(name);
      await membership.register('AcceptorGroups', String(identity.groupId));
      await membership.register(`${identity.groupId}`, `${identity.acceptorId}=tcp://10.9.0.1:12000`);
      registered.add(name);
    },
    async step() {
      for (const i of ec2.instances) {
        const name = i.tags.get('paxos:name') ?? '';
        if (i.state !== 'running' || i.tags.get('paxos:role') !== 'acceptor' || registered.has(name))
          continue;
        await h.register(name);
        gauge(i, 'paxos_acceptor_retired', 0);
        events.push(`registered ${name}`);
      }
      const target = await readTargetConfiguration(membership);
      if (target === null || !h.autoServe) return;
      if (h.served < target.version) {
        // The leader moves a step after the target appears (the proposers poll the directory).
        if (!events.includes(`target ${target.version}`)) {
          events.push(`target ${target.version}`);
          return;
        }
        h.served = target.version;
        gauge(named('proposer-0'), 'is_leader', 1);
        gauge(named('proposer-0'), 'paxos_configuration_version', target.version);
        gauge(named('proposer-1'), 'is_leader', 0);
        events.push(`served ${target.version}`);
        return;
      }
      if (!h.retireDropped) return;
      const live = new Set(
        target.groups.flatMap((g) => g.acceptorIds.map((a) => `acceptor-g${g.groupId}-a${a}`)),
      );
      for (const i of ec2.instances) {
        const name = i.tags.get('paxos:name') ?? '';
        if (i.tags.get('paxos:role') !== 'acceptor' || live.has(name) || i.state !== 'running') continue;
        if (prometheus.gauges.get(i.id)?.get('paxos_acceptor_retired') === 1) continue;
        gauge(i, 'paxos_acceptor_retired', 1);
        events.push(`retired ${name}`);
      }
    },
    options(extra: Partial<Ec2ReconfigureOptions> = {}): Ec2ReconfigureOptions {
      let now = 0;
      return {
        cluster,
        prometheusUrl,
        pollMs: 1000,
        timeoutMs: 20_000,
        clock: () => now,
        sleep: async (ms) => {
          now += ms;
          await h.step();
        },
        log: (line) => events.push(line),
        ...extra,
      };
    },
    /** The paxos names of the instances RunInstances started since `up`. */
    launched: () =>
      ec2.requests
        .filter((r) => r.action === 'RunInstances')
        .slice(launchedByUp)
        .map((r) => {
          for (let i = 1; r.params.has(`TagSpecification.1.Tag.${i}.Key`); i++)
            if (r.params.get(`TagSpecification.1.Tag.${i}.Key`) === 'paxos:name')
              return r.params.get(`TagSpecification.1.Tag.${i}.Value`);
          return null;
        }),
    /** The names in each TerminateInstances request, in order. */
    terminated: () =>
      ec2.requests
        .filter((r) => r.action === 'TerminateInstances')
        .map((r) =>
          [...r.params]
            .filter(([k]) => k.startsWith('InstanceId.'))
            .map(([, id]) => ec2.instances.find((i) => i.id === id)?.tags.get('paxos:name')),
        ),
    /** A terminated instance EC2 still lists, as one an earlier reconfiguration left. */
    addTerminated(name: string) {
      const n = ec2.instances.length + 1;
      ec2.instances.push({
        id: `i-gone${String(n).padStart(8, '0')}`,
        ip: `10.9.1.${n}`,
        state: 'terminated',
        tags: new Map([
          ['paxos:cluster', LAUNCH_CONFIG.cluster],
          ['paxos:role', 'acceptor'],
          ['paxos:name', name],
          ['Name', `${LAUNCH_CONFIG.cluster}_${name}`],
        ]),
      });
    },
  };
  // The genesis acceptors are registered and serving, the leader in version 0.
  await h.step();
  gauge(named('proposer-0'), 'is_leader', 1);
  gauge(named('proposer-0'), 'paxos_configuration_version', 0);
  events.length = 0;
  return h;
}

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
    const silent = 'tcp://127.0.0.1:33199';
    const err = await reconfigureEc2({ groups: 3 }, h.options({ annaRouting: silent })).catch((e) => e);
    expect(err).toBeInstanceOf(DirectoryUnreachableError);
    expect(err.message).toMatch(
      /^the directory at tcp:\/\/127\.0\.0\.1:33199 did not answer \(.+; answers go to 127\.0\.0\.1\): run `pnpm aws` where it can reach the directory instance's private address and be reached back \(inside the cluster's VPC\), or pass --anna-routing <endpoint> \/ --local-address <ip>$/,
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
    expect(result.dropped).toEqual(['acceptor-g1-a2']);
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

  it('refuses a matchmaker, another role, an unknown instance and an acceptor not in the configuration', async () => {
    const h = await harness();
    const before = h.ec2.requests.length;
    await expect(replaceEc2('matchmaker-1', h.options())).rejects.toThrow(
      new UsageError(MATCHMAKER_REPLACE_REFUSAL),
    );
    expect(h.ec2.requests.length).toBe(before);
    expect(MATCHMAKER_REPLACE_REFUSAL).toMatch(/^replacing a matchmaker on EC2: .*not yet/);
    const matchmaker = h.ec2.byName('matchmaker-0') as FakeInstance;
    await expect(replaceEc2(matchmaker.id, h.options())).rejects.toThrow(
      new UsageError(MATCHMAKER_REPLACE_REFUSAL),
    );
    await expect(replaceEc2('batcher-0', h.options())).rejects.toThrow(
      new UsageError(
        'batcher-0 is a batcher: `replace` takes an acceptor (a batcher is replaced by `scale batcher` or the autoscaler)',
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
