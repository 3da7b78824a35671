import { EC2Client } from '@aws-sdk/client-ec2';
import { AnnaClient, AnnaError, Membership, startLocalAnna } from '@paxos/anna-client';
import { parseAcceptorName, parseMatchmakerName } from '@paxos/launcher';
import {
  liveById,
  readTargetConfiguration,
  readTargetMatchmakers,
  writeMatchmakerEpoch,
} from '@paxos/runtime';
import { afterEach } from 'vitest';
import { AwsCluster, Ec2Launcher, type Ec2ReconfigureOptions } from '../src/index.ts';
import { FakeEc2, type FakeInstance } from './fake-ec2.ts';
import { FakePrometheus } from './fake-prometheus.ts';
import { LAUNCH_CONFIG } from './fixtures.ts';

/**
 * Reconfiguring a cluster on EC2 with the real SDK client against the stand-in EC2, the real
 * local directory server (on 127.0.0.1, ports the test file gives) and a stand-in Prometheus. The
 * cluster's processes are played by `step()`, which runs at every wait of the operation: a
 * running acceptor or matchmaker instance registers in the directory; a leader (proposer-0)
 * serves the directory's target configuration a step later; the acceptors it dropped retire a
 * step after that; the proposers publish the directory's target matchmaker set (matchmakerEpoch)
 * a step after it appears, as the leader does once it has moved to it.
 */

export const SHAPE = {
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

/**
 * A harness per test, its directory on ports from `firstPort` up (two per test), torn down after
 * each test. Call at the top of a test file.
 */
export function useHarness(firstPort: number) {
  let nextPort = firstPort;
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  return () => harness(() => nextPort++, cleanups);
}

async function harness(port: () => number, cleanups: (() => Promise<void>)[]) {
  const ec2 = new FakeEc2();
  const endpoint = await ec2.start();
  cleanups.push(() => ec2.stop());
  const prometheus = new FakePrometheus(ec2);
  const prometheusUrl = await prometheus.start();
  cleanups.push(() => prometheus.stop());
  // A port of the range may be in use as an ephemeral one (an outgoing connection's): take the next.
  let anna: Awaited<ReturnType<typeof startLocalAnna>> | null = null;
  for (let attempt = 0; anna === null; attempt++) {
    try {
      anna = await startLocalAnna({ host: '127.0.0.1', routingPort: port(), storagePort: port() });
    } catch (err) {
      if (attempt >= 5 || !(err instanceof AnnaError) || err.code !== 'ADDRESS_IN_USE') throw err;
    }
  }
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
    /** Whether the proposers move to a target matchmaker set (publish it a step after it appears). */
    autoPublish: true,
    publishedVersion: 0,
    async publishMatchmakers() {
      const target = await readTargetMatchmakers(membership);
      if (target === null || !h.autoPublish || h.publishedVersion >= target.version) return;
      if (!events.includes(`matchmaker target ${target.version}`)) {
        events.push(`matchmaker target ${target.version}`);
        return;
      }
      const byId = await liveById(membership, 'Matchmakers');
      const addresses = target.ids.map((id) => byId.get(id) ?? `missing-${id}`);
      await writeMatchmakerEpoch(membership, { epoch: target.version, addresses });
      h.publishedVersion = target.version;
      events.push(`published ${target.ids.join(',')}`);
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
      for (const i of ec2.instances) {
        const name = i.tags.get('paxos:name') ?? '';
        const id = parseMatchmakerName(name);
        if (i.state !== 'running' || id === null || registered.has(name)) continue;
        await membership.register('Matchmakers', `${id}=tcp://${i.ip}:15000`);
        registered.add(name);
        events.push(`registered ${name}`);
      }
      await h.publishMatchmakers();
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
    addTerminated(name: string, role = 'acceptor') {
      const n = ec2.instances.length + 1;
      ec2.instances.push({
        id: `i-gone${String(n).padStart(8, '0')}`,
        ip: `10.9.1.${n}`,
        state: 'terminated',
        tags: new Map([
          ['paxos:cluster', LAUNCH_CONFIG.cluster],
          ['paxos:role', role],
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
