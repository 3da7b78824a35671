import { describe, expect, it } from 'vitest';
import { ScalingPolicy } from '../src/policy.ts';
import type { RoleObservation } from '../src/types.ts';
import {
  batchers,
  CAPACITY,
  directionChanges,
  FakeCluster,
  instance,
  PER_INSTANCE,
  policySettingsFor,
  READY_TIMEOUT_MS,
  readyBatchers,
  scales,
  WINDOW_MS,
} from './fake-cluster.ts';

const PERIOD_MS = 2000;

/** A deterministic stream of numbers in [0, 1) (a linear congruential generator). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

describe('the proportional rule', () => {
  it('scales out to ceil(load / (capacity × target)) and says why with the figures', () => {
    const policy = new ScalingPolicy(policySettingsFor());
    const out = policy.decide(0, readyBatchers(2, 12_400));
    expect(out.decisions).toEqual([
      {
        kind: 'scale',
        role: 'batcher',
        direction: 'out',
        from: 2,
        to: 4,
        reason: 'load 12,400 msg/s is 1.77× the target of 2 × 3,500 msg/s',
      },
    ]);
    expect(out.recommendations).toEqual([
      {
        role: 'batcher',
        current: 2,
        desired: 4,
        max: 64,
        loadForScaleOut: 12_400,
        loadForScaleIn: 12_400,
        utilization: 12_400 / (2 * CAPACITY),
      },
    ]);
  });

  it('recommends for every role observed, every call, acting or not', () => {
    const policy = new ScalingPolicy(policySettingsFor());
    const observations: RoleObservation[] = [
      { role: 'batcher', instances: [instance('b0', 'ready', 3500)] },
      { role: 'proxy-leader', instances: [instance('p0', 'starting', null), instance('p1', 'ready', 3000)] },
      { role: 'unbatcher', instances: [instance('u0', 'starting', null)] },
    ];
    for (const now of [0, 2000, 4000]) {
      const out = policy.decide(now, observations);
      expect(out.recommendations.map((r) => [r.role, r.current, r.desired])).toEqual([
        ['batcher', 1, 1],
        // 3,000 msg/s wants one, but the starting one holds the scale-in off.
        ['proxy-leader', 2, 1],
        ['unbatcher', 1, 1],
      ]);
      expect(out.recommendations.find((r) => r.role === 'unbatcher')?.utilization).toBeNull();
      expect(out.decisions).toEqual([]);
    }
  });

  it('counts starting instances as capacity but ignores their rate, and counts draining load but not draining instances', () => {
    const policy = new ScalingPolicy(policySettingsFor());
    const out = policy.decide(
      0,
      batchers(
        instance('b0', 'ready', 3000),
        instance('b1', 'starting', 4000),
        instance('b2', 'draining', 4000),
      ),
    );
    const [rec] = out.recommendations;
    expect(rec).toMatchObject({ current: 2, loadForScaleOut: 7000, loadForScaleIn: 7000, desired: 2 });
    expect(rec?.utilization).toBeCloseTo(7000 / CAPACITY);
    // 7,000 msg/s on 2 instances is exactly the target: the starting one already covers it.
    expect(out.decisions).toEqual([]);
  });

  it('does not want an extra instance for the rounding of a sum of even shares', () => {
    const policy = new ScalingPolicy(policySettingsFor());
    // 6 × (14,000 / 6) adds up to 14,000.000000000002: still four instances of 3,500.
    expect(policy.decide(0, readyBatchers(6, 14_000)).recommendations[0]?.desired).toBe(4);
  });

  it('treats a negative or non-finite rate (a counter reset) as unreadable', () => {
    const policy = new ScalingPolicy(policySettingsFor());
    const out = policy.decide(
      0,
      batchers(
        instance('b0', 'ready', -1e9),
        instance('b1', 'ready', Number.NaN),
        instance('b2', 'ready', 1000),
      ),
    );
    expect(out.recommendations[0]).toMatchObject({
      loadForScaleOut: 1000,
      loadForScaleIn: 1000 + 2 * CAPACITY,
    });
  });
});

describe('step', () => {
  it('a 4× jump gets one decision straight to the right size', () => {
    const cluster = new FakeCluster({ initialReady: 4 });
    cluster.run(10, () => 4000);
    cluster.run(30, () => 16_000);
    // 16,000 / 3,500 = 4.6: five instances, reached in the first period of the new load.
    expect(cluster.scaleDecisions()).toEqual([expect.objectContaining({ direction: 'out', from: 4, to: 5 })]);
    expect(scales(cluster.periods[10]?.output ?? { decisions: [], recommendations: [] })).toHaveLength(1);
  });

  it('a jump beyond doubling is limited to max(current, 4) more per period', () => {
    // At a target of 25 % an instance's headroom is 4×, so the measured load can show a 4× jump.
    const settings = policySettingsFor({ targetUtilization: 0.25 });
    const cluster = new FakeCluster({ settings, initialReady: 8 });
    cluster.run(5, () => 8 * 1200);
    cluster.run(30, () => 4 * 8 * 1200);
    // 38,400 / 1,250 = 30.7: 31 wanted; 8 → 16 (doubling), then 16 → 31 the next period.
    const decisions = cluster.scaleDecisions();
    expect(decisions.map((d) => [d.direction, d.from, d.to])).toEqual([
      ['out', 8, 16],
      ['out', 16, 31],
    ]);
    expect(decisions[0]?.reason).toContain('31 wanted, at most 8 more per period');
    expect(cluster.periods[5]?.output.decisions).toHaveLength(1);
    expect(cluster.periods[6]?.output.decisions).toHaveLength(1);
  });

  it('from a small role the step is at least 4', () => {
    const policy = new ScalingPolicy(policySettingsFor());
    const [decision] = scales(policy.decide(0, readyBatchers(1, 30_000)));
    expect(decision).toMatchObject({ from: 1, to: 5 });
  });

  it('from saturation (rates capped at capacity) a large step still converges within a few periods', () => {
    const cluster = new FakeCluster({ initialReady: 2 });
    cluster.run(5, () => 7000);
    cluster.run(40, () => 56_000);
    expect(cluster.current).toBe(16);
    // The measured rate cannot exceed capacity, so each period grows by at most 1 / target.
    expect(
      cluster.scaleDecisions().every((d) => d.direction === 'out' && d.to <= Math.ceil(d.from / 0.7)),
    ).toBe(true);
    expect(cluster.scaleDecisions().length).toBeGreaterThan(3);
  });
});

describe('ramp', () => {
  it('grows period by period, keeping capacity ahead of the load and never scaling in', () => {
    const cluster = new FakeCluster({ initialReady: 1 });
    const periods = cluster.run(120, (p) => 1000 + 450 * p);
    const decisions = cluster.scaleDecisions();
    expect(decisions.every((d) => d.direction === 'out' && d.to - d.from <= 2)).toBe(true);
    expect(decisions.length).toBeGreaterThanOrEqual(10);
    for (let p = 1; p < periods.length; p++) {
      const { current, load } = periods[p] as (typeof periods)[number];
      expect(current).toBeGreaterThanOrEqual(periods[p - 1]?.current ?? 0);
      expect(current * PER_INSTANCE * 1.1).toBeGreaterThanOrEqual(load);
    }
    const last = periods.at(-1) as (typeof periods)[number];
    expect(last.current).toBe(Math.ceil(last.load / PER_INSTANCE));
  });
});

describe('spike', () => {
  it('a one-period spike scales out at once; back down only after the window, one step per period', () => {
    const cluster = new FakeCluster({ initialReady: 4 });
    cluster.run(40, (p) => (p === 35 ? 28_000 : 14_000));
    const spikeAt = 35 * PERIOD_MS;
    cluster.run(60, () => 14_000);
    const decisions = cluster.periods.flatMap((p) => scales(p.output).map((d) => ({ ...d, at: p.now })));
    // Four ready instances saturate at 20,000 msg/s: 20,000 / 3,500 = 5.7, six.
    expect(decisions.map((d) => [d.at, d.direction, d.from, d.to])).toEqual([
      [spikeAt, 'out', 4, 6],
      [spikeAt + WINDOW_MS + PERIOD_MS, 'in', 6, 5],
      [spikeAt + WINDOW_MS + 2 * PERIOD_MS, 'in', 5, 4],
    ]);
    expect(decisions[1]?.reason).toMatch(
      /^load 14,000 msg\/s is 0\.67× the target of 6 × 3,500 msg\/s; .*60 s/,
    );
    expect(cluster.current).toBe(4);
  });

  it('a freshly started policy does not scale in before it has observed a whole window', () => {
    const policy = new ScalingPolicy(policySettingsFor());
    const start = 1_000_000;
    for (let now = start; now < start + WINDOW_MS; now += PERIOD_MS) {
      expect(policy.decide(now, readyBatchers(5, 0)).decisions).toEqual([]);
    }
    expect(scales(policy.decide(start + WINDOW_MS, readyBatchers(5, 0)))).toEqual([
      expect.objectContaining({ direction: 'in', from: 5, to: 4 }),
    ]);
  });

  it('one period that wants the current size inside the window holds the scale-in off', () => {
    const policy = new ScalingPolicy(policySettingsFor());
    let now = 0;
    for (; now <= WINDOW_MS; now += PERIOD_MS) {
      // Load at the target of 5 once, at 20 s; otherwise 1 instance's worth.
      const load = now === 20_000 ? 5 * PER_INSTANCE : PER_INSTANCE;
      const out = policy.decide(now, readyBatchers(5, load));
      if (now < 20_000 + WINDOW_MS) expect(out.decisions).toEqual([]);
    }
    // The window still holds the 20 s recommendation at exactly 20 s + window, not a period later.
    for (; now <= 20_000 + WINDOW_MS; now += PERIOD_MS) {
      expect(policy.decide(now, readyBatchers(5, PER_INSTANCE)).decisions).toEqual([]);
    }
    expect(scales(policy.decide(now, readyBatchers(5, PER_INSTANCE)))).toEqual([
      expect.objectContaining({ direction: 'in', from: 5, to: 4 }),
    ]);
  });
});

describe('sawtooth', () => {
  // Load swings between 12,500 and 15,800 msg/s every 40 s: across the 4-instance boundary
  // (14,000 at the target) and past the tolerance band on the way up.
  const sawtooth = (p: number) => 12_500 + 3300 * (1 - Math.abs(((p % 20) - 10) / 10));

  it('does not flap over a long run', () => {
    const cluster = new FakeCluster({ initialReady: 4 });
    cluster.run(3000, sawtooth);
    const decisions = cluster.scaleDecisions();
    expect(decisions.length).toBeGreaterThan(0);
    expect(directionChanges(decisions)).toBeLessThanOrEqual(2);
    expect(decisions.length).toBeLessThanOrEqual(3);
  });

  it('the same load does flap without the window and the band (the test can fail)', () => {
    const settings = policySettingsFor({ stabilizationWindowMs: 0, tolerance: 0 });
    const cluster = new FakeCluster({ settings, initialReady: 4 });
    cluster.run(3000, sawtooth);
    expect(directionChanges(cluster.scaleDecisions())).toBeGreaterThan(100);
  });
});

describe('missing scrapes', () => {
  // Four instances at 3,300 msg/s each: 0.94× the target, inside the band.
  const steady = 4 * 3300;

  it('an instance whose metrics stay unreadable never causes a scale-in', () => {
    const cluster = new FakeCluster({
      initialReady: 4,
      scrape: (name, rate) => (name === 'batcher-3' ? null : rate),
    });
    cluster.run(200, () => steady);
    expect(cluster.scaleDecisions()).toEqual([]);
    expect(cluster.periods.at(-1)?.output.recommendations[0]).toMatchObject({
      loadForScaleOut: 3 * 3300,
      loadForScaleIn: 3 * 3300 + CAPACITY,
    });
  });

  it('the same instance read as idle does scale in (the test can fail)', () => {
    const cluster = new FakeCluster({
      initialReady: 4,
      scrape: (name, rate) => (name === 'batcher-3' ? 0 : rate),
    });
    cluster.run(200, () => steady);
    expect(cluster.scaleDecisions().some((d) => d.direction === 'in')).toBe(true);
  });

  it('unreadable instances never cause a scale-out, even when all of them are', () => {
    const rnd = random(7);
    const cluster = new FakeCluster({ initialReady: 4, scrape: (_, rate) => (rnd() < 0.5 ? null : rate) });
    cluster.run(300, () => steady);
    const allUnread = new FakeCluster({ initialReady: 4, scrape: () => null });
    allUnread.run(300, () => steady);
    expect(cluster.scaleDecisions()).toEqual([]);
    expect(allUnread.scaleDecisions()).toEqual([]);
  });

  it('the same instances read as fully loaded do scale out (the test can fail)', () => {
    const rnd = random(7);
    const cluster = new FakeCluster({
      initialReady: 4,
      scrape: (_, rate) => (rnd() < 0.5 ? CAPACITY : rate),
    });
    cluster.run(300, () => steady);
    expect(cluster.scaleDecisions().some((d) => d.direction === 'out')).toBe(true);
  });
});

describe('warm-up', () => {
  it('an instance never ready is reported for replacement once, with how long it waited', () => {
    const policy = new ScalingPolicy(policySettingsFor());
    const replaces = [];
    for (let now = 0; now <= 5 * READY_TIMEOUT_MS; now += PERIOD_MS) {
      const out = policy.decide(
        now,
        batchers(instance('b0', 'ready', 2000), instance('b1', 'starting', null, 0)),
      );
      replaces.push(...out.decisions.filter((d) => d.kind === 'replace').map((d) => ({ ...d, now })));
    }
    expect(replaces).toEqual([
      {
        kind: 'replace',
        role: 'batcher',
        instance: 'b1',
        now: READY_TIMEOUT_MS + PERIOD_MS,
        reason: 'b1 has been starting for 32 s, longer than the ready timeout of 30 s',
      },
    ]);
  });

  it('in a cluster, the stuck instance is replaced once and its replacement serves', () => {
    const cluster = new FakeCluster({ initialReady: 2, neverReady: ['batcher-2'] });
    cluster.run(100, () => 9000);
    const replaces = cluster.periods.flatMap((p) => p.output.decisions.filter((d) => d.kind === 'replace'));
    expect(replaces).toEqual([expect.objectContaining({ instance: 'batcher-2' })]);
    expect(cluster.scaleDecisions().map((d) => [d.direction, d.from, d.to])).toEqual([['out', 2, 3]]);
    expect(cluster.periods.at(-1)?.output.recommendations[0]?.utilization).toBeCloseTo(9000 / (3 * CAPACITY));
  });

  it('a starting instance blocks scale-in of its role until it is ready', () => {
    const policy = new ScalingPolicy(policySettingsFor());
    let now = 0;
    for (; now <= 2 * WINDOW_MS; now += PERIOD_MS) {
      const out = policy.decide(
        now,
        batchers(instance('b0', 'ready', 0), instance('b1', 'starting', null, now)),
      );
      expect(scales(out)).toEqual([]);
    }
    const out = policy.decide(now, batchers(instance('b0', 'ready', 0), instance('b1', 'ready', 0)));
    expect(scales(out)).toEqual([expect.objectContaining({ direction: 'in', from: 2, to: 1 })]);
  });

  it('does not report a stuck instance again after its role went unobserved for a period', () => {
    const policy = new ScalingPolicy(policySettingsFor());
    const stuck = batchers(instance('b0', 'starting', null, 0));
    expect(policy.decide(READY_TIMEOUT_MS + 1, stuck).decisions).toHaveLength(1);
    policy.decide(READY_TIMEOUT_MS + 2, []);
    expect(policy.decide(READY_TIMEOUT_MS + 3, stuck).decisions).toHaveLength(0);
  });

  it('reports an instance again when it is starting again later (a new since)', () => {
    const policy = new ScalingPolicy(policySettingsFor());
    const stuck = (since: number, now: number) =>
      policy
        .decide(now, batchers(instance('b0', 'starting', null, since)))
        .decisions.filter((d) => d.kind === 'replace');
    expect(stuck(0, READY_TIMEOUT_MS + 1)).toHaveLength(1);
    expect(stuck(0, READY_TIMEOUT_MS + 2)).toHaveLength(0);
    expect(stuck(100_000, 100_000 + READY_TIMEOUT_MS + 1)).toHaveLength(1);
  });
});

describe('bounds', () => {
  it('never goes below min or above max under random load', () => {
    const rnd = random(42);
    const settings = policySettingsFor({ bounds: { min: 2, max: 6 } });
    const cluster = new FakeCluster({ settings, initialReady: 2 });
    let load = 0;
    const periods = cluster.run(3000, () => {
      load = rnd() < 0.05 ? rnd() * 60_000 : load;
      return load;
    });
    expect(periods.every((p) => p.current >= 2 && p.current <= 6)).toBe(true);
    expect(cluster.scaleDecisions().every((d) => d.to >= 2 && d.to <= 6)).toBe(true);
    expect(new Set(periods.map((p) => p.current))).toEqual(new Set([2, 3, 4, 5, 6]));
  });

  it('wants no more than max however high the load', () => {
    const policy = new ScalingPolicy(policySettingsFor({ bounds: { min: 1, max: 6 } }));
    const out = policy.decide(0, readyBatchers(6, 6 * CAPACITY));
    expect(out.decisions).toEqual([]);
    expect(out.recommendations[0]?.desired).toBe(6);
  });

  it('keeps at least one instance even when told min 0', () => {
    const policy = new ScalingPolicy(policySettingsFor({ bounds: { min: 0, max: 3 } }));
    const fromNone = policy.decide(0, batchers());
    expect(fromNone.decisions).toEqual([
      expect.objectContaining({
        direction: 'out',
        from: 0,
        to: 1,
        reason: expect.stringContaining('below the minimum of 1'),
      }),
    ]);
    for (let now = PERIOD_MS; now < 5 * WINDOW_MS; now += PERIOD_MS) {
      expect(policy.decide(now, readyBatchers(1, 0)).decisions).toEqual([]);
    }
  });

  it('brings a count below min up at once, and one above max down at once', () => {
    const policy = new ScalingPolicy(policySettingsFor({ bounds: { min: 3, max: 5 } }));
    const [up] = policy.decide(0, readyBatchers(1, 0)).decisions;
    expect(up).toMatchObject({ direction: 'out', from: 1, to: 3 });
    expect(up?.reason).toContain('1 instance is below the minimum of 3');
    // Above max even on the first call and with an instance still starting.
    const [down] = policy.decide(
      PERIOD_MS,
      batchers(...(readyBatchers(7, 0)[0]?.instances ?? []), instance('s', 'starting', null, 0)),
    ).decisions;
    expect(down).toMatchObject({
      direction: 'in',
      from: 8,
      to: 5,
      reason: '8 instances is above the maximum of 5',
    });
  });
});

describe('tolerance band', () => {
  const over = (ratio: number, tolerance = 0.1) =>
    new ScalingPolicy(policySettingsFor({ tolerance })).decide(0, readyBatchers(4, ratio * 4 * PER_INSTANCE));

  it('load 5 % over the target changes nothing; 15 % over scales out', () => {
    expect(over(1.05).decisions).toEqual([]);
    expect(over(1.05).recommendations[0]?.desired).toBe(4);
    expect(scales(over(1.15))).toEqual([expect.objectContaining({ from: 4, to: 5 })]);
  });

  it('without the band, 5 % over does scale out (the test can fail)', () => {
    expect(scales(over(1.05, 0))).toEqual([expect.objectContaining({ from: 4, to: 5 })]);
  });

  it('load 5 % under the target never scales in; 15 % under does after the window', () => {
    const run = (ratio: number) => {
      const policy = new ScalingPolicy(policySettingsFor());
      const found = [];
      for (let now = 0; now <= 3 * WINDOW_MS; now += PERIOD_MS) {
        found.push(...scales(policy.decide(now, readyBatchers(10, ratio * 10 * PER_INSTANCE))));
      }
      return found;
    };
    expect(run(0.95)).toEqual([]);
    expect(run(0.85)[0]).toMatchObject({ direction: 'in', from: 10, to: 9 });
  });
});

describe('gaps in observation', () => {
  it('a role left out gets no recommendation and its window starts over', () => {
    const policy = new ScalingPolicy(policySettingsFor());
    let now = 0;
    for (; now < WINDOW_MS; now += PERIOD_MS) policy.decide(now, readyBatchers(3, 0));
    expect(policy.decide(now, []).recommendations).toEqual([]);
    now += PERIOD_MS;
    const resumed = now;
    for (; now < resumed + WINDOW_MS; now += PERIOD_MS) {
      expect(policy.decide(now, readyBatchers(3, 0)).decisions).toEqual([]);
    }
    expect(scales(policy.decide(now, readyBatchers(3, 0)))).toHaveLength(1);
  });

  it('a clock that goes back starts the window over instead of scaling in', () => {
    const policy = new ScalingPolicy(policySettingsFor());
    for (let now = 0; now < WINDOW_MS; now += PERIOD_MS) policy.decide(now, readyBatchers(3, 0));
    expect(policy.decide(WINDOW_MS - 10 * PERIOD_MS, readyBatchers(3, 0)).decisions).toEqual([]);
    expect(policy.decide(WINDOW_MS, readyBatchers(3, 0)).decisions).toEqual([]);
  });

  it('refuses a role observed twice', () => {
    const policy = new ScalingPolicy(policySettingsFor());
    expect(() => policy.decide(0, [...readyBatchers(1, 0), ...readyBatchers(1, 0)])).toThrow(
      /observed twice/,
    );
  });
});

describe('settings', () => {
  it.each([
    [{ targetUtilization: 0 }, /targetUtilization/],
    [{ targetUtilization: 1.5 }, /targetUtilization/],
    [{ tolerance: 1 }, /tolerance/],
    [{ stabilizationWindowMs: -1 }, /stabilizationWindowMs/],
    [{ readyTimeoutMs: 0 }, /readyTimeoutMs/],
    [{ bounds: { min: 4, max: 3 } }, /bounds of batcher/],
    [{ bounds: { min: 1, max: 0 } }, /bounds of batcher/],
    [{ bounds: { min: 1.5, max: 3 } }, /bounds of batcher/],
  ])('refuses %j', (overrides, message) => {
    expect(() => new ScalingPolicy(policySettingsFor(overrides))).toThrow(message);
  });

  it('refuses a capacity that is not positive or a missing role', () => {
    const settings = policySettingsFor();
    expect(
      () =>
        new ScalingPolicy({
          ...settings,
          capacity: { ...settings.capacity, unbatcher: { messagesPerSecond: 0 } },
        }),
    ).toThrow(/capacity of unbatcher/);
    const { unbatcher: _, ...withoutUnbatcher } = settings.bounds;
    expect(
      () => new ScalingPolicy({ ...settings, bounds: withoutUnbatcher as typeof settings.bounds }),
    ).toThrow(/bounds of unbatcher/);
  });
});
