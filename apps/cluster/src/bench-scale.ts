/**
 * `pnpm bench:scale`: commands/s and p99 of a local cluster as the instances of one role grow
 * (proxy leaders, unbatchers, batchers, acceptor groups; 1 → N each, the others held at the base
 * shape), under closed-loop load from several generator processes. Each step also samples every
 * process's CPU over the measured window and names the bottleneck: the role whose busiest
 * process used the most CPU, or the load generator. Prints a table and a JSON document (also
 * written to bench-results/scale.json) and renders a chart; asserts nothing.
 *
 * Batchers, proxy leaders and unbatchers are added to one running cluster per role (as the
 * autoscaler does); acceptor groups cannot be, so each group count gets a cluster of its own.
 * BENCH_SHORT=1: proxy leaders 1 → 2, 2 s each (one cluster, about 15 s), to check the benchmark runs.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  type ClusterShapeFlags,
  clusterShapeOptions,
  DEFAULT_TOPOLOGY,
  integerArgument,
  jsonMode,
  type OutputFlags,
  outputOptions,
  type StatelessRole,
  withVersion,
} from '@paxos/launcher';
import { Command, InvalidArgumentError } from 'commander';
import {
  BENCH_SHORT,
  benchReport,
  benchSetting,
  printTable,
  publishBenchReport,
} from '../../../scripts/bench-report.ts';
import { renderSvg, scaleSpec } from './charts.ts';
import { type ClientProgress, runClientProcs } from './client-load.ts';
import { LocalCluster, sleep } from './cluster.ts';
import { cpuSnapshot, cpuUse } from './cpu.ts';
import {
  type Bottleneck,
  bottleneck,
  busiestByRole,
  SCALE_DIMENSIONS,
  type ScaleDimension,
  type TimedProgress,
  windowFigures,
} from './scale-figures.ts';

/** More generators than this would run into the ports the cluster keeps for processes it adds. */
const MAX_CLIENT_PROCS = 32;
/** Beyond this a cluster's ports leave the range from BASE_PORT that the benchmark keeps to. */
const MAX_INSTANCES = 16;

const ROLES_EXPECTED = `a comma-separated list of ${SCALE_DIMENSIONS.join(', ')}`;

/** The scaled roles named in `value`, or null when one is not a role `bench:scale` grows. */
function parseRoles(value: string): ScaleDimension[] | null {
  const roles = value.split(',').map((r) => r.trim());
  return roles.every((r) => (SCALE_DIMENSIONS as readonly string[]).includes(r))
    ? ([...new Set(roles)] as ScaleDimension[])
    : null;
}

function rolesArgument(value: string): ScaleDimension[] {
  const roles = parseRoles(value);
  if (roles === null) throw new InvalidArgumentError(`--roles must be ${ROLES_EXPECTED}, got "${value}"`);
  return roles;
}

/** BENCH_SCALE_ROLES, or `fallback` when unset; anything else is one line and exit 2. */
function rolesSetting(fallback: ScaleDimension[]): ScaleDimension[] {
  const raw = process.env.BENCH_SCALE_ROLES;
  if (raw === undefined || raw === '') return fallback;
  const roles = parseRoles(raw);
  if (roles === null) {
    console.error(`BENCH_SCALE_ROLES: expected ${ROLES_EXPECTED}, got "${raw}"`);
    process.exit(2);
  }
  return roles;
}

