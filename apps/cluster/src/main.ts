import path from 'node:path';
import { type Controller, describeTimelineEntry } from '@paxos/autoscaler';
import type { ConfigSpec } from '@paxos/core';
import {
  type ClusterShapeFlags,
  clusterShapeOptions,
  cpuQuotaArgument,
  DEFAULT_TOPOLOGY,
  describeLauncherEvent,
  describeSpec,
  formatTable,
  integerArgument as integer,
  isQuietEvent,
  jsonMode,
  type OutputFlags,
  outputOptions,
  parseAcceptorName,
  parseMatchmakerName,
  printJson,
  type ReconfigureRequest,
  STATELESS_ROLES,
  type StatelessRole,
  shapeTopology,
  type TopologyOptions,
  withVersion,
} from '@paxos/launcher';
import { Command, InvalidArgumentError } from 'commander';
import {
  type LocalAutoscalerConfig,
  localAutoscalerConfig,
  localTimelineFile,
  startLocalAutoscaler,
} from './autoscale.ts';
import {
  type InstancePhaseView,
  isLeader,
  LocalCluster,
  RefusedConfigurationError,
  scrapeMetrics,
  sleep,
} from './cluster.ts';
import { type ControlServer, serveControl } from './control-server.ts';
import { runDemo } from './demo.ts';
import type { ReconfigureResult } from './reconfigure.ts';

interface TopologyFlags extends ClusterShapeFlags {
  dir: string;
  basePort: number;
  cpuQuota?: number;
  directory?: string;
}

const program = withVersion(
  new Command('cluster').description(
    'A local Autoscaling Paxos cluster: the directory and every role as its own process on 127.0.0.1.',
  ),
  import.meta.url,
).exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));

function withTopology(cmd: Command): Command {
  return clusterShapeOptions(
    cmd
      .option('--dir <path>', 'working directory (state, logs, acceptor data)', '.cluster')
      .option(
        '--base-port <n>',
        'first port; the cluster uses consecutive ports from here and metrics from here + 1000',
        integer('--base-port', 1024),
        DEFAULT_TOPOLOGY.basePort,
      )
      .option(
        '--cpu-quota <cores>',
        'cap each role process at this many cores (a cgroup each; needs root), to emulate small instances',
        cpuQuotaArgument('--cpu-quota'),
      )
      .option(
        '--directory <endpoint>',
        "use this running directory (a real Anna cluster's routing endpoint, tcp://host:port) instead of starting the built-in one",
        directoryArgument,
      ),
  );
}

/** A commander parser for an Anna routing endpoint. */
function directoryArgument(value: string): string {
  const match = /^tcp:\/\/([^:/\s]+):(\d{1,5})$/.exec(value);
  if (match === null || Number(match[2]) < 1 || Number(match[2]) > 65535)
    throw new InvalidArgumentError(
      `--directory must be an Anna routing endpoint such as tcp://10.0.0.5:6450, got "${value}"`,
    );
  return value;
}

function topology(flags: TopologyFlags): TopologyOptions {
  return {
    ...shapeTopology(flags),
    basePort: flags.basePort,
    keyPrefix: `run${Date.now().toString(36)}-`,
    ...(flags.directory === undefined ? {} : { directory: flags.directory }),
  };
}

outputOptions(withTopology(program.command('start')))
  .description(
    'start a cluster, drive client load with a live display, print a summary (-o json: as one JSON document on stdout), stop everything',
  )
  .option('--duration <s>', 'seconds of load (0 = until Ctrl-C)', integer('--duration', 0), 30)
  .option('--clients <n>', 'concurrent closed-loop clients', integer('--clients', 1), 64)
  .option(
    '--autoscale',
    'run the autoscaler beside the cluster (settings: AUTOSCALE_* in the environment; capacity: CAPACITY_FILE)',
  )
  .action(
    async (
      flags: TopologyFlags & OutputFlags & { duration: number; clients: number; autoscale?: boolean },
    ) => {
      const json = jsonMode(flags);
      const autoscaling = flags.autoscale === true ? await autoscalerConfigOrExit('start') : null;
      await runDemo(
        topology(flags),
        path.resolve(flags.dir),
        { durationS: flags.duration, clients: flags.clients },
        flags.cpuQuota === undefined ? {} : { cpuQuota: flags.cpuQuota },
        autoscaling,
        json,
      );
    },
  );

