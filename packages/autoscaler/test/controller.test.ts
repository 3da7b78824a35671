import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Controller,
  type Decision,
  type ObservedInstance,
  PrometheusLoadSource,
  type RoleObservation,
  type ScaledRole,
  type ScaleTarget,
  ScrapeLoadSource,
  type TimelineEntry,
} from '../src/index.ts';

const logger = pino({ level: 'silent' });

/** A target that records what it was told and fails while `failing` is set. */
class FakeTarget implements ScaleTarget {
  readonly calls: string[] = [];
  failing: string | null = null;
  constructor(public list: ObservedInstance[]) {}
  async instances() {
    return this.list;
  }
  async scaleOut(role: ScaledRole, count: number) {
    this.calls.push(`out ${role} ${count}`);
    if (this.failing !== null) throw new Error(this.failing);
  }
  async scaleIn(role: ScaledRole, count: number) {
    this.calls.push(`in ${role} ${count}`);
  }
  async replace(instance: string) {
    this.calls.push(`replace ${instance}`);
  }
}

const batcher = (name: string, phase: ObservedInstance['phase'] = 'ready'): ObservedInstance => ({
  name,
  role: 'batcher',
  phase,
  metricsUrl: null,
});

function controller(
  target: FakeTarget,
  decide: (now: number, obs: readonly RoleObservation[]) => Decision[],
  extra: { timelineFile?: string; onEvent?: (e: TimelineEntry) => void } = {},
) {
  let now = 0;
  const seen: RoleObservation[][] = [];
  const c = new Controller({
    policy: {
      decide: (t, obs) => {
        seen.push([...obs]);
        return { decisions: decide(t, obs), recommendations: [] };
      },
    },
    target,
    source: { rates: async (list) => new Map(list.map((i) => [i.name, 100])) },
    intervalMs: 2000,
    logger,
    clock: () => now,
    wallClock: () => new Date(Date.UTC(2026, 0, 1, 0, 0, now / 1000)),
    ...extra,
  });
  return {
    c,
    seen,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const out: Decision = { kind: 'scale', role: 'batcher', direction: 'out', from: 1, to: 3, reason: 'load' };

describe('Controller', () => {
  it('acts on each decision through the target and writes it to the timeline and its metrics', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'autoscaler-'));
    const timelineFile = path.join(dir, 'timeline.jsonl');
    const target = new FakeTarget([batcher('batcher-0')]);
    const { c } = controller(target, () => [out], { timelineFile });
    const report = await c.tick();
    expect(report.decisions).toEqual([out]);
    expect(target.calls).toEqual(['out batcher 2']);
    const lines = readFileSync(timelineFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toEqual([{ at: '2026-01-01T00:00:00.000Z', event: 'decision', ...out }]);
    const text = await c.metrics.metricsText();
    expect(text).toMatch(/paxos_autoscaler_decisions_total\{role="batcher",direction="out"\} 1/);
    expect(text).toMatch(/paxos_autoscaler_instances\{role="batcher",phase="ready"\} 1/);
  });

  it('tells the policy how long each instance has been in its phase', async () => {
    const target = new FakeTarget([batcher('batcher-0'), batcher('batcher-1', 'starting')]);
    const { c, seen, advance } = controller(target, () => []);
    await c.tick();
    advance(5000);
    await c.tick();
    target.list = [batcher('batcher-0'), batcher('batcher-1')];
    advance(2000);
    await c.tick();
    const last = seen.at(-1)?.find((o) => o.role === 'batcher')?.instances;
    expect(last?.map((i) => [i.name, i.phase, i.since])).toEqual([
      ['batcher-0', 'ready', 0],
      ['batcher-1', 'ready', 7000],
    ]);
    expect(seen[1]?.find((o) => o.role === 'batcher')?.instances[1]?.since).toBe(0);
  });

  it('backs off a role whose action failed, doubling the wait, and never throws', async () => {
    const target = new FakeTarget([batcher('batcher-0')]);
    target.failing = 'InsufficientInstanceCapacity: no capacity in us-east-1a';
    const events: TimelineEntry[] = [];
    const { c, advance } = controller(target, () => [out], { onEvent: (e) => events.push(e) });
    await c.tick(); // fails: wait 2 s
    advance(1000);
    await c.tick(); // within the wait: not tried
    advance(1000);
    await c.tick(); // tried, fails again: wait 4 s
    advance(2000);
    await c.tick(); // within the wait
    expect(target.calls).toEqual(['out batcher 2', 'out batcher 2']);
    const failures = events.filter((e) => e.event === 'action-failed');
    expect(failures.map((e) => (e.event === 'action-failed' ? e.retryInMs : 0))).toEqual([2000, 4000]);
    expect(failures[0]).toMatchObject({
      role: 'batcher',
      error: expect.stringMatching(/InsufficientInstanceCapacity/),
    });
    target.failing = null;
    advance(2000);
    await c.tick();
    expect(target.calls).toHaveLength(3);
    expect(await c.metrics.metricsText()).toMatch(
      /paxos_autoscaler_action_failures_total\{role="batcher"\} 2/,
    );
  });
});

