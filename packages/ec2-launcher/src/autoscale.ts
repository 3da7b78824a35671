/**
 * The autoscaler on EC2 (`pnpm aws autoscale`): @paxos/autoscaler's Controller acting on an
 * AwsCluster, with Prometheus (infra/prometheus/prometheus-ec2.yml) as its eyes: which instances
 * it scrapes tells which processes serve, and its rates are the load.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  acceptorGroupInstances,
  Controller,
  type DecisionPolicy,
  describeInstances,
  type InstancePhase,
  instantQuery,
  type ObservedInstance,
  PROCESS_ROLES,
  type ProcessRole,
  PrometheusLoadSource,
  SCALED_ROLES,
  type ScaledRole,
  type ScaleTarget,
  type TickReport,
} from '@paxos/autoscaler';
import type { ConfigSpec } from '@paxos/core';
import type { RoleName } from '@paxos/launcher';
import type { Logger } from 'pino';
import type { AwsCluster } from './cluster.ts';
import type { ClusterInstance } from './ec2.ts';

export interface Ec2ScaleTargetOptions {
  readonly cluster: AwsCluster;
  /** Prometheus' base URL, e.g. http://10.0.0.9:9090. */
  readonly prometheusUrl: string;
  /** The scrape job of the role processes: `paxos` in infra/prometheus/prometheus-ec2.yml. */
  readonly job?: string;
  readonly logger: Logger;
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
  /**
   * Size acceptor groups too (the capacity table has the acceptor's figure): the groups of the
   * configuration the cluster serves or moves to, resized through `reconfigure` (`reconfigureEc2`,
   * the operation of `pnpm aws scale acceptor-groups`). Absent: the process roles only.
   */
  readonly acceptorGroups?: {
    readonly configuration: () => Promise<ConfigSpec>;
    readonly reconfigure: (groups: number) => Promise<unknown>;
  };
}

/**
 * An instance's phase from its EC2 state and whether its process says it is ready
 * (`paxos_ready`, what its /readyz says, as Prometheus last scraped it): null where that could
 * not be read. Null for instances that neither serve nor leave (stopped).
 *
 * A running instance Prometheus cannot be asked about counts as ready: its load reads as
 * unreadable too (the same Prometheus), which the policy never scales on, while calling it
 * starting would have it replaced once the outage outlasted the ready timeout.
 */
export function ec2Phase(ec2State: string, ready: boolean | null): InstancePhase | null {
  switch (ec2State) {
    case 'pending':
      return 'starting';
    case 'running':
      return ready === false ? 'starting' : 'ready';
    case 'shutting-down':
    case 'stopping':
      return 'draining';
    default:
      return null;
  }
}

/** The launcher's role of a process role. */
const processRole = (role: ScaledRole): RoleName => (role === 'acceptor-group' ? 'acceptor' : role);

/**
 * The scaled roles of a cluster on EC2 (batchers, proxy leaders, unbatchers; never proposers,
 * whose leader is the one sequencer). Phases: `pending`, or `running` but not yet scraped by
 * Prometheus (`up` is 0 or absent for its instance id), is starting; running and up is ready;
 * shutting down is draining. Scale-out launches without waiting for `running`, so a period is
 * never held for a boot. Scale-in terminates: EC2 shuts the machine down, systemd stops the
 * role with SIGTERM, and the role leaves the directory and drains (bounded by the unit's
 * TimeoutStopSec) before the instance goes, listed as draining meanwhile. EC2's errors
 * (capacity, limits, throttling after the launcher's retries) reach the Controller as errors,
 * which it logs and retries with back-off. With `acceptorGroups`, acceptor groups too: one
 * instance per group of the configuration, its acceptors as members (phases as above), resized
 * by a reconfiguration (`reconfigureEc2`).
 */
export class Ec2ScaleTarget implements ScaleTarget {
  readonly roles: readonly ScaledRole[];
  /** Readiness per instance: a process not scraped (down) has no fresh series, so it reads as not ready. */
  private readonly readyQuery: string;
  /** The last Prometheus problem logged, so an outage is logged when it starts and ends, not every period. */
  private prometheusProblem: string | null = null;
  /** The last configuration read, used for a period in which the directory does not answer. */
  private configuration: ConfigSpec | null = null;

  constructor(private readonly options: Ec2ScaleTargetOptions) {
    this.roles = options.acceptorGroups === undefined ? PROCESS_ROLES : SCALED_ROLES;
    this.readyQuery = `paxos_ready${prometheusSelector(options.cluster, options.job)}`;
  }

  async instances(): Promise<ObservedInstance[]> {
    const all = await this.options.cluster.status();
    const ready = await this.readiness(all);
    const phaseOf = (i: ClusterInstance) =>
      ec2Phase(i.ec2State, ready === null ? null : ready.get(i.id) === 1);
    const processes = all.flatMap((i) => {
      if (!PROCESS_ROLES.includes(i.role as ProcessRole)) return [];
      const phase = phaseOf(i);
      return phase === null ? [] : [{ name: i.name, role: i.role as ScaledRole, phase, metricsUrl: null }];
    });
    if (this.options.acceptorGroups === undefined) return processes;
    const acceptors = new Map(all.filter((i) => i.role === 'acceptor').map((i) => [i.name, phaseOf(i)]));
    const groups = acceptorGroupInstances(
      (await this.currentConfiguration()).groups,
      (name) => acceptors.get(name),
      // Prometheus reads the members' load by name.
      () => null,
    );
    return [...processes, ...groups];
  }

  async scaleOut(role: ScaledRole, count: number): Promise<void> {
    if (role === 'acceptor-group') {
      await this.reconfigureGroups((groups) => groups + count);
      return;
    }
    await this.options.cluster.add(processRole(role), count, { wait: false });
  }

