import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { type Logger, pino } from 'pino';
import {
  COMMON_SETTINGS,
  ConfigError,
  checkCommonSettings,
  loadSettings,
  resolveDrainTimeoutMs,
  type SettingsSpec,
  type SettingsValues,
} from './config.ts';
import type { Node, NodeOptions } from './node.ts';

export type CommonValues = SettingsValues<typeof COMMON_SETTINGS>;

export interface AppDefinition<S extends SettingsSpec> {
  readonly program: string;
  readonly description: string;
  readonly settings: S;
  /**
   * Starts the process; returns what SIGTERM should drain and stop. `drainUntilQuiet`: peers pick
   * this process by membership (batchers, proxy leaders, unbatchers), so it serves until they stop
   * sending (see `drainEnd`).
   */
  readonly main: (
    settings: SettingsValues<S> & CommonValues,
    logger: Logger,
  ) => Promise<{
    node: Node;
    isDrained?: () => boolean;
    drainUntilQuiet?: boolean;
    onStopped?: () => void | Promise<void>;
  }>;
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
      appVersion(),
    ) as SettingsValues<S> & CommonValues;
    checkCommonSettings(settings);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${app.program}: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  // Logs go to stderr, so a process's stdout can carry data (the load generator's figures).
  const logger = processLogger(app.program, settings.logLevel, settings.instance);
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception');
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection');
    process.exit(1);
  });
  let started: Awaited<ReturnType<AppDefinition<S>['main']>> | null = null;
  let stopping = false;
  let signalWhileStarting: string | null = null;
  let giveUpOnStart: NodeJS.Timeout | undefined;
  // The handlers go in before start-up: a process stopped while it registers (an instance
  // scaled in right after launch) must still leave the directory, or peers keep its address.
  const stop = async (signal: string) => {
    if (started === null) {
      if (signalWhileStarting !== null) return;
      signalWhileStarting = signal;
      logger.info({ signal }, 'stop requested while starting; stopping once started');
      // If start-up cannot finish (the directory is unreachable), nothing was registered or acknowledged.
      giveUpOnStart = setTimeout(() => {
        logger.info('start-up did not finish in time; exiting');
        process.exit(0);
      }, resolveDrainTimeoutMs(settings)).unref();
      return;
    }
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    try {
      await started.node.shutdown(started.isDrained, { untilQuiet: started.drainUntilQuiet ?? false });
      await started.onStopped?.();
      process.exit(0);
    } catch (err) {
      logger.error({ err }, 'unclean stop');
      process.exit(1);
    }
  };
  // once: a second signal of the same kind takes its default action and ends a stop that hangs.
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  // Started by a supervisor with an IPC channel: if the supervisor dies, do not outlive it.
  if (process.connected) process.once('disconnect', () => void stop('supervisor gone'));
  try {
    started = await app.main(settings, logger);
  } catch (err) {
    // A configuration found wrong only at start-up (e.g. against the cluster's) is still a bad
    // configuration: one line, exit 2, and a supervisor does not restart it.
    if (err instanceof ConfigError) {
      process.stderr.write(`${app.program}: ${err.message}\n`);
      process.exit(2);
    }
    logger.fatal({ err: err instanceof Error ? err.message : String(err) }, 'could not start');
    process.exit(1);
  }
  clearTimeout(giveUpOnStart);
  started.node.markReady();
  if (signalWhileStarting !== null) await stop(signalWhileStarting);
}

/** The version of the app running: its package.json, next to the dist/ (or src/) its entry point is in. */
function appVersion(): string {
  try {
    const entry = process.argv[1] ?? '';
    return String((createRequire(entry)('../package.json') as { version?: unknown }).version ?? 'unknown');
  } catch {
    return 'unknown';
  }
}

/**
 * A role process's logger: JSON lines on stderr with ISO timestamps and the fields `role` (the
 * metrics' role label, from the program name: `paxos-proxy-leader` → `proxy_leader`) and
 * `instance` (INSTANCE, which every launcher sets to the process's name). Without INSTANCE,
 * {@link nodeOptions} adds the default instance once the ports are known.
 */
export function processLogger(
  program: string,
  level: string,
  instance: string,
  { fd = 2, sync = false }: { fd?: number; sync?: boolean } = {},
): Logger {
  const role = program.replace(/^paxos-/, '').replaceAll('-', '_');
  return pino(
    {
      name: program,
      level,
      base: { pid: process.pid, hostname: hostname(), role, ...(instance === '' ? {} : { instance }) },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    sync ? pino.destination({ dest: fd, sync: true }) : pino.destination(fd),
  );
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
  const instance = settings.instance || `${role}-${firstPort}`;
  // processLogger leaves `instance` out until it is known: it is the default, named after the port.
  if (settings.instance === '') logger.setBindings({ instance });
  return {
    role,
    instance,
    endpoints,
    annaRouting: settings.annaRouting,
    annaKeyPrefix: settings.annaKeyPrefix,
    maxReadsPerSocketPerPoll: settings.maxReadsPerSocketPerPoll,
    metricsPort: settings.metricsPort,
    metricsHost: settings.privateIp,
    directoryPollMs: settings.directoryPollMs,
    leaseTimeoutMs: settings.leaseTimeoutMs || 4 * settings.directoryPollMs,
    drainTimeoutMs: resolveDrainTimeoutMs(settings),
    traceSample: settings.traceSample,
    logger,
    ...extra,
  };
}

/**
 * The `schedule` of a durable role's group commit (`durableAcceptor`, `durableMatchmaker`): the
 * commit runs once the read burst is handled, then `after`. Fail-stop: a store that cannot write
 * (disk full, I/O error) must not answer for what it did not write, so a failed commit logs one
 * line naming `dir` and the error and exits 1 before anything else runs; the held replies die
 * with the process.
 */
export function failStopCommit(
  logger: Logger,
  what: string,
  dir: string,
  heldMessages: () => number,
  after: () => void = () => {},
): (commit: () => void) => void {
  return (commit) =>
    setImmediate(() => {
      try {
        commit();
      } catch (err) {
        const e = err instanceof Error ? err : new Error(String(err));
        const code =
          (e.cause as NodeJS.ErrnoException | undefined)?.code ?? (e as NodeJS.ErrnoException).code;
        const held = heldMessages();
        logger.fatal(
          { dir, code, heldMessages: held },
          `${what} write failed, stopping without sending the ${held} message${held === 1 ? '' : 's'} held for it: ${e.message}`,
        );
        process.exit(1);
      }
      after();
    });
}
