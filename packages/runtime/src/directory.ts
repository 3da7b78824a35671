import type { MemberKind, Membership } from '@paxos/anna-client';
import {
  type AcceptorAddress,
  type ConfigSpec,
  type Configuration,
  configurationId,
  configurationOf,
  describeConfiguration,
  type MatchmakerEpoch,
  validateConfigSpec,
  withoutIncarnations,
} from '@paxos/core';
import type { Logger } from 'pino';
import { parseAddress } from './address.ts';
import { ConfigError } from './config.ts';
import type { Node } from './node.ts';

/**
 * A member that has an id of its own (an acceptor in its group's key, a matchmaker under
 * `Matchmakers`): `<id>=<address>`.
 */
export function idMember(id: number, address: string): string {
  return `${id}=${address}`;
}

export function parseIdMember(member: string): { id: number; address: string } | null {
  const eq = member.indexOf('=');
  const id = Number(member.slice(0, eq));
  const address = member.slice(eq + 1);
  if (eq < 1 || !Number.isInteger(id) || id < 0) return null;
  try {
    parseAddress(address);
  } catch {
    return null;
  }
  return { id, address };
}

/** Registers an acceptor in its group: the group id under AcceptorGroups, `<id>=<address>` under the group. */
export async function registerAcceptor(node: Node, groupId: number, acceptorId: number): Promise<void> {
  await node.register('AcceptorGroups', String(groupId));
  await node.register(`${groupId}`, idMember(acceptorId, node.address));
}

/** The live members of `kind`, without their incarnation tags. */
export async function liveMembers(membership: Membership, kind: MemberKind): Promise<string[]> {
  return withoutIncarnations(await membership.live(kind));
}

/**
 * The live `<id>=<address>` members of `kind` (entries that do not parse are skipped), one
 * address per id: with two live entries for one id, the later registration (listed last) wins.
 */
export async function liveById(membership: Membership, kind: MemberKind): Promise<Map<number, string>> {
  const byId = new Map<number, string>();
  for (const m of await liveMembers(membership, kind)) {
    const parsed = parseIdMember(m);
    if (parsed !== null) byId.set(parsed.id, parsed.address);
  }
  return byId;
}

/** The shape that decides safety: f and the group ids in slot order (groups 0..G-1). */
export interface ConfigurationShape {
  readonly f: number;
  readonly groups: readonly number[];
}

/** A proposer's shape from its settings: F and ACCEPTOR_GROUPS = G, the groups 0..G-1. */
export function shapeOf(f: number, groupCount: number): ConfigurationShape {
  return { f, groups: Array.from({ length: groupCount }, (_, g) => g) };
}

/** The shape as a configuration without acceptors: what core's id and description read. */
function asConfiguration(shape: ConfigurationShape): Configuration {
  return { f: shape.f, groups: shape.groups.map((groupId) => ({ groupId, acceptors: [] })) };
}

/** The directory name under which the cluster records the configuration it formed with. */
export const CONFIGURATION_NAME = 'configuration';

/** The configuration the directory records, or null (none yet, or the directory restarted). */
export async function recordedConfiguration(membership: Membership): Promise<ConfigurationShape | null> {
  const bytes = await membership.getValue(CONFIGURATION_NAME);
  if (bytes === null) return null;
  try {
    const parsed = JSON.parse(new TextDecoder().decode(bytes)) as ConfigurationShape;
    if (Number.isInteger(parsed.f) && Array.isArray(parsed.groups)) return parsed;
  } catch {
    // not ours: reported below as a mismatch
  }
  return { f: -1, groups: [] };
}

/** Throws a ConfigError (one line) when `mine` is not the configuration the cluster formed with. */
export function assertSameConfiguration(mine: ConfigurationShape, recorded: ConfigurationShape | null): void {
  if (recorded === null) return;
  const ours = asConfiguration(mine);
  const theirs = asConfiguration(recorded);
  if (configurationId(ours) === configurationId(theirs)) return;
  throw new ConfigError(
    `this proposer's configuration (${describeConfiguration(ours)}) is not the one the cluster formed with (${describeConfiguration(theirs)}): start it with F=${recorded.f} ACCEPTOR_GROUPS=${recorded.groups.length}, or start a new cluster with another ANNA_KEY_PREFIX`,
  );
}

/**
 * Records the configuration in the directory when the cluster forms (and again after a directory
 * restart: the agent writes it every poll), then checks that the recorded one is ours: of two
 * proposers that formed it at once with different settings, one refuses to go on.
 */
