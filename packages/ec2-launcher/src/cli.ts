/**
 * paxos-aws (`pnpm aws …`): a cluster on EC2.
 *
 *   up      launch a whole cluster in the seed's order (directory, acceptors and the 2f+1
 *           matchmakers, proxy leaders and unbatchers, proposers, batchers), each stage running
 *           before the next
 *   scale   run N instances of a role (launch more, or terminate the highest-numbered), or
 *           N acceptor groups (a reconfiguration while serving: new acceptors, target written,
 *           dropped ones retired and terminated)
 *   replace an acceptor by a new one (new id, empty log) while serving; the old one retires;
 *           or a matchmaker by a new one (new id, no state) in a new matchmaker set
 *   status  the cluster's instances
 *   down    terminate the cluster (or one role) in reverse order
 *   autoscale  size batchers, proxy leaders and unbatchers to the load Prometheus sees, until
 *           SIGINT or SIGTERM
 *
 * `--dry-run` prints every EC2 call with its full request and needs no credentials (autoscale's
 * reads the real cluster and prints only the launches and terminations).
 * Errors are one line on stderr and exit code 1 (2 for bad flags and settings).
 */

import {
  type ClusterShape,
  type ClusterShapeFlags,
  clusterShapeOptions,
  DEFAULT_TOPOLOGY,
  describeSpec,
  formatTable,
  integerArgument as integer,
  jsonMode,
  matchmakerName,
  type OutputFlags,
  outputOptions,
  parseAcceptorName,
  printJson,
  type RoleName,
  withVersion,
} from '@paxos/launcher';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { type AutoscaleFlags, runAutoscale } from './autoscale-command.ts';
import {
  AwsCluster,
  countByRole,
  LAUNCH_STAGES,
  prometheusReadiness,
  SCALABLE_ROLES,
  scaleRefusal,
} from './cluster.ts';
import { DryRunEc2 } from './dry-run.ts';
import { type ClusterInstance, createEc2Client, type Ec2Api, Ec2Launcher, resolveRegion } from './ec2.ts';
import { asFlagError, UsageError } from './errors.ts';
import {
  checkRequest,
  type Ec2MatchmakerReplaceResult,
  type Ec2ReconfigureOptions,
  type Ec2ReconfigureResult,
  NO_PROMETHEUS,
  reconfigureEc2,
  replaceEc2,
} from './reconfigure.ts';

// The SDK warns on every run that its 2027 releases need Node 22; the lockfile pins a release that supports Node 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const ROLES: readonly RoleName[] = LAUNCH_STAGES.flat();

/** `scale`'s <role> for the number of acceptor groups (a reconfiguration, not a count of instances). */
const ACCEPTOR_GROUPS = 'acceptor-groups';

interface CommonFlags {
  cluster: string;
  region?: string;
  dryRun?: boolean;
}

interface LaunchFlags extends CommonFlags {
  ami?: string;
  instanceType: string;
  subnet?: string;
  availabilityZone?: string;
  securityGroup: string[];
  instanceProfile?: string;
  keyName?: string;
  s3Bucket?: string;
  concurrency: number;
  waitTimeout: number;
}

const DRY_RUN = 'print the EC2 calls instead of making them (no credentials needed)';

function common(cmd: Command, dryRun = DRY_RUN): Command {
  return cmd
    .option('--cluster <name>', 'cluster name: the paxos:cluster tag and the Name prefix', 'paxos')
    .addOption(new Option('--region <region>', 'AWS region').env('AWS_REGION'))
    .option('--dry-run', dryRun);
}

