/**
 * Acceptor groups as a scaled role, on a fake clock: one group is one instance (2f+1 acceptors),
 * its load its busiest member's; the same rule as the process roles, with no action while the
 * previous reconfiguration is in flight (`busy`), a longer scale-in window of its own, and no
 * replacement of a group.
 */
import { describe, expect, it } from 'vitest';
import { ScalingPolicy } from '../src/policy.ts';
import type { InstanceObservation, PolicySettings, RoleObservation } from '../src/types.ts';
import {
  instance,
  PER_INSTANCE,
  policySettingsFor,
  READY_TIMEOUT_MS,
  scales,
  WINDOW_MS,
} from './fake-cluster.ts';

const PERIOD_MS = 2000;
const GROUP_WINDOW_MS = 300_000;

function groupSettings(overrides: Partial<PolicySettings> = {}): PolicySettings {
  const base = policySettingsFor();
  return {
    ...base,
    roleStabilizationWindowMs: { 'acceptor-group': GROUP_WINDOW_MS },
    bounds: { ...base.bounds, 'acceptor-group': { min: 1, max: 4 } },
    ...overrides,
  };
}

const group = (id: number, rate: number | null, phase: InstanceObservation['phase'] = 'ready') =>
  instance(`acceptor-g${id}`, phase, rate);

/** `n` ready groups whose busiest members handle `load` in all. */
function groups(n: number, load: number, busy = false): RoleObservation {
  return {
    role: 'acceptor-group',
    instances: Array.from({ length: n }, (_, i) => group(i, load / n)),
    ...(busy ? { busy } : {}),
  };
}

