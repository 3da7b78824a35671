import { describe, expect, it } from 'vitest';
import { ackGaps, type ProgressSample, throughput } from './helpers.ts';

/** One sample every 100 ms from t = 0, with the acknowledged count each one reports. */
function samples(counts: readonly number[]): ProgressSample[] {
  return counts.map((acknowledged, i) => ({ at: i * 100, acknowledged }));
}

describe('ackGaps', () => {
  it('measures the stall inside the fault, the time to the first ack after it and the longest stall', () => {
    // Acks grow until 300, then none until 1100; the fault is [250, 800].
    const progress = samples([0, 10, 20, 30, 30, 30, 30, 30, 30, 30, 30, 40, 50]);
    expect(ackGaps(progress, 250, 800)).toEqual({ duringFaultMs: 500, resumeMs: 300, longestMs: 800 });
  });

  it('counts only the part of a stall that lies inside the fault', () => {
    // Stall from 200 to 600; the fault is [400, 1000], after which acks flow every sample.
    const progress = samples([0, 10, 20, 20, 20, 20, 30, 40, 50, 60, 70, 80]);
    expect(ackGaps(progress, 400, 1000)).toEqual({ duringFaultMs: 200, resumeMs: 100, longestMs: 400 });
  });

  it('reports no resumption when acks never come back, and a stall up to the last sample', () => {
    const progress = samples([0, 10, 20, 20, 20, 20, 20, 20]);
    expect(ackGaps(progress, 250, 400)).toEqual({ duringFaultMs: 150, resumeMs: null, longestMs: 500 });
  });

  it('does not count the start-up before the first ack as a stall, but does inside a fault', () => {
    const progress = samples([0, 0, 0, 0, 5, 10, 15]);
    expect(ackGaps(progress, 600, 600).longestMs).toBe(100);
    expect(ackGaps(progress, 100, 350)).toEqual({ duringFaultMs: 250, resumeMs: 50, longestMs: 100 });
  });

  it('is one report period at most when every sample grows', () => {
    expect(ackGaps(samples([1, 2, 3, 4, 5]), 100, 300)).toEqual({
      duringFaultMs: 100,
      resumeMs: 100,
      longestMs: 100,
    });
  });
});

describe('throughput', () => {
  it('is acknowledgements per second between the first and last sample of the window', () => {
    const progress = samples([0, 10, 20, 30, 30, 30, 40]);
    expect(throughput(progress, 0, 300)).toBe(100);
    expect(throughput(progress, 300, 500)).toBe(0);
    expect(throughput(progress, 1000, 2000)).toBe(0);
  });
});