export async function pinConfiguration(node: Node, config: Configuration): Promise<void> {
  const mine: ConfigurationShape = { f: config.f, groups: config.groups.map((g) => g.groupId) };
  const recorded = await recordedConfiguration(node.membership);
  assertSameConfiguration(mine, recorded);
  await node.directoryAgent.publish(CONFIGURATION_NAME, new TextEncoder().encode(JSON.stringify(mine)));
  assertSameConfiguration(mine, await recordedConfiguration(node.membership));
}

/**
 * Reads the acceptor groups from the directory and returns a configuration once every group of
 * `shape` lists all 2f+1 acceptors (ids 0..2f). The groups keep the shape's order, so every
 * proposer builds the same slot → group mapping whoever else registered.
 */
export async function waitForConfiguration(
  membership: Membership,
  options: { shape: ConfigurationShape; pollMs: number; logger: Logger; signal?: AbortSignal },
): Promise<Configuration> {
  const { f } = options.shape;
  const size = 2 * f + 1;
  let lastReport = '';
  for (;;) {
    if (options.signal?.aborted) throw new Error('stopped while waiting for acceptor groups');
    const groups = [];
    for (const groupId of options.shape.groups) {
      const members = await liveById(membership, `${groupId}`).catch(() => new Map<number, string>());
      groups.push({ groupId, acceptors: idsUpTo(members, size) });
    }
    if (groups.every((g) => g.acceptors.length === size)) return { f, groups };
    const report = `have ${groups.map((g) => `${g.groupId}:${g.acceptors.length}/${size}`).join(' ')}`;
    if (report !== lastReport) options.logger.info({ status: report }, 'waiting for acceptor groups');
    lastReport = report;
    await new Promise((resolve) => setTimeout(resolve, options.pollMs));
  }
}

/** The addresses of ids 0..size-1 that `byId` has, in id order. */
function idsUpTo(byId: ReadonlyMap<number, string>, size: number): string[] {
  return Array.from({ length: size }, (_, id) => byId.get(id)).filter((a) => a !== undefined);
}

/** Registers a matchmaker: `<matchmakerId>=<address>` under Matchmakers (docs/design/reconfiguration.md §9). */
export async function registerMatchmaker(node: Node, matchmakerId: number): Promise<void> {
  await node.register('Matchmakers', idMember(matchmakerId, node.address));
}

/**
 * Reads the matchmakers from the directory and returns their addresses, sorted by id, once
 * matchmakers 0..2f are all listed. The set is static for now (matchmaker replacement is a
 * later step of issue 16).
 */
export async function waitForMatchmakers(
  membership: Membership,
  options: { f: number; pollMs: number; logger: Logger; signal?: AbortSignal },
): Promise<string[]> {
  const size = 2 * options.f + 1;
  let lastReport = '';
  for (;;) {
    if (options.signal?.aborted) throw new Error('stopped while waiting for matchmakers');
    const byId = await liveById(membership, 'Matchmakers').catch(() => new Map<number, string>());
    const addresses = idsUpTo(byId, size);
    if (addresses.length === size) return addresses;
    const missing = Array.from({ length: size }, (_, id) => id).filter((id) => !byId.has(id));
    const report = `have ${addresses.length}/${size}, missing matchmaker ${missing.join(', ')}`;
    if (report !== lastReport)
      options.logger.info({ status: report }, 'waiting for matchmakers (2f+1 must be registered)');
    lastReport = report;
    await new Promise((resolve) => setTimeout(resolve, options.pollMs));
  }
}

/**
 * The directory name of the operator's target configuration (issue 16): a `ConfigSpec` as JSON,
 * written by `pnpm cluster reconfigure` / `replace` (and the autoscaler) with its version as the
 * LWW timestamp, so a newer target always wins and whoever writes an older one again (a leader
 * republishing after a directory restart) never undoes it.
 */
export const TARGET_CONFIGURATION_NAME = 'targetConfiguration';

/** The target configuration, or null (none written yet, the directory restarted, or not a valid spec). */
export function readTargetConfiguration(membership: Membership): Promise<ConfigSpec | null> {
  return readJson(membership, TARGET_CONFIGURATION_NAME, (v): v is ConfigSpec => {
    try {
      validateConfigSpec(v as ConfigSpec);
      return true;
    } catch {
      return false;
    }
  });
}

/** Writes the target configuration (LWW, timestamp = its version). */
export async function writeTargetConfiguration(membership: Membership, spec: ConfigSpec): Promise<void> {
  validateConfigSpec(spec);
  await membership.putValue(
    TARGET_CONFIGURATION_NAME,
    new TextEncoder().encode(JSON.stringify(spec)),
    spec.version + 1,
  );
}

/**
 * The operator's matchmaker set (issue 16): `{ version, ids }` as JSON, the 2f+1 matchmaker ids
 * the cluster should use, written by `pnpm cluster replace matchmaker-N` with its version as the
 * LWW timestamp. Proposers resolve the ids to addresses (`Matchmakers`) and the leader replaces
 * the set it uses by this one (stop, bootstrap, choose).
 */
