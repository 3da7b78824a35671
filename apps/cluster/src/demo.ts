import { type Controller, describeInstances, describeTimelineEntry } from '@paxos/autoscaler';
import { formatPairs, printJson, type TopologyOptions } from '@paxos/launcher';
import cliProgress from 'cli-progress';
import { type LocalAutoscalerConfig, startLocalAutoscaler } from './autoscale.ts';
import {
  type ClientLine,
  LocalCluster,
  type LocalClusterOptions,
  RefusedConfigurationError,
} from './cluster.ts';
import { serveControl } from './control-server.ts';

/**
 * `pnpm start`: a local cluster under client load with a live display of commands/s, latency
 * and the current leader; a summary at the end; Ctrl-C stops everything it started. With an
 * autoscaler configuration, the autoscaler runs beside it: the display shows the instances per
 * role and each decision as it happens. `json`: the summary is one JSON document on stdout (the
 * caller sent everything else to stderr, `jsonMode`).
 */
export async function runDemo(
  topology: TopologyOptions,
  workDir: string,
  load: { durationS: number; clients: number },
  clusterOptions: LocalClusterOptions = {},
  autoscaling: LocalAutoscalerConfig | null = null,
  json = false,
): Promise<void> {
  let controller: Controller | null = null;
  const restarts: string[] = [];
  const cluster = new LocalCluster(
    topology,
    workDir,
    (e) => {
      if (e.event === 'restarting') restarts.push(e.name);
    },
    clusterOptions,
  );
  // Handlers go in before the first line is printed: whoever reads that line may press Ctrl-C at once.
  let stopping = false;
  // Ctrl-C while the load runs stops the load generator (which prints the summary); before or after it, everything.
  let clientRunning = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    await controller?.stop();
    await cluster.down();
    process.exit(code);
  };
  process.on('SIGINT', () => {
    if (clientRunning) cluster.stopClient(0);
    else void stop(130);
  });
  process.on('SIGTERM', () => void stop(143));

  const total = cluster.processes.length + 1;
  console.log(
    `Starting a local cluster: ${total} processes (directory, ${cluster.processes.map((p) => p.name).join(', ')})`,
  );
  console.log(
    `f=${topology.f}, ${topology.groups} acceptor groups, BATCH_SIZE=${topology.batchSize}; logs in ${workDir}/logs`,
  );
  const quota = cluster.cpuQuotaInForce();
  if (quota !== null) console.log(quota);
  console.log('');

  const startedAt = performance.now();
  try {
    await cluster.up();
  } catch (err) {
    console.error(`Could not start the cluster: ${(err as Error).message}`);
    await stop(err instanceof RefusedConfigurationError ? 2 : 1);
    return;
  }
  let leader = (await cluster.leader()) ?? '?';
  console.log(`Cluster ready in ${((performance.now() - startedAt) / 1000).toFixed(1)} s; leader: ${leader}`);
  // `pnpm cluster scale` and `status` reach this process as they would `cluster up`.
  const control = await serveControl(cluster, () => controller?.metrics ?? null);
  cluster.setControlUrl(control.url);
  console.log(`status page: ${control.statusPageUrl}`);
  console.log(
    `Driving ${load.clients} closed-loop clients ${load.durationS > 0 ? `for ${load.durationS} s` : 'until Ctrl-C'} (Ctrl-C stops early)\n`,
  );

  const tty = !json && process.stdout.isTTY === true;
  const bar = new cliProgress.SingleBar(
    {
      format:
        (load.durationS > 0
          ? '{bar} {elapsed}/{total} s | {rate} cmd/s | p50 {p50} ms | p99 {p99} ms | leader {leader} | {acked} acknowledged'
          : '{elapsed} s | {rate} cmd/s | p50 {p50} ms | p99 {p99} ms | leader {leader} | {acked} acknowledged') +
        (autoscaling === null ? '' : ' | {instances}'),
      barsize: 20,
      hideCursor: true,
      noTTYOutput: !tty,
      notTTYSchedule: 5000,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(load.durationS > 0 ? load.durationS : 1, 0, {
    rate: 0,
    p50: '-',
    p99: '-',
    leader,
    acked: 0,
    elapsed: 0,
    instances: '',
  });
  let instances = '';
  if (autoscaling !== null) {
    controller = startLocalAutoscaler(cluster, autoscaling, {
      onTick: (report) => {
        instances = describeInstances(report.instances);
      },
      // Above the live line, which the next progress update draws again.
      onEvent: (e) => {
        const line = `autoscaler: ${describeTimelineEntry(e)}`;
        if (tty) process.stdout.write(`\r\x1b[2K${line}\n`);
        else console.log(line);
      },
    });
  }
  const leaderPoll = setInterval(() => {
    void cluster.leader().then((l) => {
      leader = l ?? 'electing…';
    });
  }, 1000);

  clientRunning = true;
  let summary: Extract<ClientLine, { type: 'summary' }>;
  try {
    summary = await cluster.runClient({
      clients: load.clients,
      durationS: load.durationS,
      onLine: (line) => {
        if (line.type !== 'progress') return;
        const elapsed = Math.round(line.elapsedS);
        bar.update(load.durationS > 0 ? Math.min(elapsed, load.durationS) : 0, {
          rate: line.rate.toLocaleString('en-US'),
          p50: line.p50Ms?.toFixed(2) ?? '-',
          p99: line.p99Ms?.toFixed(2) ?? '-',
          leader,
          acked: line.acknowledged.toLocaleString('en-US'),
          elapsed,
          instances,
        });
      },
    });
  } catch (err) {
    bar.stop();
    clearInterval(leaderPoll);
    console.error(`Load generator failed: ${(err as Error).message}`);
    await stop(1);
    return;
  }
  clientRunning = false;
  clearInterval(leaderPoll);
  bar.stop();

  if (json)
    printJson({
      acknowledged: summary.acknowledged,
      seconds: summary.seconds,
      throughput: summary.throughput,
      p50Ms: summary.p50Ms ?? null,
      p99Ms: summary.p99Ms ?? null,
      p999Ms: summary.p999Ms ?? null,
      leader,
      restarts,
    });
  else {
    console.log('\nSummary');
    const lines = formatPairs({
      'commands acknowledged': summary.acknowledged.toLocaleString('en-US'),
      'duration (s)': summary.seconds.toFixed(1),
      'throughput (commands/s)': summary.throughput.toLocaleString('en-US'),
      'latency p50 (ms)': summary.p50Ms?.toFixed(2) ?? '-',
      'latency p99 (ms)': summary.p99Ms?.toFixed(2) ?? '-',
      'latency p99.9 (ms)': summary.p999Ms?.toFixed(2) ?? '-',
      leader,
      'process restarts': restarts.length === 0 ? 'none' : restarts.join(', '),
    });
    for (const line of lines) console.log(line);
  }
  console.log('\nStopping the cluster…');
  await stop(0);
}
