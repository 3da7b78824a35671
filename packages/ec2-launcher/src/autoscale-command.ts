/**
 * `pnpm aws autoscale`: everything is read and checked before the first AWS request (settings,
 * capacity table, timeline file, launcher flags, metrics port), so a mistake is one line and
 * exit 2; from then on the controller runs until SIGINT or SIGTERM and no AWS error stops it.
 */
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import {
  type AutoscalerSettings,
  AutoscalerSettingsError,
  CapacityError,
  type CapacityTable,
  loadCapacity,
  parseAutoscalerSettings,
  policySettings,
  ScalingPolicy,
} from '@paxos/autoscaler';
import { pino } from 'pino';
import { ec2Autoscaler, serveControllerMetrics } from './autoscale.ts';
import type { AwsCluster } from './cluster.ts';
import { DryRunEc2 } from './dry-run.ts';
import { createEc2Client, type Ec2Api, resolveRegion } from './ec2.ts';
import { asFlagError, UsageError } from './errors.ts';
import { readEc2Configuration, reconfigureEc2 } from './reconfigure.ts';

export interface AutoscaleFlags {
  readonly region?: string;
  readonly dryRun?: boolean;
  readonly prometheusUrl: string;
  readonly prometheusJob: string;
  readonly capacityFile?: string;
  readonly timeline: string;
  readonly metricsPort: number;
  readonly metricsHost: string;
  /** The directory, for acceptor groups (default: the endpoint the cluster's settings tag records). */
  readonly annaRouting?: string;
  readonly localAddress?: string;
}

export interface AutoscaleConfig {
  readonly settings: AutoscalerSettings;
  readonly capacity: CapacityTable;
  readonly region: string;
}

/** Settings, capacity, timeline and region, each refused with one line naming it. */
export async function autoscaleConfig(
  flags: AutoscaleFlags,
  env: Readonly<Record<string, string | undefined>>,
): Promise<AutoscaleConfig> {
  try {
    const settings = parseAutoscalerSettings(env, 'ec2');
    const capacity = await loadCapacity(path.resolve(flags.capacityFile ?? settings.capacityFile));
    try {
      // Created now (appended to, never truncated): a path that cannot be written would
      // otherwise only show when the first decision is recorded.
      appendFileSync(flags.timeline, '');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new UsageError(
        `--timeline: cannot write "${flags.timeline}" (${code}), expected a writable file`,
      );
    }
    return { settings, capacity, region: resolveRegion(flags.region) };
  } catch (err) {
    throw asUsageError(err);
  }
}

function asUsageError(err: unknown): unknown {
  if (err instanceof AutoscalerSettingsError || err instanceof CapacityError)
    return new UsageError(err.message);
  return asFlagError(err);
}

/**
 * Runs the autoscaler on the cluster `makeCluster` builds over the EC2 client it is given,
 * until SIGINT or SIGTERM.
 */
export async function runAutoscale(
  flags: AutoscaleFlags,
  env: Readonly<Record<string, string | undefined>>,
  makeCluster: (ec2: Ec2Api, region: string, log: (line: string) => void) => AwsCluster,
): Promise<void> {
  const config = await autoscaleConfig(flags, env);
  const logger = pino({ name: 'autoscaler' }, pino.destination({ dest: 2, sync: true }));
  let cluster: AwsCluster;
  try {
    const client = createEc2Client(config.region);
    const ec2 = flags.dryRun ? new DryRunEc2((line) => console.log(line), { reads: client }) : client;
    cluster = makeCluster(ec2, config.region, (line) => logger.info(line));
    cluster.launcher.assertCanLaunch();
  } catch (err) {
    throw asUsageError(err);
  }
  const acceptorGroups = config.capacity['acceptor-group'] !== undefined;
  const directory = {
    ...(flags.annaRouting === undefined ? {} : { annaRouting: flags.annaRouting }),
    ...(flags.localAddress === undefined ? {} : { localAddress: flags.localAddress }),
  };
  const controller = ec2Autoscaler({
    cluster,
    prometheusUrl: flags.prometheusUrl,
    job: flags.prometheusJob,
    // The operation of `pnpm aws scale acceptor-groups N`; a dry run prints its plan.
    ...(acceptorGroups
      ? {
          acceptorGroups: {
            configuration: () => readEc2Configuration(cluster, directory),
            reconfigure: (groups: number) =>
              reconfigureEc2(
                { groups },
                {
                  cluster,
                  prometheusUrl: flags.prometheusUrl,
                  job: flags.prometheusJob,
                  ...directory,
                  planOnly: flags.dryRun === true,
                  log: (line) => logger.info(line),
                },
              ),
          },
        }
      : {}),
    policy: new ScalingPolicy(policySettings(config.settings, config.capacity)),
    intervalMs: config.settings.intervalMs,
    logger,
    timelineFile: flags.timeline,
  });
  let metrics: Awaited<ReturnType<typeof serveControllerMetrics>> | null = null;
  if (flags.metricsPort !== 0) {
    try {
      metrics = await serveControllerMetrics(controller, flags.metricsHost, flags.metricsPort);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new UsageError(
        `--metrics-host/--metrics-port: cannot listen on ${flags.metricsHost}:${flags.metricsPort} (${code}), expected a free port on an address of this machine`,
      );
    }
  }
  const { settings } = config;
  logger.info(
    {
      cluster: cluster.launcher.config.cluster,
      prometheus: flags.prometheusUrl,
      intervalMs: settings.intervalMs,
      bounds: settings.bounds,
      metrics: metrics?.url ?? null,
      timeline: flags.timeline,
      dryRun: flags.dryRun === true,
    },
    `autoscaler: cluster ${cluster.launcher.config.cluster}, every ${settings.intervalMs / 1000} s${flags.dryRun ? ' (dry run: launches and terminations are printed, not made)' : ''}`,
  );
  if (!acceptorGroups)
    logger.info(
      `autoscaler: acceptor groups are not scaled: ${flags.capacityFile ?? config.settings.capacityFile} has no acceptor entry (\`pnpm bench:components\` measures it unless BENCH_ROLES leaves it out)`,
    );
  controller.start();
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  logger.info(`autoscaler: ${signal}, stopping after the current period`);
  await controller.stop();
  if (metrics !== null) {
    metrics.server.closeAllConnections();
    await new Promise<void>((resolve) => metrics?.server.close(() => resolve()));
  }
}
