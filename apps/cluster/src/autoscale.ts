/**
 * The autoscaler beside the local supervisor (`cluster up --autoscale`, `start --autoscale`,
 * `demo:autoscale`): the controller of @paxos/autoscaler acting on a LocalCluster, reading each
 * process's own /metrics.
 */
import path from 'node:path';
import {
  type AutoscalerSettings,
  type CapacityTable,
  Controller,
  loadCapacity,
  type ObservedInstance,
  parseAutoscalerSettings,
  policySettings,
  type ScaledRole,
  type ScaleTarget,
  ScalingPolicy,
  ScrapeLoadSource,
  type TickReport,
  type TimelineEntry,
} from '@paxos/autoscaler';
import { STATELESS_ROLES, type StatelessRole } from '@paxos/launcher';
import { pino } from 'pino';
import type { LocalCluster } from './cluster.ts';

/** Scaling a LocalCluster: its stateless roles, their phases from /readyz, resized through `scale`. */
export class LocalScaleTarget implements ScaleTarget {
  constructor(private readonly cluster: LocalCluster) {}

  async instances(): Promise<ObservedInstance[]> {
    const host = this.cluster.topology.host;
    const phases = await this.cluster.phases();
    return phases.flatMap((p) => {
      if (!STATELESS_ROLES.includes(p.role as StatelessRole)) return [];
      // A process the supervisor is bringing back is capacity on its way, like a new one.
      const phase = p.phase === 'restarting' ? 'starting' : p.phase;
      if (phase === 'stopped') return [];
      const metricsPort = this.cluster.spec(p.name).metricsPort;
      return [
        {
          name: p.name,
          role: p.role as ScaledRole,
          phase,
          metricsUrl: metricsPort === null ? null : `http://${host}:${metricsPort}/metrics`,
        },
      ];
    });
  }

  async scaleOut(role: ScaledRole, count: number): Promise<void> {
    await this.cluster.scale(role, this.cluster.members(role).length + count);
  }

  async scaleIn(role: ScaledRole, count: number): Promise<void> {
    // Resolves once they are draining; they exit on their own (or are killed after the grace).
    await this.cluster.scale(role, Math.max(1, this.cluster.members(role).length - count));
  }

  async replace(instance: string): Promise<void> {
    const spec = this.cluster.spec(instance);
    const role = spec.role as ScaledRole;
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
  const controller = new Controller({
    policy: new ScalingPolicy(policySettings(config.settings, config.capacity)),
    target: new LocalScaleTarget(cluster),
    source: new ScrapeLoadSource(),
    intervalMs: config.settings.intervalMs,
    logger: pino(
      { name: 'autoscaler' },
      pino.destination({ dest: path.join(cluster.workDir, 'logs', 'autoscaler.log'), mkdir: true }),
    ),
    timelineFile: localTimelineFile(cluster),
    ...(options.onTick === undefined ? {} : { onTick: options.onTick }),
    ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
  });
  controller.start();
  return controller;
}