withTopology(program.command('up'))
  .description('start a cluster and keep it running until Ctrl-C or `cluster down`')
  .option(
    '--autoscale',
    'run the autoscaler beside the cluster (settings: AUTOSCALE_* in the environment; capacity: CAPACITY_FILE)',
  )
  .action(async (flags: TopologyFlags & { autoscale?: boolean }) => {
    const workDir = path.resolve(flags.dir);
    const autoscaling = flags.autoscale === true ? await autoscalerConfigOrExit('up') : null;
    let controller: Controller | null = null;
    const cluster = new LocalCluster(
      topology(flags),
      workDir,
      (e) => {
        // A crash loop is one line ('crash-loop'), not one per restart.
        if (!isQuietEvent(e))
          console.log(describeLauncherEvent(e, path.join(workDir, 'logs', `${e.name}.log`)));
      },
      flags.cpuQuota === undefined ? {} : { cpuQuota: flags.cpuQuota },
    );
    const quota = cluster.cpuQuotaInForce();
    if (quota !== null) console.log(quota);
    let control: ControlServer | null = null;
    let stopping = false;
    const stop = async () => {
      if (stopping) return;
      stopping = true;
      console.log('stopping the cluster…');
      await controller?.stop();
      await cluster.down();
      process.exit(0);
    };
    process.once('SIGINT', () => void stop());
    process.once('SIGTERM', () => void stop());
    try {
      await cluster.up();
      control = await serveControl(cluster, () => controller?.metrics ?? null);
      cluster.setControlUrl(control.url);
    } catch (err) {
      console.error(`cluster up failed: ${(err as Error).message}`);
      await cluster.down();
      process.exit(err instanceof RefusedConfigurationError ? 2 : 1);
    }
    console.log(
      `cluster ready: ${cluster.processes.length} processes, leader ${await cluster.leader()}; directory ${cluster.annaRouting}`,
    );
    console.log(`status page: ${control?.statusPageUrl}`);
    if (autoscaling !== null) {
      controller = startLocalAutoscaler(cluster, autoscaling, {
        onEvent: (e) => console.log(`autoscaler: ${describeTimelineEntry(e)}`),
      });
      cluster.scrapeAutoscaler();
      console.log(
        `autoscaler: every ${autoscaling.settings.intervalMs} ms; decisions in ${localTimelineFile(cluster)}`,
      );
    }
  });

outputOptions(program.command('status'))
  .description(
    'list the processes of the running cluster: phase (starting, ready, draining), pid, leadership (-o json: one JSON document)',
  )
  .option('--dir <path>', 'working directory of the cluster', '.cluster')
  .action(async (flags: OutputFlags & { dir: string }) => {
    const json = jsonMode(flags);
    const state = LocalCluster.readState(path.resolve(flags.dir));
    if (state === null) {
      console.error(`no cluster running in ${flags.dir}`);
      process.exit(1);
    }
    const alive = isAlive(state.managerPid);
    // The manager knows each process's phase; without it, the state file and the pids are all there is.
    const live =
      alive && state.controlUrl !== null
        ? await fetchJson<{
            leader: string | null;
            processes: InstancePhaseView[];
            configuration: ConfigSpec | null;
            matchmakers: { epoch: number; names: string[] } | null;
            servedVersion: number | null;
          }>(`${state.controlUrl}/status`)
        : null;
    const rows =
      live?.processes ??
      state.processes.map((p) => ({
        name: p.name,
        pid: p.pid,
        restarts: p.restarts,
        phase: p.pid !== null && isAlive(p.pid) ? p.state : 'gone',
      }));
    const leader =
      live?.leader ??
      (await firstLeader(state.processes.filter((p) => p.role === 'proposer' && p.metricsPort !== null)));
    const ports = new Map(state.processes.map((p) => [p.name, p.ports]));
    if (json) {
      printJson({
        managerPid: state.managerPid,
        managerAlive: alive,
        directory: state.annaRouting,
        leader,
        configuration: live?.configuration ?? null,
        servedVersion: live?.servedVersion ?? null,
        matchmakers: live?.matchmakers ?? null,
        processes: rows.map((p) => ({
          name: p.name,
          phase: p.phase,
          pid: p.pid,
          restarts: p.restarts,
          leader: p.name === leader,
          ports: ports.get(p.name) ?? [],
        })),
      });
      return;
    }
    console.log(`manager pid ${state.managerPid}${alive ? '' : ' (gone)'}, directory ${state.annaRouting}`);
    if (live?.configuration) {
      const served =
        live.servedVersion === null || live.servedVersion === live.configuration.version
          ? ''
          : ` (the leader still serves version ${live.servedVersion ?? '?'})`;
      console.log(`acceptor groups: ${describeSpec(live.configuration)}${served}`);
    }
    if (live?.matchmakers)
      console.log(`matchmakers: epoch ${live.matchmakers.epoch}: ${live.matchmakers.names.join(', ')}`);
    const table = formatTable(
      ['process', 'phase', 'pid', 'restarts', 'leader', 'ports'],
      rows.map((p) => [
        p.name,
        p.phase,
        p.pid,
        p.restarts,
        p.name === leader ? 'yes' : '',
        ports.get(p.name)?.join(',') ?? '',
      ]),
      { right: ['pid', 'restarts'] },
    );
    for (const line of table) console.log(line);
  });

