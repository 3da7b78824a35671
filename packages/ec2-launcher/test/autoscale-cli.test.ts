import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type AutoscaleFlags, AwsCluster, autoscaleConfig, Ec2Launcher, UsageError } from '../src/index.ts';
import { FakeEc2 } from './fake-ec2.ts';
import { FakePrometheus } from './fake-prometheus.ts';
import { LAUNCH_CONFIG } from './fixtures.ts';

/**
 * `paxos-aws autoscale`, the built CLI as a process, against the stand-in EC2 Query API and a
 * stand-in Prometheus on 127.0.0.1.
 */
const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const DIR = mkdtempSync(path.join(tmpdir(), 'paxos-aws-autoscale-'));
const CAPACITY_FILE = path.join(DIR, 'capacity.json');
const ROLES = { messagesPerSecond: 1000, commandsPerSecond: 1000 };
writeFileSync(
  CAPACITY_FILE,
  JSON.stringify({ roles: { batcher: ROLES, 'proxy-leader': ROLES, unbatcher: ROLES, proposer: ROLES } }),
);

let ec2: FakeEc2;
let prometheus: FakePrometheus;
let endpoint = '';
let prometheusUrl = '';
beforeAll(async () => {
  ec2 = new FakeEc2();
  endpoint = await ec2.start();
  prometheus = new FakePrometheus(ec2);
  prometheusUrl = await prometheus.start();
});
afterAll(async () => {
  await ec2.stop();
  await prometheus.stop();
  rmSync(DIR, { recursive: true, force: true });
});
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

function env(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const all: Record<string, string | undefined> = {
    PATH: process.env.PATH ?? '',
    HOME: DIR,
    AWS_ENDPOINT_URL_EC2: endpoint,
    AWS_REGION: 'us-west-1',
    AWS_ACCESS_KEY_ID: 'AKIDPAXOSTEST',
    AWS_SECRET_ACCESS_KEY: 'not-a-real-secret',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_AMI: 'ami-0abcdef1234567890',
    AWS_SECURITY_GROUP: 'sg-0123456789abcdef0',
    CAPACITY_FILE,
    ...extra,
  };
  return Object.fromEntries(Object.entries(all).filter((e): e is [string, string] => e[1] !== undefined));
}

