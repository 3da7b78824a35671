import type { MetricName, MetricOp } from '@paxos/core';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import {
  CORE_METRICS,
  METRIC_DEFINITIONS,
  type MetricDefinition,
  type PaxosMetricName,
  type RoleLabel,
} from './definitions.ts';

export interface MetricsOptions {
  role: RoleLabel;
  instance: string;
  /** Register prom-client's default process metrics (CPU, memory, event loop lag, GC). Default true. */
  collectDefaultMetrics?: boolean;
  /** Read at each scrape into `paxos_ready` (what `/readyz` says). Default: always ready. */
  ready?: () => boolean;
}

/** The part of a core `metric` effect that {@link Metrics.apply} reads. */
export interface MetricEffect {
  readonly name: MetricName;
  readonly op: MetricOp;
  readonly value: number;
}

type AnyMetric =
  | { readonly type: 'counter'; readonly metric: Counter }
  | { readonly type: 'gauge'; readonly metric: Gauge }
  | { readonly type: 'histogram'; readonly metric: Histogram };

/**
 * One process's metrics: a private prom-client registry (never the global one) with the default
 * labels `role` and `instance`, every metric of {@link METRIC_DEFINITIONS} registered up front (so
 * each one is exported, at 0, from the first scrape), and an `apply` for core's metric effects.
 * No method throws on a bad value: metrics must never take a role down.
 */
export class Metrics {
  readonly registry: Registry;
  readonly role: RoleLabel;
  readonly instance: string;
  private readonly metrics = new Map<string, AnyMetric>();
  private readonly ready: () => boolean;

  constructor(options: MetricsOptions) {
    if (typeof options.instance !== 'string' || options.instance === '') {
      throw new Error(
        `Metrics: instance must be a non-empty string, got ${JSON.stringify(options.instance)}`,
      );
    }
    this.role = options.role;
    this.instance = options.instance;
    this.ready = options.ready ?? (() => true);
    this.registry = new Registry();
    this.registry.setDefaultLabels({ role: options.role, instance: options.instance });
    for (const def of METRIC_DEFINITIONS as readonly MetricDefinition[]) {
      this.metrics.set(def.name, this.create(def));
    }
    if (options.collectDefaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry });
    }
  }

  private create(def: MetricDefinition): AnyMetric {
    const common = {
      name: def.name,
      help: def.help,
      registers: [this.registry],
      ...(def.labelNames === undefined ? {} : { labelNames: [...def.labelNames] }),
    };
    switch (def.type) {
      case 'counter': {
        const counter = new Counter(common);
        for (const labels of def.initialLabels ?? []) counter.inc(labels, 0);
        return { type: 'counter', metric: counter };
      }
      case 'gauge': {
        if (def.name !== 'paxos_ready') return { type: 'gauge', metric: new Gauge(common) };
        const ready = this.ready;
        const gauge: Gauge = new Gauge({
          ...common,
          collect() {
            gauge.set(ready() ? 1 : 0);
          },
        });
        return { type: 'gauge', metric: gauge };
      }
      case 'histogram':
        return { type: 'histogram', metric: new Histogram({ ...common, buckets: [...(def.buckets ?? [])] }) };
    }
  }

  /**
   * Applies a core metric effect. By the target metric's type: counters `inc` (by a finite value
   * ≥ 0), gauges `set` (or `inc` by a delta), histograms `observe` (scaled, e.g. ms → s). Unknown
   * names, mismatched ops and non-finite values are ignored.
   */
  apply(effect: MetricEffect): void {
    const mapping = Object.hasOwn(CORE_METRICS, effect.name) ? CORE_METRICS[effect.name] : undefined;
    if (mapping === undefined) return;
    const target = this.metrics.get(mapping.metric);
    const value = effect.value;
    if (target === undefined || typeof value !== 'number' || !Number.isFinite(value)) return;
    switch (target.type) {
      case 'counter':
        if (effect.op === 'inc' && value >= 0) target.metric.inc(value * mapping.scale);
        return;
      case 'gauge':
        if (effect.op === 'set') target.metric.set(value * mapping.scale);
        else if (effect.op === 'inc') target.metric.inc(value * mapping.scale);
        return;
      case 'histogram':
        if (effect.op === 'observe') target.metric.observe(value * mapping.scale);
        return;
    }
  }

  private count(name: PaxosMetricName, n: number): void {
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) return;
    const target = this.metrics.get(name);
    if (target?.type === 'counter') target.metric.inc(n);
  }

  /** `num_incoming_messages`: messages received from the network. */
  incoming(n = 1): void {
    this.count('num_incoming_messages', n);
  }
  /** `num_outgoing_messages`: messages sent to the network. */
  outgoing(n = 1): void {
    this.count('num_outgoing_messages', n);
  }
  /** `num_processed_messages`: messages fully handled. */
  processed(n = 1): void {
    this.count('num_processed_messages', n);
  }
  /** `num_invalid_messages`: messages that failed to decode or were not valid for the role. */
  invalid(n = 1): void {
    this.count('num_invalid_messages', n);
  }
  /** `num_dropped_messages`: outgoing messages dropped (send queue full / unreachable peer). */
  dropped(n = 1): void {
    this.count('num_dropped_messages', n);
  }
  /** `paxos_directory_reregistrations_total`: the directory had lost this process's entry. */
  reregistered(n = 1): void {
    this.count('paxos_directory_reregistrations_total', n);
  }
  /** `paxos_member_leases_expired_total`: peers dropped because their lease stopped rising. */
  leasesExpired(n = 1): void {
    this.count('paxos_member_leases_expired_total', n);
  }
  /** `num_sent_mock_messages`: messages a mock component sent. */
  mockSent(n = 1): void {
    this.count('num_sent_mock_messages', n);
  }
  /** `num_received_mock_messages`: messages a mock component received. */
  mockReceived(n = 1): void {
    this.count('num_received_mock_messages', n);
  }

  /** `paxos_matchmaker_requests_total{type}`: a request a matchmaker received. */
  matchmakerRequest(type: string): void {
    const target = this.metrics.get('paxos_matchmaker_requests_total');
    if (target?.type === 'counter') target.metric.inc({ type });
  }

  /** `paxos_live_configurations` gauge: the configurations a matchmaker holds. */
  setLiveConfigurations(n: number): void {
    const target = this.metrics.get('paxos_live_configurations');
    if (target?.type === 'gauge' && Number.isFinite(n)) target.metric.set(n);
  }

  /** `is_leader` gauge: 1 or 0. */
  setLeader(isLeader: boolean): void {
    const target = this.metrics.get('is_leader');
    if (target?.type === 'gauge') target.metric.set(isLeader ? 1 : 0);
  }

  /** The registry in the Prometheus text exposition format. */
  metricsText(): Promise<string> {
    return this.registry.metrics();
  }

  /** The content type to serve {@link metricsText} with. */
  get contentType(): string {
    return this.registry.contentType;
  }
}