const cpus = os.cpus().length;
const program = clusterShapeOptions(
  new Command('bench:scale').description(
    'commands/s and p99 as the instances of each role grow, with the bottleneck role of each step',
  ),
)
  .option(
    '--max <n>',
    'instances of each scaled role go 1 → n (BENCH_SCALE_MAX)',
    integerArgument('--max', 1),
  )
  .option(
    '--roles <list>',
    `roles to scale, of ${SCALE_DIMENSIONS.join(', ')} (BENCH_SCALE_ROLES)`,
    rolesArgument,
  )
  .option('--clients <n>', 'closed-loop clients in all (BENCH_CLIENTS)', integerArgument('--clients', 1))
  .option(
    '--client-procs <n>',
    'load-generator processes, the clients split across them (BENCH_CLIENT_PROCS)',
    integerArgument('--client-procs', 1),
  )
  .option('--seconds <n>', 'measured seconds per step (BENCH_SECONDS)', integerArgument('--seconds', 1))
  .option(
    '--warmup <n>',
    'seconds of load before each measurement (BENCH_WARMUP_SECONDS)',
    integerArgument('--warmup', 0),
  )
  .option('--out <file>', 'the JSON document', 'bench-results/scale.json')
  .option('--chart <file>', 'the chart, SVG ("" for none; short runs: bench-results/scale.svg)')
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
outputOptions(withVersion(program, import.meta.url));
program.parse();
// -o json: the report is the only thing on stdout.
jsonMode(program.opts<OutputFlags>());
const flags = program.opts<
  ClusterShapeFlags & {
    max?: number;
    roles?: ScaleDimension[];
    clients?: number;
    clientProcs?: number;
    seconds?: number;
    warmup?: number;
    out: string;
    chart?: string;
  }
>();

const maxInstances = flags.max ?? benchSetting('BENCH_SCALE_MAX', BENCH_SHORT ? 2 : 4);
const roles = flags.roles ?? rolesSetting(BENCH_SHORT ? ['proxy-leaders'] : [...SCALE_DIMENSIONS]);
const defaultProcs = Math.min(8, Math.max(2, Math.floor(cpus / 4)));
const clientProcs = flags.clientProcs ?? benchSetting('BENCH_CLIENT_PROCS', defaultProcs);
const clients = flags.clients ?? benchSetting('BENCH_CLIENTS', BENCH_SHORT ? 32 : 64 * clientProcs);
const seconds = flags.seconds ?? benchSetting('BENCH_SECONDS', BENCH_SHORT ? 2 : 8);
const warmupS = flags.warmup ?? benchSetting('BENCH_WARMUP_SECONDS', BENCH_SHORT ? 1 : 2, 0);
/** Load a freshly started cluster gets before its first step, on top of the step's own warm-up. */
const freshWarmupS = BENCH_SHORT ? 0 : 5;
const basePort = benchSetting('BASE_PORT', 28400, 1024);
const chartFile = flags.chart ?? (BENCH_SHORT ? 'bench-results/scale.svg' : 'docs/charts/scale.svg');
for (const [name, value, max] of [
  ['BENCH_CLIENT_PROCS', clientProcs, MAX_CLIENT_PROCS],
  ['BENCH_SCALE_MAX', maxInstances, MAX_INSTANCES],
] as const) {
  if (value > max) {
    console.error(`${name}: expected an integer from 1 to ${max}, got "${value}"`);
    process.exit(2);
  }
}

const base = {
  batchers: flags.batchers,
  proxyLeaders: flags.proxyLeaders,
  unbatchers: flags.unbatchers,
  groups: flags.groups,
};
const SHAPE_FIELD = {
  'proxy-leaders': 'proxyLeaders',
  unbatchers: 'unbatchers',
  batchers: 'batchers',
  groups: 'groups',
} as const satisfies Record<ScaleDimension, keyof typeof base>;
const STATELESS: Partial<Record<ScaleDimension, StatelessRole>> = {
  'proxy-leaders': 'proxy-leader',
  unbatchers: 'unbatcher',
  batchers: 'batcher',
};

interface StepResult {
  /** The scaled role (`proxy-leaders`, `unbatchers`, `batchers`, `groups`). */
  role: ScaleDimension;
  instances: number;
  commandsPerSecond: number;
  p50Ms: number | null;
  p99Ms: number | null;
  p999Ms: number | null;
  acknowledged: number;
  seconds: number;
  /** The busiest process's role (`load generator` for a client process), its name and CPU (% of one core). */
  bottleneck: string | null;
  bottleneckProcess: string | null;
  bottleneckCpuPercent: number | null;
  /** Every role's busiest process and its CPU in the window. */
  busiest: Record<string, { process: string; cpuPercent: number }>;
  /** CPU of every process of the benchmark together, percent of the host's cores. */
  hostCpuPercent: number;
  roleProcesses: number;
}