/** The launch settings; `autoscale` never waits for a launch, so it has no --wait-timeout. */
function launchOptions(cmd: Command, o: { dryRun?: string; wait?: boolean } = {}): Command {
  const withLaunch = common(cmd, o.dryRun)
    .addOption(new Option('--ami <id>', 'AMI with Node 20 and the built apps (infra/ami)').env('AWS_AMI'))
    .option('--instance-type <type>', 'EC2 instance type', 'm5.2xlarge')
    .addOption(new Option('--subnet <id>', 'subnet to launch in').env('AWS_SUBNET'))
    .addOption(
      new Option('--availability-zone <zone>', 'zone, when no subnet is given').env('AWS_AVAILABILITY_ZONE'),
    )
    .addOption(
      new Option('--security-group <id...>', 'security group(s) from infra/aws')
        .env('AWS_SECURITY_GROUP')
        .argParser((value: string, previous: string[] | undefined) => [
          ...(previous ?? []),
          ...value.split(','),
        ]),
    )
    .addOption(
      new Option('--instance-profile <name-or-arn>', 'instance profile for the role instances').env(
        'AWS_INSTANCE_PROFILE',
      ),
    )
    .option('--key-name <name>', 'EC2 key pair for SSH (optional)')
    .addOption(
      new Option(
        '--s3-bucket <name>',
        'S3 bucket where acceptor and matchmaker instances upload their DATA_DIR when they shut down (retired logs are archived)',
      ).env('AWS_S3_BUCKET'),
    )
    .option('--concurrency <n>', 'RunInstances requests in flight at once', integer('--concurrency', 1), 8);
  return o.wait === false
    ? withLaunch
    : withLaunch.option(
        '--wait-timeout <s>',
        'seconds to wait for a stage to be running',
        integer('--wait-timeout', 1),
        300,
      );
}

/** The cluster the flags name; a setting no flag gives keeps AwsCluster's default. */
function makeCluster(flags: LaunchFlags | CommonFlags, drainMs?: number): AwsCluster {
  const log = (line: string) => console.log(line);
  // A dry run needs no region; it shows one so the requests read as they would be sent.
  const region = flags.dryRun
    ? (flags.region ?? process.env.AWS_DEFAULT_REGION ?? 'us-west-1')
    : resolveRegion(flags.region);
  return clusterOn(flags, region, flags.dryRun ? new DryRunEc2(log) : createEc2Client(region), log, drainMs);
}

/** An AwsCluster over `ec2` with the launcher settings the flags give. */
function clusterOn(
  flags: LaunchFlags | CommonFlags,
  region: string,
  ec2: Ec2Api,
  log: (line: string) => void,
  drainMs?: number,
): AwsCluster {
  const launch = flags as Partial<LaunchFlags>;
  const launcher = new Ec2Launcher(
    {
      cluster: flags.cluster,
      region,
      imageId: launch.ami,
      instanceType: launch.instanceType,
      subnetId: launch.subnet,
      availabilityZone: launch.availabilityZone,
      securityGroupIds: launch.securityGroup,
      instanceProfile: launch.instanceProfile,
      keyName: launch.keyName,
      archiveBucket: launch.s3Bucket,
      concurrency: launch.concurrency,
    },
    // A fixed token keeps dry-run output the same from run to run.
    { ec2, ...(flags.dryRun ? { clientToken: (spec) => `${flags.cluster}-${spec.name}-dryrun` } : {}) },
  );
  return new AwsCluster(launcher, {
    log,
    waitTimeoutMs: launch.waitTimeout === undefined ? undefined : launch.waitTimeout * 1000,
    // A dry run's instances run at once: nothing to wait or drain for.
    ...(flags.dryRun ? { pollMs: 0, drainMs: 0 } : { drainMs }),
  });
}

function printStatus(instances: readonly ClusterInstance[], json: boolean): void {
  if (json) {
    printJson({
      instances: instances.map((i) => ({
        name: i.name,
        role: i.role,
        instance: i.id,
        state: i.ec2State,
        privateIp: i.address,
        launched: i.launchTime?.toISOString() ?? null,
      })),
      counts: countByRole(instances),
    });
    return;
  }
  if (instances.length === 0) {
    console.log('no instances');
    return;
  }
  const table = formatTable(
    ['name', 'role', 'instance', 'state', 'private ip', 'launched'],
    instances.map((i) => [
      i.name,
      i.role,
      i.id,
      i.ec2State,
      i.address,
      i.launchTime?.toISOString().slice(0, 19),
    ]),
  );
  for (const line of table) console.log(line);
  const counts = Object.entries(countByRole(instances));
  console.log(`\n${counts.map(([role, n]) => `${role} ${n}`).join(', ')}`);
}

const program = withVersion(new Command('paxos-aws'), import.meta.url)
  .description('Autoscaling Paxos on EC2: launch, scale, list and terminate a cluster')
  .exitOverride()
  .configureOutput({ outputError: (str, write) => write(`${str.trim().split('\n')[0] ?? str}\n`) });

