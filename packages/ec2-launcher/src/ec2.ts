import { randomUUID } from 'node:crypto';
import {
  DescribeInstancesCommand,
  type DescribeInstancesCommandOutput,
  EC2Client,
  type Instance as Ec2Instance,
  type Filter,
  RunInstancesCommand,
  type RunInstancesCommandInput,
  type RunInstancesCommandOutput,
  type Tag,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import type { Instance, InstanceState, Launcher, ProcessSpec, RoleName } from '@paxos/launcher';
import { z } from 'zod';
import { Ec2ConfigError, Ec2LaunchError, explainAwsError, isRetryable } from './errors.ts';
import { renderUserData } from './user-data.ts';

/** The EC2 calls the launcher makes; an `EC2Client`, a mock of one, or the dry run. */
export interface Ec2Api {
  send(command: RunInstancesCommand | DescribeInstancesCommand | TerminateInstancesCommand): Promise<unknown>;
}

/** Tag keys the launcher sets on every instance and volume, and filters by. */
export const TAGS = {
  cluster: 'paxos:cluster',
  role: 'paxos:role',
  name: 'paxos:name',
  /** Settings `scale` needs to start more processes like the ones running (see AwsCluster). */
  settings: 'paxos:settings',
} as const;

/** States of instances that exist for our purposes (terminated ones linger in Describe for an hour). */
const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped', 'shutting-down'];

const name = (what: string, pattern: RegExp, expected: string) =>
  z.string().regex(pattern, `${what}: expected ${expected}`);

export const Ec2LauncherConfigSchema = z.object({
  cluster: name('cluster name', /^[a-z0-9][a-z0-9-]{0,29}$/, 'lower-case letters, digits and -, at most 30'),
  region: z.string().min(1),
  /** Launching needs it; listing and terminating do not. */
  imageId: name('AMI id', /^ami-[0-9a-f]{8,17}$/, 'ami- followed by 8 or 17 hex digits').optional(),
  instanceType: name('instance type', /^[a-z][a-z0-9-]*\.[a-z0-9]+$/, 'a type like m5.2xlarge').default(
    'm5.2xlarge',
  ),
  subnetId: name('subnet', /^subnet-[0-9a-f]{8,17}$/, 'subnet- followed by hex digits').optional(),
  availabilityZone: z
    .string()
    .regex(/^[a-z]{2}(-[a-z]+)+-\d[a-z]$/, 'availability zone: expected e.g. us-west-1b')
    .optional(),
  /** Launching needs at least one. */
  securityGroupIds: z
    .array(name('security group', /^sg-[0-9a-f]{8,17}$/, 'sg- followed by hex digits'))
    .default([]),
  /** The instance profile's name, or its ARN. */
  instanceProfile: z.string().min(1).optional(),
  keyName: z.string().min(1).optional(),
  /**
   * An S3 bucket (AWS_S3_BUCKET) where every acceptor and matchmaker instance uploads its
   * DATA_DIR, under `<cluster>/<name>/`, when it shuts down: retired acceptors' logs are archived
   * before their instances go. Unset: nothing is uploaded.
   */
  archiveBucket: z
    .string()
    .regex(
      /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
      'S3 bucket: expected 3-63 lower-case letters, digits, . and -',
    )
    .optional(),
  /** Where the AMI put the built apps. */
  appDir: z.string().startsWith('/').default('/opt/paxos'),
  /** Attempts per API call when EC2 throttles or fails transiently. */
  maxAttempts: z.number().int().min(1).max(10).default(5),
  baseDelayMs: z.number().int().min(0).default(250),
  maxDelayMs: z.number().int().min(0).default(8000),
  /** Launches in flight at once. */
  concurrency: z.number().int().min(1).max(50).default(8),
});

export type Ec2LauncherConfig = z.input<typeof Ec2LauncherConfigSchema>;
type Config = z.output<typeof Ec2LauncherConfigSchema>;

export interface Ec2LauncherDeps {
  readonly ec2: Ec2Api;
  /** Back-off sleeps; tests pass one that returns at once. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** In [0, 1): back-off jitter. */
  readonly random?: () => number;
  /** RunInstances idempotency token for a process; the same token is sent on every retry. */
  readonly clientToken?: (spec: ProcessSpec) => string;
}

/** An EC2 instance of the cluster, as Describe reports it. */
export interface ClusterInstance extends Instance {
  /** Why EC2 changed the instance's state last (e.g. why it was terminated), when it says. */
  readonly stateReason: string | null;
  readonly id: string;
  readonly ec2State: string;
  readonly launchTime: Date | null;
  readonly tags: Readonly<Record<string, string>>;
}

/** Validates the launcher settings, naming the first bad one. */
export function parseEc2LauncherConfig(config: Ec2LauncherConfig): Config {
  const parsed = Ec2LauncherConfigSchema.safeParse(config);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join('.') ?? '?';
    const value = (issue?.path ?? []).reduce<unknown>(
      (v, key) => (v as Record<PropertyKey, unknown> | undefined)?.[key as PropertyKey],
      config,
    );
    throw new Ec2ConfigError(field, value, issue?.message ?? 'bad value');
  }
  return parsed.data;
}

