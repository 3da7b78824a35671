import type { Address, ConfigSpec, ConfigSpecGroup, ConfigStamp } from './messages.ts';

/**
 * One acceptor group: 2f+1 acceptors. `acceptors[i]` has acceptor id `acceptorIds[i]`, or `i`
 * without `acceptorIds` (a group no acceptor was ever replaced in). Ids are never reused: a
 * replacement gets a new one.
 */
export interface AcceptorGroup {
  readonly groupId: number;
  readonly acceptors: readonly Address[];
  readonly acceptorIds?: readonly number[];
}

/** The acceptor id of each member of `group`, in order. */
export function acceptorIdsOf(group: AcceptorGroup): readonly number[] {
  return group.acceptorIds ?? group.acceptors.map((_, i) => i);
}

/**
 * The configuration a spec names, with each acceptor at the address `addressOf` gives it; an
 * acceptor whose address is not known yet gets '' (messages to it are skipped until it is).
 */
export function configurationOf(
  spec: ConfigSpec,
  addressOf: (groupId: number, acceptorId: number) => Address | undefined,
): Configuration {
  return {
    f: spec.f,
    groups: spec.groups.map((g) => ({
      groupId: g.groupId,
      acceptors: g.acceptorIds.map((id) => addressOf(g.groupId, id) ?? ''),
      acceptorIds: g.acceptorIds,
    })),
  };
}

/**
 * The acceptor groups of a ballot, in order. Slot `s` belongs to `groups[s mod G]` for every
 * ballot that uses this configuration (docs/architecture.md §3 rule 2): the mapping never depends on which
 * groups happen to be reachable.
 */
export interface Configuration {
  readonly f: number;
  readonly groups: readonly AcceptorGroup[];
}

export function groupForSlot(config: Configuration, slot: number): AcceptorGroup {
  const group = config.groups[slot % config.groups.length];
  if (group === undefined) throw new Error('configuration has no acceptor groups');
  return group;
}

/** Votes or promises needed from one group: f+1 distinct acceptors. */
export function quorumSize(config: Configuration): number {
  return config.f + 1;
}

/** f+1 of a group of 2f+1, for roles that see a group's members but not f. */
export function quorumForGroupSize(groupSize: number): number {
  return Math.floor(groupSize / 2) + 1;
}

/** Throws a clear error when a configuration cannot work (wrong group sizes, duplicates). */
export function validateConfiguration(config: Configuration): void {
  if (!Number.isInteger(config.f) || config.f < 0) {
    throw new Error(`f must be a non-negative integer, got ${config.f}`);
  }
  if (config.groups.length === 0) throw new Error('a configuration needs at least one acceptor group');
  const ids = new Set<number>();
  for (const group of config.groups) {
    if (ids.has(group.groupId)) throw new Error(`acceptor group ${group.groupId} appears twice`);
    ids.add(group.groupId);
    if (group.acceptors.length !== 2 * config.f + 1) {
      throw new Error(
        `acceptor group ${group.groupId} has ${group.acceptors.length} acceptors, expected 2f+1 = ${2 * config.f + 1}`,
      );
    }
    const acceptorIds = acceptorIdsOf(group);
    if (acceptorIds.length !== group.acceptors.length || new Set(acceptorIds).size !== acceptorIds.length)
      throw new Error(
        `acceptor group ${group.groupId} needs one distinct acceptor id per acceptor, got [${acceptorIds.join(', ')}]`,
      );
  }
}

/**
 * A digest of what decides safety in a configuration: f (the quorum size) and the group order
 * (the slot → group mapping). Two proposers with equal ids agree on both; acceptors compare ids,
 * never the groups' member addresses, so an acceptor that moves keeps the id. Never 0 (0 marks an
 * unstamped message).
 */
export function configurationId(config: Configuration): number {
  return fnv1a(`f=${config.f};groups=${config.groups.map((g) => g.groupId).join(',')}`);
}

/** FNV-1a, 32 bits, of `text`'s UTF-16 code units: stable across processes and versions, no dependency; never 0. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash === 0 ? 1 : hash;
}

/**
 * The id of a matchmaker configuration: FNV-1a of f, the group order and each group's acceptor
 * ids (the version is excluded: two targets with the same members are the same configuration).
 * Never 0.
 */
export function configSpecId(spec: ConfigSpec): number {
  const groups = spec.groups.map((g) => `${g.groupId}:${g.acceptorIds.join('.')}`).join(',');
  return fnv1a(`f=${spec.f};groups=${groups}`);
}

/**
 * The `ConfigSpec` of a configuration, as matchmakers record it: f, `version`, and each group's id
 * with its acceptor ids.
 */
export function configSpecOf(config: Configuration, version: number): ConfigSpec {
  return {
    f: config.f,
    version,
    groups: config.groups.map((g) => ({ groupId: g.groupId, acceptorIds: acceptorIdsOf(g) })),
  };
}

const isU32 = (n: number) => Number.isInteger(n) && n >= 0 && n <= 0xffffffff;

/**
 * Throws a clear error when a configuration spec cannot work: f, the version, group and acceptor
 * ids not 32-bit unsigned integers, no group, a group id twice, a group without 2f+1 acceptors or
 * with an acceptor id twice.
 */
