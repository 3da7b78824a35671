import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EC2Client } from '@aws-sdk/client-ec2';
import {
  parseAutoscalerSettings,
  policySettings,
  type ScaledRole,
  ScalingPolicy,
  type TickReport,
} from '@paxos/autoscaler';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { AwsCluster, Ec2Launcher, ec2Autoscaler, ec2Phase } from '../src/index.ts';
import { FakeEc2, type FakeRequest } from './fake-ec2.ts';
import { FakePrometheus } from './fake-prometheus.ts';
import { LAUNCH_CONFIG } from './fixtures.ts';

/**
 * The Controller of @paxos/autoscaler driving an AwsCluster through Ec2ScaleTarget, with the
 * real SDK client against the stand-in EC2 Query API and a stand-in Prometheus, both on
 * 127.0.0.1; each period is a `tick()` on a fake clock.
 */

const CAPACITY = {
  batcher: { messagesPerSecond: 1000 },
  'proxy-leader': { messagesPerSecond: 1000 },
  unbatcher: { messagesPerSecond: 1000 },
};
/** 2 of each scaled role; at 0.7 × 1000 msg/s per instance, 1,400 msg/s holds a role steady. */
const SHAPE = {
  f: 1,
  groups: 1,
  proposers: 2,
  batchers: 2,
  proxyLeaders: 2,
  unbatchers: 2,
  batchSize: 40,
  keyPrefix: 'demo-1-',
  directoryPollMs: 3000,
  logLevel: 'info',
  annaRouting: 'tcp://10.1.2.3:6450',
};
const STEADY = 1400;

interface LogLine {
  level: number;
  msg: string;
  error?: string;
  [key: string]: unknown;
}

