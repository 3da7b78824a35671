/**
 * Reconfiguring a running EC2 cluster's acceptor groups (issue 16): `pnpm aws scale
 * acceptor-groups N`, `pnpm aws replace <acceptor>` and the autoscaler's acceptor-group actions.
 * The operator's part, as the local `reconfigureLocal` does it: launch the new acceptors, wait
 * until they run and are registered in the directory, write the target configuration (the
 * leader moves to it through the matchmakers), wait until a leader serves it and the acceptors
 * it drops have retired, then terminate their instances (each uploads its log to S3 on the way
 * down when the cluster was launched with an archive bucket: see renderUserData).
 *
 * "Served" is read from Prometheus (the one `pnpm aws autoscale` uses): the highest
 * `paxos_configuration_version` of a proposer whose `is_leader` is 1; "retired" is an acceptor's
 * `paxos_acceptor_retired` 1. The directory has no record of either yet.
 */
import type { Membership } from '@paxos/anna-client';
import { instantQuery } from '@paxos/autoscaler';
import { type ConfigPlan, type ConfigSpec, planConfigChange, withoutIncarnations } from '@paxos/core';
import {
  acceptorName,
  changeFor,
  describeSpec,
  droppedAcceptors,
  parseAcceptorName,
  type ReconfigureRequest,
} from '@paxos/launcher';
import {
  genesisSpec,
  liveAcceptorAddresses,
  parseIdMember,
  readTargetConfiguration,
  writeTargetConfiguration,
} from '@paxos/runtime';
import { prometheusSelector } from './autoscale.ts';
import type { AwsCluster } from './cluster.ts';
import { type DirectoryAccess, withDirectory } from './directory.ts';
import type { ClusterInstance } from './ec2.ts';
import { Ec2LaunchError, UsageError } from './errors.ts';

export interface Ec2ReconfigureOptions {
  readonly cluster: AwsCluster;
  /** The Prometheus that scrapes the cluster (infra/prometheus/prometheus-ec2.yml). */
  readonly prometheusUrl: string;
  /** Its scrape job of the role processes (default `paxos`). */
  readonly job?: string;
  /** The directory endpoint; default the one the cluster's `paxos:settings` tag records. */
  readonly annaRouting?: string;
  /** The address of this machine the directory answers at (see `localAddressFor`). */
  readonly localAddress?: string;
  /** How long each wait may take: registration, serving, retiring (default 300 s). */
  readonly timeoutMs?: number;
  /** Between two reads of the directory or Prometheus (default 2 s). */
  readonly pollMs?: number;
  readonly log: (line: string) => void;
  /** Read the cluster, plan and print the change, change nothing (`--dry-run`). */
  readonly planOnly?: boolean;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly clock?: () => number;
  readonly fetch?: typeof fetch;
}

export interface Ec2ReconfigureResult {
  /** The configuration before, and the target written (and served). */
  readonly previous: ConfigSpec;
  readonly target: ConfigSpec;
  /** Acceptor instances launched for it. */
  readonly launched: readonly ClusterInstance[];
  /** Acceptors it dropped (process names): retired, then their instances terminated. */
  readonly dropped: readonly string[];
  /** The instances terminated. */
  readonly terminated: readonly ClusterInstance[];
  /** From writing the target to a leader serving it (ms). */
  readonly serveMs: number;
}

/** What `replace` on a matchmaker says until matchmaker reconfiguration is built (design §7). */
export const MATCHMAKER_REPLACE_REFUSAL =
  'replacing a matchmaker on EC2: matchmaker reconfiguration (a new matchmaker set written to the directory) is not yet built; the set stays 2f+1 until then';

/** A matchmaker's process name. */
export const MATCHMAKER_NAME = /^matchmaker-\d+$/;

/** Every acceptor name the cluster ever used, as far as EC2 and the directory remember. */
export async function acceptorsEverLaunched(
  listedWithTerminated: readonly ClusterInstance[],
  membership: Membership,
): Promise<string[]> {
  // EC2 lists a terminated instance for about an hour after it went; the directory's observed
  // sets keep every acceptor that ever registered until the directory itself restarts. Either
  // alone can forget an id; together they miss only an acceptor terminated over an hour ago in
  // a directory that restarted since, whose group id also is no longer in any configuration.
  const names = new Set(listedWithTerminated.filter((i) => i.role === 'acceptor').map((i) => i.name));
  const groups = withoutIncarnations((await membership.read('AcceptorGroups')).observed ?? [])
    .map(Number)
    .filter((g) => Number.isInteger(g) && g >= 0);
  for (const groupId of groups) {
    for (const member of withoutIncarnations((await membership.read(`${groupId}`)).observed ?? [])) {
      const parsed = parseIdMember(member);
      if (parsed !== null) names.add(acceptorName(groupId, parsed.id));
    }
  }
  return [...names];
}

/**
 * The instance `reference` names (an instance id `i-…` or a paxos name such as acceptor-g1-a2),
 * and which role it has: one that is not (or no longer) listed is known by its name only.
 * Throws a UsageError for an instance id EC2 does not list in the cluster.
 */