describe('Controller with acceptor groups', () => {
  const groupOut: Decision = {
    kind: 'scale',
    role: 'acceptor-group',
    direction: 'out',
    from: 1,
    to: 2,
    reason: 'load',
  };
  const group = (id: number, members: readonly string[]): ObservedInstance => ({
    name: `acceptor-g${id}`,
    role: 'acceptor-group',
    phase: 'ready',
    metricsUrl: null,
    members: members.map((name) => ({ name, metricsUrl: `http://x/${name}` })),
  });

  /** A target whose reconfigurations last until `finish()`. */
  class ReconfiguringTarget extends FakeTarget {
    readonly roles = ['batcher', 'acceptor-group'] as const;
    private pending: (() => void)[] = [];
    override async scaleOut(role: ScaledRole, count: number) {
      await super.scaleOut(role, count);
      if (role === 'acceptor-group') await new Promise<void>((resolve) => this.pending.push(resolve));
    }
    finish() {
      for (const resolve of this.pending.splice(0)) resolve();
    }
  }

  it('runs one reconfiguration at a time beside the periods; the other roles go on acting', async () => {
    const target = new ReconfiguringTarget([batcher('batcher-0'), group(0, ['acceptor-g0-a0'])]);
    const { c, seen, advance } = controller(target, () => [groupOut, out]);
    const first = await c.tick(); // returns while the reconfiguration is in flight
    expect(first.decisions).toEqual([groupOut, out]);
    advance(2000);
    const second = await c.tick();
    expect(seen[1]?.find((o) => o.role === 'acceptor-group')?.busy).toBe(true);
    expect(seen[1]?.find((o) => o.role === 'batcher')?.busy).toBeUndefined();
    expect(second.decisions).toEqual([out]);
    expect(target.calls).toEqual(['out acceptor-group 1', 'out batcher 2', 'out batcher 2']);
    target.finish();
    await c.settled();
    advance(2000);
    await c.tick();
    expect(seen[2]?.find((o) => o.role === 'acceptor-group')?.busy).toBeUndefined();
    expect(target.calls.filter((call) => call.startsWith('out acceptor-group'))).toHaveLength(2);
    // stop waits for the reconfiguration in flight, so the cluster is not taken down under it.
    let stopped = false;
    const stopping = c.stop().then(() => {
      stopped = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(stopped).toBe(false);
    target.finish();
    await stopping;
    expect(stopped).toBe(true);
  });

  it("reads a group's load as its busiest member's, and as unreadable when any member is", async () => {
    const target = new ReconfiguringTarget([
      group(0, ['acceptor-g0-a0', 'acceptor-g0-a1', 'acceptor-g0-a2']),
      group(1, ['acceptor-g1-a0', 'acceptor-g1-a1']),
      group(2, []),
    ]);
    const memberRates: Record<string, number | null> = {
      'acceptor-g0-a0': 100,
      'acceptor-g0-a1': 300,
      'acceptor-g0-a2': 200,
      'acceptor-g1-a0': 500,
      'acceptor-g1-a1': null,
    };
    const asked: ObservedInstance[] = [];
    const seen: RoleObservation[][] = [];
    const c = new Controller({
      policy: {
        decide: (_, obs) => {
          seen.push([...obs]);
          return { decisions: [], recommendations: [] };
        },
      },
      target,
      source: {
        rates: async (list) => {
          asked.push(...list);
          return new Map(list.map((i) => [i.name, memberRates[i.name] ?? null]));
        },
      },
      intervalMs: 2000,
      logger,
      clock: () => 0,
    });
    await c.tick();
    // The source reads each member at its own /metrics, with the group's role (its load signal).
    expect(asked.map((i) => [i.name, i.role, i.metricsUrl])).toEqual(
      Object.keys(memberRates).map((name) => [name, 'acceptor-group', `http://x/${name}`]),
    );
    const groups = seen[0]?.find((o) => o.role === 'acceptor-group')?.instances;
    expect(groups?.map((g) => [g.name, g.messagesPerSecond])).toEqual([
      ['acceptor-g0', 300],
      ['acceptor-g1', null],
      ['acceptor-g2', null],
    ]);
  });

  it('observes acceptor groups only where the target names the role', async () => {
    const target = new FakeTarget([batcher('batcher-0'), group(0, ['acceptor-g0-a0'])]);
    const { c, seen } = controller(target, () => []);
    const report = await c.tick();
    expect(seen[0]?.map((o) => o.role)).toEqual(['batcher', 'proxy-leader', 'unbatcher']);
    expect(report.instances.map((i) => i.name)).toEqual(['batcher-0']);
  });
});

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function serve(handler: (url: string) => { status: number; body: string }): Promise<string> {
  const server = createServer((req, res) => {
    const { status, body } = handler(req.url ?? '/');
    res.writeHead(status);
    res.end(body);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('ScrapeLoadSource', () => {
  it('turns the rise of num_processed_messages into messages/s, and reads null where it cannot', async () => {
    let processed = 1000;
    const url = await serve(() => ({
      status: 200,
      body: `num_processed_messages{role="batcher",instance="batcher-0"} ${processed}\n`,
    }));
    let now = 0;
    const source = new ScrapeLoadSource({ clock: () => now });
    const up = { ...batcher('batcher-0'), metricsUrl: `${url}/metrics` };
    const down = { ...batcher('batcher-1'), metricsUrl: 'http://127.0.0.1:1/metrics' };
    // The first reading has nothing to compare with.
    expect([...(await source.rates([up, down]))]).toEqual([
      ['batcher-0', null],
      ['batcher-1', null],
    ]);
    processed = 5000;
    now = 2000;
    expect((await source.rates([up, down])).get('batcher-0')).toBe(2000);
    // A counter that fell: the process restarted; no rate until the next reading.
    processed = 10;
    now = 4000;
    expect((await source.rates([up])).get('batcher-0')).toBeNull();
  });
});

describe('the load signal of each role', () => {
  it("counts an unbatcher's replies sent, a batcher's messages handled", async () => {
    let n = 1;
    const url = await serve(() => ({
      status: 200,
      body: `num_processed_messages ${n * 10}\nnum_outgoing_messages ${n * 400}\n`,
    }));
    let now = 0;
    const source = new ScrapeLoadSource({ clock: () => now });
    const list: ObservedInstance[] = [
      { ...batcher('batcher-0'), metricsUrl: `${url}/metrics` },
      { name: 'unbatcher-0', role: 'unbatcher', phase: 'ready', metricsUrl: `${url}/metrics` },
    ];
    await source.rates(list);
    n = 2;
    now = 1000;
    expect([...(await source.rates(list))]).toEqual([
      ['batcher-0', 10],
      ['unbatcher-0', 400],
    ]);

    const queries: string[] = [];
    const prometheus = await serve((u) => {
      const query = new URL(u, 'http://x').searchParams.get('query') ?? '';
      queries.push(query);
      const value = query.includes('num_outgoing_messages') ? '400' : '10';
      const result = ['batcher-0', 'unbatcher-0'].map((i) => ({
        metric: { exported_instance: i },
        value: [1, value],
      }));
      return { status: 200, body: JSON.stringify({ status: 'success', data: { result } }) };
    });
    const rates = await new PrometheusLoadSource({ url: prometheus }).rates(list);
    expect([...rates]).toEqual([
      ['batcher-0', 10],
      ['unbatcher-0', 400],
    ]);
    expect(queries.sort()).toEqual([
      'sum by (exported_instance) (rate(num_outgoing_messages[30s]))',
      'sum by (exported_instance) (rate(num_processed_messages[30s]))',
    ]);
  });
});

describe('PrometheusLoadSource', () => {
  it('reads each instance by the process name Prometheus keeps as exported_instance', async () => {
    const queries: string[] = [];
    const url = await serve((u) => {
      queries.push(new URL(u, 'http://x').searchParams.get('query') ?? '');
      return {
        status: 200,
        body: JSON.stringify({
          status: 'success',
          data: {
            resultType: 'vector',
            result: [
              { metric: { exported_instance: 'batcher-0' }, value: [1, '1234.5'] },
              { metric: { exported_instance: 'proposer-0' }, value: [1, '99'] },
            ],
          },
        }),
      };
    });
    const source = new PrometheusLoadSource({ url, window: '20s' });
    const rates = await source.rates([batcher('batcher-0'), batcher('batcher-1')]);
    expect([...rates]).toEqual([
      ['batcher-0', 1234.5],
      ['batcher-1', null],
    ]);
    expect(queries).toEqual(['sum by (exported_instance) (rate(num_processed_messages[20s]))']);
  });

  it('asks only for the series with the labels it was given', async () => {
    const queries: string[] = [];
    const url = await serve((u) => {
      queries.push(new URL(u, 'http://x').searchParams.get('query') ?? '');
      return { status: 200, body: JSON.stringify({ status: 'success', data: { result: [] } }) };
    });
    await new PrometheusLoadSource({ url, labels: { cluster: 'demo', job: 'paxos' } }).rates([
      batcher('batcher-0'),
    ]);
    expect(queries).toEqual([
      'sum by (exported_instance) (rate(num_processed_messages{cluster="demo",job="paxos"}[30s]))',
    ]);
  });

  it('reads every instance as null when Prometheus fails', async () => {
    const url = await serve(() => ({ status: 503, body: 'unavailable' }));
    const rates = await new PrometheusLoadSource({ url }).rates([batcher('batcher-0')]);
    expect([...rates]).toEqual([['batcher-0', null]]);
  });
});
