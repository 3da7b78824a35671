import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { MetricName } from '@paxos/core';
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  BATCH_SIZE_BUCKETS,
  CORE_METRIC_NAMES,
  CORE_METRICS,
  DIRECTORY_METRIC_DEFINITIONS,
  LATENCY_BUCKETS_SECONDS,
  METRIC_DEFINITIONS,
  METRIC_NAMES,
} from '../src/index.ts';

/** The string literals of core's `MetricName` union, read from core's source. */
function metricNamesFromCoreSource(): string[] {
  const entry = createRequire(import.meta.url).resolve('@paxos/core');
  const source = readFileSync(join(dirname(entry), 'effects.ts'), 'utf8');
  const match = /export type MetricName\s*=([^;]*);/.exec(source);
  if (match?.[1] === undefined) throw new Error('MetricName union not found in core effects.ts');
  return [...match[1].matchAll(/'([^']+)'/g)].map((m) => m[1] ?? '');
}

const SEED_COUNTERS = [
  'num_processed_messages',
  'num_incoming_messages',
  'num_outgoing_messages',
  'p1a',
  'p1b_success',
  'p1b_preempted',
  'p2b_preempted',
  'leader_heartbeat_received',
  'num_sent_mock_messages',
  'num_received_mock_messages',
];

describe('core MetricName mapping', () => {
  it('is complete at the type level (Record<MetricName, …>)', () => {
    expectTypeOf<keyof typeof CORE_METRICS>().toEqualTypeOf<MetricName>();
    expectTypeOf(CORE_METRIC_NAMES).toEqualTypeOf<readonly MetricName[]>();
  });

  it("maps exactly the names of core's MetricName union (checked against core's source)", () => {
    const fromSource = metricNamesFromCoreSource();
    expect(fromSource.length).toBeGreaterThan(10);
    expect([...CORE_METRIC_NAMES].sort()).toEqual([...fromSource].sort());
  });

  it('targets only registered metrics, converting ms to seconds', () => {
    for (const name of CORE_METRIC_NAMES) {
      expect(METRIC_NAMES).toContain(CORE_METRICS[name].metric);
    }
    expect(CORE_METRICS.client_latency_ms).toEqual({ metric: 'client_latency_seconds', scale: 0.001 });
    expect(CORE_METRICS.phase2_latency_ms).toEqual({ metric: 'phase2_latency_seconds', scale: 0.001 });
  });
});

