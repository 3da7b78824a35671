/**
 * The pure figures of `pnpm bench:durability`: the rows of the three systems it measures, the
 * figures the durability issue asks for (fsync on against off and against etcd at the highest
 * client level, the latency fsync adds at the lowest) and the rows of its two tables.
 */

/** The systems measured, in the order they run and are listed. */
export const DURABILITY_SYSTEMS = ['paxos-fsync-off', 'paxos-fsync-on', 'etcd'] as const;
export type DurabilitySystem = (typeof DURABILITY_SYSTEMS)[number];

export const SYSTEM_LABELS: Readonly<Record<DurabilitySystem, string>> = {
  'paxos-fsync-off': 'paxos, fsync off',
  'paxos-fsync-on': 'paxos, fsync on',
  etcd: 'etcd, 3 members',
};

/** One system at one client level. */
export interface DurabilityRow {
  readonly system: DurabilitySystem;
  readonly clients: number;
  /** Load-generator processes (etcd: 1, the benchmark's own). */
  readonly procs: number;
  /** Acknowledged commands/s (Paxos) or puts/s (etcd). */
  readonly opsPerSecond: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly p999Ms: number | null;
  readonly acknowledged: number;
  readonly seconds: number;
  /** etcd: puts that failed (not counted). */
  readonly errors?: number;
  /** etcd: the benchmark process's CPU while it drove the puts, percent of one core. */
  readonly driverCpuPercent?: number;
}

/** The targets: fsync on ≥ 70 % of fsync off and ≥ 3 × etcd in throughput, ≤ 1 ms added at p50. */
export const DURABILITY_TARGETS = {
  fsyncOnToOff: { min: 0.7 },
  fsyncOnToEtcd: { min: 3 },
  addedP50Ms: { max: 1 },
} as const;

export interface DurabilityFigure {
  /** The client level it is taken at; null when no level has both systems. */
  readonly clients: number | null;
  readonly value: number | null;
  readonly target: { readonly min?: number; readonly max?: number } | null;
  /** Whether the value meets the target; null without a target or a value. */
  readonly meets: boolean | null;
}

export interface DurabilityFigures {
  /** Commands/s with fsync on over fsync off, at the highest client level. */
  readonly fsyncOnToOff: DurabilityFigure;
  /** Commands/s with fsync on over etcd's puts/s, at the highest client level. */
  readonly fsyncOnToEtcd: DurabilityFigure;
  /** p50 with fsync on minus p50 with fsync off, ms, at the lowest client level. */
  readonly addedP50Ms: DurabilityFigure;
  /** The same at p99 (no target: for the reader). */
  readonly addedP99Ms: DurabilityFigure;
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/** The client levels at which both systems have a row, lowest first. */
function sharedLevels(rows: readonly DurabilityRow[], a: DurabilitySystem, b: DurabilitySystem): number[] {
  const levels = (s: DurabilitySystem) => new Set(rows.filter((r) => r.system === s).map((r) => r.clients));
  const inB = levels(b);
  return [...levels(a)].filter((c) => inB.has(c)).sort((x, y) => x - y);
}

function row(rows: readonly DurabilityRow[], system: DurabilitySystem, clients: number): DurabilityRow {
  return rows.find((r) => r.system === system && r.clients === clients) as DurabilityRow;
}

function figure(
  clients: number | null,
  value: number | null,
  target: DurabilityFigure['target'],
): DurabilityFigure {
  const meets =
    target === null || value === null
      ? null
      : (target.min === undefined || value >= target.min) &&
        (target.max === undefined || value <= target.max);
  return { clients, value: value === null ? null : round3(value), target, meets };
}

/** `a`'s throughput over `b`'s at the highest level both ran. */
function throughputRatio(
  rows: readonly DurabilityRow[],
  a: DurabilitySystem,
  b: DurabilitySystem,
  target: DurabilityFigure['target'],
): DurabilityFigure {
  const clients = sharedLevels(rows, a, b).at(-1) ?? null;
  if (clients === null) return figure(null, null, target);
  const over = row(rows, b, clients).opsPerSecond;
  return figure(clients, over > 0 ? row(rows, a, clients).opsPerSecond / over : null, target);
}

/** fsync on's latency minus fsync off's at the lowest level both ran. */
function addedLatency(
  rows: readonly DurabilityRow[],
  field: 'p50Ms' | 'p99Ms',
  target: DurabilityFigure['target'],
): DurabilityFigure {
  const clients = sharedLevels(rows, 'paxos-fsync-on', 'paxos-fsync-off')[0] ?? null;
  if (clients === null) return figure(null, null, target);
  const on = row(rows, 'paxos-fsync-on', clients)[field];
  const off = row(rows, 'paxos-fsync-off', clients)[field];
  return figure(clients, on === null || off === null ? null : on - off, target);
}

export function durabilityFigures(rows: readonly DurabilityRow[]): DurabilityFigures {
  return {
    fsyncOnToOff: throughputRatio(rows, 'paxos-fsync-on', 'paxos-fsync-off', DURABILITY_TARGETS.fsyncOnToOff),
    fsyncOnToEtcd: throughputRatio(rows, 'paxos-fsync-on', 'etcd', DURABILITY_TARGETS.fsyncOnToEtcd),
    addedP50Ms: addedLatency(rows, 'p50Ms', DURABILITY_TARGETS.addedP50Ms),
    addedP99Ms: addedLatency(rows, 'p99Ms', null),
  };
}

type Cell = string | number | null;

export const RESULT_HEADER = ['system', 'clients', 'procs', 'ops/s', 'p50 ms', 'p99 ms', 'p99.9 ms'] as const;

/** The results table: by client level, then the systems in their order. */
export function resultRows(rows: readonly DurabilityRow[]): Cell[][] {
  const order = (s: DurabilitySystem) => DURABILITY_SYSTEMS.indexOf(s);
  return [...rows]
    .sort((a, b) => a.clients - b.clients || order(a.system) - order(b.system))
    .map((r) => [
      SYSTEM_LABELS[r.system],
      r.clients,
      r.procs,
      r.opsPerSecond,
      r.p50Ms?.toFixed(2) ?? null,
      r.p99Ms?.toFixed(2) ?? null,
      r.p999Ms?.toFixed(2) ?? null,
    ]);
}

export const FIGURE_HEADER = ['figure', 'clients', 'value', 'target', 'meets'] as const;

const FIGURE_LABELS: Readonly<Record<keyof DurabilityFigures, string>> = {
  fsyncOnToOff: 'fsync on / fsync off, commands/s',
  fsyncOnToEtcd: 'fsync on / etcd, commands/s over puts/s',
  addedP50Ms: 'added p50 latency, ms (fsync on - off)',
  addedP99Ms: 'added p99 latency, ms (fsync on - off)',
};

function describeTarget(t: DurabilityFigure['target']): string | null {
  if (t === null) return null;
  return [t.min === undefined ? null : `>= ${t.min}`, t.max === undefined ? null : `<= ${t.max}`]
    .filter((s) => s !== null)
    .join(' and ');
}

/** The figures table: one row per figure, "-" where a figure could not be taken (etcd skipped). */
export function figureRows(f: DurabilityFigures): Cell[][] {
  return (Object.keys(FIGURE_LABELS) as (keyof DurabilityFigures)[]).map((k) => [
    FIGURE_LABELS[k],
    f[k].clients,
    f[k].value?.toFixed(3) ?? null,
    describeTarget(f[k].target),
    f[k].meets === null ? null : f[k].meets ? 'yes' : 'no',
  ]);
}
