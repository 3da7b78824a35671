import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

import { type FileSdGroup, PROMETHEUS_TARGETS_FILE } from '../src/prometheus-targets.ts';
import { freePort, sleep, startCluster, waitFor } from './helpers.ts';
import {
  dashboardExpressions,
  exportedFamilies,
  PROMETHEUS_DIR,
  promqlMetricNames,
  readDashboard,
  readPrometheusConfig,
  resolveFamily,
  withGrafanaVariables,
} from './prometheus-helpers.ts';

/** Debian's package (`apt-get install prometheus`); CI installs it. */
const PROMETHEUS = '/usr/bin/prometheus';
const PROMTOOL = '/usr/bin/promtool';
const BASE_PORT = 24600;
/** The `role` label of every process the cluster and its load generator run, sorted. */
const SCRAPED_ROLES = [
  'acceptor',
  'batcher',
  'client',
  'directory',
  'matchmaker',
  'proposer',
  'proxy_leader',
  'unbatcher',
];
const LOAD_CLIENT = 0;
const LOAD_NAME = `client-${LOAD_CLIENT}`;

function requireBinary(file: string): void {
  if (!existsSync(file)) {
    throw new Error(
      `${file} not found: install Prometheus (Debian/Ubuntu: sudo apt-get install -y prometheus); this test needs the real binary`,
    );
  }
}

interface VectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

interface ActiveTarget {
  labels: Record<string, string>;
  health: string;
}