program
  .command('scale')
  .argument('<role>', `one of ${STATELESS_ROLES.join(', ')}`)
  .argument('<count>', 'instances it should have', integer('<count>', 1))
  .description(
    'resize a stateless role of the running cluster (batcher, proxy-leader, unbatcher) while it serves; scaling in drains before a process exits',
  )
  .option('--dir <path>', 'working directory of the cluster', '.cluster')
  .action(async (role: string, count: number, flags: { dir: string }) => {
    if (!STATELESS_ROLES.includes(role as StatelessRole)) {
      console.error(
        `cluster scale: role must be one of ${STATELESS_ROLES.join(', ')}, got "${role}" (proposers stay at 2: the leader is one sequencer; acceptor groups change with 'cluster reconfigure --groups N')`,
      );
      process.exit(2);
    }
    const state = LocalCluster.readState(path.resolve(flags.dir));
    if (state === null || !isAlive(state.managerPid) || state.controlUrl === null) {
      console.error(`no running cluster in ${flags.dir} (start one with \`pnpm cluster up\`)`);
      process.exit(1);
    }
    const response = await fetch(`${state.controlUrl}/scale`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ role, count }),
    });
    const result = (await response.json()) as { added?: string[]; removed?: string[]; error?: string };
    if (!response.ok) {
      console.error(`cluster scale: ${result.error}`);
      process.exit(1);
    }
    const what = [
      result.added?.length ? `started ${result.added.join(', ')}` : '',
      result.removed?.length ? `drained and stopped ${result.removed.join(', ')}` : '',
    ].filter((x) => x !== '');
    console.log(
      `${role}: ${count} instance${count === 1 ? '' : 's'}${what.length ? `; ${what.join('; ')}` : ' already'}`,
    );
  });

program
  .command('reconfigure')
  .description(
    'change the acceptor groups of the running cluster while it serves: new groups start with empty logs, the leader moves to the new configuration without stopping, dropped acceptors retire (their logs stay in the data directory)',
  )
  .requiredOption('--groups <n>', 'acceptor groups it should have', integer('--groups', 1))
  .option('--dir <path>', 'working directory of the cluster', '.cluster')
  .action(async (flags: { groups: number; dir: string }) => {
    await reconfigureCommand('reconfigure', flags.dir, { groups: flags.groups });
  });

program
  .command('replace <process>')
  .description(
    'replace one acceptor (e.g. acceptor-g1-a2) with a new one under a new id and an empty log, or one matchmaker (e.g. matchmaker-2) with a new one under a new id, lost or not, while the cluster serves; the old one retires (its log or state stays in the data directory)',
  )
  .option('--dir <path>', 'working directory of the cluster', '.cluster')
  .action(async (name: string, flags: { dir: string }) => {
    if (parseAcceptorName(name) === null && parseMatchmakerName(name) === null) {
      console.error(
        `cluster replace: expected an acceptor name such as acceptor-g1-a2 or a matchmaker name such as matchmaker-2, got "${name}"`,
      );
      process.exit(2);
    }
    await reconfigureCommand('replace', flags.dir, { replace: name });
  });

