/**
 * `pnpm charts`: renders the component benchmark (bench-results/components.json) to SVG with
 * vega-lite: capacity per role against the raw-ZeroMQ line, and the BATCH_SIZE sweep.
 *   node dist/charts.js [components.json] [out-dir]   (defaults: bench-results/components.json docs/charts)
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

interface ComponentsReport {
  date: string;
  batchSize: number;
  machine: { cpus: number; node: string };
  rawZmq: { messagesPerSecond: number };
  results: { role: string; messagesPerSecond: number; commandsPerSecond: number }[];
  sweep: { role: string; batchSize: number; commandsPerSecond: number; p99Ms: number | null }[];
}

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}

export function capacitySpec(report: ComponentsReport): TopLevelSpec {
  const raw = report.rawZmq.messagesPerSecond;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: 'Messages/s one instance handles, between mocks',
      subtitle: `BATCH_SIZE=${report.batchSize}, ${report.machine.cpus} CPUs, ${report.date.slice(0, 10)}; line: raw ZeroMQ DEALER→ROUTER`,
    },
    width: 420,
    height: 240,
    layer: [
      {
        data: { values: report.results },
        mark: { type: 'bar', tooltip: true },
        encoding: {
          x: { field: 'role', type: 'nominal', sort: null, title: null },
          y: { field: 'messagesPerSecond', type: 'quantitative', title: 'messages/s' },
        },
      },
      {
        data: { values: [{ raw }] },
        mark: { type: 'rule', color: 'firebrick', strokeWidth: 2 },
        encoding: { y: { field: 'raw', type: 'quantitative' } },
      },
      {
        data: { values: [{ raw, label: `raw ZeroMQ ${Math.round(raw).toLocaleString('en-US')}/s` }] },
        mark: { type: 'text', color: 'firebrick', align: 'right', dy: -6, x: 'width' },
        encoding: { y: { field: 'raw', type: 'quantitative' }, text: { field: 'label' } },
      },
    ],
  };
}

export function sweepSpec(report: ComponentsReport): TopLevelSpec {
  const data = { values: report.sweep };
  const x = { field: 'batchSize', type: 'ordinal' as const, title: 'BATCH_SIZE' };
  const color = { field: 'role', type: 'nominal' as const };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'BATCH_SIZE: throughput and latency per role',
    data,
    hconcat: [
      {
        width: 260,
        height: 220,
        mark: { type: 'line', point: true },
        encoding: { x, y: { field: 'commandsPerSecond', type: 'quantitative', title: 'commands/s' }, color },
      },
      {
        width: 260,
        height: 220,
        mark: { type: 'line', point: true },
        encoding: { x, y: { field: 'p99Ms', type: 'quantitative', title: 'p99 ms' }, color },
      },
    ],
  };
}

/** What `autoscaleSpec` reads of a `demo:autoscale` report. */
export interface AutoscaleReport {
  readonly date: string;
  readonly cpuQuota: number;
  readonly p99TargetMs: number;
  readonly seconds: readonly {
    t: number;
    offered: number;
    throughput: number;
    p50Ms: number | null;
    p99Ms: number | null;
    instances: Readonly<Record<string, { ready: number; starting: number; draining: number }>>;
  }[];
  readonly decisions: readonly { t: number; decision: { role: string; kind: string; direction?: string } }[];
}