  async scaleIn(role: ScaledRole, count: number): Promise<void> {
    if (role === 'acceptor-group') {
      // Resolves once a leader serves the smaller configuration and the dropped acceptors' instances are terminated.
      await this.reconfigureGroups((groups) => Math.max(1, groups - count));
      return;
    }
    await this.options.cluster.removeHighest(processRole(role), count);
  }

  private async reconfigureGroups(to: (groups: number) => number): Promise<void> {
    const acceptorGroups = this.options.acceptorGroups;
    if (acceptorGroups === undefined) throw new Error('acceptor groups are not scaled by this target');
    await acceptorGroups.reconfigure(to((await this.currentConfiguration()).groups.length));
  }

  private async currentConfiguration(): Promise<ConfigSpec> {
    try {
      this.configuration = (await this.options.acceptorGroups?.configuration()) ?? null;
    } catch (err) {
      if (this.configuration === null) throw err;
    }
    if (this.configuration === null) throw new Error('acceptor groups are not scaled by this target');
    return this.configuration;
  }

  async replace(instance: string): Promise<void> {
    await this.options.cluster.replace(instance, { wait: false });
  }

  /** `paxos_ready` per instance id, or null where Prometheus cannot tell (logged once per outage). */
  private async readiness(all: readonly ClusterInstance[]): Promise<Map<string, number> | null> {
    const { prometheusUrl, logger } = this.options;
    let problem: string | null = null;
    let up: Map<string, number> | null = null;
    try {
      up = await instantQuery(prometheusUrl, this.readyQuery, {
        by: 'instance',
        ...(this.options.timeoutMs === undefined ? {} : { timeoutMs: this.options.timeoutMs }),
        ...(this.options.fetch === undefined ? {} : { fetch: this.options.fetch }),
      });
      // No series for any of the cluster's running instances is not "nothing serves": it is a
      // Prometheus that does not watch this cluster (another job name, region or tag), and
      // reading it as "all starting" would replace the whole cluster after the ready timeout.
      const running = all.filter((i) => i.ec2State === 'running');
      if (running.length > 0 && !running.some((i) => up?.has(i.id))) {
        problem = `Prometheus at ${prometheusUrl} has no \`${this.readyQuery}\` series for any running instance of the cluster (does it scrape this region, with the job, instance and cluster labels of infra/prometheus/prometheus-ec2.yml?)`;
        up = null;
      }
    } catch (err) {
      problem = (err as Error).message;
    }
    if (problem !== this.prometheusProblem) {
      if (problem !== null) {
        logger.warn(
          { error: problem },
          'autoscaler: cannot tell which instances serve; running ones count as ready (none is replaced) until Prometheus tells',
        );
      } else logger.info('autoscaler: Prometheus answers again');
      this.prometheusProblem = problem;
    }
    return up;
  }
}

/**
 * The labels that pick out the cluster's role processes in Prometheus: the scrape job, and
 * `cluster` (the paxos:cluster tag), since one Prometheus may watch several clusters whose
 * processes have the same names.
 */
export function prometheusLabels(cluster: AwsCluster, job = 'paxos'): Record<string, string> {
  return { job, cluster: cluster.launcher.config.cluster };
}

/** `prometheusLabels` as a PromQL selector: `{job="paxos",cluster="demo"}`. */
export function prometheusSelector(cluster: AwsCluster, job?: string): string {
  return `{${Object.entries(prometheusLabels(cluster, job))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(',')}}`;
}

export interface Ec2AutoscalerOptions {
  readonly cluster: AwsCluster;
  readonly prometheusUrl: string;
  /** The scrape job of the role processes (default `paxos`). */
  readonly job?: string;
  readonly policy: DecisionPolicy;
  readonly intervalMs: number;
  readonly logger: Logger;
  readonly timelineFile?: string;
  readonly clock?: () => number;
  /** Per Prometheus query. */
  readonly timeoutMs?: number;
  /** Size acceptor groups too (see Ec2ScaleTargetOptions). */
  readonly acceptorGroups?: Ec2ScaleTargetOptions['acceptorGroups'];
}

/**
 * The Controller on `cluster`: Ec2ScaleTarget, the load of the cluster's own processes from
 * Prometheus, and a log line whenever the instances per role and phase change.
 */
export function ec2Autoscaler(options: Ec2AutoscalerOptions): Controller {
  const { cluster, prometheusUrl, job, logger, timeoutMs } = options;
  const optional = {
    ...(job === undefined ? {} : { job }),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    ...(options.acceptorGroups === undefined ? {} : { acceptorGroups: options.acceptorGroups }),
  };
  let last = '';
  return new Controller({
    policy: options.policy,
    target: new Ec2ScaleTarget({ cluster, prometheusUrl, logger, ...optional }),
    source: new PrometheusLoadSource({
      url: prometheusUrl,
      labels: prometheusLabels(cluster, job),
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    }),
    intervalMs: options.intervalMs,
    logger,
    ...(options.timelineFile === undefined ? {} : { timelineFile: options.timelineFile }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    onTick: (report: TickReport) => {
      const now = describeInstances(report.instances);
      if (now !== last) logger.info({ instances: now }, `autoscaler: ${now}`);
      last = now;
    },
  });
}

/** Serves the controller's metrics at /metrics on `host:port`; resolves once listening. */
export async function serveControllerMetrics(
  controller: Controller,
  host: string,
  port: number,
): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    if ((req.url ?? '').split('?')[0] !== '/metrics' || req.method !== 'GET') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('the autoscaler serves /metrics only\n');
      return;
    }
    controller.metrics.metricsText().then(
      (text) => res.writeHead(200, { 'content-type': controller.metrics.contentType }).end(text),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port: bound } = server.address() as AddressInfo;
  return { server, url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}/metrics` };
}
