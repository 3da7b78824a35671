/**
 * `pnpm aws dashboard`: the status page (@paxos/status-page) for a cluster on EC2, its data read
 * from Prometheus' HTTP API (infra/prometheus/prometheus-ec2.yml labels every series with the
 * EC2 instance id as `instance`, the cluster tag as `cluster`, and keeps the process's own name
 * as `exported_instance`), and the autoscaler's decisions from its timeline file.
 */
import { instantVector, type VectorSample } from '@paxos/autoscaler';
import { parseAcceptorName } from '@paxos/launcher';
import {
  type ProcessView,
  readDecisions,
  type StatusPageServer,
  type StatusSnapshot,
  type StatusSource,
  serveStatusPage,
} from '@paxos/status-page';

export interface PrometheusStatusOptions {
  readonly prometheusUrl: string;
  /** The paxos:cluster tag. */
  readonly cluster: string;
  /** The scrape job of the role processes. */
  readonly job?: string;
  /** `aws autoscale`'s --timeline file; absent or missing: no decisions shown. */
  readonly timelineFile?: string;
  /** The window of rates and latency percentiles (PromQL duration). */
  readonly window?: string;
  readonly timeoutMs?: number;
}

const DECISIONS_SHOWN = 30;

/** The PromQL queries the dashboard makes, by what they read; `sel` is the cluster's selector. */
export function dashboardQueries(sel: string, window = '30s') {
  const quantile = (q: number) =>
    `histogram_quantile(${q}, sum by (le) (rate(client_latency_seconds_bucket${sel}[${window}])))`;
  return {
    up: `up${sel}`,
    names: `num_processed_messages${sel}`,
    leader: `is_leader${sel}`,
    watermark: `chosen_watermark${sel}`,
    version: `paxos_configuration_version${sel}`,
    epoch: `paxos_matchmaker_epoch${sel}`,
    round: `paxos_ballot_round${sel}`,
    proposerId: `paxos_ballot_proposer_id${sel}`,
    retired: `paxos_acceptor_retired${sel}`,
    commands: `sum(rate(commands_chosen${sel}[${window}]))`,
    p50: quantile(0.5),
    p99: quantile(0.99),
  } as const;
}

/**
 * A source for the status page from Prometheus: every target of the cluster is a process, ready
 * when Prometheus scrapes it (`up` 1) and starting until then (draining and restarting are not
 * visible from Prometheus); the leader is the proposer whose `is_leader` is 1; the acceptor
 * groups are the acceptors not retired, by the group in their names. A query that fails leaves
 * its part empty and says so; when `up` fails the whole snapshot does.
 */
export function prometheusStatusSource(options: PrometheusStatusOptions): StatusSource {
  const sel = `{job=${JSON.stringify(options.job ?? 'paxos')},cluster=${JSON.stringify(options.cluster)}}`;
  const queries = dashboardQueries(sel, options.window);
  const ask = (query: string) =>
    instantVector(options.prometheusUrl, query, { timeoutMs: options.timeoutMs ?? 3000 });
  return async () => {
    const keys = Object.keys(queries) as (keyof typeof queries)[];
    const answers = await Promise.all(keys.map((k) => ask(queries[k]).catch((err: Error) => err)));
    const got = Object.fromEntries(keys.map((k, i) => [k, answers[i]])) as Record<
      keyof typeof queries,
      VectorSample[] | Error
    >;
    if (got.up instanceof Error) throw got.up;
    const problems = [
      ...new Set(
        keys.flatMap((k) => {
          const a = got[k];
          return a instanceof Error ? [a.message] : [];
        }),
      ),
    ];
    const series = (k: keyof typeof queries): VectorSample[] => {
      const a = got[k];
      return a instanceof Error ? [] : a;
    };
    // Each EC2 instance's process name, from a counter every role exports.
    const nameOf = new Map(
      series('names').flatMap((s) =>
        s.labels.instance !== undefined && s.labels.exported_instance !== undefined
          ? [[s.labels.instance, s.labels.exported_instance] as const]
          : [],
      ),
    );
    const byName = (k: keyof typeof queries) =>
      new Map(
        series(k).flatMap((s) => {
          const name = s.labels.exported_instance ?? nameOf.get(s.labels.instance ?? '');
          return name === undefined ? [] : [[name, s.value] as const];
        }),
      );
    const processes: ProcessView[] = series('up')
      .map((s) => {
        const id = s.labels.instance ?? '?';
        const name = nameOf.get(id) ?? s.labels.name ?? id;
        return {
          name,
          role: s.labels.role?.replace('_', '-') ?? roleOf(name),
          phase: s.value === 1 ? ('ready' as const) : ('starting' as const),
          where: id,
        };
      })
      .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));

    const leaders = [...byName('leader')].filter(([, v]) => v === 1).map(([name]) => name);
    const leader = leaders[0] ?? null;
    const at = (k: keyof typeof queries) => (leader === null ? undefined : byName(k).get(leader));
    const round = at('round');
    const retired = byName('retired');
    const groups = new Map<number, string[]>();
    for (const p of processes) {
      const parsed = parseAcceptorName(p.name);
      if (parsed === null || retired.get(p.name) === 1) continue;
      groups.set(parsed.groupId, [...(groups.get(parsed.groupId) ?? []), p.name]);
    }
    const single = (k: keyof typeof queries) => series(k)[0]?.value ?? null;
    return {
      at: Date.now(),
      title: `EC2 cluster ${options.cluster} (Prometheus ${options.prometheusUrl})`,
      leader:
        leader === null
          ? null
          : {
              name: leader,
              ballot: round === undefined ? null : { round, proposerId: at('proposerId') ?? null },
            },
      processes,
      acceptorGroups: {
        version: at('version') ?? null,
        servedVersion: at('version') ?? null,
        groups: [...groups].sort(([a], [b]) => a - b).map(([id, acceptors]) => ({ id, acceptors })),
      },
      matchmakers: {
        epoch: at('epoch') ?? 0,
        names: processes.filter((p) => p.role === 'matchmaker').map((p) => p.name),
      },
      commandsPerS: single('commands'),
      p50Ms: nullableMs(single('p50')),
      p99Ms: nullableMs(single('p99')),
      chosenWatermark: at('watermark') ?? null,
      decisions:
        options.timelineFile === undefined ? [] : readDecisions(options.timelineFile, DECISIONS_SHOWN),
      problems,
    } satisfies StatusSnapshot;
  };
}

/** `batcher-3` → batcher, `acceptor-g1-a2` → acceptor, `proxy-leader-0` → proxy-leader. */
function roleOf(name: string): string {
  return name.replace(/-(g\d+-a\d+|\d+)$/, '');
}

function nullableMs(seconds: number | null): number | null {
  return seconds === null ? null : seconds * 1000;
}

export interface DashboardOptions extends PrometheusStatusOptions {
  readonly port: number;
  readonly host: string;
}

/** Serves the status page for an EC2 cluster until the returned server is closed. */
export function serveDashboard(options: DashboardOptions): Promise<StatusPageServer> {
  return serveStatusPage(prometheusStatusSource(options), { port: options.port, host: options.host });
}