clusterShapeOptions(launchOptions(program.command('up')))
  .description("launch a whole cluster in the seed's launch order")
  .option('--proposers <n>', 'proposers', integer('--proposers', 1), DEFAULT_TOPOLOGY.proposers)
  .addOption(
    new Option('--anna-routing <endpoint>', 'an existing directory (Anna routing); default: launch one').env(
      'ANNA_ROUTING',
    ),
  )
  .addOption(
    new Option('--key-prefix <prefix>', 'ANNA_KEY_PREFIX (default: new per run)').env('ANNA_KEY_PREFIX'),
  )
  .addOption(
    prometheusUrlOption(
      "Prometheus' HTTP API (scraping the cluster): wait for each stage's processes to be ready (paxos_ready), not only running",
    ),
  )
  .addOption(prometheusJobOption())
  .action(
    async (
      flags: LaunchFlags &
        ClusterShapeFlags & {
          proposers: number;
          batchers: number;
          proxyLeaders: number;
          unbatchers: number;
          annaRouting?: string;
          keyPrefix?: string;
          prometheusUrl?: string;
          prometheusJob: string;
        },
    ) => {
      const shape: ClusterShape & { annaRouting?: string } = {
        f: flags.f,
        groups: flags.groups,
        proposers: flags.proposers,
        batchers: flags.batchers,
        proxyLeaders: flags.proxyLeaders,
        unbatchers: flags.unbatchers,
        batchSize: flags.batchSize,
        keyPrefix: flags.keyPrefix ?? `${flags.cluster}-${Date.now().toString(36)}-`,
        directoryPollMs: 3000,
        logLevel: flags.logLevel,
        ...(flags.annaRouting === undefined ? {} : { annaRouting: flags.annaRouting }),
      };
      const readiness =
        flags.prometheusUrl === undefined || flags.dryRun
          ? {}
          : { readiness: prometheusReadiness(flags.prometheusUrl, flags.cluster, flags.prometheusJob) };
      const started = await makeCluster(flags).up(shape, readiness);
      console.log(`cluster ${flags.cluster} is up: ${started.length} instances`);
    },
  );

/** The settings of a reconfiguration (`scale acceptor-groups`, `replace`): where it reads the directory and Prometheus. */
interface ReconfigureFlags {
  prometheusUrl?: string;
  prometheusJob: string;
  annaRouting?: string;
  localAddress?: string;
  reconfigureTimeout: number;
}

/** `--prometheus-url` (or PROMETHEUS_URL), an http(s) URL, for every command that reads Prometheus. */
function prometheusUrlOption(description: string): Option {
  return new Option('--prometheus-url <url>', description)
    .env('PROMETHEUS_URL')
    .argParser(httpUrl('--prometheus-url'));
}

/** The scrape job `--prometheus-url`'s queries select (the job of infra/prometheus). */
function prometheusJobOption(): Option {
  return new Option('--prometheus-job <name>', 'the scrape job of the role processes').default('paxos');
}

/** Where a running cluster's directory is, for the commands that read or write it. */
function directoryOption(): Option {
  return new Option(
    '--anna-routing <endpoint>',
    "the cluster's directory (default: the endpoint its paxos:settings tag records)",
  ).env('ANNA_ROUTING');
}

const LOCAL_ADDRESS =
  "this machine's address the directory answers at (default: its first private IPv4 address)";

const PLAN_ONLY =
  'read the cluster, its directory and Prometheus, print the plan, change nothing (needs credentials)';

function reconfigureOptions(cmd: Command, what: string, dryRun = PLAN_ONLY): Command {
  return launchOptions(cmd, { dryRun })
    .addOption(
      prometheusUrlOption(
        `Prometheus' HTTP API, which tells when a leader serves the new configuration (${what})`,
      ),
    )
    .addOption(prometheusJobOption())
    .addOption(directoryOption())
    .option('--local-address <ip>', LOCAL_ADDRESS)
    .option(
      '--reconfigure-timeout <s>',
      'seconds to wait for the new acceptors (matchmaker) to register, a leader to serve (the proposers to use the new matchmakers), and the dropped ones to retire (each)',
      integer('--reconfigure-timeout', 1),
      300,
    );
}

/**
 * Runs a reconfiguration with the flags' settings and prints what it did. `needsPrometheus`: say
 * so before any request when there is none (acceptor groups; a matchmaker's replacement needs
 * none, and an instance id is told apart only once EC2 says what it is).
 */
