/**
 * The pure figures of `pnpm bench:scale`: what a measured window of several load generators
 * amounts to, and which role was the bottleneck in it.
 */
import { LatencyHistogram, type LatencySummary } from '@paxos/latency';
import type { ClientProgress } from './client-load.ts';
import type { CpuUse } from './cpu.ts';

/** The dimensions `bench:scale` grows, one at a time, in its default order. */
export const SCALE_DIMENSIONS = ['proxy-leaders', 'unbatchers', 'batchers', 'groups'] as const;
export type ScaleDimension = (typeof SCALE_DIMENSIONS)[number];

/** A progress line and when this process read it (performance.now()). */
export interface TimedProgress {
  readonly at: number;
  readonly line: ClientProgress;
}

export interface WindowFigures extends LatencySummary {
  /** Commands/s acknowledged in the window: each generator's own rate over the span its lines cover, summed. */
  readonly commandsPerSecond: number;
  readonly acknowledged: number;
  /** Generators that reported in the window (one that did not adds nothing). */
  readonly reporting: number;
}

/**
 * The figures of the window (`from`, `to`] from each generator's progress lines: acknowledgements
 * between its last line at or before `from` and its last line by `to`, over the time between
 * those lines (the generator's own clock), and the latencies of every interval in between
 * (their HDR histograms merged).
 */
export function windowFigures(
  procs: readonly (readonly TimedProgress[])[],
  from: number,
  to: number,
): WindowFigures {
  const latencies = new LatencyHistogram();
  let commandsPerSecond = 0;
  let acknowledged = 0;
  let reporting = 0;
  for (const lines of procs) {
    const base = lines.filter((l) => l.at <= from).at(-1);
    const inWindow = lines.filter((l) => l.at > from && l.at <= to);
    const last = inWindow.at(-1);
    if (base === undefined || last === undefined) continue;
    const acked = last.line.acknowledged - base.line.acknowledged;
    const seconds = last.line.elapsedS - base.line.elapsedS;
    if (seconds <= 0) continue;
    reporting++;
    acknowledged += acked;
    commandsPerSecond += acked / seconds;
    for (const l of inWindow) latencies.add(l.line.histogram);
  }
  return {
    ...latencies.summary(),
    commandsPerSecond: Math.round(commandsPerSecond),
    acknowledged,
    reporting,
  };
}

/** What the load generators are called in the figures. */
export const LOAD_GENERATOR = 'load generator';

export interface Bottleneck {
  /** The role of the busiest process (`load generator` for a client process). */
  readonly role: string;
  readonly process: string;
  /** Its CPU, percent of one core. */
  readonly cpuPercent: number;
}

/**
 * The bottleneck of a window: the role whose busiest process used the most CPU (percent of one
 * core), or the load generator when a client process was the busiest. Null when nothing was measured.
 */
export function bottleneck(use: readonly CpuUse[]): Bottleneck | null {
  let busiest: CpuUse | null = null;
  for (const u of use) if (busiest === null || u.cpuPercent > busiest.cpuPercent) busiest = u;
  if (busiest === null) return null;
  return {
    role: busiest.role === 'client' ? LOAD_GENERATOR : busiest.role,
    process: busiest.name,
    cpuPercent: busiest.cpuPercent,
  };
}

/** Each role's busiest process and its CPU (percent of one core), the load generator's included. */
export function busiestByRole(
  use: readonly CpuUse[],
): Record<string, { process: string; cpuPercent: number }> {
  const byRole: Record<string, { process: string; cpuPercent: number }> = {};
  for (const u of use) {
    const role = u.role === 'client' ? LOAD_GENERATOR : u.role;
    const seen = byRole[role];
    if (seen === undefined || u.cpuPercent > seen.cpuPercent)
      byRole[role] = { process: u.name, cpuPercent: u.cpuPercent };
  }
  return byRole;
}