let current: LocalCluster | null = null;
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    stopping = true;
    // Whatever this benchmark started goes with it.
    void (current?.down() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}

const workRoot = mkdtempSync(path.join(os.tmpdir(), 'paxos-bench-scale-'));
let clusterCount = 0;

async function withCluster<T>(shape: typeof base, run: (cluster: LocalCluster) => Promise<T>): Promise<T> {
  const cluster = new LocalCluster(
    {
      ...DEFAULT_TOPOLOGY,
      f: flags.f,
      ...shape,
      batchSize: flags.batchSize,
      logLevel: program.getOptionValueSource('logLevel') === 'cli' ? flags.logLevel : 'warn',
      keyPrefix: `scale${Date.now().toString(36)}-${clusterCount}-`,
      basePort,
      // Metrics ports just above the role ports, so the whole run keeps within a few hundred ports.
      metricsBasePort: basePort + 300,
    },
    path.join(workRoot, `cluster-${clusterCount++}`),
  );
  current = cluster;
  try {
    await cluster.up();
    // A cold cluster runs 20–30 % slower for its first seconds (JIT, heap sizing): without this,
    // each group count's first step (a fresh cluster) would be compared with warm ones.
    if (freshWarmupS > 0) {
      await runClientProcs(cluster, {
        clients,
        procs: Math.min(clientProcs, clients),
        durationS: freshWarmupS,
      });
    }
    return await run(cluster);
  } finally {
    await cluster.down();
    current = null;
  }
}

/** Until `count` instances of `role` answer /readyz (new ones register, then peers see them). */
async function waitReady(cluster: LocalCluster, role: StatelessRole, count: number): Promise<void> {
  const deadline = performance.now() + 60_000;
  for (;;) {
    const ready = (await cluster.phases()).filter((p) => p.role === role && p.phase === 'ready').length;
    if (ready >= count) break;
    if (performance.now() > deadline) throw new Error(`${count} ${role}s not ready within 60 s`);
    await sleep(100);
  }
  // Peers pick new members up at their next directory poll.
  await sleep(3 * DEFAULT_TOPOLOGY.directoryPollMs);
}

/** Load from the generators; CPU and figures over a window after the warm-up. */
async function measure(cluster: LocalCluster, role: ScaleDimension, instances: number): Promise<StepResult> {
  const lines: TimedProgress[][] = [];
  const firstLine: Promise<void>[] = [];
  const seen: (() => void)[] = [];
  const procs = Math.min(clientProcs, clients);
  for (let i = 0; i < procs; i++) {
    lines.push([]);
    firstLine.push(new Promise<void>((resolve) => seen.push(resolve)));
  }
  const run = runClientProcs(cluster, {
    clients,
    procs,
    // A safety net: the generators are stopped once the window is over.
    durationS: warmupS + seconds + 60,
    reportMs: 250,
    onLine: (line, proc) => {
      if (line.type !== 'progress') return;
      lines[proc]?.push({ at: performance.now(), line: line as ClientProgress });
      seen[proc]?.();
    },
  });
  // A generator that fails to start rejects `run`: do not wait for its first line then.
  await Promise.race([Promise.all(firstLine), run]);
  await sleep(warmupS * 1000);
  const processes = cluster.instances().map((i) => ({ name: i.name, role: i.role, pid: i.pid }));
  const before = cpuSnapshot(processes);
  const from = performance.now();
  await sleep(seconds * 1000);
  const to = performance.now();
  const after = cpuSnapshot(processes);
  // SIGINT: each generator prints its summary and exits (one that already exited is not there).
  for (let i = 0; i < procs; i++) {
    try {
      cluster.stopClient(i);
    } catch {
      // exited already
    }
  }
  await run;
  const windowS = (to - from) / 1000;
  const use = cpuUse(processes, before, after, windowS);
  const figures = windowFigures(lines, from, to);
  const top: Bottleneck | null = bottleneck(use);
  const total = use.reduce((n, u) => n + u.cpuPercent, 0);
  return {
    role,
    instances,
    commandsPerSecond: figures.commandsPerSecond,
    p50Ms: figures.p50Ms,
    p99Ms: figures.p99Ms,
    p999Ms: figures.p999Ms,
    acknowledged: figures.acknowledged,
    seconds: Math.round(windowS * 100) / 100,
    bottleneck: top?.role ?? null,
    bottleneckProcess: top?.process ?? null,
    bottleneckCpuPercent: top?.cpuPercent ?? null,
    busiest: busiestByRole(use),
    hostCpuPercent: Math.round((total / cpus) * 10) / 10,
    roleProcesses: processes.filter((p) => p.role !== 'client' && p.role !== 'directory').length,
  };
}

