/**
 * `pnpm bench:durability`: what syncing the acceptors' log costs, measured three ways back to back
 * on one machine: the local cluster with DATA_FSYNC=false, the same cluster with DATA_FSYNC=true,
 * and a three-member etcd (started here on loopback, its data in a temporary directory) under the
 * same closed-loop load through etcd's v3 gRPC API. Each system runs every client level (default
 * 1 and 128) after a warm-up of that level's own load. Prints the results and the figures the
 * durability issue asks for (fsync on over off and over etcd at the highest level, the latency
 * fsync adds at the lowest), and writes a JSON document; asserts nothing.
 * BENCH_SHORT=1: 1 and 16 clients, 2 s each, no warm-up, the smallest cluster (one acceptor group,
 * one of each stateless role), to check the benchmark runs.
 * Without an `etcd` binary (ETCD_BIN, else PATH) the etcd rows are skipped, with one line saying so.
 */
import { mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
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
import { Command, InvalidArgumentError } from 'commander';
import {
  BENCH_SHORT,
  benchList,
  benchReport,
  benchSetting,
  printTable,
  publishBenchReport,
} from '../../../scripts/bench-report.ts';
import { benchTopology, filesystemName, measureClientLevel } from './bench-cluster.ts';
import { LocalCluster } from './cluster.ts';
import {
  type DurabilityRow,
  type DurabilitySystem,
  durabilityFigures,
  FIGURE_HEADER,
  figureRows,
  RESULT_HEADER,
  resultRows,
  SYSTEM_LABELS,
} from './durability-figures.ts';
import { EtcdCluster, findEtcd, planEtcdCluster } from './etcd-cluster.ts';
import { EtcdKv, runEtcdLoad } from './etcd-load.ts';

const MAX_CLIENT_PROCS = 32;
/** Offsets from BASE_PORT: role ports below METRICS, metrics ports below ETCD, etcd's six ports after. */
const PORTS = { metrics: 300, etcdClient: 600, etcdPeer: 610 } as const;

function levelsArgument(value: string): number[] {
  const levels = value.split(',').map((v) => v.trim());
  if (levels.some((v) => !/^\d+$/.test(v) || Number(v) < 1))
    throw new InvalidArgumentError(
      `--clients must be a comma-separated list of integers >= 1, got "${value}"`,
    );
  return levels.map(Number);
}

const program = clusterShapeOptions(
  new Command('bench:durability').description(
    'the local cluster with fsync off, with fsync on, and a three-member etcd, under the same closed-loop load',
  ),
)
  .option('--clients <list>', 'closed-loop client levels, e.g. 1,16,128 (BENCH_CLIENTS)', levelsArgument)
  .option(
    '--client-procs <n>',
    'Paxos load-generator processes per level, the clients split across them (BENCH_CLIENT_PROCS)',
    integerArgument('--client-procs', 1),
  )
  .option('--seconds <n>', 'measured seconds per level (BENCH_SECONDS)', integerArgument('--seconds', 1))
  .option(
    '--warmup <n>',
    "seconds of each level's own load before it is measured (BENCH_WARMUP_SECONDS)",
    integerArgument('--warmup', 0),
  )
  .option(
    '--payload-bytes <n>',
    "bytes of each command (Paxos PAYLOAD_BYTES) and of each put's value (BENCH_PAYLOAD_BYTES)",
    integerArgument('--payload-bytes', 1),
  )
  .option('--no-etcd', 'skip the etcd rows')
  .option('--out <file>', 'the JSON document', 'bench-results/durability.json')
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
outputOptions(withVersion(program, import.meta.url));
program.parse();
// -o json: the report is the only thing on stdout.
jsonMode(program.opts<OutputFlags>());
const flags = program.opts<
  ClusterShapeFlags & {
    clients?: number[];
    clientProcs?: number;
    seconds?: number;
    warmup?: number;
    payloadBytes?: number;
    etcd: boolean;
    out: string;
  }
>();

// Short: the smallest cluster (one group, one of each stateless role) unless the flags say
// otherwise, since two clusters start and stop in a run that should take well under 40 s.
if (BENCH_SHORT) {
  for (const key of ['groups', 'batchers', 'proxyLeaders', 'unbatchers'] as const)
    if (program.getOptionValueSource(key) !== 'cli') flags[key] = 1;
}
const levels = flags.clients ?? benchList('BENCH_CLIENTS', BENCH_SHORT ? [1, 16] : [1, 128]);
const clientProcs = flags.clientProcs ?? benchSetting('BENCH_CLIENT_PROCS', 1);
const seconds = flags.seconds ?? benchSetting('BENCH_SECONDS', BENCH_SHORT ? 2 : 10);
const warmupS = flags.warmup ?? benchSetting('BENCH_WARMUP_SECONDS', BENCH_SHORT ? 0 : 10, 0);
const payloadBytes = flags.payloadBytes ?? benchSetting('BENCH_PAYLOAD_BYTES', 16);
const batchSize = benchSetting('BATCH_SIZE', flags.batchSize);
const basePort = benchSetting('BASE_PORT', 32000, 1024);
const dataRoot = process.env.BENCH_DATA_DIR || os.tmpdir();
if (clientProcs > MAX_CLIENT_PROCS) {
  console.error(
    `BENCH_CLIENT_PROCS: expected an integer from 1 to ${MAX_CLIENT_PROCS}, got "${clientProcs}"`,
  );
  process.exit(2);
}
if (basePort + PORTS.etcdPeer + 3 > 65536) {
  console.error(`BASE_PORT: expected at most ${65536 - PORTS.etcdPeer - 3}, got "${basePort}"`);
  process.exit(2);
}

const etcd = flags.etcd ? findEtcd() : { missing: 'not asked for (--no-etcd)' };
if ('missing' in etcd) console.log(`etcd: ${etcd.missing}; the etcd rows are skipped`);

// Everything this run writes (both clusters' acceptor logs, etcd's data, their logs) lives here
// and is removed when it ends. Its filesystem decides what an fsync costs: on tmpfs, nothing.
mkdirSync(dataRoot, { recursive: true });
const workRoot = mkdtempSync(path.join(dataRoot, 'paxos-bench-durability-'));
const filesystem = filesystemName(statfsSync(workRoot).type);
if (filesystem === 'tmpfs')
  console.log(
    `${workRoot} is on tmpfs, where fsync costs nothing: set BENCH_DATA_DIR to a directory on disk`,
  );

let paxos: LocalCluster | null = null;
let etcdCluster: EtcdCluster | null = null;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    // Whatever this benchmark started goes with it (etcd without its grace: its data goes too).
    void Promise.all([etcdCluster?.stop(0), paxos?.down()]).finally(() => {
      rmSync(workRoot, { recursive: true, force: true });
      process.exit(130);
    });
  });
}

