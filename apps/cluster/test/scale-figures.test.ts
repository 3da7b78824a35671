import { LatencyHistogram } from '@paxos/latency';
import { describe, expect, it } from 'vitest';
import type { ClientProgress } from '../src/client-load.ts';
import { cpuSnapshot, cpuTicks, cpuUse } from '../src/cpu.ts';
import { bottleneck, busiestByRole, type TimedProgress, windowFigures } from '../src/scale-figures.ts';

/** A generator's progress line at `at` (parent's clock), `elapsedS` (its own), with these latencies in its interval. */
function line(at: number, elapsedS: number, acknowledged: number, latencies: number[]): TimedProgress {
  const h = new LatencyHistogram();
  for (const ms of latencies) h.recordMs(ms);
  const progress: ClientProgress = {
    type: 'progress',
    elapsedS,
    acknowledged,
    rate: 0,
    p50Ms: h.percentileMs(0.5),
    p99Ms: h.percentileMs(0.99),
    pending: 0,
    submitted: acknowledged,
    offered: 0,
    shed: 0,
    histogram: h.encode(),
  };
  return { at, line: progress };
}

describe('windowFigures', () => {
  it('counts each generator from its last line before the window to its last line in it, on its own clock', () => {
    const a = [
      line(900, 0.5, 100, Array(100).fill(50)), // warm-up: outside the window
      line(1000, 1.0, 200, Array(100).fill(2)), // the base: at the window's start
      line(1500, 1.5, 400, Array(200).fill(2)),
      line(2000, 2.0, 600, Array(200).fill(2)),
      line(2500, 2.5, 900, Array(300).fill(80)), // after the window
    ];
    const b = [line(1100, 0.4, 50, Array(50).fill(1)), line(1900, 1.2, 250, Array(200).fill(3))];
    const f = windowFigures([a, b], 1000, 2000);
    // a: 400 acknowledgements in 1 s; b: no line by the window's start, so it adds nothing.
    expect(f.reporting).toBe(1);
    expect(f.acknowledged).toBe(400);
    expect(f.commandsPerSecond).toBe(400);
    expect(f.count).toBe(400);
    expect(f.p99Ms).toBeCloseTo(2, 2);
    const both = windowFigures([a, [line(950, 0.3, 0, []), ...b]], 1000, 2000);
    // b: 250 in 0.9 s of its own clock.
    expect(both.reporting).toBe(2);
    expect(both.acknowledged).toBe(650);
    expect(both.commandsPerSecond).toBe(Math.round(400 + 250 / 0.9));
    expect(both.maxMs).toBeCloseTo(3, 2);
  });

  it('nothing in the window: no throughput and no percentiles', () => {
    const f = windowFigures([[line(10, 0.1, 5, [1])]], 1000, 2000);
    expect(f).toMatchObject({ commandsPerSecond: 0, acknowledged: 0, reporting: 0, p99Ms: null });
  });
});

describe('bottleneck', () => {
  it('is the role of the busiest process, or the load generator when it is a client', () => {
    const use = [
      { name: 'batcher-0', role: 'batcher', cpuPercent: 40 },
      { name: 'proxy-leader-0', role: 'proxy-leader', cpuPercent: 55 },
      { name: 'proxy-leader-1', role: 'proxy-leader', cpuPercent: 35 },
      { name: 'client-0', role: 'client', cpuPercent: 50 },
    ];
    expect(bottleneck(use)).toEqual({ role: 'proxy-leader', process: 'proxy-leader-0', cpuPercent: 55 });
    expect(bottleneck([...use, { name: 'client-1', role: 'client', cpuPercent: 97 }])).toEqual({
      role: 'load generator',
      process: 'client-1',
      cpuPercent: 97,
    });
    expect(bottleneck([])).toBeNull();
    expect(busiestByRole(use)).toEqual({
      batcher: { process: 'batcher-0', cpuPercent: 40 },
      'proxy-leader': { process: 'proxy-leader-0', cpuPercent: 55 },
      'load generator': { process: 'client-0', cpuPercent: 50 },
    });
  });
});

describe('cpu', () => {
  it('reads a process CPU from /proc and turns two snapshots into percent of a core', () => {
    const self = { name: 'self', role: 'client', pid: process.pid };
    expect(cpuTicks(process.pid)).toBeGreaterThan(0);
    const before = cpuSnapshot([
      self,
      { name: 'gone', role: 'batcher', pid: 2 ** 22 + 1 },
      { ...self, name: 'none', pid: null },
    ]);
    expect([...before.keys()]).toEqual(['self']);
    // Half a second of CPU (100 ticks of 10 ms = 1 s) over 2 s is 50 % of a core.
    expect(cpuUse([self], new Map([['self', 100]]), new Map([['self', 200]]), 2)).toEqual([
      { name: 'self', role: 'client', cpuPercent: 50 },
    ]);
    expect(cpuUse([self], new Map(), new Map([['self', 1]]), 2)).toEqual([]);
  });
});
