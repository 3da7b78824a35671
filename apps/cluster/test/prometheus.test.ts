import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { METRIC_NAMES, Metrics } from '@paxos/metrics';
import { afterEach, describe, expect, it } from 'vitest';
import { fileSdTargets, PROMETHEUS_TARGETS_FILE, writeFileSdTargets } from '../src/prometheus-targets.ts';
import {
  DASHBOARD_FILE,
  dashboardExpressions,
  dashboardPanels,
  exportedFamilies,
  GRAFANA_DIR,
  PROMETHEUS_DIR,
  promqlMetricNames,
  REPO_ROOT,
  readDashboard,
  readPrometheusConfig,
  readYaml,
  relabel,
  resolveFamily,
  type ScrapeConfig,
} from './prometheus-helpers.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('fileSdTargets', () => {
  const processes = [
    { name: 'directory', role: 'directory', metricsPort: null },
    { name: 'acceptor-g0-a0', role: 'acceptor', metricsPort: 22000 },
    { name: 'proxy-leader-1', role: 'proxy-leader', metricsPort: 22007 },
    { name: 'client-0', role: 'client', metricsPort: 22014 },
  ];

  it('is one group per process with a metrics port: host:port, name and the metrics role label', () => {
    expect(fileSdTargets(processes, '127.0.0.1')).toEqual([
      { targets: ['127.0.0.1:22000'], labels: { name: 'acceptor-g0-a0', role: 'acceptor' } },
      { targets: ['127.0.0.1:22007'], labels: { name: 'proxy-leader-1', role: 'proxy_leader' } },
      { targets: ['127.0.0.1:22014'], labels: { name: 'client-0', role: 'client' } },
    ]);
  });

  it("lists the autoscaler without a role label: its series' own role (the role they size) stays", () => {
    expect(
      fileSdTargets([{ name: 'autoscaler', role: 'autoscaler', metricsPort: 40123 }], '127.0.0.1'),
    ).toEqual([{ targets: ['127.0.0.1:40123'], labels: { name: 'autoscaler' } }]);
  });

  it('brackets an IPv6 host and gives [] for no processes', () => {
    expect(fileSdTargets([{ name: 'batcher-0', role: 'batcher', metricsPort: 16000 }], '::1')).toEqual([
      { targets: ['[::1]:16000'], labels: { name: 'batcher-0', role: 'batcher' } },
    ]);
    expect(fileSdTargets([], '127.0.0.1')).toEqual([]);
  });

  it('writes the file whole through a rename, replacing the previous list, nothing left behind', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'paxos-file-sd-'));
    dirs.push(dir);
    const file = path.join(dir, PROMETHEUS_TARGETS_FILE);
    writeFileSdTargets(file, processes, '127.0.0.1');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(fileSdTargets(processes, '127.0.0.1'));
    writeFileSdTargets(file, processes.slice(0, 2), '127.0.0.1');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual([
      { targets: ['127.0.0.1:22000'], labels: { name: 'acceptor-g0-a0', role: 'acceptor' } },
    ]);
    expect(readdirSync(dir)).toEqual([PROMETHEUS_TARGETS_FILE]);
  });
});

/** Every key of a parsed YAML document, at any depth. */
function allKeys(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(allKeys);
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => [k, ...allKeys(v)]);
  }
  return [];
}

function expectNoSecrets(file: string): void {
  const text = readFileSync(file, 'utf8');
  const keys = allKeys(readYaml<unknown>(file)).map((k) => k.toLowerCase());
  for (const forbidden of [
    'access_key',
    'secret_key',
    'session_token',
    'password',
    'bearer_token',
    'role_arn',
  ]) {
    expect(keys, `${path.basename(file)} must not set ${forbidden}`).not.toContain(forbidden);
  }
  // AWS access key ids and 40-character secret access keys.
  expect(text).not.toMatch(/(?:AKIA|ASIA)[0-9A-Z]{16}/);
  expect(text).not.toMatch(/(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])/);
}

