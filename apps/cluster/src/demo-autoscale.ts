/**
 * `pnpm demo:autoscale`: a local cluster whose stateless role processes are capped to a small
 * CPU quota (so one machine stands in for many small instances), the autoscaler beside it, and an
 * open-loop load that ramps up about 8×, holds, spikes and falls back. Prints each decision as it
 * happens and a line per second; at the end the reaction times, the instance-seconds used against
 * an ideal and the commands lost (acknowledgements checked against the acceptors' logs), and
 * writes the timeline (JSON) and a chart (SVG).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AutoscalerSettingsError,
  CapacityError,
  type Controller,
  describeDecision,
  describeInstances,
  loadCapacity,
  type ObservedInstance,
  PROCESS_ROLES,
  type ProcessRole,
  parseAutoscalerSettings,
} from '@paxos/autoscaler';
import { PROFILE_EXPECTED, type ProfilePoint, parseProfile } from '@paxos/client/profile';
import {
  cpuQuotaArgument,
  DEFAULT_TOPOLOGY,
  integerArgument as integer,
  jsonMode,
  type OutputFlags,
  outputOptions,
  printJson,
  withVersion,
} from '@paxos/launcher';
import { Command, InvalidArgumentError } from 'commander';
import { chosenFromLogs, readAcks, unchosenAcks } from './ack-check.ts';
import { LocalScaleTarget, startLocalAutoscaler } from './autoscale.ts';
import {
  type AutoscaleFigures,
  autoscaleFigures,
  type RoleCount,
  type TimedDecision,
  type TimelineSecond,
} from './autoscale-report.ts';
import { autoscaleSpec, renderSvg } from './charts.ts';
import { type ClientLine, LocalCluster } from './cluster.ts';

interface DemoFlags extends OutputFlags {
  dir: string;
  basePort: number;
  cpuQuota: number;
  profile?: string;
  peak: number;
  maxRate: number;
  clients: number;
  out: string;
  chart: string;
  p99TargetMs: number;
  keep?: boolean;
}

const DIST = path.dirname(fileURLToPath(import.meta.url));

function positiveNumber(flag: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!/^\d+(\.\d+)?$/.test(v) || !(n > 0))
      throw new InvalidArgumentError(`${flag} must be a number > 0, got "${v}"`);
    return n;
  };
}

const program = new Command('demo:autoscale')
  .description(
    'A local cluster under an open-loop load that ramps up, holds, spikes and falls; the autoscaler scales the stateless roles out and back in.',
  )
  .option('--dir <path>', 'working directory (logs, acceptor data, timeline)', '.cluster-autoscale')
  .option('--base-port <n>', 'first port of the cluster', integer('--base-port', 1024), 23000)
  .option(
    '--cpu-quota <cores>',
    'cores each batcher, proxy leader and unbatcher may use',
    cpuQuotaArgument('--cpu-quota'),
    0.05,
  )
  .option(
    '--profile <points>',
    'the load, as LOAD_PROFILE points t:rate (default: derived from the capacity table so the peak needs about 4 instances of the busiest role)',
  )
  .option(
    '--peak <n>',
    'instances of the busiest role the default profile’s hold needs',
    integer('--peak', 2),
    4,
  )
  .option(
    '--max-rate <n>',
    'the highest rate (commands/s) the default profile reaches, so the cluster’s uncapped roles and this machine keep up',
    integer('--max-rate', 100),
    4000,
  )
  .option('--clients <n>', 'clients the open-loop load is spread over', integer('--clients', 1), 32)
  .option('--out <file>', 'the timeline and figures, JSON', 'bench-results/autoscale.json')
  .option('--chart <file>', 'the chart, SVG ("" for none)', 'docs/charts/autoscale.svg')
  .option(
    '--p99-target-ms <ms>',
    'the latency p99 the reaction is measured against (a capped process waits out the rest of a 100 ms period once its quota is used, so a healthy p99 is a few hundred ms)',
    positiveNumber('--p99-target-ms'),
    500,
  )
  .option('--keep', 'keep the working directory afterwards')
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));

outputOptions(withVersion(program, import.meta.url));

program.action(async (flags: DemoFlags) => {
  // -o json: the summary is the only thing on stdout.
  const json = jsonMode(flags);
  const workDir = path.resolve(flags.dir);
  const capacityFile = path.resolve(
    process.env.CAPACITY_FILE ?? `bench-results/capacity-cpu-${flags.cpuQuota}.json`,
  );
  let settings: ReturnType<typeof parseAutoscalerSettings>;
  try {
    settings = parseAutoscalerSettings({ ...process.env, CAPACITY_FILE: capacityFile }, 'local');
  } catch (err) {
    if (err instanceof AutoscalerSettingsError) fail(err.message);
    throw err;
  }
  // A profile given by hand is checked before anything is measured or started.
  if (flags.profile !== undefined) parsedProfileOrExit(flags.profile);
  if (!existsSync(capacityFile)) measureCapacity(flags.cpuQuota, capacityFile);
  let capacity: Awaited<ReturnType<typeof loadCapacity>>;
  try {
    capacity = await loadCapacity(capacityFile);
  } catch (err) {
    if (err instanceof CapacityError) fail(err.message);
    throw err;
  }
  const commandsPerSecond = readCommandsPerSecond(capacityFile);
  const profile = flags.profile ?? defaultProfile(commandsPerSecond, settings, flags.peak, flags.maxRate);
  const points = parsedProfileOrExit(profile);
  const durationS = Math.ceil(points.at(-1)?.t ?? 0);

  rmSync(workDir, { recursive: true, force: true });
  const minimum = Object.fromEntries(PROCESS_ROLES.map((r) => [r, settings.bounds[r].min])) as Record<
    ProcessRole,
    number
  >;
  const cluster = new LocalCluster(
    {
      ...DEFAULT_TOPOLOGY,
      basePort: flags.basePort,
      batchers: minimum.batcher,
      proxyLeaders: minimum['proxy-leader'],
      unbatchers: minimum.unbatcher,
      logLevel: 'warn',
      keyPrefix: `autoscale${Date.now().toString(36)}-`,
    },
    workDir,
    undefined,
    { cpuQuota: flags.cpuQuota, cpuQuotaRoles: PROCESS_ROLES },
  );
  let controller: Controller | null = null;
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    await controller?.stop();
    await cluster.down();
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(130));
  process.on('SIGTERM', () => void stop(143));

  console.log(`Capacity per instance (${capacityFile}):`);
  for (const role of PROCESS_ROLES) {
    console.log(
      `  ${role.padEnd(13)} ${Math.round(capacity[role].messagesPerSecond).toLocaleString('en-US').padStart(8)} msg/s  ${Math.round(commandsPerSecond[role]).toLocaleString('en-US').padStart(8)} commands/s`,
    );
  }
  console.log(
    `Rule: desired = ceil(load / (capacity × ${settings.targetUtilization})), ±${settings.tolerance * 100} % tolerance; scale-in after ${settings.stabilizationWindowMs / 1000} s of lower recommendations; every ${settings.intervalMs / 1000} s`,
  );
  console.log(`Load profile (t s : commands/s): ${profile}`);
  try {
    await cluster.up();
  } catch (err) {
    console.error(`Could not start the cluster: ${(err as Error).message}`);
    await stop(1);
    return;
  }
  console.log(`CPU: ${cluster.cpuQuotaInForce()}`);
  console.log(`Cluster ready; logs in ${path.join(workDir, 'logs')}\n`);

  const decisions: TimedDecision[] = [];
  let loadStartedAt: number | null = null;
  const sinceLoad = () => (loadStartedAt === null ? 0 : (performance.now() - loadStartedAt) / 1000);
  controller = startLocalAutoscaler(
    cluster,
    { settings, capacity },
    {
      onEvent: (e) => {
        const t = Math.round(sinceLoad() * 10) / 10;
        if (e.event === 'decision') {
          decisions.push({ t, decision: e });
          console.log(
            `  ${t.toFixed(1).padStart(6)} s  ${e.kind === 'replace' ? '⟳' : e.direction === 'out' ? '↑' : '↓'} ${describeDecision(e)}`,
          );
        } else console.log(`  ${t.toFixed(1).padStart(6)} s  ! ${e.role}: ${e.action} failed: ${e.error}`);
      },
    },
  );

  // Its timeline counts the process roles (PROCESS_ROLES), so no configuration is read for it.
  const target = new LocalScaleTarget(cluster, { acceptorGroups: false });
  const seconds: TimelineSecond[] = [];
  const acksFile = path.join(workDir, 'acks.csv');
  loadStartedAt = performance.now();
  let summary: Extract<ClientLine, { type: 'summary' }>;
  try {
    summary = await cluster.runClient({
      clients: flags.clients,
      loadProfile: profile,
      durationS,
      drainS: 15,
      acksFile,
      reportMs: 1000,
      onLine: (line) => {
        if (line.type !== 'progress') return;
        void target.instances().then((instances) => {
          const second: TimelineSecond = {
            t: Math.round(line.elapsedS),
            offered: line.offered,
            throughput: line.rate,
            p50Ms: line.p50Ms,
            p99Ms: line.p99Ms,
            instances: countByRole(instances),
          };
          seconds.push(second);
          console.log(
            `${String(second.t).padStart(4)} s  offered ${fmt(second.offered).padStart(6)}/s  acknowledged ${fmt(second.throughput).padStart(6)}/s  p50 ${ms(second.p50Ms)}  p99 ${ms(second.p99Ms)}  | ${describeInstances(instances)}`,
          );
        });
      },
    });
  } catch (err) {
    console.error(`Load generator failed: ${(err as Error).message}`);
    await stop(1);
    return;
  }
  await controller.stop();
  controller = null;
  await cluster.down();

  const acks = readAcks(acksFile);
  const lost = unchosenAcks(acks, chosenFromLogs(workDir, DEFAULT_TOPOLOGY.f)).length;
  const unacknowledged = summary.submitted - summary.acknowledged;
  const { p99TargetMs } = flags;
  const figures = autoscaleFigures({
    seconds,
    decisions,
    profile: points,
    commandsPerSecond,
    targetUtilization: settings.targetUtilization,
    minimum,
    p99TargetMs,
  });
  const report = {
    benchmark: 'autoscale',
    date: new Date().toISOString(),
    cpuQuota: flags.cpuQuota,
    profile,
    settings,
    capacity: {
      file: capacityFile,
      commandsPerSecond,
      messagesPerSecond: Object.fromEntries(PROCESS_ROLES.map((r) => [r, capacity[r].messagesPerSecond])),
    },
    p99TargetMs,
    summary: { ...summary, lost, unacknowledged },
    figures,
    seconds,
    decisions,
  };
  mkdirSync(path.dirname(path.resolve(flags.out)), { recursive: true });
  writeFileSync(path.resolve(flags.out), `${JSON.stringify(report, null, 2)}\n`);
  if (flags.chart !== '') {
    mkdirSync(path.dirname(path.resolve(flags.chart)), { recursive: true });
    writeFileSync(path.resolve(flags.chart), await renderSvg(autoscaleSpec(report)));
  }
  printFigures(figures, { lost, unacknowledged, summary, p99TargetMs, settings });
  console.log(
    `\nTimeline: ${path.resolve(flags.out)}${flags.chart === '' ? '' : `; chart: ${path.resolve(flags.chart)}`}`,
  );
  const summaryDocument = { type: 'autoscale-summary', lost, unacknowledged, ...figures };
  if (json) printJson(summaryDocument);
  else console.log(JSON.stringify(summaryDocument));
  if (flags.keep !== true) rmSync(workDir, { recursive: true, force: true });
  process.exit(lost === 0 && unacknowledged === 0 ? 0 : 1);
});

/**
 * Low for 30 s (the controller settles on what the low load needs) → ramp to 8× over 60 s → hold
 * 30 s → a spike to 12× for 15 s → back to 8× → ramp down to low over 30 s → low for two
 * stabilization windows, so the cluster can get back to where it started. The hold needs `peak`
 * instances of the busiest role at the target utilization, and the spike stays under `maxRate`.
 */
