import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { dashboardQueries, prometheusStatusSource, serveDashboard } from '../src/dashboard.ts';
import { FakeEc2 } from './fake-ec2.ts';
import { FakePrometheus } from './fake-prometheus.ts';

const SEL = '{job="paxos",cluster="demo"}';
const NAMES = [
  'acceptor-g0-a0',
  'acceptor-g0-a1',
  'acceptor-g0-a2',
  'acceptor-g1-a0',
  'matchmaker-0',
  'proposer-0',
  'proposer-1',
  'batcher-0',
  'proxy-leader-0',
];

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A stand-in Prometheus over instances i-0… named NAMES in cluster demo (and one of another cluster). */
async function fake() {
  const ec2 = new FakeEc2();
  const tags = (cluster: string, name: string) =>
    new Map([
      ['paxos:cluster', cluster],
      ['paxos:name', name],
    ]);
  for (const [i, name] of NAMES.entries())
    ec2.instances.push({ id: `i-${i}`, ip: `10.0.0.${i}`, state: 'running', tags: tags('demo', name) });
  ec2.instances.push({ id: 'i-other', ip: '10.0.1.1', state: 'running', tags: tags('other', 'proposer-0') });
  const prometheus = new FakePrometheus(ec2);
  const url = await prometheus.start();
  cleanups.push(() => prometheus.stop());
  const gauge = (id: string, metric: string, value: number) => {
    const of = prometheus.gauges.get(id) ?? new Map<string, number>();
    of.set(metric, value);
    prometheus.gauges.set(id, of);
  };
  for (const i of NAMES.keys()) gauge(`i-${i}`, 'num_processed_messages', 100);
  gauge('i-other', 'num_processed_messages', 1);
  gauge('i-other', 'is_leader', 1);
  return { ec2, prometheus, url, gauge };
}

describe('the dashboard source (Prometheus)', () => {
  it('reads processes, the leader with its ballot, acceptor groups, rates and latency from Prometheus', async () => {
    const { prometheus, url, gauge } = await fake();
    const q = dashboardQueries(SEL);
    // proposer-1 (i-6) leads; acceptor-g0-a2 (i-2) retired; batcher-0 (i-7) not scraped yet.
    gauge('i-5', 'is_leader', 0);
    gauge('i-6', 'is_leader', 1);
    gauge('i-6', 'chosen_watermark', 1234);
    gauge('i-6', 'paxos_configuration_version', 2);
    gauge('i-6', 'paxos_matchmaker_epoch', 1);
    gauge('i-6', 'paxos_ballot_round', 7);
    gauge('i-6', 'paxos_ballot_proposer_id', 3);
    gauge('i-2', 'paxos_acceptor_retired', 1);
    prometheus.notUp.add('i-7');
    prometheus.answers.set(q.commands, 5000);
    prometheus.answers.set(q.p50, 0.0021);
    prometheus.answers.set(q.p99, 0.012);
    const dir = mkdtempSync(path.join(tmpdir(), 'dashboard-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const timeline = path.join(dir, 'timeline.jsonl');
    writeFileSync(
      timeline,
      `${JSON.stringify({ at: '2026-01-01T00:00:00.000Z', event: 'decision', kind: 'scale', role: 'batcher', from: 1, to: 2, reason: 'load 900/s above 80 % of capacity' })}\n`,
    );

    const s = await prometheusStatusSource({ prometheusUrl: url, cluster: 'demo', timelineFile: timeline })();

    expect(s.title).toContain('EC2 cluster demo');
    expect(s.leader).toEqual({ name: 'proposer-1', ballot: { round: 7, proposerId: 3 } });
    expect(s.processes.map((p) => p.name)).toEqual([
      'acceptor-g0-a0',
      'acceptor-g0-a1',
      'acceptor-g0-a2',
      'acceptor-g1-a0',
      'i-7',
      'matchmaker-0',
      'proposer-0',
      'proposer-1',
      'proxy-leader-0',
    ]);
    // Not scraped: no name (its counters are not in Prometheus yet), starting.
    expect(s.processes.find((p) => p.where === 'i-7')).toMatchObject({ phase: 'starting' });
    expect(s.processes.find((p) => p.name === 'proxy-leader-0')).toEqual({
      name: 'proxy-leader-0',
      role: 'proxy-leader',
      phase: 'ready',
      where: 'i-8',
    });
    expect(s.acceptorGroups).toEqual({
      version: 2,
      servedVersion: 2,
      groups: [
        { id: 0, acceptors: ['acceptor-g0-a0', 'acceptor-g0-a1'] },
        { id: 1, acceptors: ['acceptor-g1-a0'] },
      ],
    });
    expect(s.matchmakers).toEqual({ epoch: 1, names: ['matchmaker-0'] });
    expect(s.chosenWatermark).toBe(1234);
    expect(s.commandsPerS).toBe(5000);
    expect(s.p50Ms).toBeCloseTo(2.1);
    expect(s.p99Ms).toBeCloseTo(12);
    expect(s.decisions).toHaveLength(1);
    expect(s.decisions[0]?.text).toContain('batcher 1 → 2');
    // Every query is scoped to the cluster: the other cluster's leader does not count.
    expect(prometheus.queries.filter((x) => !x.includes(SEL))).toEqual([]);
  });

  it('leaves out what Prometheus has no series for; fails whole when it does not answer', async () => {
    const { prometheus, url } = await fake();
    const s = await prometheusStatusSource({ prometheusUrl: url, cluster: 'demo' })();
    expect(s.leader).toBeNull();
    expect(s.commandsPerS).toBeNull();
    expect(s.p99Ms).toBeNull();
    expect(s.decisions).toEqual([]);
    expect(s.processes).toHaveLength(NAMES.length);
    // No series (no load, no autoscaler) is no problem.
    expect(s.problems).toEqual([]);
    prometheus.unreachable = true;
    await expect(
      prometheusStatusSource({ prometheusUrl: url, cluster: 'demo', timeoutMs: 500 })(),
    ).rejects.toThrow(/did not answer/);
  });

  it('serves the page and the snapshot on its own port', async () => {
    const { url } = await fake();
    const server = await serveDashboard({ prometheusUrl: url, cluster: 'demo', port: 0, host: '127.0.0.1' });
    cleanups.push(() => server.close());
    expect(await (await fetch(server.url)).text()).toContain('id="leader"');
    const api = (await (await fetch(new URL('api/status', server.url))).json()) as { processes: unknown[] };
    expect(api.processes).toHaveLength(NAMES.length);
  });
});