const rows: DurabilityRow[] = [];
let roleProcesses = 0;

const started = performance.now();
/** One line as the run goes, with the seconds since it started. */
function say(line: string): void {
  console.log(`[${Math.round((performance.now() - started) / 1000)} s] ${line}`);
}

function progress(system: DurabilitySystem, r: DurabilityRow): void {
  say(
    `${SYSTEM_LABELS[system]}, ${r.clients} client(s): ${r.opsPerSecond.toLocaleString('en-US')}/s, p50 ${r.p50Ms?.toFixed(2) ?? '-'} ms, p99 ${r.p99Ms?.toFixed(2) ?? '-'} ms`,
  );
}

/** One Paxos cluster with the acceptors' DATA_FSYNC as given, every level, then down. */
async function runPaxos(system: DurabilitySystem, dataFsync: boolean): Promise<void> {
  const cluster = new LocalCluster(
    benchTopology(program, flags, {
      name: dataFsync ? 'durfsync' : 'durnofsync',
      basePort,
      // The whole run keeps within a few hundred ports: role ports, metrics, then etcd's.
      metricsBasePort: basePort + PORTS.metrics,
      batchSize,
      dataFsync,
    }),
    path.join(workRoot, system),
  );
  const lastPort = Math.max(...cluster.processes.flatMap((p) => p.ports)) + clientProcs;
  const lastMetrics = Math.max(...cluster.processes.map((p) => p.metricsPort ?? 0)) + clientProcs;
  if (lastPort >= basePort + PORTS.metrics || lastMetrics >= basePort + PORTS.etcdClient) {
    throw new Error(
      `this shape needs ports up to ${lastPort} and metrics ports up to ${lastMetrics}: more than the ${PORTS.metrics} each the benchmark keeps from BASE_PORT`,
    );
  }
  roleProcesses = cluster.processes.length;
  paxos = cluster;
  try {
    await cluster.up();
    say(`${SYSTEM_LABELS[system]}: ${cluster.processes.length} role processes up`);
    for (const clients of levels) {
      const s = await measureClientLevel(cluster, {
        clients,
        procs: clientProcs,
        warmupS,
        seconds,
        payloadBytes,
      });
      record(measuredRow(system, clients, s.procs, s));
    }
  } finally {
    await cluster.down();
    paxos = null;
  }
}

