import { parseEndpoint } from '@paxos/transport-zmq';
import { Command, CommanderError, Option } from 'commander';
import { z } from 'zod';

/**
 * One setting of an app: an environment variable (the seed's names where it had one) and a flag
 * that overrides it. Values arrive as strings and are validated with zod; a bad value yields one
 * line naming the variable, the value and what is expected.
 */
export interface Setting<T> {
  readonly env: string;
  readonly flag: string;
  readonly description: string;
  /** Phrase completing "expected …" in error messages. */
  readonly expected: string;
  readonly schema: z.ZodType<T, string>;
  /** Used when neither flag nor variable is given; absent means the setting is required. */
  readonly default?: string;
}

export type SettingsSpec = Record<string, Setting<unknown>>;
export type SettingsValues<S extends SettingsSpec> = {
  [K in keyof S]: S[K] extends Setting<infer T> ? T : never;
};

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export const integer = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .regex(/^-?\d+$/)
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

export const boolean = () =>
  z.enum(['1', '0', 'true', 'false', 'yes', 'no']).transform((v) => v === '1' || v === 'true' || v === 'yes');

export const text = () => z.string();

export const host = () => z.string().regex(/^[A-Za-z0-9.-]+$/);

export const logLevel = () => z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/** One or more tcp://host:port endpoints separated by commas. */
export const endpointList = () =>
  z
    .string()
    .transform((s) => s.split(',').map((e) => e.trim()))
    .refine((list) => list.every((e) => parseEndpoint(e, 'connect').ok));

export function setting<T>(s: Setting<T>): Setting<T> {
  return s;
}

export const port = (env: string, flag: string, description: string, defaultPort: number) =>
  setting({
    env,
    flag,
    description,
    expected: 'a TCP port 0-65535',
    schema: integer(0, 65535),
    default: String(defaultPort),
  });

/** Settings every process shares (docs/architecture.md §6). */
export const COMMON_SETTINGS = {
  annaRouting: setting({
    env: 'ANNA_ROUTING',
    flag: '--anna-routing',
    description: 'directory (Anna) routing endpoints',
    expected: 'tcp://host:port[,tcp://host:port...]',
    schema: endpointList(),
  }),
  annaKeyPrefix: setting({
    env: 'ANNA_KEY_PREFIX',
    flag: '--anna-key-prefix',
    description: 'prefix of every directory key; change it between runs',
    expected: 'a string',
    schema: text(),
    default: '',
  }),
  privateIp: setting({
    env: 'PRIVATE_IP',
    flag: '--private-ip',
    description: 'address this process binds and advertises to peers',
    expected: 'an IPv4 address or host name',
    schema: host(),
    default: '127.0.0.1',
  }),
  maxReadsPerSocketPerPoll: setting({
    env: 'MAX_READS_PER_SOCKET_PER_POLL',
    flag: '--max-reads-per-socket-per-poll',
    description: 'reads from one socket before the next socket gets a turn',
    expected: 'an integer >= 1',
    schema: integer(1),
    default: '100',
  }),
  metricsPort: port(
    'METRICS_PORT',
    '--metrics-port',
    'Prometheus /metrics HTTP port (0 = any free port)',
    16000,
  ),
  directoryPollMs: setting({
    env: 'DIRECTORY_POLL_MS',
    flag: '--directory-poll-ms',
    description: 'how often membership is read from the directory',
    expected: 'an integer >= 10 (milliseconds)',
    schema: integer(10),
    default: '3000',
  }),
  leaseTimeoutMs: setting({
    env: 'LEASE_TIMEOUT_MS',
    flag: '--lease-timeout-ms',
    description:
      'a peer whose directory lease has not risen for this long gets no more traffic (0 = 4 x DIRECTORY_POLL_MS)',
    expected: 'an integer >= 0 (milliseconds)',
    schema: integer(0),
    default: '0',
  }),
  drainTimeoutMs: setting({
    env: 'DRAIN_TIMEOUT_MS',
    flag: '--drain-timeout-ms',
    description:
      'on SIGTERM, longest wait for in-flight work and for peers to stop sending (0 = 4 x DIRECTORY_POLL_MS, at least 3000)',
    expected: 'an integer >= 0 (milliseconds)',
    schema: integer(0),
    default: '0',
  }),
  logLevel: setting({
    env: 'LOG_LEVEL',
    flag: '--log-level',
    description: 'pino log level',
    expected: 'one of fatal, error, warn, info, debug, trace, silent',
    schema: logLevel(),
    default: 'info',
  }),
  traceSample: setting({
    env: 'TRACE_SAMPLE',
    flag: '--trace-sample',
    description:
      'log (at info) a µs-timestamped line for each receive and send on the command path during one wall-clock second in every N; pnpm trace:hops tabulates them (0 = off, 1 = always)',
    expected: 'an integer >= 0',
    schema: integer(0),
    default: '0',
  }),
  instance: setting({
    env: 'INSTANCE',
    flag: '--instance',
    description: 'name of this process in logs and metric labels (default: role and port)',
    expected: 'a string',
    schema: text(),
    default: '',
  }),
} satisfies SettingsSpec;

