/**
 * `pnpm bench:e2e`: commands/s and p50/p99 latency of a local cluster at 1, 16 and 128
 * closed-loop clients (each after BENCH_WARMUP_SECONDS of its own load), and in the same run raw
 * ZeroMQ DEALER→ROUTER messages/s on this machine, with the ratio. Prints a table and a JSON
 * document; asserts nothing.
 * BENCH_SHORT=1: a few seconds in all, to check the benchmark runs.
 * The cluster's shape takes the flags of `cluster up`: `pnpm bench:e2e --batchers 4 --groups 3`.
 * BENCH_CLIENT_PROCS / --client-procs: load-generator processes per level, the clients split
 * across them (one process cannot load a many-core host); their latencies are merged exactly.
 * BENCH_TARGET_RATE / --target-rate: open loop at this many commands/s in all (0: closed loop).
 * BENCH_WARMUP_SECONDS: each level's load for this long before it is measured, not counted
 * (JIT-compiled code and sized heaps in every process; a cold cluster measured 20–30 % slower).
 * DATA_FSYNC=false: acceptors that do not sync their log (the cluster's default is true).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  type ClusterShapeFlags,
  clusterShapeOptions,
  integerArgument,
  jsonMode,
  type OutputFlags,
  outputOptions,
  withVersion,
} from '@paxos/launcher';
import { Command } from 'commander';
import {
  BENCH_SHORT,
  benchList,
  benchReport,
  benchSetting,
  printTable,
  publishBenchReport,
} from '../../../scripts/bench-report.ts';
import { measureRawZmqBaseline, ratioToRaw } from './bench-baseline.ts';
import { benchTopology, dataFsyncFromEnv, measureClientLevel } from './bench-cluster.ts';
import { LocalCluster } from './cluster.ts';

/** More generators than this would run into the ports the cluster keeps for processes it adds. */
const MAX_CLIENT_PROCS = 32;

const program = outputOptions(
  clusterShapeOptions(
    withVersion(
      new Command('bench:e2e').description('commands/s and latency of a local cluster against raw ZeroMQ'),
      import.meta.url,
    ),
  ),
)
  .option(
    '--client-procs <n>',
    'load-generator processes per level, the clients split across them (BENCH_CLIENT_PROCS)',
    integerArgument('--client-procs', 1),
  )
  .option(
    '--target-rate <n>',
    'open loop at this many commands/s in all, split across the processes; 0 = closed loop (BENCH_TARGET_RATE)',
    integerArgument('--target-rate', 0),
  )
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
program.parse();
const shape = program.opts<ClusterShapeFlags & OutputFlags & { clientProcs?: number; targetRate?: number }>();
// -o json: the report is the only thing on stdout.
jsonMode(shape);
const clientProcs = shape.clientProcs ?? benchSetting('BENCH_CLIENT_PROCS', 1);
if (clientProcs > MAX_CLIENT_PROCS) {
  console.error(
    `BENCH_CLIENT_PROCS: expected an integer from 1 to ${MAX_CLIENT_PROCS}, got "${clientProcs}"`,
  );
  process.exit(2);
}
const targetRate = shape.targetRate ?? benchSetting('BENCH_TARGET_RATE', 0, 0);
const mode = targetRate > 0 ? 'open' : 'closed';

const seconds = benchSetting('BENCH_SECONDS', BENCH_SHORT ? 2 : 10);
const warmupS = benchSetting('BENCH_WARMUP_SECONDS', BENCH_SHORT ? 0 : 10, 0);
const levels = benchList('BENCH_CLIENTS', BENCH_SHORT ? [1, 16] : [1, 16, 128]);
const batchSize = benchSetting('BATCH_SIZE', shape.batchSize);
const dataFsync = dataFsyncFromEnv();

const raw = await measureRawZmqBaseline();
// Logs and acceptor data of this run only: removed when the benchmark ends.
const workDir = mkdtempSync(path.join(os.tmpdir(), 'paxos-bench-e2e-'));
const cluster = new LocalCluster(
  benchTopology(program, shape, {
    name: 'bench',
    basePort: benchSetting('BASE_PORT', 23000, 1024),
    batchSize,
    ...(dataFsync === undefined ? {} : { dataFsync }),
  }),
  workDir,
);
const results: {
  clients: number;
  /** Generator processes at this level (fewer than asked when there are fewer clients). */
  procs: number;
  mode: 'closed' | 'open';
  commandsPerSecond: number;
  /** Open loop: commands/s generated (acknowledged or not, shed included). */
  offeredPerSecond: number;
  shed: number;
  p50Ms: number | null;
  p99Ms: number | null;
  p999Ms: number | null;
  acknowledged: number;
  seconds: number;
  ratioToRawZmq: number;
}[] = [];
try {
  await cluster.up();
  for (const clients of levels) {
    const s = await measureClientLevel(cluster, {
      clients,
      procs: clientProcs,
      targetRate,
      warmupS,
      seconds,
    });
    results.push({
      clients,
      procs: s.procs,
      mode: s.mode,
      commandsPerSecond: s.throughput,
      offeredPerSecond: Math.round(s.offered / s.seconds),
      shed: s.shed,
      p50Ms: s.p50Ms,
      p99Ms: s.p99Ms,
      p999Ms: s.p999Ms,
      acknowledged: s.acknowledged,
      seconds: s.seconds,
      ratioToRawZmq: ratioToRaw(s.throughput, raw),
    });
  }
} finally {
  await cluster.down();
  rmSync(workDir, { recursive: true, force: true });
}

const clusterShape = {
  f: shape.f,
  groups: shape.groups,
  batchers: shape.batchers,
  proxyLeaders: shape.proxyLeaders,
  unbatchers: shape.unbatchers,
};
const report = benchReport('e2e', {
  batchSize,
  shape: clusterShape,
  clientProcs,
  mode,
  targetRate,
  warmupS,
  // The acceptors' DATA_FSYNC: the launcher's default (true) unless DATA_FSYNC said otherwise.
  dataFsync: dataFsync ?? true,
  rawZmq: raw,
  results,
});
const load =
  mode === 'open'
    ? `open loop at ${targetRate.toLocaleString('en-US')} commands/s`
    : 'closed loop, 1 command outstanding per client';
console.log(
  `\nLocal cluster (f=${shape.f}, ${shape.groups} groups, ${shape.batchers} batchers, ${shape.proxyLeaders} proxy leaders, ${shape.unbatchers} unbatchers: ${cluster.processes.length} role processes; BATCH_SIZE=${batchSize}; DATA_FSYNC=${dataFsync ?? true}) vs raw ZeroMQ; ${load}, up to ${clientProcs} load-generator process${clientProcs === 1 ? '' : 'es'}; each level after ${warmupS} s of its own load as warm-up\n`,
);
printTable(
  [
    'clients',
    'procs',
    'mode',
    'commands/s',
    ...(mode === 'open' ? ['offered/s', 'shed'] : []),
    'p50 ms',
    'p99 ms',
    'p99.9 ms',
    'x raw zmq',
  ],
  results.map((r) => [
    String(r.clients),
    r.procs,
    r.mode,
    r.commandsPerSecond,
    ...(mode === 'open' ? [r.offeredPerSecond, r.shed] : []),
    r.p50Ms?.toFixed(2) ?? null,
    r.p99Ms?.toFixed(2) ?? null,
    r.p999Ms?.toFixed(2) ?? null,
    r.ratioToRawZmq.toFixed(3),
  ]),
);
console.log(`raw ZeroMQ DEALER→ROUTER: ${raw.messagesPerSecond.toLocaleString('en-US')} messages/s`);
publishBenchReport(report);