const TMP = mkdtempSync(path.join(tmpdir(), 'paxos-ec2-autoscale-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** An AwsCluster over the real SDK client pointed at a stand-in EC2. */
function clusterAt(endpoint: string, cluster = LAUNCH_CONFIG.cluster): AwsCluster {
  const client = new EC2Client({
    region: 'us-west-1',
    endpoint,
    credentials: { accessKeyId: 'AKIDPAXOSTEST', secretAccessKey: 'not-a-real-secret' },
    maxAttempts: 1,
  });
  const launcher = new Ec2Launcher({ ...LAUNCH_CONFIG, cluster }, { ec2: client, sleep: async () => {} });
  return new AwsCluster(launcher, { log: () => {}, pollMs: 0, drainMs: 0, sleep: async () => {} });
}

async function startEc2(): Promise<{ ec2: FakeEc2; endpoint: string }> {
  const ec2 = new FakeEc2();
  const endpoint = await ec2.start();
  cleanups.push(() => ec2.stop());
  return { ec2, endpoint };
}

const param = (r: FakeRequest, tagKey: string) => {
  for (let i = 1; r.params.has(`TagSpecification.1.Tag.${i}.Key`); i++) {
    if (r.params.get(`TagSpecification.1.Tag.${i}.Key`) === tagKey)
      return r.params.get(`TagSpecification.1.Tag.${i}.Value`);
  }
  return null;
};

let timelines = 0;

async function harness(o: { batchers?: number; job?: string; env?: Record<string, string> } = {}) {
  const { ec2, endpoint } = await startEc2();
  const prometheus = new FakePrometheus(ec2);
  const prometheusUrl = await prometheus.start();
  cleanups.push(() => prometheus.stop());
  const cluster = clusterAt(endpoint);
  await cluster.up({ ...SHAPE, batchers: o.batchers ?? SHAPE.batchers });
  const launchedByUp = ec2.requests.filter((r) => r.action === 'RunInstances').length;
  // From here on as on EC2: an instance boots for a while, and shuts down for a while.
  ec2.launchState = 'pending';
  ec2.terminateState = 'shutting-down';

  const logs: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const settings = parseAutoscalerSettings({ AUTOSCALE_STABILIZATION_S: '60', ...o.env }, 'ec2');
  const timeline = path.join(TMP, `timeline-${timelines++}.jsonl`);
  let now = 0;
  const controller = ec2Autoscaler({
    cluster,
    prometheusUrl,
    ...(o.job === undefined ? {} : { job: o.job }),
    policy: new ScalingPolicy(policySettings(settings, CAPACITY)),
    intervalMs: settings.intervalMs,
    logger,
    timelineFile: timeline,
    clock: () => now,
    timeoutMs: 2000,
  });

  const nameOf = (id: string) => ec2.instances.find((i) => i.id === id)?.tags.get('paxos:name');
  const h = {
    ec2,
    endpoint,
    prometheus,
    cluster,
    logs,
    timeline,
    intervalMs: settings.intervalMs,
    now: () => now,
    /** One period, then the clock moves on by one interval. */
    async period(): Promise<TickReport> {
      const report = await controller.tick();
      now += settings.intervalMs;
      return report;
    },
    /** `role` handles `total` msg/s, shared by its running instances that Prometheus scrapes. */
    load(role: ScaledRole, total: number): void {
      const of = ec2.instances.filter((i) => i.tags.get('paxos:role') === role);
      for (const i of of) prometheus.rates.delete(i.id);
      const serving = of.filter(
        (i) => i.state === 'running' && !prometheus.notUp.has(i.id) && !prometheus.unscraped.has(i.id),
      );
      for (const i of serving) prometheus.rates.set(i.id, total / serving.length);
    },
    /** RunInstances requests since the cluster was up. */
    runs: () => ec2.requests.filter((r) => r.action === 'RunInstances').slice(launchedByUp),
    /** The names in each TerminateInstances request, in order. */
    terminations: () =>
      ec2.requests
        .filter((r) => r.action === 'TerminateInstances')
        .map((r) =>
          [...r.params].filter(([k]) => k.startsWith('InstanceId.')).map(([, id]) => nameOf(id) ?? id),
        ),
    phases: (report: TickReport, role: ScaledRole) =>
      report.instances.filter((i) => i.role === role).map((i) => `${i.name} ${i.phase}`),
    timelineEntries: () =>
      readFileSync(timeline, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
  for (const role of ['batcher', 'proxy-leader', 'unbatcher'] as const) h.load(role, STEADY);
  return h;
}

describe('ec2Phase', () => {
  it('maps EC2 states and Prometheus scrapes to the phases the policy counts', () => {
    expect(ec2Phase('pending', true)).toBe('starting');
    expect(ec2Phase('running', true)).toBe('ready');
    expect(ec2Phase('running', false)).toBe('starting');
    // Prometheus could not be asked: ready, with a load the policy reads as unreadable.
    expect(ec2Phase('running', null)).toBe('ready');
    expect(ec2Phase('shutting-down', true)).toBe('draining');
    expect(ec2Phase('stopping', null)).toBe('draining');
    expect(ec2Phase('stopped', null)).toBeNull();
  });
});

describe('autoscaling a cluster on EC2', () => {
  it("rising load launches the role with the cluster's settings, as `scale` does, without waiting for it", async () => {
    const h = await harness();
    h.load('batcher', 2000);
    const first = await h.period();
    expect(first.decisions).toMatchObject([{ role: 'batcher', direction: 'out', from: 2, to: 3 }]);
    const [run] = h.runs();
    expect(h.runs()).toHaveLength(1);
    expect(param(run as FakeRequest, 'paxos:name')).toBe('batcher-2');
    expect(param(run as FakeRequest, 'paxos:settings')).toBe(
      h.ec2.byName('batcher-0')?.tags.get('paxos:settings'),
    );
    // The period did not wait: the instance is still pending.
    expect(h.ec2.byName('batcher-2')?.state).toBe('pending');
    expect(h.logs.map((l) => l.msg)).toContain(
      'autoscaler: batcher 2 → 3: load 2,000 msg/s is 1.43× the target of 2 × 700 msg/s',
    );

    // `scale` on an identical cluster sends the very same request, but for its idempotency token.
    const twin = await startEc2();
    const twinCluster = clusterAt(twin.endpoint);
    await twinCluster.up(SHAPE);
    await twinCluster.scale('batcher', 3);
    const twinRun = twin.ec2.requests.filter((r) => r.action === 'RunInstances').at(-1) as FakeRequest;
    const withoutToken = (r: FakeRequest) =>
      Object.fromEntries([...r.params].filter(([k]) => k !== 'ClientToken'));
    expect(withoutToken(run as FakeRequest)).toEqual(withoutToken(twinRun));
    expect(Buffer.from(run?.params.get('UserData') ?? '', 'base64').toString()).toContain(
      'INSTANCE="batcher-2"',
    );
  });

  it('counts booting instances (pending, running but not scraped or not ready) as warming: no second launch for the same load', async () => {
    const h = await harness();
    h.load('batcher', 2000);
    await h.period();
    expect(h.runs()).toHaveLength(1);
    const booting = h.ec2.byName('batcher-2');
    if (booting === undefined) throw new Error('batcher-2 was not launched');

    const pending = await h.period();
    expect(h.phases(pending, 'batcher')).toEqual([
      'batcher-0 ready',
      'batcher-1 ready',
      'batcher-2 starting',
    ]);
    expect(h.logs.map((l) => l.msg)).toContain(
      'autoscaler: batcher 2 (+1 starting), proxy-leader 2, unbatcher 2',
    );
    // Running, but service discovery has not found it yet; then found, but its /metrics not up.
    booting.state = 'running';
    h.prometheus.unscraped.add(booting.id);
    expect(h.phases(await h.period(), 'batcher')).toContain('batcher-2 starting');
    h.prometheus.unscraped.delete(booting.id);
    h.prometheus.notUp.add(booting.id);
    expect(h.phases(await h.period(), 'batcher')).toContain('batcher-2 starting');
    expect(h.runs()).toHaveLength(1);
    // Scraped, but its /readyz says not yet (not registered, or no peers read): still warming.
    h.prometheus.notUp.delete(booting.id);
    h.prometheus.gauges.set(booting.id, new Map([['paxos_ready', 0]]));
    expect(h.phases(await h.period(), 'batcher')).toContain('batcher-2 starting');
    expect(h.runs()).toHaveLength(1);

    h.prometheus.gauges.delete(booting.id);
    h.load('batcher', 2000);
    const ready = await h.period();
    expect(h.phases(ready, 'batcher')).toEqual(['batcher-0 ready', 'batcher-1 ready', 'batcher-2 ready']);
    expect(ready.decisions).toEqual([]);
    expect(h.runs()).toHaveLength(1);
  });

  it('falling load, after the stabilization window, terminates the highest-numbered instance, one per period', async () => {
    const h = await harness({ batchers: 3 });
    h.load('batcher', 300);
    for (let t = 0; t < 60_000; t += h.intervalMs) await h.period();
    expect(h.terminations()).toEqual([]);

    const first = await h.period();
    expect(first.decisions).toMatchObject([{ role: 'batcher', direction: 'in', from: 3, to: 2 }]);
    expect(h.terminations()).toEqual([['batcher-2']]);
    h.load('batcher', 300);

    // Shutting down, it is no longer scraped: its load is unknown, so counted as a full
    // instance's; the next step comes a whole window after the last period that saw it.
    const second = await h.period();
    expect(second.now).toBe(75_000);
    expect(h.phases(second, 'batcher')).toEqual(['batcher-0 ready', 'batcher-1 ready', 'batcher-2 draining']);
    expect(second.decisions).toEqual([]);
    const drained = h.ec2.byName('batcher-2');
    if (drained !== undefined) drained.state = 'terminated';
    let third: TickReport;
    do third = await h.period();
    while (third.decisions.length === 0 && third.now < 300_000);
    expect(third.now).toBe(150_000);
    expect(third.decisions).toMatchObject([{ role: 'batcher', direction: 'in', from: 2, to: 1 }]);
    expect(h.terminations()).toEqual([['batcher-2'], ['batcher-1']]);
    h.load('batcher', 300);

    // At the minimum of one.
    for (let i = 0; i < 4; i++) await h.period();
    expect(h.terminations()).toEqual([['batcher-2'], ['batcher-1']]);
    expect(h.runs()).toEqual([]);
  });

  it('does not scale in while an instance of the role boots; does once it serves', async () => {
    const h = await harness();
    h.load('batcher', 200);
    await h.cluster.add('batcher', 1, { wait: false });
    const booting = h.ec2.byName('batcher-2');
    if (booting === undefined) throw new Error('batcher-2 was not launched');
    for (let i = 0; i < 4; i++) await h.period();
    booting.state = 'running';
    h.prometheus.notUp.add(booting.id);
    // Twice the stabilization window, still within the ready timeout.
    for (let i = 0; i < 5; i++) expect(h.phases(await h.period(), 'batcher')).toContain('batcher-2 starting');
    expect(h.terminations()).toEqual([]);

    h.prometheus.notUp.delete(booting.id);
    h.load('batcher', 200);
    const served = await h.period();
    expect(served.decisions).toMatchObject([{ role: 'batcher', direction: 'in', from: 3, to: 2 }]);
    expect(h.terminations()).toEqual([['batcher-2']]);
  });

  it('replaces an instance that never becomes ready: terminates it, launches another under a new name', async () => {
    const h = await harness();
    await h.cluster.add('batcher', 1, { wait: false });
    const stuck = h.ec2.byName('batcher-2');
    // Pending for the whole ready timeout (300 s on EC2), then one period more.
    while (h.now() <= 300_000) await h.period();
    expect(h.terminations()).toEqual([]);
    const report = await h.period();
    expect(report.decisions).toMatchObject([{ kind: 'replace', role: 'batcher', instance: 'batcher-2' }]);
    expect(h.terminations()).toEqual([['batcher-2']]);
    expect(stuck?.state).toBe('shutting-down');
    // batcher-2 is still shutting down, so the new one is batcher-3.
    expect(h.runs().map((r) => param(r, 'paxos:name'))).toEqual(['batcher-2', 'batcher-3']);
  });

  it('logs capacity and limit errors from RunInstances and retries with back-off, never crashing', async () => {
    const h = await harness();
    h.load('batcher', 2000);
    // [status, code, attempts]: the launcher retries 5xx and throttling 5 times, not a 400.
    const failures: [number, string, number][] = [
      [500, 'InsufficientInstanceCapacity', 5],
      [400, 'InstanceLimitExceeded', 1],
      [503, 'RequestLimitExceeded', 5],
    ];
    const runsPerPeriod: number[] = [];
    for (let p = 0; p < 8; p++) {
      if (p === 0 || p === 1 || p === 3) {
        const [status, code, attempts] = failures.shift() as [number, string, number];
        for (let i = 0; i < attempts; i++) h.ec2.failNext('RunInstances', status, code, `${code} (stand-in)`);
      }
      const before = h.runs().length;
      await h.period();
      runsPerPeriod.push(h.runs().length - before);
    }
    // Acting at 0 s, 15 s, then after 30 s and 60 s waits; a period in its wait does not try.
    expect(runsPerPeriod).toEqual([5, 1, 0, 5, 0, 0, 0, 1]);
    const errors = h.logs.filter((l) => l.level === 50);
    expect(errors.map((l) => l.msg)).toEqual(Array(3).fill('autoscaler: action failed'));
    expect(errors[0]?.error).toMatch(
      /^RunInstances: AWS has no capacity for m5\.2xlarge in this availability zone right now \(InsufficientInstanceCapacity\)/,
    );
    expect(errors[1]?.error).toMatch(
      /^RunInstances: the account's EC2 limit in us-west-1 is reached \(InstanceLimitExceeded\)/,
    );
    expect(errors[2]?.error).toMatch(
      /^RunInstances: EC2 kept throttling the request \(RequestLimitExceeded\) after 5 attempts/,
    );
    const failed = h.timelineEntries().filter((e) => e.event === 'action-failed');
    expect(failed.map((e) => e.retryInMs)).toEqual([15_000, 30_000, 60_000]);
    expect(h.ec2.instances.filter((i) => i.tags.get('paxos:role') === 'batcher')).toHaveLength(3);
  });

  it('scales on nothing while Prometheus cannot be reached, and restarts the scale-in window after', async () => {
    const h = await harness();
    // Enough load for a scale-out of batchers and little enough for a scale-in of unbatchers…
    h.load('batcher', 4000);
    h.load('unbatcher', 200);
    h.prometheus.unreachable = true;
    // …for longer than the stabilization window and the ready timeout.
    for (let i = 0; i < 25; i++) {
      const report = await h.period();
      expect(report.decisions).toEqual([]);
      expect(report.instances.every((x) => x.phase === 'ready')).toBe(true);
    }
    expect(h.runs()).toEqual([]);
    expect(h.terminations()).toEqual([]);
    const warnings = h.logs.filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.error).toMatch(/^Prometheus at http:\/\/127\.0\.0\.1:\d+ did not answer \(/);

    h.prometheus.unreachable = false;
    h.load('batcher', 1400);
    const periods: TickReport[] = [];
    for (let i = 0; i < 5; i++) periods.push(await h.period());
    expect(h.logs.map((l) => l.msg)).toContain('autoscaler: Prometheus answers again');
    // The low readings since Prometheus came back make a whole window only at the fifth period.
    expect(periods.map((p) => p.decisions.length)).toEqual([0, 0, 0, 0, 1]);
    expect(h.terminations()).toEqual([['unbatcher-1']]);
  });

  it("reads only its own cluster's processes from a Prometheus that watches several", async () => {
    const h = await harness();
    // Another cluster, its processes named the same, under heavy load.
    const other = clusterAt(h.endpoint, 'other');
    h.ec2.launchState = 'running';
    await other.up({ ...SHAPE, keyPrefix: 'other-1-' });
    for (const i of h.ec2.instances.filter((x) => x.tags.get('paxos:cluster') === 'other')) {
      h.prometheus.rates.set(i.id, 5000);
    }
    const report = await h.period();
    expect(report.decisions).toEqual([]);
    expect(report.instances).toHaveLength(6);
    expect(report.recommendations.find((r) => r.role === 'batcher')?.loadForScaleOut).toBe(STEADY);
  });

  it('replaces nothing when Prometheus does not watch the cluster (no `paxos_ready` series for any of its instances)', async () => {
    const h = await harness({ job: 'node' });
    // Past the ready timeout: read as "not up", every instance would have been replaced.
    for (let i = 0; i < 25; i++) await h.period();
    expect(h.runs()).toEqual([]);
    expect(h.terminations()).toEqual([]);
    const warnings = h.logs.filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.error).toContain(
      'no `paxos_ready{job="node",cluster="demo"}` series for any running instance of the cluster',
    );
  });
});