/**
 * Runs each process of a cluster on an EC2 instance of its own: RunInstances with user-data that
 * starts the role as a systemd service, tags `Name=<cluster>_<name>` plus cluster/role/name tags,
 * shutdown behaviour terminate. Every call is retried with bounded exponential back-off when EC2
 * throttles, and every failure becomes one line saying what to do (Ec2LaunchError).
 */
export class Ec2Launcher implements Launcher {
  readonly config: Config;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly clientToken: (spec: ProcessSpec) => string;

  constructor(
    config: Ec2LauncherConfig,
    private readonly deps: Ec2LauncherDeps,
  ) {
    this.config = parseEc2LauncherConfig(config);
    this.sleep = deps.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.random = deps.random ?? Math.random;
    this.clientToken =
      deps.clientToken ?? ((spec) => `${this.config.cluster}-${spec.name}-${randomUUID()}`.slice(0, 64));
  }

  /** Throws unless the settings launching needs (AMI, security group) are there. */
  assertCanLaunch(): void {
    const c = this.config;
    if (c.imageId === undefined) {
      throw new Ec2LaunchError(
        'no AMI: pass --ami ami-… or set AWS_AMI (build one with infra/ami/build-ami.sh)',
        'Config',
      );
    }
    if (c.securityGroupIds.length === 0) {
      throw new Ec2LaunchError(
        'no security group: pass --security-group sg-… or set AWS_SECURITY_GROUP (create it from infra/aws/paxos-cluster.cfn.json)',
        'Config',
      );
    }
  }

  /**
   * The exact RunInstances request for `spec`. `archiveBucket`: where its DATA_DIR is archived
   * (default the launcher's `archiveBucket`; AwsCluster passes the cluster's when that is unset).
   */
  runInstancesInput(
    spec: ProcessSpec,
    clientToken: string,
    extraTags: Readonly<Record<string, string>> = {},
    archiveBucket: string | undefined = this.config.archiveBucket,
  ): RunInstancesCommandInput {
    this.assertCanLaunch();
    const c = this.config;
    const tags: Tag[] = [
      { Key: 'Name', Value: `${c.cluster}_${spec.name}` },
      { Key: TAGS.cluster, Value: c.cluster },
      { Key: TAGS.role, Value: spec.role },
      { Key: TAGS.name, Value: spec.name },
      ...Object.entries(extraTags).map(([Key, Value]) => ({ Key, Value })),
    ];
    const userData = renderUserData({
      role: spec.role,
      env: spec.env,
      args: spec.args,
      appDir: c.appDir,
      ...(spec.restartEnv === undefined ? {} : { restartEnv: spec.restartEnv }),
      // Only processes with durable state (their DATA_DIR) have something to archive.
      ...(archiveBucket === undefined || spec.env.DATA_DIR === undefined
        ? {}
        : { archive: { bucket: archiveBucket, key: `${c.cluster}/${spec.name}` } }),
    });
    return {
      ImageId: c.imageId,
      InstanceType: c.instanceType as RunInstancesCommandInput['InstanceType'],
      MinCount: 1,
      MaxCount: 1,
      ...(c.subnetId === undefined ? {} : { SubnetId: c.subnetId }),
      ...(c.availabilityZone === undefined || c.subnetId !== undefined
        ? {}
        : { Placement: { AvailabilityZone: c.availabilityZone } }),
      SecurityGroupIds: c.securityGroupIds,
      ...(c.instanceProfile === undefined
        ? {}
        : {
            IamInstanceProfile: c.instanceProfile.startsWith('arn:')
              ? { Arn: c.instanceProfile }
              : { Name: c.instanceProfile },
          }),
      ...(c.keyName === undefined ? {} : { KeyName: c.keyName }),
      InstanceInitiatedShutdownBehavior: 'terminate',
      // The user-data reads its own address with IMDSv2, so v1 can be turned off.
      MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled' },
      UserData: Buffer.from(userData, 'utf8').toString('base64'),
      TagSpecifications: [
        { ResourceType: 'instance', Tags: tags },
        { ResourceType: 'volume', Tags: tags },
      ],
      ClientToken: clientToken,
    };
  }

