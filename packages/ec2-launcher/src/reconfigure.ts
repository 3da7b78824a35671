/**
 * Reconfiguring a running EC2 cluster's acceptor groups (issue 16): `pnpm aws scale
 * acceptor-groups N`, `pnpm aws replace <acceptor>` and the autoscaler's acceptor-group actions.
 * The operator's part, as the local `reconfigureLocal` does it: launch the new acceptors, wait
 * until they run and are registered in the directory, write the target configuration (the
 * leader moves to it through the matchmakers), wait until a leader serves it and the acceptors
 * it drops have retired, then terminate their instances (each uploads its log to S3 on the way
 * down when the cluster was launched with an archive bucket: see renderUserData).
 *
 * A matchmaker is replaced as the local `cluster replace matchmaker-N` does it (replaceMatchmakerEc2):
 * a new matchmaker instance (a new id, no state), the directory's target set, and once the
 * proposers publish that they use it (`matchmakerEpoch`) the old instance is terminated.
 *
 * "Served" is read from Prometheus (the one `pnpm aws autoscale` uses): the highest
 * `paxos_configuration_version` of a proposer whose `is_leader` is 1; "retired" is an acceptor's
 * `paxos_acceptor_retired` 1. The directory has no record of either yet.
 */
import type { Membership } from '@paxos/anna-client';
import { instantQuery } from '@paxos/autoscaler';
import {
  type ConfigPlan,
  type ConfigSpec,
  type MatchmakerEpoch,
  planConfigChange,
  withoutIncarnations,
} from '@paxos/core';
import {
  acceptorName,
  changeFor,
  describeSpec,
  droppedAcceptors,
  matchmakerName,
  parseAcceptorName,
  parseMatchmakerName,
  type ReconfigureRequest,
} from '@paxos/launcher';
import {
  currentMatchmakerTarget,
  genesisSpec,
  liveAcceptorAddresses,
  liveById,
  type MatchmakerTarget,
  parseIdMember,
  publishedMatchmakers,
  readTargetConfiguration,
  writeTargetConfiguration,
  writeTargetMatchmakers,
} from '@paxos/runtime';
import { prometheusSelector } from './autoscale.ts';
import type { AwsCluster } from './cluster.ts';
import { type DirectoryAccess, withDirectory } from './directory.ts';
import type { ClusterInstance } from './ec2.ts';
import { Ec2LaunchError, UsageError } from './errors.ts';