/** The scrape config of the role processes (job `paxos`). */
function paxosJob(config: { scrape_configs: ScrapeConfig[] }): ScrapeConfig {
  const job = config.scrape_configs.find((j) => j.job_name === 'paxos');
  if (job === undefined) throw new Error('no scrape config for job paxos');
  return job;
}

describe('infra/prometheus/prometheus-ec2.yml', () => {
  const config = readPrometheusConfig('prometheus-ec2.yml');
  const job = paxosJob(config);

  it('scrapes the role processes and the autoscaler (its series keep the role they size)', () => {
    expect(config.scrape_configs.map((j) => j.job_name)).toEqual(['paxos', 'paxos-autoscaler']);
    expect(config.scrape_configs[1]?.honor_labels).toBe(true);
  });
  const rules = job.relabel_configs ?? [];

  it('discovers EC2 instances on port 16000 every 5 s, target labels winning over exported ones', () => {
    expect(job.job_name).toBe('paxos');
    expect(job.honor_labels).toBe(false);
    expect(job.ec2_sd_configs).toHaveLength(1);
    const sd = job.ec2_sd_configs?.[0];
    expect(sd?.port).toBe(16000);
    expect(sd?.refresh_interval).toBe('5s');
    expect(sd?.region).toMatch(/^[a-z]{2}-[a-z]+-\d$/);
    expect(sd?.filters).toContainEqual({ name: 'instance-state-name', values: ['running'] });
  });

  it("has the seed's relabelling and keeps only instances tagged paxos:cluster", () => {
    expect(rules).toContainEqual({ source_labels: ['__meta_ec2_tag_Name'], target_label: 'name' });
    expect(rules).toContainEqual({ source_labels: ['__meta_ec2_instance_id'], target_label: 'instance' });
    expect(rules).toContainEqual({
      source_labels: ['__meta_ec2_tag_paxos_cluster'],
      regex: '.+',
      action: 'keep',
    });
  });

  it('turns the tags the launcher sets into name, instance, cluster and role; drops untagged instances', () => {
    const meta = {
      __address__: '10.0.1.17:16000',
      __meta_ec2_instance_id: 'i-0abc123def4567890',
      __meta_ec2_private_ip: '10.0.1.17',
      __meta_ec2_tag_Name: 'demo_proxy-leader-1',
      __meta_ec2_tag_paxos_cluster: 'demo',
      __meta_ec2_tag_paxos_role: 'proxy-leader',
      __meta_ec2_tag_paxos_name: 'proxy-leader-1',
    };
    expect(relabel(meta, rules)).toMatchObject({
      __address__: '10.0.1.17:16000',
      name: 'demo_proxy-leader-1',
      instance: 'i-0abc123def4567890',
      cluster: 'demo',
      role: 'proxy_leader',
    });
    expect(relabel({ ...meta, __meta_ec2_tag_paxos_role: 'acceptor' }, rules)?.role).toBe('acceptor');
    const { __meta_ec2_tag_paxos_cluster: _, ...untagged } = meta;
    expect(relabel(untagged, rules)).toBeNull();
    expect(relabel({ ...meta, __meta_ec2_tag_paxos_cluster: '' }, rules)).toBeNull();
    // The directory serves /metrics on 16000 too (role="directory").
    expect(relabel({ ...meta, __meta_ec2_tag_paxos_role: 'directory' }, rules)?.role).toBe('directory');
  });

  it('holds no credentials', () => {
    expectNoSecrets(path.join(PROMETHEUS_DIR, 'prometheus-ec2.yml'));
    expect(job.ec2_sd_configs?.[0]).not.toHaveProperty('profile');
  });
});

describe('infra/prometheus/prometheus-local.yml', () => {
  const job = paxosJob(readPrometheusConfig('prometheus-local.yml'));

  it("reads the local cluster's targets file (.cluster/prometheus-targets.json, relative to the config)", () => {
    expect(job.job_name).toBe('paxos');
    expect(job.honor_labels).toBe(false);
    expect(job.file_sd_configs).toHaveLength(1);
    const files = job.file_sd_configs?.[0]?.files ?? [];
    expect(files).toHaveLength(1);
    expect(path.resolve(PROMETHEUS_DIR, files[0] ?? '')).toBe(
      path.join(REPO_ROOT, '.cluster', PROMETHEUS_TARGETS_FILE),
    );
    expect(job.ec2_sd_configs).toBeUndefined();
  });

  it('labels every target cluster="local", as the EC2 config labels its cluster', () => {
    expect(relabel({ name: 'proposer-0', role: 'proposer' }, job.relabel_configs ?? [])).toMatchObject({
      cluster: 'local',
    });
  });

  it('holds no credentials', () => {
    expectNoSecrets(path.join(PROMETHEUS_DIR, 'prometheus-local.yml'));
  });
});

