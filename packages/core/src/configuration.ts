import type { Address, ConfigStamp } from './messages.ts';

/** One acceptor group: 2f+1 acceptors; `acceptors[i]` has acceptor id `i`. */
export interface AcceptorGroup {
  readonly groupId: number;
  readonly acceptors: readonly Address[];
}

/**
 * The acceptor groups of a ballot, in order. Slot `s` belongs to `groups[s mod G]` for every
 * ballot that uses this configuration (design §3 rule 2): the mapping never depends on which
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
  }
}

/**
 * A digest of what decides safety in a configuration: f (the quorum size) and the group order
 * (the slot → group mapping). Two proposers with equal ids agree on both; acceptors compare ids,
 * never the groups' member addresses, so an acceptor that moves keeps the id. Never 0 (0 marks an
 * unstamped message).
 */
export function configurationId(config: Configuration): number {
  const text = `f=${config.f};groups=${config.groups.map((g) => g.groupId).join(',')}`;
  // FNV-1a, 32 bits: stable across processes and versions, no dependency.
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash === 0 ? 1 : hash;
}

/** The stamp phase-1a and phase-2a messages of `config` carry. */
export function configStamp(config: Configuration): ConfigStamp {
  return { id: configurationId(config), groups: config.groups.map((g) => g.groupId) };
}

/** The group that owns `slot` under a stamp, or undefined for an unstamped message. */
export function groupIdForSlot(stamp: ConfigStamp, slot: number): number | undefined {
  return stamp.groups.length === 0 ? undefined : stamp.groups[slot % stamp.groups.length];
}

/** A one-line description of a configuration, for logs and refusal messages. */
export function describeConfiguration(config: Configuration): string {
  return `f=${config.f}, groups [${config.groups.map((g) => g.groupId).join(', ')}] (id ${configurationId(config)})`;
}