export function resolveInstance(
  listed: readonly ClusterInstance[],
  reference: string,
  cluster: string,
): { name: string; role: string; instances: ClusterInstance[] } {
  // EC2 ids are i- and hex digits; any i-… is read as an id, since no process name starts so.
  if (/^i-[0-9a-z]+$/.test(reference)) {
    const found = listed.find((i) => i.id === reference);
    if (found === undefined)
      throw new UsageError(
        `no instance ${reference} in cluster ${cluster}: expected an instance id or a name (acceptor-g1-a2) that \`pnpm aws status\` lists`,
      );
    return { name: found.name, role: found.role, instances: [found] };
  }
  const named = listed.filter((i) => i.name === reference);
  const role =
    named[0]?.role ??
    (parseAcceptorName(reference) !== null
      ? 'acceptor'
      : MATCHMAKER_NAME.test(reference)
        ? 'matchmaker'
        : null);
  if (role === null)
    throw new UsageError(
      `no instance named ${reference} in cluster ${cluster}: expected an instance id or a name (acceptor-g1-a2) that \`pnpm aws status\` lists`,
    );
  return { name: reference, role, instances: named };
}

/**
 * `pnpm aws replace <instance>`: the replacement of one process by role. An acceptor is replaced
 * by a reconfiguration (a new acceptor id in its group, the old one retired and terminated).
 */
export async function replaceEc2(
  reference: string,
  options: Ec2ReconfigureOptions,
): Promise<Ec2ReconfigureResult> {
  const { cluster } = options;
  // A matchmaker's name is refused before any request; its instance id once EC2 says what it is.
  const { name, role } = MATCHMAKER_NAME.test(reference)
    ? { name: reference, role: 'matchmaker' }
    : resolveInstance(
        await cluster.launcher.list({ includeTerminated: true }),
        reference,
        cluster.launcher.config.cluster,
      );
  switch (role) {
    case 'acceptor':
      return reconfigureEc2({ replace: name }, options);
    case 'matchmaker':
      throw new UsageError(MATCHMAKER_REPLACE_REFUSAL);
    default:
      throw new UsageError(
        `${name} is a ${role}: \`replace\` takes an acceptor (a ${role} is replaced by \`scale ${role}\` or the autoscaler)`,
      );
  }
}

/**
 * The configuration the cluster serves or moves to: the directory's target, else the genesis one
 * (version 0) of the cluster's settings.
 */
export async function readEc2Configuration(
  cluster: AwsCluster,
  options: Pick<Ec2ReconfigureOptions, 'annaRouting' | 'localAddress'> = {},
): Promise<ConfigSpec> {
  const settings = cluster.settingsOf(await cluster.launcher.list());
  return withDirectory(directoryAccess(settings, options), async (membership) =>
    currentConfiguration(membership, settings),
  );
}

async function currentConfiguration(
  membership: Membership,
  settings: { f: number; groups: number },
): Promise<ConfigSpec> {
  return (await readTargetConfiguration(membership)) ?? genesisSpec(settings.f, settings.groups);
}

function directoryAccess(
  settings: { annaRouting: string; keyPrefix: string },
  options: Pick<Ec2ReconfigureOptions, 'annaRouting' | 'localAddress'>,
): DirectoryAccess {
  return {
    annaRouting: options.annaRouting ?? settings.annaRouting,
    keyPrefix: settings.keyPrefix,
    ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
  };
}

/** The change a request makes, planned against the cluster as EC2 and the directory see it. */
export async function planEc2Change(
  request: ReconfigureRequest,
  membership: Membership,
  listedWithTerminated: readonly ClusterInstance[],
  settings: { f: number; groups: number },
): Promise<{ current: ConfigSpec; plan: ConfigPlan }> {
  const current = await currentConfiguration(membership, settings);
  const ever = await acceptorsEverLaunched(listedWithTerminated, membership);
  try {
    return { current, plan: planConfigChange(current, changeFor(request, current, ever)) };
  } catch (err) {
    const asked = 'groups' in request ? `${request.groups} acceptor groups` : `replace ${request.replace}`;
    throw new UsageError(`${asked}: ${(err as Error).message} (now ${describeSpec(current)})`);
  }
}

/** Throws a UsageError for a number of groups that is not an integer >= 1. */
export function checkRequest(request: ReconfigureRequest): void {
  if ('groups' in request && (!Number.isInteger(request.groups) || request.groups < 1))
    throw new UsageError(`acceptor-groups must be an integer >= 1, got "${request.groups}"`);
}

