import { describe, expect, it } from 'vitest';
import { type DrainState, drainEnd, resolveDrainTimeoutMs } from '../src/index.ts';

/** Stopped at 0, deregistered at 10, a 300 ms poll and a 3 s drain timeout. */
const at = (now: number, s: Partial<DrainState> = {}): 'drained' | 'timeout' | null =>
  drainEnd({
    now,
    started: 0,
    deregisteredAt: 10,
    lastMessageAt: Number.NEGATIVE_INFINITY,
    pollMs: 300,
    drainTimeoutMs: 3000,
    untilQuiet: true,
    roleDrained: true,
    ...s,
  });

describe('drainEnd', () => {
  it('until quiet: serves a whole poll after the deregistration, and a whole poll after the last message', () => {
    expect(at(309)).toBe(null);
    expect(at(310)).toBe('drained');
    // Peers still sending 500 ms after the leave (a slow poll): a poll of quiet after that.
    expect(at(700, { lastMessageAt: 500 })).toBe(null);
    expect(at(800, { lastMessageAt: 500 })).toBe('drained');
  });

  it('until quiet: waits for the role too, and gives up at the timeout, counted from the stop', () => {
    expect(at(1000, { roleDrained: false })).toBe(null);
    expect(at(2999, { lastMessageAt: 2990 })).toBe(null);
    expect(at(3000, { lastMessageAt: 2990 })).toBe('timeout');
    expect(at(3000, { roleDrained: false })).toBe('timeout');
  });

  it('without quiet: one poll and a little from the stop, then as soon as the role is drained', () => {
    const s = { untilQuiet: false, lastMessageAt: 390 };
    expect(at(399, s)).toBe(null);
    expect(at(400, s)).toBe('drained');
    expect(at(1500, { ...s, roleDrained: false })).toBe(null);
    expect(at(3000, { ...s, roleDrained: false })).toBe('timeout');
  });
});

describe('resolveDrainTimeoutMs', () => {
  it('is DRAIN_TIMEOUT_MS when set, else four directory polls and at least 3 s', () => {
    expect(resolveDrainTimeoutMs({ drainTimeoutMs: 500, directoryPollMs: 3000 })).toBe(500);
    expect(resolveDrainTimeoutMs({ drainTimeoutMs: 0, directoryPollMs: 300 })).toBe(3000);
    expect(resolveDrainTimeoutMs({ drainTimeoutMs: 0, directoryPollMs: 3000 })).toBe(12_000);
  });
});