export const TARGET_MATCHMAKERS_NAME = 'targetMatchmakers';

export interface MatchmakerTarget {
  readonly version: number;
  readonly ids: readonly number[];
}

/**
 * The newest matchmaker set a proposer knows chosen: `{ epoch, addresses }` as JSON, written by
 * proposers as they adopt one (LWW timestamp epoch + 1, so an older never wins). Where a proposer
 * that starts, or restarts, begins; a stale hint only costs a `Stopped` reply that names the next.
 */
export const MATCHMAKER_EPOCH_NAME = 'matchmakerEpoch';

async function readJson<T>(
  membership: Membership,
  name: string,
  valid: (v: unknown) => v is T,
): Promise<T | null> {
  const bytes = await membership.getValue(name);
  if (bytes === null) return null;
  try {
    const value: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return valid(value) ? value : null;
  } catch {
    return null;
  }
}

const isCount = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;

export function readTargetMatchmakers(membership: Membership): Promise<MatchmakerTarget | null> {
  return readJson(
    membership,
    TARGET_MATCHMAKERS_NAME,
    (v): v is MatchmakerTarget =>
      typeof v === 'object' &&
      v !== null &&
      isCount((v as MatchmakerTarget).version) &&
      Array.isArray((v as MatchmakerTarget).ids) &&
      (v as MatchmakerTarget).ids.every(isCount),
  );
}

export async function writeTargetMatchmakers(
  membership: Membership,
  target: MatchmakerTarget,
): Promise<void> {
  await membership.putValue(
    TARGET_MATCHMAKERS_NAME,
    new TextEncoder().encode(JSON.stringify(target)),
    target.version + 1,
  );
}

/** The operator's matchmaker set, or (none written yet) the cluster's first: ids 0..2f, version 0. */
export async function currentMatchmakerTarget(membership: Membership, f: number): Promise<MatchmakerTarget> {
  return (
    (await readTargetMatchmakers(membership)) ?? {
      version: 0,
      ids: Array.from({ length: 2 * f + 1 }, (_, id) => id),
    }
  );
}

/**
 * The matchmaker set proposers published, and whether it is exactly `target`'s members at the
 * addresses `byId` lists (the operator's replacement is then in use).
 */
export async function publishedMatchmakers(
  membership: Membership,
  target: MatchmakerTarget,
  byId: ReadonlyMap<number, string>,
): Promise<{ readonly published: MatchmakerEpoch | null; readonly isTarget: boolean }> {
  const published = await readMatchmakerEpoch(membership);
  const set = published?.addresses ?? [];
  const wanted = target.ids.map((id) => byId.get(id));
  return {
    published,
    isTarget: set.length === wanted.length && wanted.every((a) => a !== undefined && set.includes(a)),
  };
}

export function readMatchmakerEpoch(membership: Membership): Promise<MatchmakerEpoch | null> {
  return readJson(
    membership,
    MATCHMAKER_EPOCH_NAME,
    (v): v is MatchmakerEpoch =>
      typeof v === 'object' &&
      v !== null &&
      isCount((v as MatchmakerEpoch).epoch) &&
      Array.isArray((v as MatchmakerEpoch).addresses) &&
      (v as MatchmakerEpoch).addresses.every((a) => typeof a === 'string' && a.length > 0),
  );
}

export async function writeMatchmakerEpoch(membership: Membership, set: MatchmakerEpoch): Promise<void> {
  await membership.putValue(
    MATCHMAKER_EPOCH_NAME,
    new TextEncoder().encode(JSON.stringify(set)),
    set.epoch + 1,
  );
}

/** Every live acceptor's identity and address: the groups under AcceptorGroups, `<id>=<address>` in each. */
export async function liveAcceptorAddresses(membership: Membership): Promise<AcceptorAddress[]> {
  const groups = (await liveMembers(membership, 'AcceptorGroups'))
    .map(Number)
    .filter((g) => Number.isInteger(g) && g >= 0);
  const found: AcceptorAddress[] = [];
  for (const groupId of groups) {
    for (const [acceptorId, address] of await liveById(membership, `${groupId}`))
      found.push({ groupId, acceptorId, address });
  }
  return found;
}

/**
 * A configuration's acceptors at the addresses the directory lists (an acceptor it does not list
 * gets '' until it does).
 */
export function configurationAt(spec: ConfigSpec, acceptors: readonly AcceptorAddress[]): Configuration {
  const byIdentity = new Map(acceptors.map((a) => [`${a.groupId}/${a.acceptorId}`, a.address]));
  return configurationOf(spec, (groupId, acceptorId) => byIdentity.get(`${groupId}/${acceptorId}`));
}