function defaultProfile(
  commandsPerSecond: Readonly<Record<ProcessRole, number>>,
  settings: { targetUtilization: number; stabilizationWindowMs: number },
  peak: number,
  maxRate: number,
): string {
  const weakest = Math.min(...PROCESS_ROLES.map((r) => commandsPerSecond[r]));
  const hold = Math.floor(Math.min(weakest * settings.targetUtilization * (peak - 0.5), maxRate / 1.5));
  const low = Math.floor(hold / 8);
  const spike = Math.floor(hold * 1.5);
  // Each step in waits until the window holds no recommendation as high as the new size, which
  // the ramp down can push out by another window.
  const tail = 170 + 2 * Math.ceil(settings.stabilizationWindowMs / 1000) + 15;
  return `0:${low},30:${low},90:${hold},120:${hold},121:${spike},135:${spike},136:${hold},140:${hold},170:${low},${tail}:${low}`;
}

/** Runs `bench:components` for the scaled roles under the quota, writing the capacity table. */
function measureCapacity(cpuQuota: number, file: string): void {
  console.log(
    `No capacity table at ${file}: measuring each scaled role under a ${cpuQuota}-core quota (about a minute)…`,
  );
  const result = spawnSync(process.execPath, [path.join(DIST, 'bench-components.js')], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      BENCH_SHORT: '1',
      BENCH_ROLES: PROCESS_ROLES.join(','),
      BENCH_CPU_QUOTA: String(cpuQuota),
      CAPACITY_FILE: file,
      BENCH_OUT_DIR: path.join(path.dirname(file), 'autoscale-capacity'),
    },
  });
  if (result.status !== 0) fail(`measuring the capacity failed (bench:components exited ${result.status})`);
}

