/**
 * The autoscaler beside the local supervisor (`cluster up --autoscale`, `start --autoscale`,
 * `demo:autoscale`): the controller of @paxos/autoscaler acting on a LocalCluster, reading each
 * process's own /metrics. Besides the stateless roles it sizes acceptor groups, through
 * `reconfigureLocal`, when the capacity table has the acceptor's figure.
 */
import path from 'node:path';
import {
  type AutoscalerSettings,
  acceptorGroupInstances,
  type CapacityTable,
  Controller,
  loadCapacity,
  type ObservedInstance,
  PROCESS_ROLES,
  parseAutoscalerSettings,
  policySettings,
  SCALED_ROLES,
  type ScaledRole,
  type ScaleTarget,
  ScalingPolicy,
  ScrapeLoadSource,
  type TickReport,
  type TimelineEntry,
} from '@paxos/autoscaler';
import type { ConfigSpec } from '@paxos/core';
import { STATELESS_ROLES, type StatelessRole } from '@paxos/launcher';
import { pino } from 'pino';
import type { InstancePhaseView, LocalCluster } from './cluster.ts';
import { readLocalConfiguration, reconfigureLocal } from './reconfigure.ts';

export interface LocalScaleTargetOptions {
  /**
   * Whether it sizes acceptor groups (default true). Without them it neither lists them nor reads
   * the configuration: what a controller whose capacity table has no acceptor figure needs.
   */
  readonly acceptorGroups?: boolean;
  /** The configuration whose groups are the acceptor groups; default: the directory's target. */
  readonly configuration?: () => Promise<ConfigSpec>;
  /** Changes the number of acceptor groups; default: `reconfigureLocal(cluster, { groups })`. */
  readonly reconfigure?: (groups: number) => Promise<unknown>;
}

/** A process's phase as capacity: one the supervisor brings back is on its way, like a new one. */
function capacityPhase(phase: InstancePhaseView['phase']): ObservedInstance['phase'] | null {
  return phase === 'stopped' ? null : phase === 'restarting' ? 'starting' : phase;
}

/**
 * Scaling a LocalCluster: its stateless roles, their phases from /readyz, resized through `scale`;
 * and its acceptor groups, one instance per group of the target configuration (`acceptor-g<id>`,
 * its running acceptors as members, ready once they all are), resized through `reconfigureLocal`.
 */
export class LocalScaleTarget implements ScaleTarget {
  readonly roles: readonly ScaledRole[];
  private readonly readConfiguration: () => Promise<ConfigSpec>;
  private readonly reconfigure: (groups: number) => Promise<unknown>;
  /** The last configuration read, used for a period in which the directory does not answer. */
  private configuration: ConfigSpec | null = null;

  constructor(
    private readonly cluster: LocalCluster,
    options: LocalScaleTargetOptions = {},
  ) {
    this.roles = options.acceptorGroups === false ? PROCESS_ROLES : SCALED_ROLES;
    this.readConfiguration = options.configuration ?? (() => readLocalConfiguration(cluster));
    this.reconfigure = options.reconfigure ?? ((groups) => reconfigureLocal(cluster, { groups }));
  }

  async instances(): Promise<ObservedInstance[]> {
    const groups = this.roles.includes('acceptor-group');
    const [phases, configuration] = await Promise.all([
      this.cluster.phases(),
      groups ? this.currentConfiguration() : null,
    ]);
    const processes = phases.flatMap((p) => {
      if (!STATELESS_ROLES.includes(p.role as StatelessRole)) return [];
      const phase = capacityPhase(p.phase);
      return phase === null
        ? []
        : [{ name: p.name, role: p.role as ScaledRole, phase, metricsUrl: this.url(p.name) }];
    });
    return configuration === null ? processes : [...processes, ...this.groups(configuration, phases)];
  }

  /** One instance per group of `configuration`, its running acceptors as members (`acceptorGroupInstances`). */
  private groups(configuration: ConfigSpec, phases: readonly InstancePhaseView[]): ObservedInstance[] {
    const phaseOf = new Map(phases.map((p) => [p.name, capacityPhase(p.phase)]));
    return acceptorGroupInstances(
      configuration.groups,
      (name) => phaseOf.get(name),
      (name) => this.url(name),
    );
  }