/**
 * Checks the common settings against each other: a trace logged below the log level would be
 * asked for and silently never written.
 */
export function checkCommonSettings(s: { traceSample: number; logLevel: string }): void {
  if (s.traceSample > 0 && !['info', 'debug', 'trace'].includes(s.logLevel)) {
    throw new ConfigError(
      `TRACE_SAMPLE (--trace-sample): got "${s.traceSample}" with LOG_LEVEL "${s.logLevel}", expected LOG_LEVEL info, debug or trace (trace lines are logged at info) or TRACE_SAMPLE 0`,
    );
  }
}

/**
 * DRAIN_TIMEOUT_MS as resolved. A drain takes about two directory polls (peers see the leave at
 * their next poll, then a quiet poll); four is when peers that missed the leave would drop the
 * process by its lease anyway. At least 3 s, the time roles that drain their own work were given.
 * The local launcher's default stop grace follows the same rule (`drainTimeoutOf`).
 */
export function resolveDrainTimeoutMs(s: { drainTimeoutMs: number; directoryPollMs: number }): number {
  return s.drainTimeoutMs || Math.max(3000, 4 * s.directoryPollMs);
}

/** Settings several apps share with one meaning: the batcher and the mocks batch, clients and mocks make payloads. */
export const BATCH_SIZE_SETTING = setting({
  env: 'BATCH_SIZE',
  flag: '--batch-size',
  description: 'commands per batch; larger raises throughput and latency',
  expected: 'an integer >= 1',
  schema: integer(1),
  default: '40',
});

export const PAYLOAD_BYTES_SETTING = setting({
  env: 'PAYLOAD_BYTES',
  flag: '--payload-bytes',
  description: 'bytes per command',
  expected: 'an integer >= 0',
  schema: integer(0),
  default: '16',
});

/** DATA_DIR of a process that keeps durable state (acceptor, matchmaker): `description` says what is in it. */
export const dataDirSetting = (description: string) =>
  setting({
    env: 'DATA_DIR',
    flag: '--data-dir',
    description,
    expected: 'a directory path',
    schema: text(),
    default: './paxos-data',
  });

/** DATA_FSYNC of a process that keeps durable state: `description` says what is synced when. */
export const dataFsyncSetting = (description: string) =>
  setting({
    env: 'DATA_FSYNC',
    flag: '--fsync',
    description,
    expected: 'true or false',
    schema: boolean(),
    default: 'true',
  });

/** The cluster's shape, which proposers and matchmakers (its genesis configuration) both read. */
export const F_SETTING = setting({
  env: 'F',
  flag: '--f',
  description: 'failures tolerated per acceptor group (and among the 2f+1 matchmakers)',
  expected: 'an integer >= 0',
  schema: integer(0),
  default: '1',
});

export const ACCEPTOR_GROUPS_SETTING = setting({
  env: 'ACCEPTOR_GROUPS',
  flag: '--acceptor-groups',
  description: 'acceptor groups 0..N-1 in the configuration',
  expected: 'an integer >= 1',
  schema: integer(1),
  default: '2',
});

/**
 * Parses flags (which win) and environment variables against `spec`. Throws ConfigError with one
 * line naming the variable, the bad value and what is expected; `--help` (and `--version`, given
 * a `version`) prints and exits 0.
 */
export function loadSettings<S extends SettingsSpec>(
  program: string,
  description: string,
  spec: S,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  version?: string,
): SettingsValues<S> {
  const cmd = new Command(program).description(description).exitOverride().allowExcessArguments(false);
  if (version !== undefined) cmd.version(version, '-V, --version', 'print the version and exit');
  cmd.configureOutput({ writeErr: () => {} });
  // The key commander files each setting's flag value under.
  const attributes = new Map<string, string>();
  for (const [key, s] of Object.entries(spec)) {
    const shown = s.default === undefined ? 'required' : `default "${s.default}"`;
    const option = new Option(`${s.flag} <value>`, `${s.description} (env ${s.env}; ${shown})`);
    cmd.addOption(option);
    attributes.set(key, option.attributeName());
  }
  try {
    cmd.parse(argv as string[], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed the help.
      if (['commander.helpDisplayed', 'commander.help', 'commander.version'].includes(err.code))
        process.exit(0);
      throw new ConfigError(err.message.replace(/^error: /, ''));
    }
    throw err;
  }
  const opts = cmd.opts<Record<string, string | undefined>>();
  const values: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(spec)) {
    const raw = opts[attributes.get(key) as string] ?? env[s.env] ?? s.default;
    if (raw === undefined) {
      throw new ConfigError(`${s.env} (${s.flag}) is required: expected ${s.expected}`);
    }
    const parsed = s.schema.safeParse(raw);
    if (!parsed.success) {
      throw new ConfigError(`${s.env} (${s.flag}): got "${raw}", expected ${s.expected}`);
    }
    values[key] = parsed.data;
  }
  return values as SettingsValues<S>;
}