export interface Ec2ReconfigureOptions {
  readonly cluster: AwsCluster;
  /**
   * The Prometheus that scrapes the cluster (infra/prometheus/prometheus-ec2.yml): required for
   * acceptor groups, unused by a matchmaker's replacement.
   */
  readonly prometheusUrl?: string;
  /** Its scrape job of the role processes (default `paxos`). */
  readonly job?: string;
  /** The directory endpoint; default the one the cluster's `paxos:settings` tag records. */
  readonly annaRouting?: string;
  /** The address of this machine the directory answers at (see `localAddressFor`). */
  readonly localAddress?: string;
  /** How long each wait may take: registration, serving, retiring, publication (default 300 s). */
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

/** What `replaceEc2` did to a matchmaker (`replaceMatchmakerEc2`). */
export interface Ec2MatchmakerReplaceResult {
  /** The matchmaker set before (the directory's target, else ids 0..2f at version 0), and the target written. */
  readonly previous: MatchmakerTarget;
  readonly target: MatchmakerTarget;
  /** The new matchmaker's instance (null for a plan: `planOnly`). */
  readonly launched: ClusterInstance | null;
  /** The set the proposers published once they used the target (null for a plan). */
  readonly epoch: MatchmakerEpoch | null;
  /** The replaced matchmaker's instances that were still pending or running, now terminated. */
  readonly terminated: readonly ClusterInstance[];
  /** From writing the target to the proposers publishing that they use it (ms). */
  readonly serveMs: number;
}

/** A matchmaker's process name. */
export const MATCHMAKER_NAME = /^matchmaker-\d+$/;

/** The message of `reconfigureEc2` without a Prometheus: it tells when a leader serves the target. */
export const NO_PROMETHEUS =
  'no Prometheus: pass --prometheus-url http://<prometheus>:9090 or set PROMETHEUS_URL (the one scraping the cluster with infra/prometheus/prometheus-ec2.yml; it tells when a leader serves the new configuration)';

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
 * by a reconfiguration (a new acceptor id in its group, the old one retired and terminated), a
 * matchmaker by a new matchmaker set (`replaceMatchmakerEc2`).
 */
export async function replaceEc2(
  reference: string,
  options: Ec2ReconfigureOptions,
): Promise<Ec2ReconfigureResult | Ec2MatchmakerReplaceResult> {
  const { cluster } = options;
  const { name, role } = resolveInstance(
    await cluster.launcher.list({ includeTerminated: true }),
    reference,
    cluster.launcher.config.cluster,
  );
  switch (role) {
    case 'acceptor':
      return reconfigureEc2({ replace: name }, options);
    case 'matchmaker':
      return replaceMatchmakerEc2(name, options);
    default:
      throw new UsageError(
        `${name} is a ${role}: \`replace\` takes an acceptor or a matchmaker (a ${role} is replaced by \`scale ${role}\` or the autoscaler)`,
      );
  }
}

/** Every matchmaker id the cluster ever used, as far as EC2 and the directory remember. */
export async function matchmakersEverLaunched(
  listedWithTerminated: readonly ClusterInstance[],
  membership: Membership,
): Promise<number[]> {
  // As for acceptors (acceptorsEverLaunched): EC2 lists a terminated instance for about an hour,
  // the directory's observed set keeps every matchmaker that registered since it started.
  const ids = listedWithTerminated.flatMap((i) =>
    i.role === 'matchmaker' ? (parseMatchmakerName(i.name) ?? []) : [],
  );
  for (const member of withoutIncarnations((await membership.read('Matchmakers')).observed ?? [])) {
    const parsed = parseIdMember(member);
    if (parsed !== null) ids.push(parsed.id);
  }
  return ids;
}

/**
 * Replaces matchmaker `name` while the cluster serves, as `cluster replace matchmaker-N` does
 * locally: launches a matchmaker instance with a new id (above every id EC2 lists, terminated
 * ones included, the directory observed, and the target holds) and MATCHMAKER_STATE=replacement,
 * waits until it runs and is registered, writes the target set (`targetMatchmakers`: the old id
 * replaced by the new one, version + 1), waits until the proposers publish that they use exactly
 * those matchmakers (`matchmakerEpoch`: the leader stopped the old set, bootstrapped the new one
 * and had the old one choose it), then terminates the old matchmaker's instance (which archives
 * its state to S3 on the way down when the cluster has a bucket). Refuses a matchmaker that is not
 * in the target set.
 */
export async function replaceMatchmakerEc2(
  name: string,
  options: Ec2ReconfigureOptions,
): Promise<Ec2MatchmakerReplaceResult> {
  const { cluster, log } = options;
  const oldId = parseMatchmakerName(name);
  if (oldId === null) throw new UsageError(`${name} is not a matchmaker name (matchmaker-<id>)`);
  if (!options.planOnly) cluster.launcher.assertCanLaunch();
  const listed = await cluster.launcher.list({ includeTerminated: true });
  const settings = cluster.settingsOf(listed.filter((i) => i.ec2State !== 'terminated'));
  const until = waiter(options, 'matchmaker replacement');

  return withDirectory(directoryAccess(settings, options), async (membership) => {
    const previous = await currentMatchmakerTarget(membership, settings.f);
    if (!previous.ids.includes(oldId))
      throw new UsageError(
        `${name} is not one of the matchmakers the cluster uses (${previous.ids.map(matchmakerName).join(', ')})`,
      );
    // Ids are never reused: a replaced matchmaker's state is archived under its name.
    const newId = Math.max(...previous.ids, ...(await matchmakersEverLaunched(listed, membership))) + 1;
    const newName = matchmakerName(newId);
    const target: MatchmakerTarget = {
      version: previous.version + 1,
      ids: previous.ids.map((id) => (id === oldId ? newId : id)),
    };
    const old = listed.filter(
      (i) => i.name === name && (i.ec2State === 'pending' || i.ec2State === 'running'),
    );
    const describe = (t: MatchmakerTarget) => `version ${t.version}: ${t.ids.map(matchmakerName).join(', ')}`;
    log(
      `${options.planOnly ? 'would replace' : 'replacing'} ${name} by ${newName}: matchmakers ${describe(previous)} → ${describe(target)}; terminate ${old.map((i) => `${i.name} (${i.id})`).join(', ') || 'none'}`,
    );
    if (options.planOnly)
      return { previous, target, launched: null, epoch: null, terminated: [], serveMs: 0 };

    const launched = await cluster.launchMatchmaker(newId);
    await until(`${newName} registered in the directory`, async () =>
      (await liveById(membership, 'Matchmakers')).has(newId) ? null : `not yet registered: ${newName}`,
    );

    const clock = options.clock ?? (() => performance.now());
    const written = clock();
    await writeTargetMatchmakers(membership, target);
    log(`target written: matchmakers ${describe(target)}`);
    const used: { epoch: MatchmakerEpoch | null } = { epoch: null };
    await until(`the proposers using matchmakers ${target.ids.join(', ')}`, async () => {
      const byId = await liveById(membership, 'Matchmakers');
      const { published, isTarget } = await publishedMatchmakers(membership, target, byId);
      if (isTarget) {
        used.epoch = published;
        return null;
      }
      return published === null
        ? 'no matchmaker set published yet'
        : `the proposers use epoch ${published.epoch}: ${published.addresses.join(', ')}`;
    });
    const serveMs = clock() - written;
    log(
      `matchmakers ${target.ids.join(', ')} in use (epoch ${used.epoch?.epoch}) in ${Math.round(serveMs)} ms`,
    );
    if (old.length > 0) {
      log(`terminating ${old.map((i) => `${i.name} (${i.id})`).join(', ')}`);
      await cluster.launcher.terminate(old.map((i) => i.id));
    }
    return { previous, target, launched, epoch: used.epoch, terminated: old, serveMs };
  });
}

/**
 * The waits of a reconfiguration: `until(what, check)` polls `check` (null: done, else what is
 * missing) every `pollMs` until `timeoutMs`, then throws one line naming what it waited for.
 */
function waiter(
  options: Ec2ReconfigureOptions,
  what: string,
): (waitingFor: string, check: () => Promise<string | null>) => Promise<void> {
  const clock = options.clock ?? (() => performance.now());
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const timeoutMs = options.timeoutMs ?? 300_000;
  const pollMs = options.pollMs ?? 2000;
  return async (waitingFor, check) => {
    const deadline = clock() + timeoutMs;
    for (;;) {
      const missing = await check();
      if (missing === null) return;
      if (clock() >= deadline)
        throw new Ec2LaunchError(
          `${what} timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${waitingFor}: ${missing}`,
          'ReconfigureTimeout',
        );
      await sleep(pollMs);
    }
  };
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
  const prometheusUrl = options.prometheusUrl;
  if (prometheusUrl === undefined) throw new UsageError(NO_PROMETHEUS);
  if (!options.planOnly) cluster.launcher.assertCanLaunch();
  const listed = await cluster.launcher.list({ includeTerminated: true });
  const settings = cluster.settingsOf(listed.filter((i) => i.ec2State !== 'terminated'));
  const clock = options.clock ?? (() => performance.now());
  const until = waiter(options, 'reconfiguration');
  const prometheus = new ClusterPrometheus({ ...options, prometheusUrl });

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

  constructor(private readonly options: Ec2ReconfigureOptions & { readonly prometheusUrl: string }) {
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
