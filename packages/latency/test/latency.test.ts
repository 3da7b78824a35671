import { describe, expect, it } from 'vitest';
import { LATENCY_RANGE, LatencyHistogram } from '../src/index.ts';

/** Exact nearest-rank q-quantile of `values`: the definition the histogram approximates. */
function nearestRank(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] as number;
}

/** A seeded PRNG (mulberry32), so the distributions are the same every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const QUANTILES = [0.5, 0.9, 0.99, 0.999];

describe('LatencyHistogram', () => {
  it('percentiles of 1..1000 ms are the nearest-rank values, to the histogram resolution (0.1 %)', () => {
    const h = new LatencyHistogram();
    for (let ms = 1; ms <= 1000; ms++) h.recordMs(ms);
    expect(h.count).toBe(1000);
    // Nearest rank: ⌈q·n⌉-th value; reported as the upper end of its bucket.
    expect(h.percentileMs(0.5)).toBeGreaterThanOrEqual(500);
    expect(h.percentileMs(0.5)).toBeLessThanOrEqual(500 * 1.001);
    expect(h.percentileMs(0.99)).toBeGreaterThanOrEqual(990);
    expect(h.percentileMs(0.99)).toBeLessThanOrEqual(990 * 1.001);
    expect(h.percentileMs(0.999)).toBeGreaterThanOrEqual(999);
    expect(h.percentileMs(0.999)).toBeLessThanOrEqual(999 * 1.001);
    expect(h.maxMs).toBeGreaterThanOrEqual(1000);
    expect(h.maxMs).toBeLessThanOrEqual(1001);
  });

  it('a single value is every percentile', () => {
    const h = new LatencyHistogram();
    h.recordMs(2.5);
    for (const q of QUANTILES) expect(h.percentileMs(q)).toBeCloseTo(2.5, 2);
  });

  it('percentiles of an exponential and a bimodal distribution are within 0.1 % of the exact ones', () => {
    const next = random(7);
    const exponential = Array.from({ length: 200_000 }, () => -Math.log(1 - next()) * 5);
    // 98 % fast (about 1 ms), 2 % slow (about 200 ms): p99 falls in the slow mode.
    const bimodal = Array.from({ length: 100_000 }, () =>
      next() < 0.98 ? 0.5 + next() : 150 + next() * 100,
    );
    for (const values of [exponential, bimodal]) {
      const h = new LatencyHistogram();
      for (const v of values) h.recordMs(v);
      for (const q of QUANTILES) {
        const exact = nearestRank(values, q);
        const got = h.percentileMs(q) as number;
        // Recorded to the µs, then bucketed to 3 significant digits.
        expect(got).toBeGreaterThanOrEqual(exact - 0.0005);
        expect(got).toBeLessThanOrEqual(exact * 1.001 + 0.001);
      }
    }
  });

  it('nothing recorded: every figure is null', () => {
    expect(new LatencyHistogram().summary()).toEqual({
      count: 0,
      p50Ms: null,
      p99Ms: null,
      p999Ms: null,
      maxMs: null,
    });
  });

  it('values beyond the range are recorded at its ends', () => {
    const h = new LatencyHistogram();
    h.recordMs(120_000);
    h.recordMs(-1);
    expect(h.count).toBe(2);
    expect(h.maxMs).toBeGreaterThanOrEqual(LATENCY_RANGE.highestMicros / 1000);
    expect(h.maxMs).toBeLessThanOrEqual((LATENCY_RANGE.highestMicros / 1000) * 1.001);
    expect(h.percentileMs(0.5)).toBe(0);
    expect(() => h.recordMs(Number.NaN)).toThrow(/NaN/);
  });

  it('merging two encoded histograms equals recording every value into one', () => {
    const next = random(11);
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    const both = new LatencyHistogram();
    for (let i = 0; i < 50_000; i++) {
      // Two processes with different latencies: the merged tail is the slow one's.
      const fast = -Math.log(1 - next()) * 2;
      const slow = 20 + next() * 80;
      a.recordMs(fast);
      both.recordMs(fast);
      if (i % 4 === 0) {
        b.recordMs(slow);
        both.recordMs(slow);
      }
    }
    const merged = LatencyHistogram.merge([a.encode(), b.encode()]);
    expect(merged.count).toBe(both.count);
    expect(merged.summary()).toEqual(both.summary());
    for (let q = 0.01; q <= 1; q += 0.01) expect(merged.percentileMs(q)).toBe(both.percentileMs(q));
    // The merged p99 is not any mean or median of the two processes' p99s.
    expect(merged.percentileMs(0.99)).toBeGreaterThan(a.percentileMs(0.99) as number);
    expect(merged.percentileMs(0.99)).toBeLessThan(b.percentileMs(0.99) as number);
  });

  it('add takes a histogram or an encoded one; decode refuses what is not one', () => {
    const a = new LatencyHistogram();
    a.recordMs(3);
    const b = new LatencyHistogram().add(a).add(a.encode());
    expect(b.count).toBe(2);
    expect(LatencyHistogram.decode(b.encode()).summary()).toEqual(b.summary());
    expect(() => LatencyHistogram.decode('not a histogram')).toThrow(/not an encoded latency histogram/);
  });

  it('memory stays bounded: the same footprint after 1e6 records, a small encoding', () => {
    const h = new LatencyHistogram();
    const before = h.footprintBytes;
    const next = random(3);
    for (let i = 0; i < 1_000_000; i++) h.recordMs(-Math.log(1 - next()) * 10);
    expect(h.count).toBe(1_000_000);
    expect(h.footprintBytes).toBe(before);
    expect(before).toBeLessThan(100_000);
    expect(h.encode().length).toBeLessThan(20_000);
    h.reset();
    expect(h.count).toBe(0);
    expect(h.footprintBytes).toBe(before);
  });
});