program
  .command('kill <process>')
  .description('SIGKILL one process (the cluster restarts it; acceptors recover from their log)')
  .option('--dir <path>', 'working directory of the cluster', '.cluster')
  .action((name: string, flags: { dir: string }) => {
    const state = LocalCluster.readState(path.resolve(flags.dir));
    const target = state?.processes.find((p) => p.name === name);
    if (target?.pid == null) {
      console.error(`no running process named ${name}; see \`cluster status\``);
      process.exit(1);
    }
    process.kill(target.pid, 'SIGKILL');
    console.log(`killed ${name} (pid ${target.pid})`);
  });

program
  .command('down')
  .description('stop the running cluster and every process it started')
  .option('--dir <path>', 'working directory of the cluster', '.cluster')
  .action(async (flags: { dir: string }) => {
    const state = LocalCluster.readState(path.resolve(flags.dir));
    if (state === null || !isAlive(state.managerPid)) {
      console.log('no cluster running');
      return;
    }
    process.kill(state.managerPid, 'SIGTERM');
    // The manager removes its state file once every process it started has stopped.
    const running = () =>
      isAlive(state.managerPid) && LocalCluster.readState(path.resolve(flags.dir)) !== null;
    const deadline = Date.now() + 30_000;
    while (running() && Date.now() < deadline) await sleep(100);
    if (running()) {
      console.error('the cluster manager did not stop within 30 s');
      process.exit(1);
    }
    console.log('cluster stopped');
  });

/** The autoscaler's settings and capacity table, checked before anything starts: one line and exit 2 if wrong. */
async function autoscalerConfigOrExit(command: string): Promise<LocalAutoscalerConfig> {
  try {
    return await localAutoscalerConfig();
  } catch (err) {
    console.error(`cluster ${command}: ${(err as Error).message}`);
    process.exit(2);
  }
}

async function fetchJson<T>(url: string): Promise<T | null> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
    return response.ok ? ((await response.json()) as T) : null;
  } catch {
    return null;
  }
}

async function firstLeader(
  proposers: readonly { name: string; metricsPort: number | null }[],
): Promise<string | null> {
  for (const p of proposers) {
    const leads = await scrapeMetrics('127.0.0.1', p.metricsPort as number, 500)
      .then(isLeader)
      .catch(() => false);
    if (leads) return p.name;
  }
  return null;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

await program.parseAsync();

/** Sends a reconfiguration to the running manager and prints what it did and how long it took. */
async function reconfigureCommand(command: string, dir: string, request: ReconfigureRequest): Promise<void> {
  const state = LocalCluster.readState(path.resolve(dir));
  if (state === null || !isAlive(state.managerPid) || state.controlUrl === null) {
    console.error(`no running cluster in ${dir} (start one with \`pnpm cluster up\`)`);
    process.exit(1);
  }
  const response = await fetch(`${state.controlUrl}/reconfigure`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(request),
  });
  const result = (await response.json()) as Partial<ReconfigureResult> & { error?: string };
  if (!response.ok || result.target === undefined) {
    console.error(`cluster ${command}: ${result.error}`);
    process.exit(1);
  }
  if (result.matchmakers !== undefined)
    console.log(`matchmakers ${result.matchmakers.map((id) => `matchmaker-${id}`).join(', ')}`);
  else console.log(`configuration ${describeSpec(result.target)}`);
  if (result.started?.length) console.log(`started ${result.started.join(', ')}`);
  console.log(`served ${Math.round(result.serveMs ?? 0)} ms after the target was written`);
  if (result.retired?.length)
    console.log(
      `retired ${result.retired.join(', ')} (${result.matchmakers === undefined ? 'logs' : 'state'} kept) ${Math.round(result.retireMs ?? 0)} ms after the target was written`,
    );
}