function describe(r: StepResult): string {
  const p99 = r.p99Ms === null ? '-' : `${r.p99Ms.toFixed(2)} ms`;
  return `${r.role} ${r.instances}: ${r.commandsPerSecond.toLocaleString('en-US')} commands/s, p99 ${p99}, bottleneck ${r.bottleneck ?? '-'} (${r.bottleneckCpuPercent ?? '-'} % of a core)`;
}

const results: StepResult[] = [];
const steps = Array.from({ length: maxInstances }, (_, i) => i + 1);
try {
  for (const role of roles) {
    if (stopping) break;
    const stateless = STATELESS[role];
    if (stateless !== undefined) {
      // One cluster, the role grown while it serves.
      await withCluster({ ...base, [SHAPE_FIELD[role]]: 1 }, async (cluster) => {
        for (const n of steps) {
          if (stopping) return;
          if (n > 1) {
            await cluster.scale(stateless, n);
            await waitReady(cluster, stateless, n);
          }
          const r = await measure(cluster, role, n);
          results.push(r);
          console.log(describe(r));
        }
      });
    } else {
      for (const n of steps) {
        if (stopping) break;
        await withCluster({ ...base, [SHAPE_FIELD[role]]: n }, async (cluster) => {
          const r = await measure(cluster, role, n);
          results.push(r);
          console.log(describe(r));
        });
      }
    }
  }
} finally {
  rmSync(workRoot, { recursive: true, force: true });
}

const report = benchReport('scale', {
  batchSize: flags.batchSize,
  f: flags.f,
  base,
  maxInstances,
  roles,
  clients,
  clientProcs: Math.min(clientProcs, clients),
  mode: 'closed' as const,
  warmupSeconds: warmupS,
  seconds,
  results,
});
mkdirSync(path.dirname(path.resolve(flags.out)), { recursive: true });
writeFileSync(path.resolve(flags.out), `${JSON.stringify(report, null, 2)}\n`);
if (chartFile !== '') {
  mkdirSync(path.dirname(path.resolve(chartFile)), { recursive: true });
  writeFileSync(path.resolve(chartFile), await renderSvg(scaleSpec(report)));
}

console.log(
  `\nScaling one role at a time (others at ${base.batchers} batchers, ${base.proxyLeaders} proxy leaders, ${base.unbatchers} unbatchers, ${base.groups} groups; f=${flags.f}, BATCH_SIZE=${flags.batchSize}); ${clients} closed-loop clients in ${report.clientProcs} load-generator processes; ${warmupS} s warm-up, ${seconds} s measured per step; ${cpus} CPUs\n`,
);
printTable(
  ['role', 'instances', 'commands/s', 'p50 ms', 'p99 ms', 'bottleneck', 'its CPU %', 'host CPU %'],
  results.map((r) => [
    r.role,
    r.instances,
    r.commandsPerSecond,
    r.p50Ms?.toFixed(2) ?? null,
    r.p99Ms?.toFixed(2) ?? null,
    r.bottleneck,
    r.bottleneckCpuPercent,
    r.hostCpuPercent,
  ]),
);
console.log(
  '\nbottleneck: the role whose busiest process used the most CPU in the window (load generator: a client process); its CPU % is of one core',
);
console.log(`written: ${path.resolve(flags.out)}${chartFile === '' ? '' : `, ${path.resolve(chartFile)}`}`);
publishBenchReport(report);
