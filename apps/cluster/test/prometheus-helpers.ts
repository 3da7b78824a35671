import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const PROMETHEUS_DIR = path.join(REPO_ROOT, 'infra/prometheus');
export const GRAFANA_DIR = path.join(REPO_ROOT, 'infra/grafana');
export const DASHBOARD_FILE = path.join(GRAFANA_DIR, 'dashboards/paxos.json');

/** The part of a Prometheus relabel rule the configs here use. */
export interface RelabelRule {
  source_labels?: string[];
  separator?: string;
  regex?: string;
  target_label?: string;
  replacement?: string;
  action?: string;
}

export interface ScrapeConfig {
  job_name: string;
  honor_labels?: boolean;
  scrape_interval?: string;
  ec2_sd_configs?: {
    region?: string;
    port?: number;
    refresh_interval?: string;
    filters?: { name: string; values: string[] }[];
    [key: string]: unknown;
  }[];
  file_sd_configs?: { files: string[]; refresh_interval?: string }[];
  relabel_configs?: RelabelRule[];
}

export interface PrometheusConfig {
  global?: { scrape_interval?: string; evaluation_interval?: string };
  scrape_configs: ScrapeConfig[];
  rule_files?: string[];
}

export function readYaml<T>(file: string): T {
  return parse(readFileSync(file, 'utf8')) as T;
}

export function readPrometheusConfig(name: 'prometheus-ec2.yml' | 'prometheus-local.yml'): PrometheusConfig {
  return readYaml<PrometheusConfig>(path.join(PROMETHEUS_DIR, name));
}

/**
 * Applies relabel rules the way Prometheus does for the actions used here (`replace`, `keep`,
 * `drop`): source values joined by `;`, the regex anchored at both ends, `${n}` / `$n` expanded,
 * an empty result removes the label. Returns null when the target is dropped.
 */
export function relabel(
  labels: Readonly<Record<string, string>>,
  rules: readonly RelabelRule[],
): Record<string, string> | null {
  const out: Record<string, string> = { ...labels };
  for (const rule of rules) {
    const value = (rule.source_labels ?? []).map((l) => out[l] ?? '').join(rule.separator ?? ';');
    const match = new RegExp(`^(?:${rule.regex ?? '(.*)'})$`).exec(value);
    const action = rule.action ?? 'replace';
    if (action === 'keep') {
      if (match === null) return null;
    } else if (action === 'drop') {
      if (match !== null) return null;
    } else if (action === 'replace') {
      if (match === null || rule.target_label === undefined) continue;
      const result = (rule.replacement ?? '$1').replace(
        /\$\{(\w+)\}|\$(\d+)/g,
        (_, braced: string | undefined, bare: string | undefined) => match[Number(braced ?? bare)] ?? '',
      );
      if (result === '') delete out[rule.target_label];
      else out[rule.target_label] = result;
    } else {
      throw new Error(`relabel: action ${action} is not supported by this test helper`);
    }
  }
  return out;
}

interface DashboardPanel {
  id: number;
  title: string;
  type: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { expr: string; refId: string }[];
  panels?: DashboardPanel[];
}

export interface Dashboard {
  uid: string;
  title: string;
  panels: DashboardPanel[];
}

export function readDashboard(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;
}

/** Every panel, including those nested in collapsed rows. */
export function dashboardPanels(dashboard: Dashboard): DashboardPanel[] {
  return dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Every PromQL expression of the dashboard's panels. */
export function dashboardExpressions(dashboard: Dashboard): string[] {
  return dashboardPanels(dashboard).flatMap((p) => (p.targets ?? []).map((t) => t.expr));
}

/**
 * Grafana's interval variables → a literal duration, and the dashboard's `cluster`, `role` and
 * `instance` variables → All (`.*`), so Prometheus itself can evaluate an expression.
 */
export function withGrafanaVariables(expr: string, rateInterval: string): string {
  return expr
    .replaceAll('$__rate_interval', rateInterval)
    .replaceAll('$__interval', rateInterval)
    .replace(/\$(cluster|role|instance)\b/g, '.*');
}

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'inf',
  'nan',
]);

/**
 * Metric names a PromQL expression selects, as written (`client_latency_seconds_bucket` stays as
 * it is; {@link resolveFamily} maps it to its histogram). Strings, label matchers, ranges,
 * grouping label lists, `offset`/`@` modifiers, numbers, keywords and function or aggregation
 * names (an identifier followed by `(`) are not metric names; `{__name__="x"}` is.
 */
export function promqlMetricNames(expr: string): string[] {
  const names = new Set<string>();
  for (const m of expr.matchAll(/__name__\s*=\s*"([^"]+)"/g)) if (m[1] !== undefined) names.add(m[1]);
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\boffset\s+-?\w+/g, ' ')
    .replace(/@\s*(?:start\(\)|end\(\)|[\d.]+)/g, ' ')
    .replace(/\$\{[^}]*\}|\$\w+/g, ' ');
  for (const m of stripped.matchAll(/\d[\w.]*(?:[eE][+-]?\d+)?|[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const token = m[0];
    if (/^\d/.test(token) || KEYWORDS.has(token.toLowerCase())) continue;
    const next = stripped.slice((m.index ?? 0) + token.length).trimStart();
    if (next.startsWith('(')) continue;
    names.add(token);
  }
  return [...names];
}

/** Metric families of an exposition text (`# TYPE name type` lines): name → type. */
export function exportedFamilies(text: string): Map<string, string> {
  const families = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    if (m[1] !== undefined && m[2] !== undefined) families.set(m[1], m[2]);
  }
  return families;
}

/**
 * The exported family a selected series name belongs to, or null: a counter, gauge or untyped
 * family by its own name; a histogram only through `_bucket`, `_sum` or `_count` (its bare name
 * selects nothing); a summary by its own name (quantiles) or `_sum` / `_count`. A suffix is
 * stripped only when what remains is such a family, so a counter that happens to end in `_count`
 * still matches itself.
 */
export function resolveFamily(name: string, families: ReadonlyMap<string, string>): string | null {
  const type = families.get(name);
  if (type === 'counter' || type === 'gauge' || type === 'untyped' || type === 'summary') return name;
  const m = /^(.+)_(bucket|sum|count)$/.exec(name);
  if (m?.[1] !== undefined && m[2] !== undefined) {
    const baseType = families.get(m[1]);
    if (baseType === 'histogram') return m[1];
    if (baseType === 'summary' && m[2] !== 'bucket') return m[1];
  }
  return null;
}