function run(args: string[], extraEnv: Record<string, string | undefined> = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [CLI, 'autoscale', ...args],
      { env: env(extraEnv), timeout: 30_000, cwd: DIR },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr: stderr.trim() });
      },
    );
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function until(what: string, check: () => boolean, timeoutMs = 40_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A cluster `name` with two of each scaled role, all running and scraped. */
async function upCluster(name: string): Promise<void> {
  const client = new EC2Client({
    region: 'us-west-1',
    endpoint,
    credentials: { accessKeyId: 'AKIDPAXOSTEST', secretAccessKey: 'not-a-real-secret' },
    maxAttempts: 1,
  });
  const launcher = new Ec2Launcher({ ...LAUNCH_CONFIG, cluster: name }, { ec2: client });
  await new AwsCluster(launcher, { log: () => {}, pollMs: 0 }).up({
    f: 1,
    groups: 1,
    proposers: 2,
    batchers: 2,
    proxyLeaders: 2,
    unbatchers: 2,
    batchSize: 40,
    keyPrefix: `${name}-1-`,
    directoryPollMs: 3000,
    logLevel: 'info',
    annaRouting: 'tcp://10.1.2.3:6450',
  });
  for (const role of ['batcher', 'proxy-leader', 'unbatcher']) setLoad(name, role, 1400);
}

/** `role` of cluster `name` handles `total` msg/s, shared by its running instances. */
function setLoad(name: string, role: string, total: number): void {
  const of = ec2.instances.filter(
    (i) => i.tags.get('paxos:cluster') === name && i.tags.get('paxos:role') === role,
  );
  const running = of.filter((i) => i.state === 'running');
  for (const i of of) {
    if (i.state === 'running') prometheus.rates.set(i.id, total / running.length);
    else prometheus.rates.delete(i.id);
  }
}

/** The RunInstances and TerminateInstances requests from `since` on. */
const requests = (action: string, since: number) =>
  ec2.requests.slice(since).filter((r) => r.action === action);

// Each test starts CLI processes, which load the AWS SDK: slow on a busy two-core machine.
describe('paxos-aws autoscale', { timeout: 90_000 }, () => {
  it('refuses bad flags, settings and files in one line, exit 2, before any AWS or Prometheus request', async () => {
    const busy: Server = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const busyPort = String((busy.address() as AddressInfo).port);
    const url = ['--prometheus-url', prometheusUrl];
    const requestsBefore = ec2.requests.length;
    const queriesBefore = prometheus.queries.length;
    // One of each kind (flag, setting, file, port, launcher setting); autoscaleConfig's own test
    // below goes through the rest.
    const cases: [string[], Record<string, string | undefined>, string][] = [
      [[], {}, "error: required option '--prometheus-url <url>' not specified"],
      [
        ['--prometheus-url', 'prometheus:9090'],
        {},
        `error: option '--prometheus-url <url>' argument 'prometheus:9090' is invalid. --prometheus-url must be an http(s) URL such as http://10.0.0.9:9090, got "prometheus:9090"`,
      ],
      [url, { AUTOSCALE_TOLERANCE: '1' }, 'error: AUTOSCALE_TOLERANCE: got "1", expected a number in [0, 1)'],
      [
        [...url, '--capacity-file', path.join(DIR, 'missing.json')],
        {},
        `error: ${path.join(DIR, 'missing.json')}: no capacity table; run \`pnpm bench:components\` (BENCH_CPU_QUOTA=… to match --cpu-quota) first`,
      ],
      [
        [...url, '--metrics-port', '70000'],
        {},
        `error: option '--metrics-port <n>' argument '70000' is invalid. --metrics-port must be a port in 0..65535, got "70000"`,
      ],
      [
        [...url, '--metrics-port', busyPort],
        {},
        `error: --metrics-host/--metrics-port: cannot listen on 127.0.0.1:${busyPort} (EADDRINUSE), expected a free port on an address of this machine`,
      ],
      [
        url,
        { AWS_AMI: undefined },
        'error: no AMI: pass --ami ami-… or set AWS_AMI (build one with infra/ami/build-ami.sh)',
      ],
      [
        [...url, '--ami', 'ubuntu'],
        {},
        'error: --ami must be ami- followed by 8 or 17 hex digits, got "ubuntu"',
      ],
    ];
    // A few at a time: each process loads the AWS SDK, and this machine may have two cores.
    const results: Awaited<ReturnType<typeof run>>[] = [];
    for (let i = 0; i < cases.length; i += 4) {
      results.push(...(await Promise.all(cases.slice(i, i + 4).map(([args, extra]) => run(args, extra)))));
    }
    await new Promise<void>((resolve) => busy.close(() => resolve()));
    for (const [i, r] of results.entries()) {
      expect({ case: i, code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
        case: i,
        code: 2,
        stdout: '',
        stderr: cases[i]?.[2],
      });
    }
    expect(ec2.requests.length).toBe(requestsBefore);
    expect(prometheus.queries.length).toBe(queriesBefore);
  });

  it('autoscaleConfig names each bad setting, capacity table, timeline and region in one line', async () => {
    const noRole = path.join(DIR, 'no-role.json');
    writeFileSync(noRole, JSON.stringify({ roles: { batcher: ROLES, unbatcher: ROLES } }));
    const flags = {
      prometheusUrl,
      prometheusJob: 'paxos',
      timeline: path.join(DIR, 'config-timeline.jsonl'),
      metricsPort: 0,
      metricsHost: '127.0.0.1',
      region: 'us-west-1',
    };
    const refused = async (f: Partial<AutoscaleFlags>, values: Record<string, string>) => {
      const err = await autoscaleConfig({ ...flags, ...f }, { CAPACITY_FILE, ...values }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(UsageError);
      return (err as Error).message;
    };
    expect(await refused({}, { AUTOSCALE_INTERVAL_MS: '15s' })).toBe(
      'AUTOSCALE_INTERVAL_MS: got "15s", expected an integer >= 100 (milliseconds)',
    );
    expect(await refused({}, { AUTOSCALE_STABILISATION_S: '60' })).toMatch(
      /^AUTOSCALE_STABILISATION_S: not a setting, expected one of AUTOSCALE_INTERVAL_MS, /,
    );
    expect(await refused({}, { AUTOSCALE_MIN_BATCHERS: '20' })).toBe(
      'AUTOSCALE_MIN_BATCHERS: got "20", expected an integer at most AUTOSCALE_MAX_BATCHERS (16)',
    );
    expect(await refused({}, { CAPACITY_FILE: noRole })).toBe(
      `${noRole}: roles.proxy-leader is missing (was \`pnpm bench:components\` run with BENCH_ROLES leaving it out?)`,
    );
    // The flag wins over CAPACITY_FILE.
    expect(await refused({ capacityFile: noRole }, {})).toMatch(/roles\.proxy-leader is missing/);
    const unwritable = path.join(DIR, 'no-such-dir', 't.jsonl');
    expect(await refused({ timeline: unwritable }, {})).toBe(
      `--timeline: cannot write "${unwritable}" (ENOENT), expected a writable file`,
    );
    expect(await refused({ region: 'mars' }, {})).toBe(
      'AWS region "mars" is not valid: expected e.g. us-west-1',
    );

    const ok = await autoscaleConfig(flags, { CAPACITY_FILE, AUTOSCALE_MAX_BATCHERS: '4' });
    expect(ok.settings).toMatchObject({ intervalMs: 15_000, stabilizationWindowMs: 300_000 });
    expect(ok.settings.bounds.batcher).toEqual({ min: 1, max: 4 });
    expect(ok.capacity.batcher).toEqual({ messagesPerSecond: 1000 });
  });

  it('runs the controller until SIGTERM: scales out on rising load, in on falling load, logs, timeline, metrics', async () => {
    await upCluster('live');
    const since = ec2.requests.length;
    const timeline = path.join(DIR, 'live-timeline.jsonl');
    const metricsPort = await freePort();
    const child = spawn(
      process.execPath,
      [
        CLI,
        'autoscale',
        '--cluster',
        'live',
        '--prometheus-url',
        prometheusUrl,
        '--timeline',
        timeline,
        '--metrics-port',
        String(metricsPort),
      ],
      {
        env: env({ AUTOSCALE_INTERVAL_MS: '200', AUTOSCALE_STABILIZATION_S: '0.6' }),
        cwd: DIR,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => {
      stdout += d;
    });
    child.stderr?.on('data', (d) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

    setLoad('live', 'batcher', 2000);
    await until('a RunInstances of batcher-2', () => requests('RunInstances', since).length === 1);
    const launched = ec2.byName('batcher-2');
    expect(launched?.tags.get('paxos:cluster')).toBe('live');
    // Up and sharing the load: nothing more to do.
    setLoad('live', 'batcher', 2000);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(requests('RunInstances', since)).toHaveLength(1);

    setLoad('live', 'batcher', 300);
    await until('a TerminateInstances', () => requests('TerminateInstances', since).length > 0);
    const [terminated] = [...(requests('TerminateInstances', since).at(-1)?.params ?? [])]
      .filter(([k]) => k.startsWith('InstanceId.'))
      .map(([, id]) => id);
    expect(terminated).toBe(launched?.id);

    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/^paxos_autoscaler_decisions_total\{role="batcher",direction="out"\} 1$/m);
    expect(metrics).toMatch(/^paxos_autoscaler_decisions_total\{role="batcher",direction="in"\} [1-9]$/m);

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stdout).toBe('');
    const logs = stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: number; msg: string });
    const decisions = logs.filter((l) => / → /.test(l.msg)).map((l) => l.msg);
    expect(decisions[0]).toMatch(
      /^autoscaler: batcher 2 → 3: load 2,000 msg\/s is 1\.43× the target of 2 × 700 msg\/s$/,
    );
    expect(decisions[1]).toMatch(/^autoscaler: batcher 3 → 2: /);
    // The period under way when the signal came may still finish (and log the instances it saw),
    // but no decision is taken after it.
    const stopAt = logs.findIndex((l) => l.msg === 'autoscaler: SIGTERM, stopping after the current period');
    expect(stopAt).toBeGreaterThan(0);
    expect(logs.slice(stopAt + 1).filter((l) => / → /.test(l.msg))).toEqual([]);
    expect(logs.filter((l) => l.level >= 50)).toEqual([]);
    const entries = readFileSync(timeline, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; role: string; direction: string });
    expect(entries.slice(0, 2)).toMatchObject([
      { event: 'decision', role: 'batcher', direction: 'out', from: 2, to: 3 },
      { event: 'decision', role: 'batcher', direction: 'in', from: 3, to: 2 },
    ]);
  });

  it('--dry-run prints the launch it would make, makes none, and sees it as booting after', async () => {
    await upCluster('dry');
    const since = ec2.requests.length;
    setLoad('dry', 'batcher', 2000);
    const child = spawn(
      process.execPath,
      [CLI, 'autoscale', '--dry-run', '--cluster', 'dry', '--prometheus-url', prometheusUrl],
      { env: env({ AUTOSCALE_INTERVAL_MS: '200' }), cwd: DIR, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(child);
    let stdout = '';
    child.stdout?.on('data', (d) => {
      stdout += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await until('a dry-run RunInstances', () => stdout.includes('[dry run] ec2:RunInstances '));
    // Several more periods: the would-be batcher-2 counts as starting, so no second launch.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    const printed = stdout.split('\n').filter((l) => l.startsWith('[dry run] '));
    expect(printed).toHaveLength(1);
    const request = JSON.parse(printed[0]?.slice('[dry run] ec2:RunInstances '.length) ?? '{}') as {
      TagSpecifications: { Tags: { Key: string; Value: string }[] }[];
    };
    expect(request.TagSpecifications[0]?.Tags).toContainEqual({ Key: 'Name', Value: 'dry_batcher-2' });
    expect(requests('RunInstances', since)).toHaveLength(0);
  });
});