/** Runs one reconfiguration of the cluster's acceptor groups; see the file's comment. */
export async function reconfigureEc2(
  request: ReconfigureRequest,
  options: Ec2ReconfigureOptions,
): Promise<Ec2ReconfigureResult> {
  const { cluster, log } = options;
  checkRequest(request);
  if (!options.planOnly) cluster.launcher.assertCanLaunch();
  const listed = await cluster.launcher.list({ includeTerminated: true });
  const settings = cluster.settingsOf(listed.filter((i) => i.ec2State !== 'terminated'));
  const clock = options.clock ?? (() => performance.now());
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const timeoutMs = options.timeoutMs ?? 300_000;
  const pollMs = options.pollMs ?? 2000;
  const until = async (what: string, check: () => Promise<string | null>) => {
    const deadline = clock() + timeoutMs;
    for (;;) {
      const missing = await check();
      if (missing === null) return;
      if (clock() >= deadline)
        throw new Ec2LaunchError(
          `reconfiguration timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}: ${missing}`,
          'ReconfigureTimeout',
        );
      await sleep(pollMs);
    }
  };
  const prometheus = new ClusterPrometheus(options);

  return withDirectory(directoryAccess(settings, options), async (membership) => {
    const { current, plan } = await planEc2Change(request, membership, listed, settings);
    const dropped = droppedAcceptors(current, plan.target);
    const droppedInstances = listed.filter(
      (i) => dropped.includes(i.name) && (i.ec2State === 'pending' || i.ec2State === 'running'),
    );
    const expected = plan.start.map((a) => acceptorName(a.groupId, a.acceptorId));
    log(
      `${options.planOnly ? 'would reconfigure' : 'reconfiguring'} ${describeSpec(current)} → ${describeSpec(plan.target)}: launch ${expected.join(', ') || 'none'}; retire and terminate ${droppedInstances.map((i) => `${i.name} (${i.id})`).join(', ') || 'none'}`,
    );
    if (options.planOnly)
      return { previous: current, target: plan.target, launched: [], dropped, terminated: [], serveMs: 0 };

    const launched = await cluster.launchAcceptors(plan.start);
    await until(`${expected.join(', ')} registered in the directory`, async () => {
      const registered = new Set(
        (await liveAcceptorAddresses(membership)).map((a) => acceptorName(a.groupId, a.acceptorId)),
      );
      const missing = expected.filter((name) => !registered.has(name));
      return missing.length === 0 ? null : `not yet registered: ${missing.join(', ')}`;
    });

    const written = clock();
    await writeTargetConfiguration(membership, plan.target);
    log(`target written: ${describeSpec(plan.target)}`);
    await until(`a leading proposer serving configuration version ${plan.target.version}`, async () => {
      const served = await prometheus.servedVersion();
      if (typeof served === 'number' && served >= plan.target.version) return null;
      return typeof served === 'number' ? `the leader serves version ${served}` : served;
    });
    const serveMs = clock() - written;
    log(`served in ${Math.round(serveMs)} ms`);

    // An acceptor Prometheus does not scrape (its process or host is gone) cannot answer its
    // Retire (the leader gives up on it): only those it scrapes are waited for.
    await until(`${dropped.join(', ')} retired`, async () => {
      const retired = await prometheus.retired();
      if (typeof retired === 'string') return retired;
      const waiting = droppedInstances.filter((i) => retired.get(i.name) === 0).map((i) => i.name);
      return waiting.length === 0 ? null : `not yet retired: ${waiting.join(', ')}`;
    });
    if (droppedInstances.length > 0) {
      log(`terminating ${droppedInstances.map((i) => `${i.name} (${i.id})`).join(', ')}`);
      await cluster.launcher.terminate(droppedInstances.map((i) => i.id));
    }
    return {
      previous: current,
      target: plan.target,
      launched,
      dropped,
      terminated: droppedInstances,
      serveMs,
    };
  });
}

/** The cluster's reconfiguration metrics, from Prometheus. */
class ClusterPrometheus {
  private readonly selector: string;

  constructor(private readonly options: Ec2ReconfigureOptions) {
    this.selector = prometheusSelector(options.cluster, options.job);
  }

  /**
   * The configuration version of a leading proposer's ballot (the highest, if a deposed leader has
   * not noticed yet), or a line saying why there is none.
   */
  async servedVersion(): Promise<number | string> {
    const [leaders, versions] = await Promise.all([
      this.query('is_leader', 'instance'),
      this.query('paxos_configuration_version', 'instance'),
    ]);
    if (typeof leaders === 'string') return leaders;
    if (typeof versions === 'string') return versions;
    const served = [...leaders]
      .filter(([, leading]) => leading === 1)
      .flatMap(([instance]) => versions.get(instance) ?? []);
    return served.length === 0 ? 'Prometheus sees no leading proposer' : Math.max(...served);
  }

  /** `paxos_acceptor_retired` by process name, or a line saying why it could not be read. */
  retired(): Promise<Map<string, number> | string> {
    return this.query('paxos_acceptor_retired', 'exported_instance');
  }

  private async query(metric: string, by: string): Promise<Map<string, number> | string> {
    try {
      return await instantQuery(this.options.prometheusUrl, `${metric}${this.selector}`, {
        by,
        ...(this.options.fetch === undefined ? {} : { fetch: this.options.fetch }),
      });
    } catch (err) {
      return (err as Error).message;
    }
  }
}