async function reconfigureWith(
  flags: LaunchFlags & ReconfigureFlags,
  needsPrometheus: boolean,
  run: (options: Ec2ReconfigureOptions) => Promise<Ec2ReconfigureResult | Ec2MatchmakerReplaceResult>,
): Promise<void> {
  if (needsPrometheus && flags.prometheusUrl === undefined) throw new UsageError(NO_PROMETHEUS);
  const log = (line: string) => console.log(line);
  // A dry run reads the real cluster, its directory and Prometheus, and prints the plan.
  const cluster = flags.dryRun
    ? clusterOn(
        flags,
        resolveRegion(flags.region),
        new DryRunEc2(log, { reads: createEc2Client(flags.region) }),
        log,
      )
    : makeCluster(flags);
  const result = await run({
    cluster,
    planOnly: flags.dryRun === true,
    ...(flags.prometheusUrl === undefined ? {} : { prometheusUrl: flags.prometheusUrl }),
    job: flags.prometheusJob,
    ...(flags.annaRouting === undefined ? {} : { annaRouting: flags.annaRouting }),
    ...(flags.localAddress === undefined ? {} : { localAddress: flags.localAddress }),
    timeoutMs: flags.reconfigureTimeout * 1000,
    log,
  });
  if (flags.dryRun) process.exit(0);
  console.log(
    'dropped' in result
      ? `configuration ${describeSpec(result.target)} served in ${Math.round(result.serveMs)} ms; retired ${result.dropped.join(', ') || 'none'}`
      : `matchmakers ${result.target.ids.map(matchmakerName).join(', ')} (version ${result.target.version}) in use after ${Math.round(result.serveMs)} ms; terminated ${result.terminated.map((i) => `${i.name} (${i.id})`).join(', ') || 'none'}`,
  );
  // The SDK's and the directory client's sockets would hold the process a while longer.
  process.exit(0);
}

reconfigureOptions(
  program.command('scale'),
  'acceptor-groups only',
  `${DRY_RUN}; acceptor-groups: ${PLAN_ONLY}`,
)
  .description(
    `run <count> instances of <role> (${SCALABLE_ROLES.join(', ')}), or <count> acceptor groups (acceptor-groups: a reconfiguration while the cluster serves)`,
  )
  .argument('<role>', 'role to scale, or acceptor-groups', (value: string) => {
    if (value === ACCEPTOR_GROUPS) return value;
    const refusal = scaleRefusal(value);
    if (refusal !== null) throw new InvalidArgumentError(refusal);
    return value as RoleName;
  })
  .argument('<count>', 'instances (groups) wanted', integer('<count>', 0))
  .action(
    async (role: RoleName | typeof ACCEPTOR_GROUPS, count: number, flags: LaunchFlags & ReconfigureFlags) => {
      if (role === ACCEPTOR_GROUPS) {
        checkRequest({ groups: count });
        await reconfigureWith(flags, true, (options) => reconfigureEc2({ groups: count }, options));
        return;
      }
      await makeCluster(flags).scale(role, count);
    },
  );

reconfigureOptions(program.command('replace'), 'required for an acceptor')
  .description(
    'replace an acceptor (its instance id, or its name such as acceptor-g1-a2) with a new one, a new id in its group and an empty log, or a matchmaker (matchmaker-1) with a new one, a new id and no state, while the cluster serves; the old one retires (leaves the matchmaker set) and its instance is terminated',
  )
  .argument('<instance>', 'instance id (i-…) or paxos name (acceptor-g1-a2, matchmaker-1)')
  .action(async (instance: string, flags: LaunchFlags & ReconfigureFlags) => {
    await reconfigureWith(flags, parseAcceptorName(instance) !== null, (options) =>
      replaceEc2(instance, options),
    );
  });

outputOptions(common(program.command('status')))
  .description("list the cluster's instances (-o json: one JSON document)")
  .action(async (flags: CommonFlags & OutputFlags) => {
    const json = jsonMode(flags);
    printStatus(await makeCluster(flags).status(), json);
  });

common(program.command('down'))
  .description('terminate the cluster (or one role) in reverse launch order')
  .option('--role <role>', 'only this role', (value: string) => {
    if (!ROLES.includes(value as RoleName)) {
      throw new InvalidArgumentError(`expected one of ${ROLES.join(', ')}, got "${value}"`);
    }
    return value as RoleName;
  })
  .option(
    '--drain-seconds <s>',
    'pause between stages, so the roles stopped first drain before the next go',
    integer('--drain-seconds', 0),
    5,
  )
  .action(async (flags: CommonFlags & { role?: RoleName; drainSeconds: number }) => {
    const n = await makeCluster(flags, flags.drainSeconds * 1000).down(flags.role);
    console.log(n === 0 ? 'nothing to terminate' : `terminated ${n} instances`);
  });

