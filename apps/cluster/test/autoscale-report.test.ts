import type { Decision, ProcessRole } from '@paxos/autoscaler';
import { describe, expect, it } from 'vitest';
import {
  autoscaleFigures,
  loadSteps,
  type RoleCount,
  type TimedDecision,
  type TimelineSecond,
} from '../src/autoscale-report.ts';

const profile = [
  { t: 0, rate: 100 },
  { t: 10, rate: 100 },
  { t: 11, rate: 800 },
  { t: 40, rate: 800 },
  { t: 41, rate: 1200 },
  { t: 50, rate: 1200 },
  { t: 51, rate: 100 },
  { t: 100, rate: 100 },
];

const ready = (n: number, starting = 0, draining = 0): RoleCount => ({ ready: n, starting, draining });

/** A run where batchers follow `batchers(t)` and the other roles stay at one. */
function seconds(batchers: (t: number) => RoleCount, p99: (t: number) => number = () => 5): TimelineSecond[] {
  return Array.from({ length: 100 }, (_, t) => ({
    t,
    offered: 0,
    throughput: 0,
    p50Ms: 1,
    p99Ms: p99(t),
    instances: { batcher: batchers(t), 'proxy-leader': ready(1), unbatcher: ready(1) },
  }));
}

const scale = (t: number, role: ProcessRole, from: number, to: number): TimedDecision => ({
  t,
  decision: {
    kind: 'scale',
    role,
    direction: to > from ? 'out' : 'in',
    from,
    to,
    reason: 'test',
  } as Decision,
});

const common = {
  profile,
  commandsPerSecond: { batcher: 500, 'proxy-leader': 10_000, unbatcher: 10_000 },
  targetUtilization: 0.5,
  minimum: { batcher: 1, 'proxy-leader': 1, unbatcher: 1 },
  p99TargetMs: 20,
};

describe('loadSteps', () => {
  it('finds each sudden rise of a profile, not a ramp or a small rise', () => {
    expect(loadSteps(profile)).toEqual([
      { t: 10, from: 100, to: 800 },
      { t: 40, from: 800, to: 1200 },
    ]);
    expect(
      loadSteps([
        { t: 0, rate: 100 },
        { t: 60, rate: 800 },
        { t: 61, rate: 850 },
        { t: 62, rate: 850 },
      ]),
    ).toEqual([]);
  });
});

describe('autoscaleFigures', () => {
  it('times decision, serving and p99 after each load step', () => {
    const f = autoscaleFigures({
      ...common,
      seconds: seconds(
        (t) =>
          t < 14 ? ready(1) : t < 18 ? ready(1, 2) : t < 42 ? ready(3) : t < 46 ? ready(3, 1) : ready(4),
        (t) => (t >= 12 && t < 21 ? 80 : 5),
      ),
      decisions: [scale(14, 'batcher', 1, 3), scale(42, 'batcher', 3, 4), scale(44, 'unbatcher', 1, 2)],
    });
    expect(f.reactions).toEqual([
      { step: { t: 10, from: 100, to: 800 }, decisionS: 4, servingS: 8, p99BackS: 11 },
      { step: { t: 40, from: 800, to: 1200 }, decisionS: 2, servingS: 6, p99BackS: 6 },
    ]);
    expect(f.decisions).toEqual({ out: 3, in: 0, replace: 0 });
    expect(f.peakInstances).toEqual({ batcher: 4, 'proxy-leader': 1, unbatcher: 1 });
  });

  it('reports a step nobody reacted to as never', () => {
    const f = autoscaleFigures({ ...common, seconds: seconds(() => ready(1)), decisions: [] });
    expect(f.reactions.map((r) => r.decisionS)).toEqual([null, null]);
    expect(f.backAtFloorS).toBe(0);
    expect(f.backAtStartS).toBe(0);
  });

  it('tells the floor (every minimum) from the size the low load had before the rise', () => {
    // Two batchers before the first rise (t = 10), four at the peak, two again from t = 70.
    const f = autoscaleFigures({
      ...common,
      seconds: seconds((t) => (t <= 10 ? ready(2) : t < 70 ? ready(4) : ready(2))),
      decisions: [scale(12, 'batcher', 2, 4), scale(70, 'batcher', 4, 2)],
    });
    expect(f.backAtFloorS).toBeNull();
    expect(f.backAtStartS).toBe(19); // the load is back at 100/s from t = 51
  });

  it('measures the return to the floor from when the load is back at its lowest', () => {
    const f = autoscaleFigures({
      ...common,
      seconds: seconds((t) => (t < 80 ? ready(3) : t < 83 ? ready(1, 0, 2) : ready(1))),
      decisions: [scale(80, 'batcher', 3, 1)],
    });
    expect(f.backAtFloorS).toBe(32); // the load is back at 100/s from t = 51; the floor from t = 83
  });

  it('counts instance-seconds against the ideal the offered load needs', () => {
    const base = seconds(() => ready(2));
    const withLoad = base.map((s) => ({ ...s, offered: 500 })); // batcher: ceil(500 / 250) = 2
    const f = autoscaleFigures({ ...common, seconds: withLoad, decisions: [] });
    expect(f.instanceSeconds).toEqual({ used: 400, ideal: 400, ratio: 1 });
  });

  it('counts reversals during the holds (flapping), not the ramps', () => {
    const flapping = [scale(25, 'batcher', 3, 4), scale(28, 'batcher', 4, 3), scale(31, 'batcher', 3, 4)];
    const f = autoscaleFigures({ ...common, seconds: seconds(() => ready(3)), decisions: flapping });
    expect(f.hold).toEqual({ decisions: 3, reversals: 2 });
    const calm = autoscaleFigures({
      ...common,
      seconds: seconds(() => ready(3)),
      decisions: [scale(12, 'batcher', 1, 3), scale(60, 'batcher', 3, 1)],
    });
    expect(calm.hold).toEqual({ decisions: 0, reversals: 0 });
  });
});
