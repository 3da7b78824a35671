import { type Command, InvalidArgumentError } from 'commander';
import { cpuQuotaExpectation, parseCpuQuota } from './cpu-quota.ts';
import { DEFAULT_TOPOLOGY, type TopologyOptions } from './topology.ts';

/** A commander argument parser for the launcher CLIs: an integer >= `min`, or one line naming the flag. */
export function integerArgument(flag: string, min: number): (value: string) => number {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value) || Number(value) < min) {
      throw new InvalidArgumentError(`${flag} must be an integer >= ${min}, got "${value}"`);
    }
    return Number(value);
  };
}

/** The role processes' LOG_LEVEL values (the runtime's `logLevel()`; a test checks they agree). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** A commander argument parser for one of `choices`, or one line naming the flag and the choices. */
export function choiceArgument<T extends string>(flag: string, choices: readonly T[]): (value: string) => T {
  return (value: string): T => {
    if (!(choices as readonly string[]).includes(value))
      throw new InvalidArgumentError(`${flag} must be one of ${choices.join(', ')}, got "${value}"`);
    return value as T;
  };
}

/** A commander argument parser for a CPU quota in cores (`parseCpuQuota`), or one line naming the flag. */
export function cpuQuotaArgument(flag: string): (value: string) => number {
  return (value: string): number => {
    const cores = parseCpuQuota(value);
    if (cores === null)
      throw new InvalidArgumentError(`${flag} must be ${cpuQuotaExpectation()}, got "${value}"`);
    return cores;
  };
}

/** What `clusterShapeOptions` adds to a command's flags. */
export interface ClusterShapeFlags {
  f: number;
  groups: number;
  batchers: number;
  proxyLeaders: number;
  unbatchers: number;
  batchSize: number;
  logLevel: string;
}

/** The default topology with the shape the flags give: what each launcher CLI starts from. */
export function shapeTopology(flags: ClusterShapeFlags): TopologyOptions {
  return {
    ...DEFAULT_TOPOLOGY,
    f: flags.f,
    groups: flags.groups,
    batchers: flags.batchers,
    proxyLeaders: flags.proxyLeaders,
    unbatchers: flags.unbatchers,
    batchSize: flags.batchSize,
    logLevel: flags.logLevel,
  };
}

/** The options every launcher CLI takes for the cluster's shape, with the default topology's values. */
export function clusterShapeOptions(cmd: Command): Command {
  return cmd
    .option('--f <n>', 'failures tolerated per acceptor group', integerArgument('--f', 0), DEFAULT_TOPOLOGY.f)
    .option('--groups <n>', 'acceptor groups', integerArgument('--groups', 1), DEFAULT_TOPOLOGY.groups)
    .option('--batchers <n>', 'batchers', integerArgument('--batchers', 1), DEFAULT_TOPOLOGY.batchers)
    .option(
      '--proxy-leaders <n>',
      'proxy leaders',
      integerArgument('--proxy-leaders', 1),
      DEFAULT_TOPOLOGY.proxyLeaders,
    )
    .option('--unbatchers <n>', 'unbatchers', integerArgument('--unbatchers', 1), DEFAULT_TOPOLOGY.unbatchers)
    .option(
      '--batch-size <n>',
      'BATCH_SIZE of the batchers',
      integerArgument('--batch-size', 1),
      DEFAULT_TOPOLOGY.batchSize,
    )
    .option(
      '--log-level <level>',
      `LOG_LEVEL of the role processes (${LOG_LEVELS.join(', ')})`,
      choiceArgument('--log-level', LOG_LEVELS),
      DEFAULT_TOPOLOGY.logLevel,
    );
}