  /**
   * Launches one instance for `spec`; `extraTags` go on it and its volume too; `archiveBucket` as
   * in `runInstancesInput`.
   */
  async launch(
    spec: ProcessSpec,
    extraTags: Readonly<Record<string, string>> = {},
    archiveBucket: string | undefined = this.config.archiveBucket,
  ): Promise<ClusterInstance> {
    const input = this.runInstancesInput(spec, this.clientToken(spec), extraTags, archiveBucket);
    const out = (await this.call('RunInstances', () =>
      this.deps.ec2.send(new RunInstancesCommand(input)),
    )) as RunInstancesCommandOutput;
    const instance = out.Instances?.[0];
    if (instance?.InstanceId === undefined) {
      throw new Ec2LaunchError(
        `RunInstances: EC2 answered without an instance for ${spec.name}`,
        'NoInstance',
      );
    }
    return toInstance(instance);
  }

  /** Launches `specs` with at most `concurrency` requests in flight; resolves in the order given. */
  async launchAll(
    specs: readonly ProcessSpec[],
    extraTags: Readonly<Record<string, string>> = {},
    archiveBucket: string | undefined = this.config.archiveBucket,
  ): Promise<ClusterInstance[]> {
    const results: ClusterInstance[] = new Array(specs.length);
    let next = 0;
    const worker = async () => {
      while (next < specs.length) {
        const i = next++;
        results[i] = await this.launch(specs[i] as ProcessSpec, extraTags, archiveBucket);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.config.concurrency, specs.length) }, worker));
    return results;
  }

  /**
   * Every live instance of this cluster (all pages), optionally only one role or one name.
   * `includeTerminated`: terminated ones too, as far as EC2 still lists them (about an hour after
   * they went), for what must know every name the cluster ever used.
   */
  async list(
    filter: { role?: RoleName; name?: string; includeTerminated?: boolean } = {},
  ): Promise<ClusterInstance[]> {
    const filters: Filter[] = [
      { Name: `tag:${TAGS.cluster}`, Values: [this.config.cluster] },
      {
        Name: 'instance-state-name',
        Values: filter.includeTerminated ? [...LIVE_STATES, 'terminated'] : LIVE_STATES,
      },
    ];
    if (filter.role !== undefined) filters.push({ Name: `tag:${TAGS.role}`, Values: [filter.role] });
    if (filter.name !== undefined) filters.push({ Name: `tag:${TAGS.name}`, Values: [filter.name] });
    return this.describe({ Filters: filters });
  }

  /**
   * Terminates the instance running `name`. EC2 shuts the machine down, systemd sends the role
   * SIGTERM, and the role leaves the directory and drains (TimeoutStopSec bounds it): the
   * grace period is the unit's, so this takes none.
   */
  async stop(name: string): Promise<void> {
    const ids = (await this.list({ name })).map((i) => i.id);
    await this.terminate(ids);
  }

  async terminate(ids: readonly string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += 1000) {
      const batch = ids.slice(i, i + 1000);
      await this.call('TerminateInstances', () =>
        this.deps.ec2.send(new TerminateInstancesCommand({ InstanceIds: [...batch] })),
      );
    }
  }

  /**
   * Polls until every instance in `ids` is running, and returns them (with private addresses).
   * Fails at once if one is terminated instead, with EC2's reason, and after `timeoutMs`.
   */
  async waitUntilRunning(
    ids: readonly string[],
    options: { timeoutMs?: number; pollMs?: number } = {},
  ): Promise<ClusterInstance[]> {
    if (ids.length === 0) return [];
    const timeoutMs = options.timeoutMs ?? 300_000;
    const pollMs = options.pollMs ?? 5000;
    let waited = 0;
    for (;;) {
      const found = await this.describe({ InstanceIds: [...ids] });
      const dead = found.find((i) => i.ec2State === 'terminated' || i.ec2State === 'shutting-down');
      if (dead !== undefined) {
        throw new Ec2LaunchError(
          `${dead.name} (${dead.id}) was ${dead.ec2State} while starting: ${dead.stateReason ?? 'see the instance console output'}`,
          'InstanceTerminated',
        );
      }
      if (found.length === ids.length && found.every((i) => i.ec2State === 'running')) return found;
      if (waited >= timeoutMs) {
        const pending = found.filter((i) => i.ec2State !== 'running').map((i) => `${i.name} (${i.ec2State})`);
        throw new Ec2LaunchError(
          `instances not running after ${Math.round(timeoutMs / 1000)} s: ${pending.join(', ') || 'not yet visible'}`,
          'WaitTimeout',
        );
      }
      await this.sleep(pollMs);
      waited += pollMs;
    }
  }

  private async describe(input: { Filters?: Filter[]; InstanceIds?: string[] }): Promise<ClusterInstance[]> {
    const instances: ClusterInstance[] = [];
    let NextToken: string | undefined;
    do {
      const page = (await this.call('DescribeInstances', () =>
        this.deps.ec2.send(new DescribeInstancesCommand({ ...input, ...(NextToken ? { NextToken } : {}) })),
      )) as DescribeInstancesCommandOutput;
      for (const r of page.Reservations ?? []) {
        for (const i of r.Instances ?? []) if (i.InstanceId !== undefined) instances.push(toInstance(i));
      }
      NextToken = page.NextToken;
    } while (NextToken);
    return instances;
  }

  /** One EC2 call with bounded exponential back-off and full jitter on throttling and 5xx. */
  private async call(action: string, send: () => Promise<unknown>): Promise<unknown> {
    const { maxAttempts, baseDelayMs, maxDelayMs, region, imageId, instanceType } = this.config;
    for (let attempt = 1; ; attempt++) {
      try {
        return await send();
      } catch (err) {
        if (isRetryable(err) && attempt < maxAttempts) {
          const cap = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
          await this.sleep(Math.round(cap / 2 + (cap / 2) * this.random()));
          continue;
        }
        throw explainAwsError(err, { action, region, imageId, instanceType, attempts: attempt });
      }
    }
  }
}

