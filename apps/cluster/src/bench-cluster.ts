/**
 * What `pnpm bench:e2e` and `pnpm bench:durability` share: the benchmark cluster's topology
 * (the shape flags of `cluster up`, quiet role logs, a fresh key prefix, the acceptors'
 * DATA_FSYNC) and one client level measured after a warm-up of its own load.
 */
import { type ClusterShapeFlags, shapeTopology, type TopologyOptions } from '@paxos/launcher';
import type { Command } from 'commander';
import { type MergedClientSummary, runClientProcs } from './client-load.ts';
import type { LocalCluster } from './cluster.ts';

export interface BenchTopologyOptions {
  /** The benchmark's name, the start of the directory key prefix. */
  readonly name: string;
  readonly basePort: number;
  /** Where metrics ports start (default basePort + 1000). */
  readonly metricsBasePort?: number;
  readonly batchSize: number;
  /** The acceptors' DATA_FSYNC; undefined: the launcher's default (true). */
  readonly dataFsync?: boolean;
}

/**
 * The topology of a benchmark's cluster: the shape the flags give, role processes at `warn`
 * unless `--log-level` was given (their logs are not what the benchmark shows), and a key
 * prefix of this run only.
 */
export function benchTopology(
  program: Command,
  shape: ClusterShapeFlags,
  o: BenchTopologyOptions,
): TopologyOptions {
  return {
    ...shapeTopology(shape),
    batchSize: o.batchSize,
    logLevel: program.getOptionValueSource('logLevel') === 'cli' ? shape.logLevel : 'warn',
    keyPrefix: `${o.name}${Date.now().toString(36)}-`,
    basePort: o.basePort,
    ...(o.metricsBasePort === undefined ? {} : { metricsBasePort: o.metricsBasePort }),
    ...(o.dataFsync === undefined ? {} : { extraEnv: { DATA_FSYNC: String(o.dataFsync) } }),
  };
}

/**
 * DATA_FSYNC from this process's environment, for the acceptors of a benchmark's cluster (the
 * spec's own DATA_FSYNC would override an inherited one): undefined when unset, and anything but
 * true or false stops the benchmark with one line, exit 2.
 */
export function dataFsyncFromEnv(env: NodeJS.ProcessEnv = process.env): boolean | undefined {
  const raw = env.DATA_FSYNC;
  if (raw === undefined || raw === '') return undefined;
  if (raw === 'true' || raw === 'false') return raw === 'true';
  console.error(`DATA_FSYNC: expected true or false, got "${raw}"`);
  process.exit(2);
}

export interface ClientLevelOptions {
  readonly clients: number;
  /** Load-generator processes, the clients split across them. */
  readonly procs: number;
  /** Open loop at this many commands/s in all; 0 or absent: closed loop. */
  readonly targetRate?: number;
  /** Seconds of this level's own load first, not counted. */
  readonly warmupS: number;
  readonly seconds: number;
  /** PAYLOAD_BYTES of every command (the load generator's default, 16, when absent). */
  readonly payloadBytes?: number;
}

/**
 * One client level: its own load for the warm-up, then the measured run, whose generators'
 * summaries are merged (throughput summed, percentiles from the merged histograms).
 */
export async function measureClientLevel(
  cluster: LocalCluster,
  o: ClientLevelOptions,
): Promise<MergedClientSummary> {
  const load = {
    clients: o.clients,
    procs: o.procs,
    ...(o.targetRate !== undefined && o.targetRate > 0 ? { targetRate: o.targetRate } : {}),
    ...(o.payloadBytes === undefined ? {} : { payloadBytes: o.payloadBytes }),
    reportMs: 1000,
  };
  // Under its first load every fresh process compiles the code turning hot (V8's optimising
  // compiler): at 1 client, p50 starts near three times the steady one and takes 10–15 s to
  // settle on two cores; and code warmed by another load is not warm for this one. So each
  // level runs its own load for the warm-up first, not counted.
  if (o.warmupS > 0) await runClientProcs(cluster, { ...load, durationS: o.warmupS });
  const { merged } = await runClientProcs(cluster, { ...load, durationS: o.seconds });
  return merged;
}

/** `statfs` magic numbers of the filesystems a benchmark's data may be on (linux/magic.h). */
const FILESYSTEMS: Readonly<Record<number, string>> = {
  61267: 'ext4',
  1481003842: 'xfs',
  2435016766: 'btrfs',
  16914836: 'tmpfs',
  2035054128: 'overlayfs',
  801189825: 'zfs',
  26985: 'nfs',
  2240043254: 'ramfs',
};

/**
 * A filesystem's name from its `statfs` type (`fs.statfsSync(dir).type`), or its magic number in
 * hex: what an fsync costs depends on it (on tmpfs, nothing).
 */
export function filesystemName(type: number): string {
  return FILESYSTEMS[type] ?? `0x${type.toString(16)}`;
}