describe('Prometheus and the Grafana dashboard against a real local cluster under load', () => {
  let cluster: Awaited<ReturnType<typeof startCluster>> | null = null;
  let load: Promise<unknown> | null = null;
  let prometheus: ChildProcess | null = null;
  let prometheusUrl = '';
  let prometheusLog = '';
  let prometheusDir = '';
  let prometheusError: Error | null = null;

  function targetsFile(): string {
    if (cluster === null) throw new Error('cluster not started');
    return path.join(cluster.workDir, PROMETHEUS_TARGETS_FILE);
  }

  function readTargets(): FileSdGroup[] {
    return JSON.parse(readFileSync(targetsFile(), 'utf8')) as FileSdGroup[];
  }

  /** Names of every process the cluster runs that serves metrics, plus the load generator. */
  function expectedNames(): string[] {
    if (cluster === null) throw new Error('cluster not started');
    return [
      'directory',
      ...cluster.cluster.processes.filter((p) => p.metricsPort !== null).map((p) => p.name),
      LOAD_NAME,
    ];
  }

  function requirePrometheus(): string {
    if (prometheusError !== null) throw prometheusError;
    if (prometheus === null) throw new Error('Prometheus did not start');
    return prometheusUrl;
  }

  async function query(expr: string): Promise<VectorSample[]> {
    const url = `${requirePrometheus()}/api/v1/query?query=${encodeURIComponent(expr)}`;
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    const body = (await response.json()) as {
      status: string;
      error?: string;
      data?: { resultType: string; result: VectorSample[] };
    };
    if (body.status !== 'success') throw new Error(`query ${expr} failed: ${body.error}`);
    if (body.data?.resultType !== 'vector') throw new Error(`query ${expr}: ${body.data?.resultType} result`);
    return body.data.result;
  }

  async function activeTargets(): Promise<ActiveTarget[]> {
    const response = await fetch(`${requirePrometheus()}/api/v1/targets?state=active`, {
      signal: AbortSignal.timeout(2000),
    });
    const body = (await response.json()) as { data: { activeTargets: ActiveTarget[] } };
    return body.data.activeTargets;
  }

  /** Debian's prometheus on loopback, with prometheus-local.yml scraping every second from the cluster's file. */
  async function startPrometheus(file: string): Promise<void> {
    requireBinary(PROMETHEUS);
    prometheusDir = mkdtempSync(path.join(tmpdir(), 'paxos-prometheus-'));
    const config = readPrometheusConfig('prometheus-local.yml');
    config.global = { ...config.global, scrape_interval: '1s', evaluation_interval: '1s' };
    for (const job of config.scrape_configs) {
      job.file_sd_configs = job.file_sd_configs?.map((sd) => ({
        ...sd,
        files: [file],
        refresh_interval: '1s',
      }));
    }
    const configFile = path.join(prometheusDir, 'prometheus.yml');
    writeFileSync(configFile, stringify(config));
    const port = await freePort();
    prometheusUrl = `http://127.0.0.1:${port}`;
    const logFile = path.join(prometheusDir, 'prometheus.log');
    const log = openSync(logFile, 'a');
    prometheus = spawn(
      PROMETHEUS,
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${path.join(prometheusDir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', log, log] },
    );
    closeSync(log);
    const child = prometheus;
    child.on('error', () => {});
    prometheusLog = logFile;
    await waitFor('Prometheus to be ready', 15_000, async () => {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `prometheus exited (${child.exitCode ?? child.signalCode}): ${readFileSync(logFile, 'utf8')}`,
        );
      }
      const response = await fetch(`${prometheusUrl}/-/ready`, { signal: AbortSignal.timeout(1000) });
      return response.ok ? true : undefined;
    }).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''}`);
    });
  }

  async function stopPrometheus(): Promise<void> {
    const child = prometheus;
    prometheus = null;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(killer);
  }

  beforeAll(async () => {
    cluster = await startCluster(BASE_PORT);
    const started = cluster;
    load = started.cluster.runClient({ clients: 4, durationS: 0, index: LOAD_CLIENT });
    load.catch(() => {});
    // Prometheus starts while the load generator comes up; a missing binary fails the tests that need it.
    await startPrometheus(targetsFile()).catch((err: unknown) => {
      prometheusError = err instanceof Error ? err : new Error(String(err));
    });
  }, 45_000);

  afterAll(async () => {
    await stopPrometheus();
    if (cluster !== null) {
      if (load !== null && cluster.cluster.instances().some((i) => i.spec.name === LOAD_NAME)) {
        cluster.cluster.stopClient(LOAD_CLIENT);
      }
      await load?.catch(() => {});
      await cluster.stop();
    }
    if (prometheusDir !== '') rmSync(prometheusDir, { recursive: true, force: true });
  }, 30_000);

  it('the targets file lists every running process that serves metrics (the load generator and the directory too)', async () => {
    const groups = await waitFor('the load generator in the targets file', 10_000, async () => {
      const g = readTargets();
      return g.some((x) => x.labels.name === LOAD_NAME) ? g : undefined;
    });
    expect(groups.map((g) => g.labels.name).sort()).toEqual(expectedNames().sort());
    const specs = new Map(cluster?.cluster.processes.map((p) => [p.name, p]));
    for (const g of groups) {
      expect(g.targets).toHaveLength(1);
      const spec = specs.get(g.labels.name);
      if (g.labels.name === 'directory') {
        expect(g.labels.role).toBe('directory');
      } else if (spec === undefined) {
        expect(g.labels).toEqual({ name: LOAD_NAME, role: 'client' });
      } else {
        expect(g.targets[0]).toBe(`127.0.0.1:${spec.metricsPort}`);
        expect(g.labels.role).toBe(spec.role.replaceAll('-', '_'));
      }
    }
  });

  it("every metric the dashboard queries is in some process's /metrics", async () => {
    const families = new Map<string, string>();
    const roles = new Set<string>();
    for (const group of readTargets()) {
      // A process is listed from its start, a moment before its metrics server listens.
      const text = await waitFor(`${group.labels.name}'s /metrics`, 10_000, async () => {
        const response = await fetch(`http://${group.targets[0]}/metrics`, {
          signal: AbortSignal.timeout(2000),
        });
        return response.ok ? response.text() : undefined;
      });
      for (const [name, type] of exportedFamilies(text)) families.set(name, type);
      // The role label a process exports is the one the targets file gives it.
      expect(text, group.labels.name).toContain(`role="${group.labels.role}"`);
      roles.add(group.labels.role ?? group.labels.name);
    }
    expect([...roles].sort()).toEqual(SCRAPED_ROLES);
    const missing: string[] = [];
    for (const expr of dashboardExpressions(readDashboard())) {
      for (const name of promqlMetricNames(expr)) {
        // `up` is Prometheus' own series about each scrape; the next test queries it.
        if (name !== 'up' && resolveFamily(name, families) === null) missing.push(`${name} (in ${expr})`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('promtool accepts both Prometheus configs', () => {
    requireBinary(PROMTOOL);
    for (const file of ['prometheus-ec2.yml', 'prometheus-local.yml']) {
      const result = spawnSync(PROMTOOL, ['check', 'config', path.join(PROMETHEUS_DIR, file)], {
        encoding: 'utf8',
        timeout: 10_000,
      });
      expect(result.status, `${file}: ${result.stdout}${result.stderr}`).toBe(0);
    }
  });

  it('Prometheus scrapes every cluster process: up == 1, labels from the targets file', async () => {
    requirePrometheus();
    const expected = expectedNames().sort();
    const up = await waitFor('up == 1 for every process', 15_000, async () => {
      const samples = await query('up{job="paxos"}');
      const upNames = samples.filter((s) => s.value[1] === '1').map((s) => s.metric.name ?? '');
      return expected.every((n) => upNames.includes(n)) ? samples : undefined;
    }).catch((err: unknown) => {
      throw new Error(`${String(err)}\nPrometheus log:\n${readFileSync(prometheusLog, 'utf8')}`);
    });
    expect(up.map((s) => s.metric.name).sort()).toEqual(expected);
    for (const s of up) {
      expect(s.value[1], s.metric.name).toBe('1');
      expect(s.metric.role, s.metric.name).toMatch(
        /^(acceptor|batcher|client|directory|matchmaker|proposer|proxy_leader|unbatcher)$/,
      );
    }
    // honor_labels: false: the target's role and instance win, the process's own are kept as exported_*.
    const [leaderSample] = await query('num_processed_messages{job="paxos", name="proxy-leader-0"}');
    expect(leaderSample?.metric).toMatchObject({
      role: 'proxy_leader',
      instance: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
      exported_role: 'proxy_leader',
      exported_instance: 'proxy-leader-0',
    });
  });

  it('num_processed_messages increases between two queries, for every role on the command path', async () => {
    requirePrometheus();
    const byRole = async () =>
      new Map(
        (await query('sum by (role) (num_processed_messages{job="paxos"})')).map((s) => [
          s.metric.role ?? '',
          Number(s.value[1]),
        ]),
      );
    const all = await byRole();
    // The directory counts its own requests (paxos_directory_requests_total), not messages.
    expect([...all.keys()].sort()).toEqual(SCRAPED_ROLES.filter((r) => r !== 'directory'));
    // Matchmakers hear from proposers only at elections, not per command.
    const first = new Map([...all].filter(([role]) => role !== 'matchmaker'));
    const second = await waitFor('num_processed_messages to increase for every role', 10_000, async () => {
      const now = await byRole();
      return [...first].every(([role, v]) => (now.get(role) ?? 0) > v) ? now : undefined;
    });
    for (const [role, v] of first) expect(second.get(role), role).toBeGreaterThan(v);
  });

  it('every dashboard query is valid PromQL that returns data from this cluster', async () => {
    requirePrometheus();
    const empty: string[] = [];
    const deadline = performance.now() + 10_000;
    for (const expr of dashboardExpressions(readDashboard())) {
      const promql = withGrafanaVariables(expr, '10s');
      for (;;) {
        const result = await query(promql);
        if (result.length > 0) break;
        if (performance.now() > deadline) {
          empty.push(promql);
          break;
        }
        await sleep(250);
      }
    }
    expect(empty).toEqual([]);
  });

  it('a stopped load generator leaves the targets file and Prometheus stops scraping it', async () => {
    requirePrometheus();
    if (cluster === null || load === null) throw new Error('cluster not started');
    cluster.cluster.stopClient(LOAD_CLIENT);
    await load;
    expect(readTargets().map((g) => g.labels.name)).not.toContain(LOAD_NAME);
    expect(readTargets()).toHaveLength(expectedNames().length - 1);
    await waitFor('Prometheus to drop the load generator', 10_000, async () =>
      (await activeTargets()).some((t) => t.labels.name === LOAD_NAME) ? undefined : true,
    );
    const targets = await activeTargets();
    expect(targets).toHaveLength(expectedNames().length - 1);
    expect(targets.every((t) => t.health === 'up')).toBe(true);
  });
});
