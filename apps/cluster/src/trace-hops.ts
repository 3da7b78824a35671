/**
 * `pnpm trace:hops`: where a command's time goes. Runs a local cluster with TRACE_SAMPLE=1 and
 * one closed-loop client for a few hundred commands, reads the trace lines from the cluster's
 * logs and prints, per hop, the median, mean and p90 µs: between processes (the sender's queue,
 * ZeroMQ, the network and the receiver's read loop) and inside each. With `--logs <dir>` it only
 * reads an existing log directory (any cluster run with TRACE_SAMPLE set, e.g. `.cluster/logs`).
 * Asserts nothing.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  type ClusterShapeFlags,
  clusterShapeOptions,
  integerArgument as integer,
  jsonMode,
  type OutputFlags,
  outputOptions,
  printJson,
  shapeTopology,
  withVersion,
} from '@paxos/launcher';
import { Command } from 'commander';
import { printTable } from '../../../scripts/bench-report.ts';
import { LocalCluster } from './cluster.ts';
import { buildChains, hopStats, parseTraceLines, type TraceLine } from './hop-trace.ts';

interface Flags extends ClusterShapeFlags, OutputFlags {
  commands?: number;
  warmup: number;
  clients: number;
  basePort: number;
  logs?: string;
  dir?: string;
}

const program = clusterShapeOptions(
  new Command('trace:hops')
    .description('per-hop latency of commands through a local cluster, from TRACE_SAMPLE trace lines')
    .option(
      '--commands <n>',
      'commands measured after the warm-up (with --logs: the last N chains; default all)',
      integer('--commands', 1),
    )
    .option(
      '--warmup <seconds>',
      "load first, left out: a fresh process's code is still being compiled for seconds",
      integer('--warmup', 0),
      15,
    )
    .option('--clients <n>', 'closed-loop clients', integer('--clients', 1), 1)
    .option('--base-port <n>', 'first port of the cluster', integer('--base-port', 1024), 23500)
    .option('--logs <dir>', 'only analyse the trace lines in this log directory; start nothing')
    .option(
      '--dir <path>',
      "the cluster's working directory, kept afterwards (default: a temporary one, removed)",
    ),
).exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
outputOptions(withVersion(program, import.meta.url));
program.parse();
const flags = program.opts<Flags>();
// -o json: the figures are the only thing on stdout (the table goes to stderr).
const json = jsonMode(flags);

function readLogs(dir: string): TraceLine[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.log'))
    .flatMap((f) => parseTraceLines(readFileSync(path.join(dir, f), 'utf8')));
}

let lines: TraceLine[];
const commands = flags.commands ?? (flags.logs === undefined ? 500 : Number.POSITIVE_INFINITY);
if (flags.logs !== undefined) {
  lines = readLogs(flags.logs);
} else {
  const workDir = flags.dir ?? mkdtempSync(path.join(os.tmpdir(), 'paxos-trace-hops-'));
  // Every process the cluster starts inherits it, the load generator included.
  process.env.TRACE_SAMPLE = '1';
  const cluster = new LocalCluster(
    {
      ...shapeTopology(flags),
      logLevel: 'info',
      // The acceptors sync their log unless told otherwise (the launcher's default): DATA_FSYNC
      // here passes through, to see what the sync costs a command.
      ...(process.env.DATA_FSYNC === undefined ? {} : { extraEnv: { DATA_FSYNC: process.env.DATA_FSYNC } }),
      keyPrefix: `trace${Date.now().toString(36)}-`,
      basePort: flags.basePort,
    },
    workDir,
  );
  try {
    await cluster.up();
    if (flags.warmup > 0) await cluster.runClient({ clients: flags.clients, durationS: flags.warmup });
    const s = await cluster.runClient({ clients: flags.clients, commands });
    console.log(
      `${s.acknowledged} commands after ${flags.warmup} s of warm-up, ${flags.clients} client(s): the client measured p50 ${s.p50Ms?.toFixed(2) ?? '-'} ms, p99 ${s.p99Ms?.toFixed(2) ?? '-'} ms (traced)`,
    );
  } finally {
    // Stopped first: each process writes what it still holds of its trace as it stops.
    await cluster.down();
    lines = readLogs(path.join(workDir, 'logs'));
    if (flags.dir === undefined) rmSync(workDir, { recursive: true, force: true });
  }
}

const { chains, incomplete } = buildChains(lines);
// Chains come in the order the commands were sent: the measured run's are the last.
const used = chains.slice(-Math.min(commands, chains.length));
if (used.length === 0) {
  console.error(
    `no complete command chain in ${lines.length} trace lines (${incomplete} incomplete): was TRACE_SAMPLE set on every process, with LOG_LEVEL info?`,
  );
  process.exit(1);
}
const stats = hopStats(used);
console.log(
  `\nPer hop, over the last ${used.length} commands (${incomplete} incomplete chains dropped); wire = sender's queue + ZeroMQ + network + receiver's read loop\n`,
);
const us = (v: number) => Math.round(v);
printTable(
  ['hop', 'kind', 'median µs', 'mean µs', 'p90 µs', 'share'],
  stats.map((s) => [
    s.name,
    s.kind,
    us(s.medianUs),
    us(s.meanUs),
    us(s.p90Us),
    `${(100 * s.share).toFixed(1)}%`,
  ]),
);
if (json) printJson({ commands: used.length, incomplete, hops: stats });
