/**
 * anna-local: runs the local Anna-compatible server (src/server.ts).
 *
 *   anna-local [--port 6450] [--storage-port 6200] [--host 127.0.0.1] [--public-host H] [--log-level info]
 *              [--metrics-port P] [--instance directory]
 *
 * Prints one line to stdout once listening:
 *   anna-local listening routing=tcp://127.0.0.1:6450 storage=tcp://127.0.0.1:6200
 * With --metrics-port it serves /metrics (role="directory": keys, requests, paxos_ready),
 * /healthz and /readyz on --host, as every role process does. Logs (pino, JSON, ISO timestamps,
 * fields role and instance) go to stderr. SIGTERM/SIGINT close the sockets and exit 0; a bad flag
 * exits 2 with one error line; a port in use exits 1 naming the endpoint.
 */

import { createRequire } from 'node:module';
import { DirectoryMetrics, type MetricsServer, serveMetrics } from '@paxos/metrics';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import pino from 'pino';
import { startLocalAnna } from './server.ts';

function parsePort(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 65535) {
    throw new InvalidArgumentError('expected a port number 0-65535 (0 picks a free port).');
  }
  return Number(value);
}

function parseLevel(value: string): string {
  if (!(value in pino.levels.values) && value !== 'silent') {
    throw new InvalidArgumentError(`expected one of ${Object.keys(pino.levels.values).join(', ')}, silent.`);
  }
  return value;
}

interface CliOptions {
  port: number;
  storagePort: number;
  host: string;
  publicHost?: string;
  logLevel: string;
  metricsPort?: number;
  instance: string;
}

async function main(argv: string[]): Promise<number> {
  const program = new Command('anna-local')
    .description('Local Anna-compatible directory: one routing node and one storage thread')
    .version(
      (createRequire(import.meta.url)('../package.json') as { version: string }).version,
      '-V, --version',
      'print the version and exit',
    )
    .option('--port <port>', 'routing (key-address) port; 0 picks a free port', parsePort, 6450)
    .option('--storage-port <port>', 'storage (key-request) port; 0 picks a free port', parsePort, 6200)
    .option('--host <host>', 'interface to bind', '127.0.0.1')
    .option('--public-host <host>', 'host advertised to clients (default: --host, or 127.0.0.1 for 0.0.0.0)')
    .option('--log-level <level>', 'pino log level', parseLevel, 'info')
    .option(
      '--metrics-port <port>',
      'serve /metrics, /healthz and /readyz on this port (default: none)',
      parsePort,
    )
    .option(
      '--instance <name>',
      'the instance label of metrics and logs',
      process.env.INSTANCE || 'directory',
    )
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({
      outputError: (str, write) => write(`${str.trim().split('\n')[0] ?? str}\n`),
    });
  try {
    program.parse(argv);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  const opts = program.opts<CliOptions>();
  const logger = pino(
    {
      name: 'anna-local',
      level: opts.logLevel,
      base: { pid: process.pid, role: 'directory', instance: opts.instance },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination(2),
  );

  // Signal handlers go in before anything is printed: a supervisor may signal as soon as it
  // reads the "listening" line, and a signal during start-up must not kill us half-bound.
  let signalled: NodeJS.Signals | undefined;
  let onSignal: (signal: NodeJS.Signals) => void = (signal) => {
    signalled = signal;
  };
  const handler = (signal: NodeJS.Signals) => onSignal(signal);
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  // Started by a supervisor with an IPC channel (the local cluster): if the supervisor dies, do
  // not outlive it, as the role processes do not.
  if (process.connected) process.once('disconnect', () => handler('SIGTERM'));

  let anna: Awaited<ReturnType<typeof startLocalAnna>>;
  try {
    anna = await startLocalAnna({
      host: opts.host,
      routingPort: opts.port,
      storagePort: opts.storagePort,
      logger,
      ...(opts.publicHost === undefined ? {} : { publicHost: opts.publicHost }),
    });
  } catch (err) {
    process.stderr.write(`anna-local: ${(err as Error).message}\n`);
    return 1;
  }
  const started = anna;
  let stopping = false;
  let metricsServer: MetricsServer | null = null;
  if (opts.metricsPort !== undefined) {
    const metrics = new DirectoryMetrics({
      instance: opts.instance,
      stats: () => started.stats(),
      ready: () => !stopping,
    });
    try {
      metricsServer = await serveMetrics(metrics, {
        port: opts.metricsPort,
        host: opts.host,
        readiness: () => (stopping ? { ready: false, phase: 'draining' } : { ready: true, phase: 'ready' }),
      });
    } catch (err) {
      process.stderr.write(`anna-local: ${(err as Error).message}\n`);
      await started.close();
      return 1;
    }
  }

  return new Promise<number>((resolve) => {
    onSignal = (signal) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      const force = setTimeout(() => resolve(1), 5000);
      force.unref();
      Promise.all([started.close(), metricsServer?.close()]).then(
        () => {
          clearTimeout(force);
          resolve(0);
        },
        (err: unknown) => {
          logger.error({ err }, 'close failed');
          resolve(1);
        },
      );
    };
    if (signalled !== undefined) {
      onSignal(signalled);
      return;
    }
    if (metricsServer !== null) logger.info({ metrics: metricsServer.url }, 'serving metrics');
    process.stdout.write(
      `anna-local listening routing=${started.routingEndpoint} storage=${started.storageEndpoint}\n`,
    );
  });
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
    // Exit now rather than wait for the event loop: the sockets are closed and stdout/stderr
    // writes are synchronous for files and pipes on Linux.
    process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`anna-local: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
