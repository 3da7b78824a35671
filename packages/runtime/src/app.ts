import { type Logger, pino } from 'pino';
import {
  COMMON_SETTINGS,
  ConfigError,
  loadSettings,
  type SettingsSpec,
  type SettingsValues,
} from './config.ts';
import type { Node, NodeOptions } from './node.ts';

export type CommonValues = SettingsValues<typeof COMMON_SETTINGS>;

export interface AppDefinition<S extends SettingsSpec> {
  readonly program: string;
  readonly description: string;
  readonly settings: S;
  /** Starts the process; returns what SIGTERM should drain and stop. */
  readonly main: (
    settings: SettingsValues<S> & CommonValues,
    logger: Logger,
  ) => Promise<{ node: Node; isDrained?: () => boolean; onStopped?: () => void | Promise<void> }>;
}

/** Exit codes: 0 after a clean stop, 1 on a runtime failure, 2 on bad configuration. */
export async function runApp<S extends SettingsSpec>(app: AppDefinition<S>): Promise<void> {
  let settings: SettingsValues<S> & CommonValues;
  try {
    settings = loadSettings(
      app.program,
      app.description,
      { ...COMMON_SETTINGS, ...app.settings },
      process.argv.slice(2),
      process.env,
    ) as SettingsValues<S> & CommonValues;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${app.program}: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  // Logs go to stderr, so a process's stdout can carry data (the load generator's figures).
  const logger = pino({ name: app.program, level: settings.logLevel }, pino.destination(2));
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception');
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection');
    process.exit(1);
  });
  let started: Awaited<ReturnType<AppDefinition<S>['main']>>;
  try {
    started = await app.main(settings, logger);
  } catch (err) {
    logger.fatal({ err: err instanceof Error ? err.message : String(err) }, 'could not start');
    process.exit(1);
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    try {
      await started.node.shutdown(started.isDrained);
      await started.onStopped?.();
      process.exit(0);
    } catch (err) {
      logger.error({ err }, 'unclean stop');
      process.exit(1);
    }
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  // Started by a supervisor with an IPC channel: if the supervisor dies, do not outlive it.
  if (process.connected) process.once('disconnect', () => void stop('supervisor gone'));
}

/** NodeOptions from the common settings. */
export function nodeOptions(
  settings: CommonValues,
  logger: Logger,
  role: NodeOptions['role'],
  endpoints: string[],
  extra: Partial<NodeOptions> = {},
): NodeOptions {
  const firstPort = endpoints[0]?.slice(endpoints[0].lastIndexOf(':') + 1) ?? '';
  return {
    role,
    instance: settings.instance || `${role}-${firstPort}`,
    endpoints,
    annaRouting: settings.annaRouting,
    annaKeyPrefix: settings.annaKeyPrefix,
    maxReadsPerSocketPerPoll: settings.maxReadsPerSocketPerPoll,
    metricsPort: settings.metricsPort,
    metricsHost: settings.privateIp,
    directoryPollMs: settings.directoryPollMs,
    drainTimeoutMs: settings.drainTimeoutMs,
    logger,
    ...extra,
  };
}
