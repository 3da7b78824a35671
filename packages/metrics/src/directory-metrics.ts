import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { DIRECTORY_METRIC_DEFINITIONS } from './definitions.ts';

/** What the directory counts (the local Anna server's `stats()`). */
export interface DirectoryStats {
  readonly addressRequests: number;
  readonly keyRequests: number;
  readonly droppedRequests: number;
  readonly invalidFrames: number;
  readonly keys: number;
}

export interface DirectoryMetricsOptions {
  readonly instance: string;
  /** Read at each scrape. */
  readonly stats: () => DirectoryStats;
  /** Read at each scrape into `paxos_ready`. Default: always ready. */
  readonly ready?: () => boolean;
  /** Register prom-client's default process metrics. Default true. */
  readonly collectDefaultMetrics?: boolean;
}

/**
 * The directory's metrics (`role="directory"`): {@link DIRECTORY_METRIC_DEFINITIONS} and
 * `paxos_ready`, each read from the server at scrape time, in a private registry.
 */
export class DirectoryMetrics {
  readonly registry = new Registry();

  constructor(options: DirectoryMetricsOptions) {
    const { stats } = options;
    const ready = options.ready ?? (() => true);
    const registers = [this.registry];
    this.registry.setDefaultLabels({ role: 'directory', instance: options.instance });
    const help = (name: string) => DIRECTORY_METRIC_DEFINITIONS.find((d) => d.name === name)?.help ?? name;
    const keys: Gauge = new Gauge({
      name: 'paxos_directory_keys',
      help: help('paxos_directory_keys'),
      registers,
      collect: () => keys.set(stats().keys),
    });
    const requests: Counter<'type'> = new Counter({
      name: 'paxos_directory_requests_total',
      help: help('paxos_directory_requests_total'),
      labelNames: ['type'],
      registers,
      collect: () => {
        const s = stats();
        requests.reset();
        requests.inc({ type: 'address' }, s.addressRequests);
        requests.inc({ type: 'key' }, s.keyRequests);
      },
    });
    const total = (name: string, read: (s: DirectoryStats) => number) => {
      const counter: Counter = new Counter({
        name,
        help: help(name),
        registers,
        collect: () => {
          counter.reset();
          counter.inc(read(stats()));
        },
      });
    };
    total('paxos_directory_dropped_requests_total', (s) => s.droppedRequests);
    total('paxos_directory_invalid_frames_total', (s) => s.invalidFrames);
    const readyGauge: Gauge = new Gauge({
      name: 'paxos_ready',
      help: 'What /readyz says at the scrape: 1 when ready, else 0',
      registers,
      collect: () => readyGauge.set(ready() ? 1 : 0),
    });
    if (options.collectDefaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  metricsText(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