describe('metric definitions', () => {
  it('keeps the seed counter names exactly, as counters, without _total', () => {
    for (const name of SEED_COUNTERS) {
      const def = METRIC_DEFINITIONS.find((d) => d.name === name);
      expect(def?.type, name).toBe('counter');
    }
    // Only metrics added after the seed's (with the paxos_ prefix) follow Prometheus' _total naming.
    expect(METRIC_NAMES.filter((n) => n.endsWith('_total') && !n.startsWith('paxos_'))).toEqual([]);
  });

  it('names every metric added since the seed the Prometheus way: paxos_ prefix, _total counters', () => {
    const added = METRIC_DEFINITIONS.filter((d) => d.name.startsWith('paxos_'));
    expect(added.length).toBeGreaterThanOrEqual(6);
    for (const def of added) {
      if (def.type === 'counter') expect(def.name).toMatch(/^paxos_[a-z0-9_]+_total$/);
      else expect(def.name).not.toMatch(/_total$/);
    }
  });

  it('has unique names, non-empty help strings and the extra metrics', () => {
    expect(new Set(METRIC_NAMES).size).toBe(METRIC_NAMES.length);
    for (const def of METRIC_DEFINITIONS) expect(def.help.length, def.name).toBeGreaterThan(10);
    const types = Object.fromEntries(METRIC_DEFINITIONS.map((d) => [d.name, d.type]));
    expect(types).toMatchObject({
      num_invalid_messages: 'counter',
      num_dropped_messages: 'counter',
      retransmissions: 'counter',
      commands_chosen: 'counter',
      slots_chosen: 'counter',
      leader_elections: 'counter',
      is_leader: 'gauge',
      chosen_watermark: 'gauge',
      inflight_slots: 'gauge',
      client_latency_seconds: 'histogram',
      phase2_latency_seconds: 'histogram',
      batch_size: 'histogram',
      paxos_malformed_batches_total: 'counter',
      paxos_match_preempted_total: 'counter',
      paxos_stale_configurations_total: 'counter',
      paxos_reconfigurations_total: 'counter',
      paxos_configuration_version: 'gauge',
      paxos_garbage_collections_total: 'counter',
      paxos_retired_acceptors_total: 'counter',
      paxos_acceptor_retired: 'gauge',
      paxos_matchmaker_epoch: 'gauge',
      paxos_matchmaker_reconfigurations_total: 'counter',
      paxos_matchmaker_requests_total: 'counter',
      paxos_live_configurations: 'gauge',
      paxos_ballot_round: 'gauge',
      paxos_ballot_proposer_id: 'gauge',
      paxos_ready: 'gauge',
    });
    expect(METRIC_NAMES).toHaveLength(43);
  });

  it('uses the agreed buckets', () => {
    expect(BATCH_SIZE_BUCKETS).toEqual([1, 2, 5, 10, 20, 40, 80, 100, 200]);
    expect(LATENCY_BUCKETS_SECONDS[0]).toBe(0.0001);
    expect(LATENCY_BUCKETS_SECONDS.at(-1)).toBe(2);
    const sorted = [...LATENCY_BUCKETS_SECONDS].sort((a, b) => a - b);
    expect(LATENCY_BUCKETS_SECONDS).toEqual(sorted);
  });
});

/**
 * Names kept although they break the naming rule: the seed's counters, and the metrics the
 * first increment added before the rule (renaming them would break dashboards and scripts).
 */
const NAMING_EXCEPTIONS = [
  ...SEED_COUNTERS,
  'num_invalid_messages',
  'num_dropped_messages',
  'retransmissions',
  'commands_chosen',
  'slots_chosen',
  'leader_elections',
  'is_leader',
  'chosen_watermark',
  'inflight_slots',
  'client_latency_seconds',
  'phase2_latency_seconds',
  'batch_size',
];

describe('metric naming (Prometheus: paxos_ prefix, base units, _total counters)', () => {
  const all = [...METRIC_DEFINITIONS, ...DIRECTORY_METRIC_DEFINITIONS];

  it('names every metric but the listed exceptions the Prometheus way', () => {
    for (const def of all) {
      if (NAMING_EXCEPTIONS.includes(def.name)) continue;
      expect(def.name).toMatch(/^paxos_[a-z0-9_]+$/);
      if (def.type === 'counter') expect(def.name, def.name).toMatch(/_total$/);
      else expect(def.name, def.name).not.toMatch(/_total$/);
      // Base units: seconds and bytes, never ms, µs or kB.
      expect(def.name, def.name).not.toMatch(
        /_(ms|millis|milliseconds|us|micros|microseconds|ns|kb|mb|minutes|hours)(_|$)/,
      );
      if (/latency|duration|_time|wait/.test(def.name))
        expect(def.name, def.name).toMatch(/_seconds(_total)?$/);
    }
    // Every exception is still a registered name (a rename must take it off the list).
    for (const name of NAMING_EXCEPTIONS) expect(METRIC_NAMES, name).toContain(name);
  });

  it("the README's Metrics section has one table row for every metric", () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(
      readme.indexOf('\n## Metrics'),
      readme.indexOf('\n## ', readme.indexOf('\n## Metrics') + 1),
    );
    const rows = section.split('\n').filter((l) => l.startsWith('| `'));
    const documented = new Set(
      rows.flatMap((r) =>
        [...(r.split('|')[1] ?? '').matchAll(/`([a-z0-9_]+)(?:\{[^}]*\})?`/g)].map((m) => m[1]),
      ),
    );
    for (const def of all)
      expect(documented.has(def.name), `${def.name} in README's Metrics table`).toBe(true);
  });
});