export function validateConfigSpec(spec: ConfigSpec): void {
  if (!isU32(spec.f)) throw new Error(`f must be a non-negative integer, got ${spec.f}`);
  if (!isU32(spec.version)) throw new Error(`version must be a non-negative integer, got ${spec.version}`);
  if (spec.groups.length === 0) throw new Error('a configuration needs at least one acceptor group');
  const size = 2 * spec.f + 1;
  const groupIds = new Set<number>();
  for (const group of spec.groups) {
    if (!isU32(group.groupId))
      throw new Error(`acceptor group id ${group.groupId} is not a non-negative integer`);
    if (groupIds.has(group.groupId)) throw new Error(`acceptor group ${group.groupId} appears twice`);
    groupIds.add(group.groupId);
    if (group.acceptorIds.length !== size) {
      throw new Error(
        `acceptor group ${group.groupId} has ${group.acceptorIds.length} acceptors, expected 2f+1 = ${size}`,
      );
    }
    const ids = new Set<number>();
    for (const id of group.acceptorIds) {
      if (!isU32(id))
        throw new Error(`acceptor id ${id} of group ${group.groupId} is not a non-negative integer`);
      if (ids.has(id)) throw new Error(`acceptor ${id} appears twice in group ${group.groupId}`);
      ids.add(id);
    }
  }
}

/** A change an operator (or the autoscaler) asks of the acceptor groups. */
export type ConfigChange =
  /** Grow to `groups` groups (new groups get ids from `nextGroupId`), or shrink by dropping the last ones. */
  | { readonly kind: 'groups'; readonly groups: number; readonly nextGroupId: number }
  /** Drop one group, wherever it is in the order. */
  | { readonly kind: 'removeGroup'; readonly groupId: number }
  /** Replace acceptor `acceptorId` of group `groupId` with a new acceptor `newAcceptorId` (empty log). */
  | {
      readonly kind: 'replace';
      readonly groupId: number;
      readonly acceptorId: number;
      readonly newAcceptorId: number;
    };

/** What a change needs: the target configuration, and the acceptors to start before writing it. */
export interface ConfigPlan {
  readonly target: ConfigSpec;
  readonly start: readonly { readonly groupId: number; readonly acceptorId: number }[];
}

/**
 * The next target configuration for `change` applied to `current` (version + 1), and the new
 * acceptors to start first. Group ids and acceptor ids are never reused: the caller passes the
 * next free ones. Throws a clear error for a change that cannot be made.
 */
export function planConfigChange(current: ConfigSpec, change: ConfigChange): ConfigPlan {
  const size = 2 * current.f + 1;
  let groups: ConfigSpecGroup[];
  const start: { groupId: number; acceptorId: number }[] = [];
  switch (change.kind) {
    case 'groups': {
      if (!Number.isInteger(change.groups) || change.groups < 1)
        throw new Error(`a configuration needs at least one acceptor group, asked for ${change.groups}`);
      groups = current.groups.slice(0, change.groups);
      const used = Math.max(change.nextGroupId, ...current.groups.map((g) => g.groupId + 1));
      for (let i = 0; groups.length < change.groups; i++) {
        const groupId = used + i;
        const acceptorIds = Array.from({ length: size }, (_, a) => a);
        groups.push({ groupId, acceptorIds });
        for (const acceptorId of acceptorIds) start.push({ groupId, acceptorId });
      }
      break;
    }
    case 'removeGroup': {
      if (!current.groups.some((g) => g.groupId === change.groupId))
        throw new Error(`acceptor group ${change.groupId} is not in the configuration`);
      if (current.groups.length === 1) throw new Error('the last acceptor group cannot be removed');
      groups = current.groups.filter((g) => g.groupId !== change.groupId);
      break;
    }
    case 'replace': {
      const group = current.groups.find((g) => g.groupId === change.groupId);
      if (group === undefined || !group.acceptorIds.includes(change.acceptorId))
        throw new Error(`acceptor ${change.groupId}/${change.acceptorId} is not in the configuration`);
      if (change.newAcceptorId <= Math.max(...group.acceptorIds))
        throw new Error(
          `acceptor ids are never reused: ${change.groupId}/${change.newAcceptorId} is not above every id group ${change.groupId} has had`,
        );
      groups = current.groups.map((g) =>
        g === group
          ? {
              groupId: g.groupId,
              acceptorIds: g.acceptorIds.map((id) => (id === change.acceptorId ? change.newAcceptorId : id)),
            }
          : g,
      );
      start.push({ groupId: change.groupId, acceptorId: change.newAcceptorId });
      break;
    }
  }
  const target: ConfigSpec = { f: current.f, version: current.version + 1, groups };
  validateConfigSpec(target);
  return { target, start };
}

/** The stamp phase-1a and phase-2a messages of `config` carry (a configuration fixed for life). */
export function configStamp(config: Configuration): ConfigStamp {
  return { id: configurationId(config), groups: config.groups.map((g) => g.groupId), acceptorIds: [] };
}

/**
 * The stamps of a ballot's configuration under matchmakers, one per group: each also lists that
 * group's acceptor ids, so an acceptor the configuration does not list refuses the message.
 */
export function groupStamps(config: Configuration): Map<number, ConfigStamp> {
  const id = configurationId(config);
  const groups = config.groups.map((g) => g.groupId);
  return new Map(config.groups.map((g) => [g.groupId, { id, groups, acceptorIds: acceptorIdsOf(g) }]));
}

/** The group that owns `slot` under a stamp, or undefined for an unstamped message. */
export function groupIdForSlot(stamp: ConfigStamp, slot: number): number | undefined {
  return stamp.groups.length === 0 ? undefined : stamp.groups[slot % stamp.groups.length];
}

/** A one-line description of a configuration, for logs and refusal messages. */
export function describeConfiguration(config: Configuration): string {
  return `f=${config.f}, groups [${config.groups.map((g) => g.groupId).join(', ')}] (id ${configurationId(config)})`;
}
