/**
 * Rates and latency percentiles from cumulative counters and histograms scraped straight from
 * the processes (what Prometheus' `rate` and `histogram_quantile` do, for a source without
 * Prometheus): each sample is compared with the oldest one kept within the window.
 */

/** A cumulative histogram bucket: observations at or below `le` (ms; Infinity for +Inf). */
export interface LatencyBucket {
  readonly le: number;
  readonly count: number;
}

/** One scrape: cumulative counters and latency histograms, by process (series) name. */
export interface RateSample {
  /** ms, on any clock that only moves forward. */
  readonly at: number;
  readonly commands: ReadonlyMap<string, number>;
  readonly latency: ReadonlyMap<string, readonly LatencyBucket[]>;
}

export interface Rates {
  readonly commandsPerS: number | null;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
}

/**
 * The q-quantile of cumulative buckets, interpolated linearly inside its bucket as Prometheus'
 * `histogram_quantile` does (the lowest bucket from 0); the highest finite bound when it falls
 * in +Inf; null without observations.
 */
export function histogramQuantile(q: number, buckets: readonly LatencyBucket[]): number | null {
  const sorted = [...buckets].sort((a, b) => a.le - b.le);
  const total = sorted.at(-1)?.count ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const b of sorted) {
    if (b.count >= rank) {
      if (b.le === Number.POSITIVE_INFINITY) return lower;
      return b.count === below ? b.le : lower + ((b.le - lower) * (rank - below)) / (b.count - below);
    }
    lower = b.le;
    below = b.count;
  }
  return lower;
}

/**
 * Commands/s and latency percentiles over the last `windowMs`. A counter that went down (its
 * process restarted) counts from 0; a series that appears counts from 0 too, so a new load
 * generator's first scrape is all new.
 */
export class RateWindow {
  private readonly samples: RateSample[] = [];

  constructor(private readonly windowMs = 5000) {}

  push(sample: RateSample): Rates {
    const last = this.samples.at(-1);
    if (last !== undefined && sample.at <= last.at) return this.ratesTo(sample);
    this.samples.push(sample);
    while (this.samples.length > 2 && (this.samples[1] as RateSample).at <= sample.at - this.windowMs)
      this.samples.shift();
    return this.ratesTo(sample);
  }

  private ratesTo(now: RateSample): Rates {
    const old = this.samples[0];
    if (old === undefined || old === now || now.at <= old.at)
      return { commandsPerS: null, p50Ms: null, p99Ms: null };
    let commands = 0;
    for (const [name, value] of now.commands) commands += increase(old.commands.get(name), value);
    const merged = new Map<number, number>();
    for (const [name, buckets] of now.latency) {
      const before = new Map((old.latency.get(name) ?? []).map((b) => [b.le, b.count]));
      const totalBefore = before.get(Number.POSITIVE_INFINITY) ?? 0;
      const totalNow = buckets.find((b) => b.le === Number.POSITIVE_INFINITY)?.count ?? 0;
      const reset = totalNow < totalBefore;
      for (const b of buckets)
        merged.set(b.le, (merged.get(b.le) ?? 0) + (reset ? b.count : b.count - (before.get(b.le) ?? 0)));
    }
    const window = [...merged].map(([le, count]) => ({ le, count }));
    return {
      commandsPerS: (commands * 1000) / (now.at - old.at),
      p50Ms: histogramQuantile(0.5, window),
      p99Ms: histogramQuantile(0.99, window),
    };
  }
}

function increase(before: number | undefined, now: number): number {
  return before === undefined || now < before ? now : now - before;
}
