/**
 * Latencies in an HDR histogram (hdr-histogram-js): bounded memory however many are recorded,
 * one percentile definition for every load generator and benchmark, and an encoding that lets a
 * parent merge the latencies of several processes exactly.
 */
import {
  build,
  decodeFromCompressedBase64,
  encodeIntoCompressedBase64,
  type Histogram,
} from 'hdr-histogram-js';

/** What every latency histogram covers: 1 µs to 60 s, to 3 significant digits (0.1 %). */
export const LATENCY_RANGE = {
  lowestMicros: 1,
  highestMicros: 60_000_000,
  significantDigits: 3,
} as const;

/** The figures every report shows, in ms (to the µs); null when nothing was recorded. */
export interface LatencySummary {
  readonly count: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly p999Ms: number | null;
  readonly maxMs: number | null;
}

function emptyHistogram(): Histogram {
  return build({
    lowestDiscernibleValue: LATENCY_RANGE.lowestMicros,
    highestTrackableValue: LATENCY_RANGE.highestMicros,
    numberOfSignificantValueDigits: LATENCY_RANGE.significantDigits,
    // A fixed counts array: the footprint is the same after one record or a billion.
    autoResize: false,
    bitBucketSize: 32,
  });
}

/**
 * Latencies recorded in µs. The q-quantile is by nearest rank: the smallest recorded value v such
 * that at least ⌈q·n⌉ of the n values are ≤ v, reported as the upper end of v's bucket (at most
 * 0.1 % above v). Values above 60 s are recorded as 60 s.
 */
export class LatencyHistogram {
  private readonly h: Histogram = emptyHistogram();

  /** The histogram `encode` wrote; throws with one line when `encoded` is not one. */
  static decode(encoded: string): LatencyHistogram {
    let decoded: Histogram;
    try {
      decoded = decodeFromCompressedBase64(encoded);
    } catch (err) {
      throw new Error(`not an encoded latency histogram: ${(err as Error).message}`);
    }
    return new LatencyHistogram().add(decoded);
  }

  /** One histogram of every encoded one: the same as recording all their values into one. */
  static merge(encoded: Iterable<string>): LatencyHistogram {
    const merged = new LatencyHistogram();
    for (const e of encoded) merged.add(e);
    return merged;
  }

  recordMs(ms: number): void {
    if (Number.isNaN(ms)) throw new RangeError('latency is NaN');
    this.h.recordValue(Math.min(LATENCY_RANGE.highestMicros, Math.max(0, Math.round(ms * 1000))));
  }

  /** Adds another histogram's counts (an encoded one too) to this one. */
  add(other: LatencyHistogram | Histogram | string): this {
    const h =
      typeof other === 'string'
        ? LatencyHistogram.decode(other).h
        : other instanceof LatencyHistogram
          ? other.h
          : other;
    this.h.add(h);
    return this;
  }

  get count(): number {
    return this.h.totalCount;
  }

  /** The q-quantile (0 < q ≤ 1) in ms, or null when nothing was recorded. */
  percentileMs(q: number): number | null {
    if (!(q > 0 && q <= 1)) throw new RangeError(`quantile must be in (0, 1], got ${q}`);
    return this.count === 0 ? null : this.h.getValueAtPercentile(q * 100) / 1000;
  }

  /** The largest value, as the upper end of its bucket like every percentile (so merged or not, the same). */
  get maxMs(): number | null {
    return this.count === 0 ? null : this.h.getValueAtPercentile(100) / 1000;
  }

  summary(): LatencySummary {
    return {
      count: this.count,
      p50Ms: this.percentileMs(0.5),
      p99Ms: this.percentileMs(0.99),
      p999Ms: this.percentileMs(0.999),
      maxMs: this.maxMs,
    };
  }

  /** Compressed base64 (the HdrHistogram V2 format), a few hundred bytes for a typical run. */
  encode(): string {
    return encodeIntoCompressedBase64(this.h);
  }

  reset(): void {
    this.h.reset();
  }

  /** Memory the counts take, in bytes: the same whatever was recorded. */
  get footprintBytes(): number {
    return this.h.estimatedFootprintInBytes;
  }
}
