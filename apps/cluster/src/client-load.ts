/**
 * Load from several generator processes at once: the clients and an open-loop rate split across
 * them, and their summaries merged into one (throughput summed, latency percentiles from their
 * HDR histograms merged, so exact and not an average of percentiles).
 */
import { LatencyHistogram } from '@paxos/latency';
import type { ClientLine, ClientRunOptions, LocalCluster } from './cluster.ts';

export type ClientSummary = Extract<ClientLine, { type: 'summary' }>;
export type ClientProgress = Extract<ClientLine, { type: 'progress' }>;

/** Several generators' summaries as one. */
export interface MergedClientSummary {
  /** Generator processes that ran. */
  readonly procs: number;
  readonly mode: 'closed' | 'open';
  readonly clients: number;
  /** The longest of the generators' runs. */
  readonly seconds: number;
  readonly submitted: number;
  readonly acknowledged: number;
  /** Commands/s acknowledged: the sum of each generator's own rate. */
  readonly throughput: number;
  /** Commands generated (submitted + shed). */
  readonly offered: number;
  readonly shed: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly p999Ms: number | null;
  readonly maxMs: number | null;
  /** Every latency of every generator, an encoded `LatencyHistogram`. */
  readonly histogram: string;
}

export function mergeClientSummaries(summaries: readonly ClientSummary[]): MergedClientSummary {
  if (summaries.length === 0) throw new Error('no load generator summary to merge');
  const latencies = LatencyHistogram.merge(summaries.map((s) => s.histogram));
  const sum = (f: (s: ClientSummary) => number) => summaries.reduce((n, s) => n + f(s), 0);
  const { p50Ms, p99Ms, p999Ms, maxMs } = latencies.summary();
  return {
    procs: summaries.length,
    mode: summaries.some((s) => s.mode === 'open') ? 'open' : 'closed',
    clients: sum((s) => s.clients),
    seconds: Math.max(...summaries.map((s) => s.seconds)),
    submitted: sum((s) => s.submitted),
    acknowledged: sum((s) => s.acknowledged),
    throughput: sum((s) => s.throughput),
    offered: sum((s) => s.offered),
    shed: sum((s) => s.shed),
    p50Ms,
    p99Ms,
    p999Ms,
    maxMs,
    histogram: latencies.encode(),
  };
}

/** `total` as `parts` integers that differ by at most one and add up to it (the larger first). */
export function splitEvenly(total: number, parts: number): number[] {
  const base = Math.floor(total / parts);
  return Array.from({ length: parts }, (_, i) => base + (i < total % parts ? 1 : 0));
}

export interface ClientProcsOptions extends Omit<ClientRunOptions, 'index' | 'onLine' | 'acksFile'> {
  /** Generator processes; at most one per client, and in open loop one per command/s. */
  readonly procs: number;
  /** The first process's index (`LocalCluster.runClient`); the others follow. Earlier runs on these must be over. */
  readonly firstIndex?: number;
  readonly onLine?: (line: ClientLine, proc: number) => void;
  /** Each process's ACKS_FILE. */
  readonly acksFile?: (proc: number) => string;
}

/**
 * Runs `procs` load generators against `cluster` at once, `clients` (and an open-loop
 * `targetRate`) split evenly across them, and resolves with their summaries and the merge.
 */
export async function runClientProcs(
  cluster: LocalCluster,
  o: ClientProcsOptions,
): Promise<{ merged: MergedClientSummary; summaries: ClientSummary[]; indices: number[] }> {
  const rate = o.targetRate ?? 0;
  // Every process gets at least one client and, in open loop, a rate above 0 (0 would be closed loop).
  const procs = Math.max(1, Math.min(o.procs, o.clients, rate > 0 ? Math.ceil(rate) : o.procs));
  const clients = splitEvenly(o.clients, procs);
  // Integer shares of a whole rate, so the total is exact.
  const rates =
    rate === 0 ? null : Number.isInteger(rate) ? splitEvenly(rate, procs) : clients.map(() => rate / procs);
  const { procs: _procs, firstIndex = 0, onLine, acksFile, ...shared } = o;
  const indices = clients.map((_, i) => firstIndex + i);
  const summaries = await Promise.all(
    clients.map((n, i) =>
      cluster.runClient({
        ...shared,
        clients: n,
        ...(rates === null ? {} : { targetRate: rates[i] as number }),
        index: indices[i] as number,
        ...(acksFile === undefined ? {} : { acksFile: acksFile(i) }),
        ...(onLine === undefined ? {} : { onLine: (line: ClientLine) => onLine(line, i) }),
      }),
    ),
  );
  return { merged: mergeClientSummaries(summaries), summaries, indices };
}