  private url(name: string): string | null {
    const metricsPort = this.cluster.spec(name).metricsPort;
    return metricsPort === null ? null : `http://${this.cluster.topology.host}:${metricsPort}/metrics`;
  }

  private async currentConfiguration(): Promise<ConfigSpec> {
    try {
      this.configuration = await this.readConfiguration();
    } catch (err) {
      if (this.configuration === null) throw err;
    }
    return this.configuration;
  }

  async scaleOut(role: ScaledRole, count: number): Promise<void> {
    if (role === 'acceptor-group') {
      await this.reconfigure((await this.currentConfiguration()).groups.length + count);
      return;
    }
    await this.cluster.scale(role, this.cluster.members(role).length + count);
  }

  async scaleIn(role: ScaledRole, count: number): Promise<void> {
    if (role === 'acceptor-group') {
      // Resolves once the leader serves the smaller configuration and the dropped acceptors are stopped.
      await this.reconfigure(Math.max(1, (await this.currentConfiguration()).groups.length - count));
      return;
    }
    // Resolves once they are draining; they exit on their own (or are killed after the grace).
    await this.cluster.scale(role, Math.max(1, this.cluster.members(role).length - count));
  }

  async replace(instance: string): Promise<void> {
    const spec = this.cluster.spec(instance);
    const role = spec.role as StatelessRole;
    const count = this.cluster.members(role).length;
    void this.cluster.launcher.stop(instance, 2000);
    await this.cluster.scale(role, count);
  }
}

export interface LocalAutoscalerConfig {
  readonly settings: AutoscalerSettings;
  readonly capacity: CapacityTable;
}

/** Where the local autoscaler writes its decisions (JSON lines). */
export function localTimelineFile(cluster: LocalCluster): string {
  return path.join(cluster.workDir, 'autoscaler-timeline.jsonl');
}

/**
 * The autoscaler's settings (AUTOSCALE_* in the environment) and the capacity table, read before
 * anything starts: a bad value throws one line that names it.
 */
export async function localAutoscalerConfig(
  env: NodeJS.ProcessEnv = process.env,
): Promise<LocalAutoscalerConfig> {
  const settings = parseAutoscalerSettings(env, 'local');
  return { settings, capacity: await loadCapacity(path.resolve(settings.capacityFile)) };
}

export interface LocalAutoscalerOptions {
  readonly onTick?: (report: TickReport) => void;
  readonly onEvent?: (entry: TimelineEntry) => void;
}

/**
 * Starts the controller on `cluster`, logging to `<workDir>/logs/autoscaler.log` and writing each
 * decision to `<workDir>/autoscaler-timeline.jsonl`; stop it before the cluster goes down.
 */
export function startLocalAutoscaler(
  cluster: LocalCluster,
  config: LocalAutoscalerConfig,
  options: LocalAutoscalerOptions = {},
): Controller {
  const logger = pino(
    { name: 'autoscaler' },
    pino.destination({ dest: path.join(cluster.workDir, 'logs', 'autoscaler.log'), mkdir: true }),
  );
  const acceptorGroups = config.capacity['acceptor-group'] !== undefined;
  if (!acceptorGroups) {
    logger.info(
      `autoscaler: acceptor groups are not scaled: ${config.settings.capacityFile} has no acceptor entry (\`pnpm bench:components\` measures it unless BENCH_ROLES leaves it out)`,
    );
  }
  const controller = new Controller({
    policy: new ScalingPolicy(policySettings(config.settings, config.capacity)),
    target: new LocalScaleTarget(cluster, { acceptorGroups }),
    source: new ScrapeLoadSource(),
    intervalMs: config.settings.intervalMs,
    logger,
    timelineFile: localTimelineFile(cluster),
    ...(options.onTick === undefined ? {} : { onTick: options.onTick }),
    ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
  });
  controller.start();
  return controller;
}
