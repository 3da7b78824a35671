import type { Effect, Message, MetricName } from '@paxos/core';
import { register as globalRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import {
  CORE_METRIC_NAMES,
  CORE_METRICS,
  findSample,
  METRIC_DEFINITIONS,
  METRIC_NAMES,
  Metrics,
  parseExposition,
} from '../src/index.ts';

const LABELS = { role: 'proposer', instance: 'p-1' } as const;

function fresh(): Metrics {
  return new Metrics({ ...LABELS, collectDefaultMetrics: false });
}

async function read(m: Metrics) {
  return parseExposition(await m.metricsText());
}

async function value(m: Metrics, name: string, labels: Record<string, string> = {}) {
  return findSample(await read(m), name, { ...LABELS, ...labels });
}

describe('Metrics.apply', () => {
  it.each(CORE_METRIC_NAMES)('moves the metric mapped from core name %s', async (name: MetricName) => {
    const m = fresh();
    const { metric, scale } = CORE_METRICS[name];
    const type = METRIC_DEFINITIONS.find((d) => d.name === metric)?.type;
    if (type === 'histogram') {
      expect(await value(m, `${metric}_count`)).toBe(0);
      m.apply({ name, op: 'observe', value: 7 });
      expect(await value(m, `${metric}_count`)).toBe(1);
      expect(await value(m, `${metric}_sum`)).toBeCloseTo(7 * scale, 12);
    } else if (type === 'gauge') {
      expect(await value(m, metric)).toBe(0);
      m.apply({ name, op: 'set', value: 7 });
      expect(await value(m, metric)).toBe(7);
    } else {
      expect(type).toBe('counter');
      expect(await value(m, metric)).toBe(0);
      m.apply({ name, op: 'inc', value: 7 });
      expect(await value(m, metric)).toBe(7);
    }
  });

  it('accepts a whole core metric effect object', async () => {
    const m = fresh();
    const effects: Effect[] = [
      { kind: 'send', to: 'tcp://127.0.0.1:1', message: {} as Message },
      { kind: 'metric', name: 'p1a', op: 'inc', value: 1 },
    ];
    for (const effect of effects) if (effect.kind === 'metric') m.apply(effect);
    expect(await value(m, 'p1a')).toBe(1);
  });

  it('counters accumulate', async () => {
    const m = fresh();
    m.apply({ name: 'p1b_success', op: 'inc', value: 1 });
    m.apply({ name: 'p1b_success', op: 'inc', value: 1 });
    m.apply({ name: 'commands_chosen', op: 'inc', value: 40 });
    m.apply({ name: 'commands_chosen', op: 'inc', value: 2 });
    expect(await value(m, 'p1b_success')).toBe(2);
    expect(await value(m, 'commands_chosen')).toBe(42);
  });

  it('gauges take the last value set, and inc applies a delta', async () => {
    const m = fresh();
    m.apply({ name: 'inflight_slots', op: 'set', value: 5 });
    m.apply({ name: 'inflight_slots', op: 'set', value: 3 });
    expect(await value(m, 'inflight_slots')).toBe(3);
    m.apply({ name: 'inflight_slots', op: 'inc', value: -1 });
    expect(await value(m, 'inflight_slots')).toBe(2);
    m.apply({ name: 'chosen_watermark', op: 'set', value: 1234 });
    expect(await value(m, 'chosen_watermark')).toBe(1234);
  });

  it('histograms convert milliseconds to seconds and fill the right buckets', async () => {
    const m = fresh();
    m.apply({ name: 'client_latency_ms', op: 'observe', value: 0.05 }); // 50 µs
    m.apply({ name: 'client_latency_ms', op: 'observe', value: 3 }); // 3 ms
    m.apply({ name: 'client_latency_ms', op: 'observe', value: 1500 }); // 1.5 s
    m.apply({ name: 'client_latency_ms', op: 'observe', value: 5000 }); // 5 s: only +Inf
    const p = await read(m);
    const bucket = (le: string) => findSample(p, 'client_latency_seconds_bucket', { ...LABELS, le });
    expect(bucket('0.0001')).toBe(1);
    expect(bucket('0.001')).toBe(1);
    expect(bucket('0.005')).toBe(2);
    expect(bucket('1')).toBe(2);
    expect(bucket('2')).toBe(3);
    expect(bucket('+Inf')).toBe(4);
    expect(findSample(p, 'client_latency_seconds_count', LABELS)).toBe(4);
    expect(findSample(p, 'client_latency_seconds_sum', LABELS)).toBeCloseTo(6.50305, 9);

    m.apply({ name: 'phase2_latency_ms', op: 'observe', value: 250 });
    expect(await value(m, 'phase2_latency_seconds_sum')).toBeCloseTo(0.25, 12);
    expect(await value(m, 'phase2_latency_seconds_bucket', { le: '0.25' })).toBe(1);
    expect(await value(m, 'phase2_latency_seconds_bucket', { le: '0.1' })).toBe(0);
  });

  it('batch_size is observed as is, with the agreed buckets', async () => {
    const m = fresh();
    m.apply({ name: 'batch_size', op: 'observe', value: 40 });
    m.apply({ name: 'batch_size', op: 'observe', value: 3 });
    const p = await read(m);
    const les = (p.get('batch_size_bucket') ?? []).map((s) => s.labels.le);
    expect(les).toEqual(['1', '2', '5', '10', '20', '40', '80', '100', '200', '+Inf']);
    expect(findSample(p, 'batch_size_bucket', { le: '2' })).toBe(0);
    expect(findSample(p, 'batch_size_bucket', { le: '5' })).toBe(1);
    expect(findSample(p, 'batch_size_bucket', { le: '40' })).toBe(2);
    expect(findSample(p, 'batch_size_sum')).toBe(43);
  });

  it('ignores unknown names, mismatched ops and bad values without throwing', async () => {
    const m = fresh();
    const before = await m.metricsText();
    const bad = [
      { name: 'no_such_metric', op: 'inc', value: 1 },
      { name: 'toString', op: 'inc', value: 1 },
      { name: '__proto__', op: 'set', value: 1 },
      { name: 'p1a', op: 'inc', value: -1 },
      { name: 'p1a', op: 'inc', value: Number.NaN },
      { name: 'p1a', op: 'inc', value: Number.POSITIVE_INFINITY },
      { name: 'p1a', op: 'set', value: 5 },
      { name: 'p1a', op: 'observe', value: 5 },
      { name: 'is_leader', op: 'set', value: Number.NaN },
      { name: 'batch_size', op: 'inc', value: 5 },
      { name: 'client_latency_ms', op: 'set', value: 5 },
      { name: 'p1a', op: 'inc', value: '3' },
    ] as unknown as { name: MetricName; op: 'inc'; value: number }[];
    for (const effect of bad) expect(() => m.apply(effect)).not.toThrow();
    expect(await m.metricsText()).toBe(before);
  });
});

describe('runtime counters', () => {
  it('count by 1 or by n, each into its own metric', async () => {
    const m = fresh();
    m.incoming();
    m.incoming(4);
    m.outgoing(3);
    m.processed();
    m.processed();
    m.invalid();
    m.dropped(2);
    m.mockSent(10);
    m.mockReceived(9);
    const p = await read(m);
    expect(findSample(p, 'num_incoming_messages', LABELS)).toBe(5);
    expect(findSample(p, 'num_outgoing_messages', LABELS)).toBe(3);
    expect(findSample(p, 'num_processed_messages', LABELS)).toBe(2);
    expect(findSample(p, 'num_invalid_messages', LABELS)).toBe(1);
    expect(findSample(p, 'num_dropped_messages', LABELS)).toBe(2);
    expect(findSample(p, 'num_sent_mock_messages', LABELS)).toBe(10);
    expect(findSample(p, 'num_received_mock_messages', LABELS)).toBe(9);
  });

  it('ignore negative and non-finite counts', async () => {
    const m = fresh();
    m.incoming(-1);
    m.outgoing(Number.NaN);
    m.dropped(Number.POSITIVE_INFINITY);
    expect(await value(m, 'num_incoming_messages')).toBe(0);
    expect(await value(m, 'num_outgoing_messages')).toBe(0);
    expect(await value(m, 'num_dropped_messages')).toBe(0);
  });

  it('setLeader drives the is_leader gauge', async () => {
    const m = fresh();
    expect(await value(m, 'is_leader')).toBe(0);
    m.setLeader(true);
    expect(await value(m, 'is_leader')).toBe(1);
    m.setLeader(false);
    expect(await value(m, 'is_leader')).toBe(0);
  });

  it('matchmakerRequest counts by type; setLiveConfigurations sets its gauge', async () => {
    const m = fresh();
    m.matchmakerRequest('MatchA');
    m.matchmakerRequest('MatchA');
    m.matchmakerRequest('GarbageA');
    expect(await value(m, 'paxos_matchmaker_requests_total', { type: 'MatchA' })).toBe(2);
    expect(await value(m, 'paxos_matchmaker_requests_total', { type: 'GarbageA' })).toBe(1);
    m.setLiveConfigurations(2);
    expect(await value(m, 'paxos_live_configurations')).toBe(2);
  });
});

describe('registry', () => {
  it('exports exactly METRIC_NAMES, each with HELP/TYPE and the role/instance labels', async () => {
    const m = new Metrics({ role: 'acceptor', instance: 'a-0', collectDefaultMetrics: false });
    const text = await m.metricsText();
    const helped = [...text.matchAll(/^# HELP (\S+) /gm)].map((x) => x[1]);
    expect(helped.sort()).toEqual([...METRIC_NAMES].sort());
    for (const def of METRIC_DEFINITIONS) {
      expect(text).toContain(`# TYPE ${def.name} ${def.type}\n`);
    }
    for (const [name, samples] of parseExposition(text)) {
      for (const s of samples) {
        expect(s.labels.role, name).toBe('acceptor');
        expect(s.labels.instance, name).toBe('a-0');
      }
    }
  });

  it("adds prom-client's process metrics by default, with the same labels", async () => {
    const m = new Metrics({ role: 'batcher', instance: 'b-1' });
    const p = await read(m);
    expect(findSample(p, 'process_cpu_user_seconds_total', { role: 'batcher', instance: 'b-1' })).toBeTypeOf(
      'number',
    );
    expect(p.has('nodejs_heap_size_used_bytes')).toBe(true);
    for (const name of METRIC_NAMES) expect(p.has(name) || p.has(`${name}_count`), name).toBe(true);
  });

  it('uses a private registry: instances are independent and the global registry stays empty', async () => {
    const a = new Metrics({ role: 'unbatcher', instance: 'u-1', collectDefaultMetrics: false });
    const b = new Metrics({ role: 'unbatcher', instance: 'u-2', collectDefaultMetrics: false });
    a.processed(3);
    expect(await value(a, 'num_processed_messages', { instance: 'u-1', role: 'unbatcher' })).toBe(3);
    expect(
      findSample(parseExposition(await b.metricsText()), 'num_processed_messages', { instance: 'u-2' }),
    ).toBe(0);
    expect(globalRegistry.getMetricsAsArray()).toHaveLength(0);
  });

  it('escapes label values it is given and rejects an empty instance', async () => {
    const m = new Metrics({ role: 'client', instance: 'weird "id"\\x', collectDefaultMetrics: false });
    expect(findSample(await read(m), 'p1a')).toBe(0);
    expect((await read(m)).get('p1a')?.[0]?.labels.instance).toBe('weird "id"\\x');
    expect(() => new Metrics({ role: 'client', instance: '' })).toThrow(/instance/);
  });

  it('serves the Prometheus text content type', () => {
    expect(fresh().contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });
});