describe('infra/prometheus/alerts.yml', () => {
  /** Debian's package (`apt-get install prometheus`, scripts/setup-system.sh in CI). */
  const PROMTOOL = '/usr/bin/promtool';
  const promtool = (args: string[]) => {
    if (!existsSync(PROMTOOL)) {
      throw new Error(`${PROMTOOL} not found: install Prometheus (sudo apt-get install -y prometheus)`);
    }
    const result = spawnSync(PROMTOOL, args, { cwd: PROMETHEUS_DIR, encoding: 'utf8', timeout: 20_000 });
    return { status: result.status, output: `${result.stdout}${result.stderr}` };
  };

  it('both configs load it, and promtool accepts the configs and the rules', () => {
    for (const file of ['prometheus-ec2.yml', 'prometheus-local.yml'] as const) {
      expect(readPrometheusConfig(file).rule_files, file).toEqual(['alerts.yml']);
      const check = promtool(['check', 'config', '--syntax-only', file]);
      expect(check.status, check.output).toBe(0);
    }
    const rules = promtool(['check', 'rules', 'alerts.yml']);
    expect(rules.status, rules.output).toBe(0);
    const names = readYaml<{ groups: { rules: { alert?: string }[] }[] }>(
      path.join(PROMETHEUS_DIR, 'alerts.yml'),
    ).groups.flatMap((g) => g.rules.map((r) => r.alert));
    expect(names).toEqual([
      'PaxosNoLeader',
      'PaxosChosenWatermarkStalled',
      'PaxosTargetDown',
      'PaxosAutoscalerAtMaximum',
    ]);
  });

  it('every alert fires on its series and stays quiet on a healthy cluster (promtool test rules)', () => {
    const test = promtool(['test', 'rules', 'alerts.test.yml']);
    expect(test.status, test.output).toBe(0);
  });
});

describe('promqlMetricNames and resolveFamily', () => {
  it('finds the selected metrics, not functions, labels, keywords, durations or numbers', () => {
    expect(
      promqlMetricNames(
        'histogram_quantile(0.99, sum by (le, role) (rate(client_latency_seconds_bucket{job="paxos", role=~"a|b"}[$__rate_interval])))',
      ),
    ).toEqual(['client_latency_seconds_bucket']);
    expect(promqlMetricNames('count(up{job="paxos"} == 0) or vector(0)')).toEqual(['up']);
    expect(
      promqlMetricNames(
        'sum without (instance) (rate(a_total[5m] offset 1h)) / on (role) group_left (name) b > bool 1e3',
      ),
    ).toEqual(['a_total', 'b']);
    expect(promqlMetricNames('{__name__="is_leader", name="x"} == 1')).toEqual(['is_leader']);
    expect(promqlMetricNames('max_over_time(chosen_watermark[1m:5s])')).toEqual(['chosen_watermark']);
  });

  it('strips _bucket/_sum/_count only off a histogram or summary family', () => {
    const families = new Map([
      ['lat', 'histogram'],
      ['gc', 'summary'],
      ['retries_count', 'counter'],
      ['g', 'gauge'],
    ]);
    expect(resolveFamily('lat_bucket', families)).toBe('lat');
    expect(resolveFamily('lat_sum', families)).toBe('lat');
    expect(resolveFamily('lat_count', families)).toBe('lat');
    expect(resolveFamily('lat', families)).toBeNull();
    expect(resolveFamily('gc', families)).toBe('gc');
    expect(resolveFamily('gc_count', families)).toBe('gc');
    expect(resolveFamily('gc_bucket', families)).toBeNull();
    expect(resolveFamily('retries_count', families)).toBe('retries_count');
    expect(resolveFamily('g_sum', families)).toBeNull();
    expect(resolveFamily('missing', families)).toBeNull();
  });
});

