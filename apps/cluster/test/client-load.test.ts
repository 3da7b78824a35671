import { LatencyHistogram } from '@paxos/latency';
import { describe, expect, it } from 'vitest';
import { type ClientSummary, mergeClientSummaries, splitEvenly } from '../src/client-load.ts';

function summary(latencies: readonly number[], over: Partial<ClientSummary> = {}): ClientSummary {
  const h = new LatencyHistogram();
  for (const ms of latencies) h.recordMs(ms);
  const { p50Ms, p99Ms, p999Ms, maxMs } = h.summary();
  return {
    type: 'summary',
    reason: 'duration reached',
    seconds: 2,
    clients: 4,
    submitted: latencies.length,
    acknowledged: latencies.length,
    throughput: latencies.length / 2,
    p50Ms,
    p99Ms,
    p999Ms,
    maxMs,
    mode: 'closed',
    offered: latencies.length,
    shed: 0,
    histogram: h.encode(),
    ...over,
  };
}

describe('splitEvenly', () => {
  it('splits a total into parts that differ by at most one and add up to it', () => {
    expect(splitEvenly(16, 2)).toEqual([8, 8]);
    expect(splitEvenly(9, 2)).toEqual([5, 4]);
    expect(splitEvenly(10, 4)).toEqual([3, 3, 2, 2]);
    expect(splitEvenly(1, 1)).toEqual([1]);
  });
});

describe('mergeClientSummaries', () => {
  it('sums counts and throughput; latency percentiles come from the merged histograms, not from the percentiles', () => {
    // One fast process (1 ms) and one slow (100 ms), 99 and 1 commands: p99 of the whole is
    // fast (99 of 100 are ≤ 1 ms), p99.9 and max slow; neither process's own p99 says so.
    const fast = summary(Array.from({ length: 99 }, () => 1));
    const slow = summary([100], { seconds: 2.5, clients: 3, shed: 2, offered: 3 });
    const merged = mergeClientSummaries([fast, slow]);
    expect(merged).toMatchObject({
      procs: 2,
      mode: 'closed',
      clients: 7,
      seconds: 2.5,
      acknowledged: 100,
      submitted: 100,
      throughput: 50,
      offered: 102,
      shed: 2,
    });
    expect(merged.p50Ms).toBeCloseTo(1, 2);
    expect(merged.p99Ms).toBeCloseTo(1, 2);
    expect(merged.p999Ms).toBeCloseTo(100, 0);
    expect(merged.maxMs).toBeCloseTo(100, 0);
    expect(LatencyHistogram.decode(merged.histogram).count).toBe(100);
  });

  it('is open loop when any process ran open loop; has no percentiles when nothing was acknowledged', () => {
    const merged = mergeClientSummaries([summary([], { mode: 'open' }), summary([])]);
    expect(merged.mode).toBe('open');
    expect(merged.p99Ms).toBeNull();
    expect(() => mergeClientSummaries([])).toThrow(/no load generator summary/);
  });
});