/** A result row from what one level measured (commands or puts alike). */
function measuredRow(
  system: DurabilitySystem,
  clients: number,
  procs: number,
  s: Pick<DurabilityRow, 'p50Ms' | 'p99Ms' | 'p999Ms' | 'acknowledged' | 'seconds'> & { throughput: number },
): DurabilityRow {
  const { p50Ms, p99Ms, p999Ms, acknowledged, seconds } = s;
  return { system, clients, procs, opsPerSecond: s.throughput, p50Ms, p99Ms, p999Ms, acknowledged, seconds };
}

function record(row: DurabilityRow): void {
  rows.push(row);
  progress(row.system, row);
}

/** A fresh three-member etcd, every level through its gRPC API, then stopped. */
async function runEtcd(bin: string): Promise<void> {
  const dir = path.join(workRoot, 'etcd');
  const members = planEtcdCluster({
    clientBasePort: basePort + PORTS.etcdClient,
    peerBasePort: basePort + PORTS.etcdPeer,
    dataDir: path.join(dir, 'data'),
    token: `bench-durability-${process.pid}-${Date.now().toString(36)}`,
  });
  etcdCluster = await EtcdCluster.start(bin, members, path.join(dir, 'logs'));
  say(`${SYSTEM_LABELS.etcd}: up`);
  let kv: EtcdKv | null = null;
  try {
    kv = await EtcdKv.connect(etcdCluster.endpoints);
    for (const clients of levels) {
      const load = { clients, payloadBytes, keyPrefix: `bench/${clients}/` };
      if (warmupS > 0) await runEtcdLoad(kv, { ...load, durationS: warmupS });
      const s = await runEtcdLoad(kv, { ...load, durationS: seconds });
      if (s.errors > 0) console.log(`etcd, ${clients} client(s): ${s.errors} puts failed (not counted)`);
      record({
        ...measuredRow('etcd', clients, 1, s),
        errors: s.errors,
        driverCpuPercent: s.driverCpuPercent,
      });
    }
  } finally {
    kv?.close();
    await etcdCluster.stop();
    etcdCluster = null;
  }
}

try {
  await runPaxos('paxos-fsync-off', false);
  await runPaxos('paxos-fsync-on', true);
  if ('bin' in etcd) await runEtcd(etcd.bin);
} finally {
  rmSync(workRoot, { recursive: true, force: true });
}
const figures = durabilityFigures(rows);

const report = benchReport('durability', {
  shape: {
    f: flags.f,
    groups: flags.groups,
    batchers: flags.batchers,
    proxyLeaders: flags.proxyLeaders,
    unbatchers: flags.unbatchers,
  },
  batchSize,
  clientProcs,
  mode: 'closed' as const,
  payloadBytes,
  warmupS,
  seconds,
  levels,
  dataFilesystem: filesystem,
  loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
  etcd:
    'bin' in etcd
      ? { version: etcd.version, members: 3, api: 'grpc' as const, skipped: null }
      : { version: null, members: 3, api: 'grpc' as const, skipped: etcd.missing },
  results: rows,
  figures,
  runSeconds: Math.round((performance.now() - started) / 1000),
});
mkdirSync(path.dirname(path.resolve(flags.out)), { recursive: true });
writeFileSync(path.resolve(flags.out), `${JSON.stringify(report, null, 2)}\n`);
publishBenchReport(report);

console.log(
  `\nDurability: the local cluster (f=${flags.f}, ${flags.groups} groups, ${flags.batchers} batchers, ${flags.proxyLeaders} proxy leaders, ${flags.unbatchers} unbatchers: ${roleProcesses} role processes; BATCH_SIZE=${batchSize}) with DATA_FSYNC false then true, then ${'bin' in etcd ? `etcd ${etcd.version}, 3 members, through gRPC` : 'no etcd'}; closed loop, 1 command (put) outstanding per client, ${payloadBytes}-byte payloads; each level after ${warmupS} s of its own load, ${seconds} s measured; data on ${filesystem}; load average ${report.loadAverage.join(', ')}\n`,
);
printTable(RESULT_HEADER, resultRows(rows));
console.log('');
printTable(FIGURE_HEADER, figureRows(figures));
console.log(`\nwritten: ${path.resolve(flags.out)} (${report.runSeconds} s)`);
