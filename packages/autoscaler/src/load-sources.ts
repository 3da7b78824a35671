/**
 * Where the controller reads load: each process's own `/metrics`, or Prometheus' HTTP API. Both
 * give messages per second per instance from its role's counter (LOAD_SIGNALS), and null where a
 * reading failed (the policy never scales on such a gap).
 */
import { parseExposition, sumSamples } from '@paxos/metrics';
import type { LoadSource, ObservedInstance } from './controller.ts';
import { instantQuery } from './prometheus.ts';
import { LOAD_SIGNALS } from './types.ts';

/** Scrapes each instance's `/metrics` and turns its counter's rise since the last scrape into a rate. */
export class ScrapeLoadSource implements LoadSource {
  private readonly last = new Map<string, { value: number; at: number }>();

  constructor(private readonly options: { timeoutMs?: number; clock?: () => number } = {}) {}

  async rates(instances: readonly ObservedInstance[]): Promise<ReadonlyMap<string, number | null>> {
    const clock = this.options.clock ?? (() => performance.now());
    const readings = await Promise.all(instances.map(async (i) => [i.name, await this.read(i)] as const));
    const rates = new Map<string, number | null>();
    for (const [name, value] of readings) {
      const previous = this.last.get(name);
      if (value === null) {
        rates.set(name, null);
        continue;
      }
      const at = clock();
      this.last.set(name, { value, at });
      // The first reading has nothing to compare with; a counter that fell means the process restarted.
      rates.set(
        name,
        previous === undefined || value < previous.value || at <= previous.at
          ? null
          : ((value - previous.value) * 1000) / (at - previous.at),
      );
    }
    for (const name of [...this.last.keys()]) if (!rates.has(name)) this.last.delete(name);
    return rates;
  }

  private async read(instance: ObservedInstance): Promise<number | null> {
    if (instance.metricsUrl === null) return null;
    try {
      const response = await fetch(instance.metricsUrl, {
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 1000),
      });
      if (!response.ok) return null;
      return sumSamples(parseExposition(await response.text()), LOAD_SIGNALS[instance.role].counter);
    } catch {
      return null;
    }
  }
}

/**
 * Asks Prometheus for the rate of each scaled role's counter (LOAD_SIGNALS) over `window`, by
 * the process's own INSTANCE name: `exported_instance`, since the scrape configurations
 * (infra/prometheus) let the target's `instance` label win. An instance Prometheus has no rate
 * for, or every instance when the query fails, reads null.
 */
export class PrometheusLoadSource implements LoadSource {
  constructor(
    private readonly options: {
      readonly url: string;
      /** The range of `rate()`: a few scrape intervals (Prometheus needs two samples in it). */
      readonly window?: string;
      /**
       * Only series with these labels, e.g. `{ cluster: 'demo' }` on EC2: one Prometheus may
       * watch several clusters, whose processes have the same names.
       */
      readonly labels?: Readonly<Record<string, string>>;
      readonly timeoutMs?: number;
      readonly fetch?: typeof fetch;
    },
  ) {}

  async rates(instances: readonly ObservedInstance[]): Promise<ReadonlyMap<string, number | null>> {
    // Every process's rate (a cluster has tens): no role filter, since `role` is a target label
    // locally and a tag on EC2, while the instance names are the processes' own everywhere.
    const matchers = Object.entries(this.options.labels ?? {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
    const selector = matchers.length === 0 ? '' : `{${matchers.join(',')}}`;
    const counters = [...new Set(instances.map((i) => LOAD_SIGNALS[i.role].counter))];
    const results = await Promise.all(
      counters.map((counter) =>
        instantQuery(
          this.options.url,
          `sum by (exported_instance) (rate(${counter}${selector}[${this.options.window ?? '30s'}]))`,
          {
            by: 'exported_instance',
            ...(this.options.timeoutMs === undefined ? {} : { timeoutMs: this.options.timeoutMs }),
            ...(this.options.fetch === undefined ? {} : { fetch: this.options.fetch }),
          },
        )
          .then((byInstance) => [counter, byInstance] as const)
          .catch(() => [counter, null] as const),
      ),
    );
    const byCounter = new Map(results);
    return new Map(
      instances.map((i) => [i.name, byCounter.get(LOAD_SIGNALS[i.role].counter)?.get(i.name) ?? null]),
    );
  }
}
