import path from 'node:path';
import {
  type ClusterShapeFlags,
  clusterShapeOptions,
  cpuQuotaArgument,
  DEFAULT_TOPOLOGY,
  integerArgument as integer,
  type TopologyOptions,
} from '@paxos/launcher';
import { Command } from 'commander';
import { isLeader, LocalCluster, scrapeMetrics, sleep } from './cluster.ts';
import { runDemo } from './demo.ts';

interface TopologyFlags extends ClusterShapeFlags {
  dir: string;
  basePort: number;
  cpuQuota?: number;
}

const program = new Command('cluster')
  .description(
    'A local Autoscaling Paxos cluster: the directory and every role as its own process on 127.0.0.1.',
  )
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));

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
      ),
  );
}

function topology(flags: TopologyFlags): TopologyOptions {
  return {
    ...DEFAULT_TOPOLOGY,
    basePort: flags.basePort,
    f: flags.f,
    groups: flags.groups,
    batchSize: flags.batchSize,
    logLevel: flags.logLevel,
    keyPrefix: `run${Date.now().toString(36)}-`,
  };
}

withTopology(program.command('start'))
  .description('start a cluster, drive client load with a live display, print a summary, stop everything')
  .option('--duration <s>', 'seconds of load (0 = until Ctrl-C)', integer('--duration', 0), 30)
  .option('--clients <n>', 'concurrent closed-loop clients', integer('--clients', 1), 64)
  .action(async (flags: TopologyFlags & { duration: number; clients: number }) => {
    await runDemo(
      topology(flags),
      path.resolve(flags.dir),
      { durationS: flags.duration, clients: flags.clients },
      flags.cpuQuota === undefined ? {} : { cpuQuota: flags.cpuQuota },
    );
  });

withTopology(program.command('up'))
  .description('start a cluster and keep it running until Ctrl-C or `cluster down`')
  .action(async (flags: TopologyFlags) => {
    const cluster = new LocalCluster(
      topology(flags),
      path.resolve(flags.dir),
      (e) => {
        if (e.event !== 'started')
          console.log(
            `${e.name}: ${e.event}${e.signal ? ` (${e.signal})` : e.code != null ? ` (code ${e.code})` : ''}`,
          );
      },
      flags.cpuQuota === undefined ? {} : { cpuQuota: flags.cpuQuota },
    );
    const quota = cluster.cpuQuotaInForce();
    if (quota !== null) console.log(quota);
    let stopping = false;
    const stop = async () => {
      if (stopping) return;
      stopping = true;
      console.log('stopping the cluster…');
      await cluster.down();
      process.exit(0);
    };
    process.once('SIGINT', () => void stop());
    process.once('SIGTERM', () => void stop());
    try {
      await cluster.up();
    } catch (err) {
      console.error(`cluster up failed: ${(err as Error).message}`);
      process.exit(1);
    }
    console.log(
      `cluster ready: ${cluster.processes.length} processes, leader ${await cluster.leader()}; directory ${cluster.annaRouting}`,
    );
  });

program
  .command('status')
  .description('list the processes of the running cluster, their pids and leadership')
  .option('--dir <path>', 'working directory of the cluster', '.cluster')
  .action(async (flags: { dir: string }) => {
    const state = LocalCluster.readState(path.resolve(flags.dir));
    if (state === null) {
      console.error(`no cluster running in ${flags.dir}`);
      process.exit(1);
    }
    console.log(
      `manager pid ${state.managerPid}${isAlive(state.managerPid) ? '' : ' (gone)'}, directory ${state.annaRouting}`,
    );
    console.log(
      `${'process'.padEnd(18)} ${'pid'.padStart(7)}  ${'up'.padEnd(4)} ${'restarts'.padStart(8)}  ${'leader'.padEnd(6)} ports`,
    );
    for (const p of state.processes) {
      let leader = '';
      if (p.role === 'proposer' && p.metricsPort !== null) {
        const leads = await scrapeMetrics('127.0.0.1', p.metricsPort, 500)
          .then(isLeader)
          .catch(() => false);
        leader = leads ? 'yes' : '';
      }
      const up = p.pid !== null && isAlive(p.pid) ? 'yes' : 'no';
      console.log(
        `${p.name.padEnd(18)} ${String(p.pid ?? '-').padStart(7)}  ${up.padEnd(4)} ${String(p.restarts).padStart(8)}  ${leader.padEnd(6)} ${p.ports.join(',')}`,
      );
    }
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

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

await program.parseAsync();
