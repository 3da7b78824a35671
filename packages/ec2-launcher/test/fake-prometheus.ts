import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FakeEc2 } from './fake-ec2.ts';

/**
 * A stand-in for Prometheus' HTTP API on 127.0.0.1, answering the two instant queries the EC2
 * autoscaler makes the way a Prometheus with infra/prometheus/prometheus-ec2.yml would. Its
 * targets are the running instances of the stand-in EC2 (all clusters), each labelled `job`,
 * `instance` = the instance id and `cluster` = the paxos:cluster tag; the process's own
 * `instance` label (its name) is kept as `exported_instance`.
 *
 * - `up{…}`: one series per target matching the selector, 1 (0 for those in `notUp`); none
 *   for those in `unscraped` (service discovery has not found them yet).
 * - `sum by (exported_instance) (rate(num_processed_messages{…}[…]))` (and of
 *   `num_outgoing_messages`, an unbatcher's load): `rates` of the up targets matching the
 *   selector, summed by process name.
 *
 * - `<metric>{…}` for a gauge a test set in `gauges` (is_leader, paxos_configuration_version,
 *   paxos_acceptor_retired): one series per up target matching the selector that has it.
 *
 * - any query in `answers` (e.g. a `sum(rate(…))` or `histogram_quantile(…)`): one series with
 *   that value.
 *
 * `unreachable` drops every connection unanswered.
 */
export class FakePrometheus {
  readonly queries: string[] = [];
  /** Messages per second by EC2 instance id. */
  readonly rates = new Map<string, number>();
  /** Running instances whose /metrics cannot be scraped yet (`up` 0). */
  readonly notUp = new Set<string>();
  /** Running instances not yet found by service discovery (no `up` series). */
  readonly unscraped = new Set<string>();
  /** Gauges the processes export, by EC2 instance id, then metric name. */
  readonly gauges = new Map<string, Map<string, number>>();
  /** Fixed answers by exact query: one series without labels. */
  readonly answers = new Map<string, number>();
  unreachable = false;
  private server: Server | null = null;

  constructor(
    private readonly ec2: FakeEc2,
    private readonly job = 'paxos',
  ) {}

  async start(): Promise<string> {
    const server = createServer((req, res) => {
      if (this.unreachable) {
        req.socket.destroy();
        return;
      }
      const url = new URL(req.url ?? '/', 'http://localhost');
      const query = url.searchParams.get('query') ?? '';
      this.queries.push(query);
      const answer = url.pathname === '/api/v1/query' ? this.answer(query) : null;
      if (answer === null) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status: 'error', errorType: 'bad_data', error: `cannot answer ${query}` }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result: answer } }));
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  private answer(query: string): { metric: Record<string, string>; value: [number, string] }[] | null {
    const at = Date.now() / 1000;
    const fixed = this.answers.get(query);
    if (fixed !== undefined) return [{ metric: {}, value: [at, String(fixed)] }];
    const gauge = /^(?!up\b)([a-z_]+)(\{[^}]*\})$/.exec(query);
    if (gauge !== null) return this.gauge(gauge[1] as string, parseSelector(gauge[2]));
    const up = /^up(\{[^}]*\})?$/.exec(query);
    const rate =
      /^sum by \(exported_instance\) \(rate\((?:num_processed_messages|num_outgoing_messages)(\{[^}]*\})?\[\w+\]\)\)$/.exec(
        query,
      );
    const selector = parseSelector((up ?? rate)?.[1]);
    if (selector === null) return null;
    const targets = this.targets(selector);
    if (up !== null) {
      return targets.map((t) => ({
        metric: { __name__: 'up', job: t.labels.job, instance: t.id, cluster: t.labels.cluster },
        value: [at, this.notUp.has(t.id) ? '0' : '1'],
      }));
    }
    const sums = new Map<string, number>();
    for (const t of targets) {
      const r = this.rates.get(t.id);
      if (r === undefined || this.notUp.has(t.id)) continue;
      sums.set(t.labels.exported_instance, (sums.get(t.labels.exported_instance) ?? 0) + r);
    }
    return [...sums].map(([name, r]) => ({ metric: { exported_instance: name }, value: [at, String(r)] }));
  }

  /** The scraped targets (running, found by service discovery) whose labels match `selector`. */
  private targets(selector: Record<string, string>) {
    return this.ec2.instances
      .filter((i) => i.state === 'running' && !this.unscraped.has(i.id))
      .map((i) => ({
        id: i.id,
        labels: {
          job: this.job,
          instance: i.id,
          cluster: i.tags.get('paxos:cluster') ?? '',
          exported_instance: i.tags.get('paxos:name') ?? '',
        },
      }))
      .filter((t) => Object.entries(selector).every(([k, v]) => t.labels[k as keyof typeof t.labels] === v));
  }

  private gauge(metric: string, selector: Record<string, string> | null) {
    if (selector === null) return null;
    const at = Date.now() / 1000;
    return this.targets(selector).flatMap((t) => {
      // Every process exports paxos_ready (1 unless a test says otherwise).
      const exported = this.gauges.get(t.id)?.get(metric) ?? (metric === 'paxos_ready' ? 1 : undefined);
      const value = this.notUp.has(t.id) ? undefined : exported;
      return value === undefined
        ? []
        : [{ metric: { __name__: metric, ...t.labels }, value: [at, String(value)] as [number, string] }];
    });
  }
}

/** `{a="x",b="y"}` (or nothing) as label → value; null where it is not such a selector. */
function parseSelector(text: string | undefined): Record<string, string> | null {
  if (text === undefined) return {};
  const inner = text.slice(1, -1);
  if (inner === '') return {};
  const matchers: Record<string, string> = {};
  for (const m of inner.split(',')) {
    const kv = /^([a-zA-Z_]\w*)="([^"]*)"$/.exec(m);
    if (kv === null) return null;
    matchers[kv[1] as string] = kv[2] as string;
  }
  return matchers;
}
