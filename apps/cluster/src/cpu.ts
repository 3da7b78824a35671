/**
 * CPU time of local processes from /proc/<pid>/stat (Linux), for the benchmarks that say how
 * busy each process was over a measured window.
 */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's utime and stime (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** utime + stime of a process, in clock ticks; throws when the process is gone. */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may hold spaces: count from after it.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

export function ticksToMicros(ticks: number): number {
  return ticks * (1_000_000 / TICKS_PER_SECOND);
}

export interface CpuProcess {
  readonly name: string;
  readonly role: string;
  readonly pid: number | null;
}

/** Each readable process's CPU ticks now, by name (a process gone or without a pid is left out). */
export function cpuSnapshot(processes: readonly CpuProcess[]): Map<string, number> {
  const ticks = new Map<string, number>();
  for (const p of processes) {
    if (p.pid === null) continue;
    try {
      ticks.set(p.name, cpuTicks(p.pid));
    } catch {
      // exited since it was listed
    }
  }
  return ticks;
}

export interface CpuUse {
  readonly name: string;
  readonly role: string;
  /** Percent of one core over the window (a process with threads may exceed 100). */
  readonly cpuPercent: number;
}

/**
 * Each process's CPU over a window, from snapshots at its start and end; a process missing from
 * either (started or stopped within the window) is left out.
 */
export function cpuUse(
  processes: readonly CpuProcess[],
  before: ReadonlyMap<string, number>,
  after: ReadonlyMap<string, number>,
  seconds: number,
): CpuUse[] {
  return processes.flatMap((p) => {
    const t0 = before.get(p.name);
    const t1 = after.get(p.name);
    if (t0 === undefined || t1 === undefined || seconds <= 0) return [];
    const percent = (ticksToMicros(t1 - t0) / 1_000_000 / seconds) * 100;
    return [{ name: p.name, role: p.role, cpuPercent: Math.round(percent * 10) / 10 }];
  });
}