/** The autoscaling demo over time: load and throughput, latency, instances per role with each decision. */
export function autoscaleSpec(report: AutoscaleReport): TopLevelSpec {
  const x = { field: 't', type: 'quantitative' as const, title: 'seconds' };
  const load = report.seconds.flatMap((s) => [
    { t: s.t, series: 'offered', value: s.offered },
    { t: s.t, series: 'acknowledged', value: s.throughput },
  ]);
  const latency = report.seconds.flatMap((s) => [
    ...(s.p50Ms === null ? [] : [{ t: s.t, series: 'p50', value: s.p50Ms }]),
    ...(s.p99Ms === null ? [] : [{ t: s.t, series: 'p99', value: s.p99Ms }]),
  ]);
  const instances = report.seconds.flatMap((s) =>
    Object.entries(s.instances).map(([role, c]) => ({
      t: s.t,
      role,
      value: c.ready + c.starting + c.draining,
    })),
  );
  const decisions = report.decisions.map((d) => ({
    t: d.t,
    role: d.decision.role,
    what: d.decision.kind === 'replace' ? 'replace' : (d.decision.direction ?? ''),
  }));
  const panel = { width: 560, height: 130 };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: 'Autoscaling under a changing load',
      subtitle: `batchers, proxy leaders and unbatchers capped at ${report.cpuQuota} core each; ${report.date.slice(0, 10)}`,
    },
    vconcat: [
      {
        ...panel,
        data: { values: load },
        mark: { type: 'line', interpolate: 'step-after' },
        encoding: {
          x,
          y: { field: 'value', type: 'quantitative', title: 'commands/s' },
          color: { field: 'series', type: 'nominal', title: null },
          strokeDash: { field: 'series', type: 'nominal', legend: null },
        },
      },
      {
        ...panel,
        layer: [
          {
            data: { values: latency },
            mark: { type: 'line' },
            encoding: {
              x,
              y: { field: 'value', type: 'quantitative', title: 'latency ms', scale: { type: 'log' } },
              color: { field: 'series', type: 'nominal', title: null },
            },
          },
          {
            data: { values: [{ target: report.p99TargetMs }] },
            mark: { type: 'rule', color: 'firebrick', strokeDash: [4, 3] },
            encoding: { y: { field: 'target', type: 'quantitative' } },
          },
        ],
      },
      {
        ...panel,
        layer: [
          {
            data: { values: instances },
            mark: { type: 'line', interpolate: 'step-after' },
            encoding: {
              x,
              y: { field: 'value', type: 'quantitative', title: 'instances' },
              color: { field: 'role', type: 'nominal', title: null },
            },
          },
          {
            data: { values: decisions },
            mark: { type: 'tick', thickness: 2, size: 10 },
            encoding: {
              x,
              y: { value: 0 },
              color: { field: 'role', type: 'nominal', title: null },
              tooltip: [{ field: 'role' }, { field: 'what' }, { field: 't' }],
            },
          },
        ],
      },
    ],
  };
}

/** What `scaleSpec` reads of a `bench:scale` report. */
export interface ScaleReport {
  readonly date: string;
  readonly machine: { readonly cpus: number };
  readonly clients: number;
  readonly clientProcs: number;
  readonly base: {
    readonly batchers: number;
    readonly proxyLeaders: number;
    readonly unbatchers: number;
    readonly groups: number;
  };
  readonly results: readonly {
    role: string;
    instances: number;
    commandsPerSecond: number;
    p99Ms: number | null;
    bottleneck: string | null;
  }[];
}

/** Throughput as the instances of each role grow, one line per scaled role. */
export function scaleSpec(report: ScaleReport): TopLevelSpec {
  const b = report.base;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: 'Commands/s as the instances of one role grow',
      subtitle: [
        `the others at ${b.batchers} batchers, ${b.proxyLeaders} proxy leaders, ${b.unbatchers} unbatchers, ${b.groups} groups`,
        `${report.clients} closed-loop clients in ${report.clientProcs} processes; ${report.machine.cpus} CPUs, ${report.date.slice(0, 10)}`,
      ],
    },
    width: 420,
    height: 240,
    data: { values: report.results },
    mark: { type: 'line', point: true, tooltip: true },
    encoding: {
      x: { field: 'instances', type: 'quantitative', title: 'instances', axis: { tickMinStep: 1 } },
      y: { field: 'commandsPerSecond', type: 'quantitative', title: 'commands/s' },
      color: { field: 'role', type: 'nominal', sort: null, title: 'scaled role' },
      tooltip: [
        { field: 'role' },
        { field: 'instances' },
        { field: 'commandsPerSecond', title: 'commands/s' },
        { field: 'p99Ms', title: 'p99 ms' },
        { field: 'bottleneck' },
      ],
    },
  };
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]).endsWith('charts.js');
if (isMain) {
  const input = path.resolve(process.argv[2] ?? 'bench-results/components.json');
  const outDir = path.resolve(process.argv[3] ?? 'docs/charts');
  const report = JSON.parse(readFileSync(input, 'utf8')) as ComponentsReport;
  mkdirSync(outDir, { recursive: true });
  writeFileSync(path.join(outDir, 'capacity.svg'), await renderSvg(capacitySpec(report)));
  console.log(`wrote ${path.join(outDir, 'capacity.svg')}`);
  if (report.sweep.length > 0) {
    writeFileSync(path.join(outDir, 'batch-sweep.svg'), await renderSvg(sweepSpec(report)));
    console.log(`wrote ${path.join(outDir, 'batch-sweep.svg')}`);
  }
}