describe('acceptor groups', () => {
  it('adds a group when the groups are loaded above the target, and says why', () => {
    const policy = new ScalingPolicy(groupSettings());
    const out = policy.decide(0, [groups(1, 1.5 * PER_INSTANCE)]);
    expect(scales(out)).toEqual([
      {
        kind: 'scale',
        role: 'acceptor-group',
        direction: 'out',
        from: 1,
        to: 2,
        reason: 'load 5,250 msg/s is 1.50× the target of 1 × 3,500 msg/s',
      },
    ]);
  });

  it('decides nothing while the previous reconfiguration is in flight, then acts on what it sees', () => {
    const policy = new ScalingPolicy(groupSettings());
    const overloaded = 3 * PER_INSTANCE;
    expect(scales(policy.decide(0, [groups(1, overloaded)]))).toHaveLength(1);
    // The reconfiguration takes a while: every period of it the load still wants more, and the
    // recommendation says so, but no second action starts.
    for (let now = PERIOD_MS; now <= 20 * PERIOD_MS; now += PERIOD_MS) {
      const out = policy.decide(now, [groups(1, overloaded, true)]);
      expect(out.decisions).toEqual([]);
      expect(out.recommendations[0]).toMatchObject({ role: 'acceptor-group', current: 1, desired: 3 });
    }
    // Nor does a count outside the bounds while busy (the action in flight may be the fix).
    expect(policy.decide(21 * PERIOD_MS, [groups(6, PER_INSTANCE, true)]).decisions).toEqual([]);
    // Returned with 3 groups: the load they share is on target, so nothing more.
    expect(policy.decide(22 * PERIOD_MS, [groups(3, overloaded)]).decisions).toEqual([]);
  });

  it("scales in one group after its own window, not the process roles' shorter one", () => {
    const policy = new ScalingPolicy(groupSettings());
    const idle = 0.2 * PER_INSTANCE;
    let firstIn: { now: number; from: number; to: number } | null = null;
    let batcherIn: number | null = null;
    for (let now = 0; now <= GROUP_WINDOW_MS + 2 * PERIOD_MS && firstIn === null; now += PERIOD_MS) {
      const out = policy.decide(now, [
        groups(3, idle),
        { role: 'batcher', instances: [instance('b0', 'ready', 100), instance('b1', 'ready', 100)] },
      ]);
      for (const d of scales(out)) {
        if (d.role === 'batcher' && batcherIn === null) batcherIn = now;
        if (d.role === 'acceptor-group') firstIn = { now, from: d.from, to: d.to };
      }
    }
    expect(batcherIn).toBe(WINDOW_MS);
    // One fewer, once the whole window has wanted fewer, and not a period before.
    expect(firstIn).toEqual({ now: GROUP_WINDOW_MS, from: 3, to: 2 });
  });

  it('keeps the count within the bounds: at most the maximum however loaded, back up to the minimum', () => {
    const policy = new ScalingPolicy(groupSettings());
    const [out] = scales(policy.decide(0, [groups(1, 20 * PER_INSTANCE)]));
    expect(out).toMatchObject({ direction: 'out', from: 1, to: 4 });
    // At the maximum, more load changes nothing.
    expect(policy.decide(PERIOD_MS, [groups(4, 20 * PER_INSTANCE)]).decisions).toEqual([]);
    // Above the maximum (a person reconfigured): back to it at once.
    expect(scales(policy.decide(2 * PERIOD_MS, [groups(6, 5 * PER_INSTANCE)]))).toMatchObject([
      { direction: 'in', from: 6, to: 4 },
    ]);
    const atTwo = new ScalingPolicy(
      groupSettings({ bounds: { ...groupSettings().bounds, 'acceptor-group': { min: 2, max: 4 } } }),
    );
    expect(scales(atTwo.decide(0, [groups(1, 0)]))).toMatchObject([{ direction: 'out', from: 1, to: 2 }]);
    // Never below the minimum, however long idle.
    const low = Array.from({ length: 400 }, (_, p) => atTwo.decide((p + 1) * PERIOD_MS, [groups(2, 0)]));
    expect(low.flatMap(scales)).toEqual([]);
  });

  it('never acts on a group whose acceptors could not be read', () => {
    const policy = new ScalingPolicy(groupSettings());
    // One group unreadable and one idle: counted as idle it would not add; as fully loaded it
    // holds the scale-in off, for far longer than the window.
    for (let now = 0; now <= 2 * GROUP_WINDOW_MS; now += PERIOD_MS) {
      const out = policy.decide(now, [{ role: 'acceptor-group', instances: [group(0, null), group(1, 0)] }]);
      expect(out.decisions).toEqual([]);
    }
    // Every group unreadable under what would be overload: no scale-out either.
    const blind = new ScalingPolicy(groupSettings());
    expect(
      blind.decide(0, [{ role: 'acceptor-group', instances: [group(0, null), group(1, Number.NaN)] }])
        .decisions,
    ).toEqual([]);
  });

  it('does not replace a group that stays starting (its acceptors are replaced one by one instead)', () => {
    const policy = new ScalingPolicy(groupSettings());
    const out = policy.decide(2 * READY_TIMEOUT_MS, [
      { role: 'acceptor-group', instances: [group(0, 100), group(1, null, 'starting')] },
      { role: 'batcher', instances: [instance('b0', 'ready', 100), instance('b1', 'starting', null)] },
    ]);
    expect(out.decisions.filter((d) => d.kind === 'replace').map((d) => d.role)).toEqual(['batcher']);
  });

  it('does not scale acceptor groups without a measured acceptor capacity', () => {
    const { 'acceptor-group': _, ...measured } = groupSettings().capacity;
    const policy = new ScalingPolicy(groupSettings({ capacity: measured }));
    const out = policy.decide(0, [groups(1, 10 * PER_INSTANCE), groups(0, 0)].slice(0, 1));
    expect(out).toEqual({ decisions: [], recommendations: [] });
    // A process role still needs its capacity.
    const { batcher: __, ...noBatcher } = measured;
    expect(
      () => new ScalingPolicy(groupSettings({ capacity: noBatcher as PolicySettings['capacity'] })),
    ).toThrow(/capacity of batcher/);
  });
});