describe('infra/grafana', () => {
  it('provisions a Prometheus datasource and a file dashboard provider', () => {
    const ds = readYaml<{ apiVersion: number; datasources: { type: string; url: string; uid: string }[] }>(
      path.join(GRAFANA_DIR, 'provisioning/datasources/prometheus.yml'),
    );
    expect(ds.apiVersion).toBe(1);
    expect(ds.datasources).toHaveLength(1);
    expect(ds.datasources[0]).toMatchObject({ type: 'prometheus', uid: 'prometheus' });
    expect(ds.datasources[0]?.url).toMatch(/^http:\/\/[^/]+:9090$/);
    const providers = readYaml<{
      apiVersion: number;
      providers: { type: string; options: { path: string } }[];
    }>(path.join(GRAFANA_DIR, 'provisioning/dashboards/paxos.yml'));
    expect(providers.apiVersion).toBe(1);
    expect(providers.providers[0]?.type).toBe('file');
    expect(providers.providers[0]?.options.path).toMatch(/^\//);
    expectNoSecrets(path.join(GRAFANA_DIR, 'provisioning/datasources/prometheus.yml'));
  });

  it('the dashboard is well formed: unique panel ids, a query on every panel, no overlapping panels', () => {
    const dashboard = readDashboard();
    expect(dashboard.uid).toBe('autoscaling-paxos');
    const panels = dashboardPanels(dashboard).filter((p) => p.type !== 'row');
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    for (const p of panels) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      expect(new Set(p.targets?.map((t) => t.refId)).size, p.title).toBe(p.targets?.length);
    }
    const cells = new Set<string>();
    for (const p of panels) {
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          expect(cells.has(`${x},${y}`), `${p.title} overlaps another panel`).toBe(false);
          cells.add(`${x},${y}`);
        }
      }
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
    }
  });

  it('has cluster, role and instance variables, and every query selects by them', () => {
    const dashboard = readDashboard() as unknown as {
      templating: { list: { name: string; query?: unknown }[] };
    };
    expect(dashboard.templating.list.map((v) => v.name)).toEqual([
      'datasource',
      'cluster',
      'role',
      'instance',
    ]);
    for (const expr of dashboardExpressions(readDashboard())) {
      for (const selector of expr.match(/\{[^}]*\}/g) ?? []) {
        expect(selector, expr).toContain('cluster=~"$cluster"');
        expect(selector, expr).toContain('instance=~"$instance"');
        expect(selector, expr).toMatch(/role=~"\$role"|role="[a-z_]+"/);
      }
    }
  });

  it('queries only metrics the code exports: METRIC_NAMES, prom-client defaults and up', async () => {
    const metrics = new Metrics({ role: 'client', instance: 'unit' });
    const families = exportedFamilies(await metrics.metricsText());
    for (const name of METRIC_NAMES) expect(families.has(name), name).toBe(true);
    const used = new Set<string>();
    for (const expr of dashboardExpressions(readDashboard())) {
      const names = promqlMetricNames(expr);
      expect(names.length, expr).toBeGreaterThan(0);
      for (const name of names) {
        const family = name === 'up' ? 'up' : resolveFamily(name, families);
        expect(family, `${name} in ${expr} (${DASHBOARD_FILE})`).not.toBeNull();
        if (family !== null) used.add(family);
      }
    }
    // The panels the dashboard promises.
    for (const family of [
      'up',
      'commands_chosen',
      'num_processed_messages',
      'client_latency_seconds',
      'phase2_latency_seconds',
      'is_leader',
      'chosen_watermark',
      'num_invalid_messages',
      'batch_size',
    ]) {
      expect(used, family).toContain(family);
    }
  });

  it('each of infra/prometheus and infra/grafana has a README', () => {
    expect(existsSync(path.join(PROMETHEUS_DIR, 'README.md'))).toBe(true);
    expect(existsSync(path.join(GRAFANA_DIR, 'README.md'))).toBe(true);
  });
});