launchOptions(program.command('autoscale'), {
  dryRun: 'read the cluster and Prometheus, print the launches and terminations instead of making them',
  wait: false,
})
  .description(
    'size batchers, proxy leaders, unbatchers and (with an acceptor capacity) acceptor groups to the load Prometheus sees (settings: AUTOSCALE_* in the environment), until SIGINT or SIGTERM',
  )
  .addOption(prometheusUrlOption("Prometheus' HTTP API (the one scraping the cluster)").makeOptionMandatory())
  .addOption(prometheusJobOption())
  .option('--capacity-file <file>', "each role's capacity per instance (default: CAPACITY_FILE's value)")
  .option('--timeline <file>', 'JSON lines of every decision and failed action', 'autoscaler-timeline.jsonl')
  .option(
    '--metrics-port <n>',
    "serve the autoscaler's metrics at /metrics on this port (0: none)",
    port('--metrics-port'),
    0,
  )
  .option('--metrics-host <address>', 'address the metrics server binds', '127.0.0.1')
  .addOption(directoryOption())
  .option('--local-address <ip>', LOCAL_ADDRESS)
  .action(async (flags: LaunchFlags & AutoscaleFlags) => {
    await runAutoscale(flags, process.env, (ec2, region, log) => clusterOn(flags, region, ec2, log));
    // The SDK's keep-alive sockets would hold the process a while longer.
    process.exit(0);
  });

program
  .command('dashboard')
  .description(
    "serve the live status page for the cluster (processes, leader, acceptor groups, commands/s and latency, the autoscaler's decisions) from Prometheus' HTTP API, until SIGINT or SIGTERM",
  )
  .option('--cluster <name>', 'cluster name: the paxos:cluster tag', 'paxos')
  .addOption(prometheusUrlOption("Prometheus' HTTP API (the one scraping the cluster)").makeOptionMandatory())
  .addOption(prometheusJobOption())
  .option('--port <n>', 'port to serve the page on', port('--port'), 8080)
  .option('--host <address>', 'address the page is served on', '127.0.0.1')
  .option(
    '--timeline <file>',
    "the autoscaler's decisions (aws autoscale --timeline)",
    'autoscaler-timeline.jsonl',
  )
  .action(
    async (flags: {
      cluster: string;
      prometheusUrl: string;
      prometheusJob: string;
      port: number;
      host: string;
      timeline: string;
    }) => {
      const { serveDashboard } = await import('./dashboard.ts');
      const server = await serveDashboard({
        prometheusUrl: flags.prometheusUrl,
        cluster: flags.cluster,
        job: flags.prometheusJob,
        timelineFile: flags.timeline,
        port: flags.port,
        host: flags.host,
      });
      console.log(`status page: ${server.url} (Ctrl-C stops)`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await server.close();
    },
  );

/** A commander parser for an http(s) URL. */
function httpUrl(flag: string): (value: string) => string {
  return (value: string) => {
    let url: URL | null = null;
    try {
      url = new URL(value);
    } catch {}
    if (url === null || !/^https?:$/.test(url.protocol) || url.hostname === '') {
      throw new InvalidArgumentError(
        `${flag} must be an http(s) URL such as http://10.0.0.9:9090, got "${value}"`,
      );
    }
    return value;
  };
}

/** A commander parser for a TCP port, 0 included. */
function port(flag: string): (value: string) => number {
  return (value: string) => {
    if (!/^\d+$/.test(value) || Number(value) > 65535) {
      throw new InvalidArgumentError(`${flag} must be a port in 0..65535, got "${value}"`);
    }
    return Number(value);
  };
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  // A bad setting names its flag (--ami, not imageId) and exits 2, before any instance starts.
  const usage = asFlagError(err);
  if (usage instanceof UsageError) {
    console.error(`error: ${usage.message}`);
    process.exit(2);
  }
  // Ec2LaunchError messages are written for the user; anything else is shown the same way.
  console.error(`error: ${(err as Error).message ?? String(err)}`);
  process.exit(1);
}
