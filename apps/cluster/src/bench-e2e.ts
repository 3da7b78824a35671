/**
 * `pnpm bench:e2e`: commands/s and p50/p99 latency of a local cluster at 1, 16 and 128
 * closed-loop clients (after BENCH_WARMUP_S of the first level's load), and in the same run raw
 * ZeroMQ DEALER→ROUTER messages/s on this machine, with the ratio. Prints a table and a JSON
 * document; asserts nothing.
 * BENCH_SHORT=1: a few seconds in all, to check the benchmark runs.
 * The cluster's shape takes the flags of `cluster up`: `pnpm bench:e2e --batchers 4 --groups 3`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type ClusterShapeFlags, clusterShapeOptions, DEFAULT_TOPOLOGY } from '@paxos/launcher';
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
import { LocalCluster } from './cluster.ts';

const program = clusterShapeOptions(
  new Command('bench:e2e').description('commands/s and latency of a local cluster against raw ZeroMQ'),
).exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
program.parse();
const shape = program.opts<ClusterShapeFlags>();

const seconds = benchSetting('BENCH_SECONDS', BENCH_SHORT ? 2 : 10);
const levels = benchList('BENCH_CLIENTS', BENCH_SHORT ? [1, 16] : [1, 16, 128]);
const batchSize = benchSetting('BATCH_SIZE', shape.batchSize);
const warmupS = benchSetting('BENCH_WARMUP_S', BENCH_SHORT ? 0 : 15, 0);

const raw = await measureRawZmqBaseline();
// Logs and acceptor data of this run only: removed when the benchmark ends.
const workDir = mkdtempSync(path.join(os.tmpdir(), 'paxos-bench-e2e-'));
const cluster = new LocalCluster(
  {
    ...DEFAULT_TOPOLOGY,
    f: shape.f,
    groups: shape.groups,
    batchers: shape.batchers,
    proxyLeaders: shape.proxyLeaders,
    unbatchers: shape.unbatchers,
    batchSize,
    // Quiet unless asked: the role processes' logs are not what the benchmark shows.
    logLevel: program.getOptionValueSource('logLevel') === 'cli' ? shape.logLevel : 'warn',
    keyPrefix: `bench${Date.now().toString(36)}-`,
    basePort: benchSetting('BASE_PORT', 23000, 1024),
  },
  workDir,
);
const results: {
  clients: number;
  commandsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  acknowledged: number;
  seconds: number;
  ratioToRawZmq: number;
}[] = [];
try {
  await cluster.up();
  // Under its first load every fresh process compiles the code turning hot (V8's optimising
  // compiler): at 1 client, p50 starts near three times the steady one and takes 10-15 s to settle
  // on two cores. Measured then, the first level would show start-up, not the cluster. The
  // warm-up runs the first level's load: code warmed by another load is not warm for this one.
  if (warmupS > 0) await cluster.runClient({ clients: levels[0] as number, durationS: warmupS });
  for (const clients of levels) {
    const s = await cluster.runClient({ clients, durationS: seconds, reportMs: 1000 });
    results.push({
      clients,
      commandsPerSecond: s.throughput,
      p50Ms: s.p50Ms,
      p99Ms: s.p99Ms,
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
const report = benchReport('e2e', { batchSize, warmupS, shape: clusterShape, rawZmq: raw, results });
console.log(
  `\nLocal cluster (f=${shape.f}, ${shape.groups} groups, ${shape.batchers} batchers, ${shape.proxyLeaders} proxy leaders, ${shape.unbatchers} unbatchers: ${cluster.processes.length} role processes; BATCH_SIZE=${batchSize}; after ${warmupS} s of warm-up) vs raw ZeroMQ\n`,
);
printTable(
  ['clients', 'commands/s', 'p50 ms', 'p99 ms', 'x raw zmq'],
  results.map((r) => [
    String(r.clients),
    r.commandsPerSecond,
    r.p50Ms.toFixed(2),
    r.p99Ms.toFixed(2),
    r.ratioToRawZmq.toFixed(3),
  ]),
);
console.log(`raw ZeroMQ DEALER→ROUTER: ${raw.messagesPerSecond.toLocaleString('en-US')} messages/s`);
publishBenchReport(report);