function tagMap(tags: readonly Tag[] | undefined): Record<string, string> {
  return Object.fromEntries((tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
}

const STATE: Record<string, InstanceState> = {
  pending: 'pending',
  running: 'running',
  stopping: 'stopping',
  'shutting-down': 'stopping',
  stopped: 'stopped',
  terminated: 'stopped',
};

function toInstance(i: Ec2Instance): ClusterInstance {
  const tags = tagMap(i.Tags);
  const ec2State = i.State?.Name ?? 'pending';
  return {
    name: tags[TAGS.name] ?? i.InstanceId ?? '?',
    role: (tags[TAGS.role] ?? 'unknown') as RoleName,
    state: STATE[ec2State] ?? 'pending',
    id: i.InstanceId as string,
    address: i.PrivateIpAddress ?? null,
    ec2State,
    launchTime: i.LaunchTime ?? null,
    tags,
    stateReason: i.StateReason?.Message ?? null,
  };
}

/**
 * The region from `region`, AWS_REGION or AWS_DEFAULT_REGION; none, or a malformed one, is a
 * clear error.
 */
export function resolveRegion(region: string | undefined): string {
  const chosen = region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  if (chosen === undefined || chosen === '') {
    throw new Ec2LaunchError('no AWS region: set AWS_REGION or pass --region (e.g. us-west-1)', 'Config');
  }
  if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(chosen)) {
    throw new Ec2LaunchError(`AWS region "${chosen}" is not valid: expected e.g. us-west-1`, 'Config');
  }
  return chosen;
}

/**
 * An EC2 client for the launcher in `region` (see resolveRegion). The SDK's own retries are off:
 * the launcher retries with its own bounded back-off, so attempts do not multiply.
 */
export function createEc2Client(region: string | undefined): EC2Client {
  return new EC2Client({ region: resolveRegion(region), maxAttempts: 1 });
}