function readCommandsPerSecond(file: string): Record<ProcessRole, number> {
  const json = JSON.parse(readFileSync(file, 'utf8')) as {
    roles: Record<string, { commandsPerSecond: number }>;
  };
  return Object.fromEntries(PROCESS_ROLES.map((r) => [r, json.roles[r]?.commandsPerSecond ?? 0])) as Record<
    ProcessRole,
    number
  >;
}

function countByRole(instances: readonly ObservedInstance[]): Record<ProcessRole, RoleCount> {
  return Object.fromEntries(
    PROCESS_ROLES.map((role) => {
      const of = instances.filter((i) => i.role === role);
      const n = (phase: ObservedInstance['phase']) => of.filter((i) => i.phase === phase).length;
      return [role, { ready: n('ready'), starting: n('starting'), draining: n('draining') }];
    }),
  ) as Record<ProcessRole, RoleCount>;
}

function printFigures(
  f: AutoscaleFigures,
  o: {
    lost: number;
    unacknowledged: number;
    summary: Extract<ClientLine, { type: 'summary' }>;
    p99TargetMs: number;
    settings: { stabilizationWindowMs: number };
  },
): void {
  const s = (x: number | null) => (x === null ? 'never' : `${x.toFixed(1)} s`);
  console.log('\nReaction to each sudden rise of the load (goals: serving ≤ 10 s, p99 back ≤ 15 s)');
  console.log(
    `${'load step'.padEnd(28)} ${'decision'.padStart(9)} ${'serving'.padStart(9)} ${`p99 ≤ ${Math.round(o.p99TargetMs)} ms`.padStart(13)}`,
  );
  for (const r of f.reactions) {
    const step = `${r.step.t} s: ${fmt(r.step.from)} → ${fmt(r.step.to)}/s`;
    console.log(
      `${step.padEnd(28)} ${s(r.decisionS).padStart(9)} ${s(r.servingS).padStart(9)} ${s(r.p99BackS).padStart(13)}`,
    );
  }
  const rows: [string, string][] = [
    ['decisions', `${f.decisions.out} out, ${f.decisions.in} in, ${f.decisions.replace} replaced`],
    ['peak instances', PROCESS_ROLES.map((r) => `${r} ${f.peakInstances[r]}`).join(', ')],
    [
      'instance-seconds',
      `${f.instanceSeconds.used} used, ${f.instanceSeconds.ideal} ideal (${f.instanceSeconds.ratio}×)`,
    ],
    [
      'back at the floor',
      `${s(f.backAtFloorS)} after the load fell (every role at its minimum; window ${o.settings.stabilizationWindowMs / 1000} s); at its size before the rise: ${s(f.backAtStartS)}`,
    ],
    ['during the holds', `${f.hold.decisions} decisions, ${f.hold.reversals} reversals`],
    [
      'commands',
      `${fmt(o.summary.submitted)} submitted, ${fmt(o.summary.acknowledged)} acknowledged, ${fmt(o.summary.shed)} shed`,
    ],
    ['lost', `${o.lost} acknowledged but not chosen, ${o.unacknowledged} never acknowledged`],
  ];
  console.log('');
  for (const [k, v] of rows) console.log(`${k.padEnd(18)} ${v}`);
}

function parsedProfileOrExit(profile: string): readonly ProfilePoint[] {
  const parsed = parseProfile(profile);
  if (!parsed.ok) fail(`--profile: ${parsed.error}; expected ${PROFILE_EXPECTED}`);
  return parsed.profile;
}

function fail(message: string): never {
  console.error(`demo:autoscale: ${message}`);
  process.exit(2);
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function ms(x: number | null): string {
  return x === null ? '   - ms' : `${x.toFixed(1).padStart(5)} ms`;
}

await program.parseAsync();
