/**
 * Membership on top of Anna, with the original system's key scheme:
 *
 *   `${keyPrefix}observed${kind}` — SET of members that ever registered
 *   `${keyPrefix}removed${kind}`  — SET of members that deregistered
 *
 *   `${keyPrefix}lease${member}`   — LWW lease of one member, raised by its process every poll
 *
 * A member is live while it is in `observed` and not in `removed` (a two-phase set: Anna
 * cannot delete) and its lease keeps rising. A removed member stays removed, so a process that
 * comes back registers under a new member string. Readers poll with GET; deciding who is live
 * from those polls is `MemberView` in @paxos/core, driven by the runtime.
 */

import type { AnnaClient } from './client.ts';

/** A role's member list, or (a group id) the acceptors of that group. */
export type MemberKind =
  | 'Batchers'
  | 'Proposers'
  | 'ProxyLeaders'
  | 'AcceptorGroups'
  | 'Unbatchers'
  /** Matchmakers (issue 16), each as `<matchmakerId>=<address>`. */
  | 'Matchmakers'
  | `${number}`;

/** One read of a kind's two sets (null: the key does not exist, e.g. after a directory restart). */
export interface KindSets {
  readonly observed: readonly string[] | null;
  readonly removed: readonly string[] | null;
}

export interface MembershipOptions {
  /** The original's ANNA_KEY_PREFIX: change it (or restart Anna) between runs. */
  keyPrefix: string;
}

function sorted(values: Iterable<string>): string[] {
  return [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export class Membership {
  private readonly client: AnnaClient;
  private readonly keyPrefix: string;

  constructor(client: AnnaClient, options: MembershipOptions) {
    this.client = client;
    this.keyPrefix = options.keyPrefix;
  }

  observedKey(kind: MemberKind): string {
    return `${this.keyPrefix}observed${kind}`;
  }

  removedKey(kind: MemberKind): string {
    return `${this.keyPrefix}removed${kind}`;
  }

  /** Adds `member` to the observed set of `kind`. */
  async register(kind: MemberKind, member: string): Promise<void> {
    await this.client.addToSet(this.observedKey(kind), [member]);
  }

  /** Adds `member` to the removed set of `kind`: it is never live again. */
  async deregister(kind: MemberKind, member: string): Promise<void> {
    await this.client.addToSet(this.removedKey(kind), [member]);
  }

  /** observed − removed, sorted; [] when the keys do not exist. */
  async live(kind: MemberKind): Promise<string[]> {
    const [observed, removed] = await Promise.all([
      this.client.getSet(this.observedKey(kind)),
      this.client.getSet(this.removedKey(kind)),
    ]);
    if (observed === null) return [];
    return sorted([...observed].filter((m) => removed === null || !removed.has(m)));
  }

  /** Both sets of `kind`, as stored. */
  async read(kind: MemberKind): Promise<KindSets> {
    const [observed, removed] = await Promise.all([
      this.client.getSet(this.observedKey(kind)),
      this.client.getSet(this.removedKey(kind)),
    ]);
    return {
      observed: observed === null ? null : sorted(observed),
      removed: removed === null ? null : sorted(removed),
    };
  }

  /** The LWW key holding `member`'s lease. */
  leaseKey(member: string): string {
    return `${this.keyPrefix}lease${member}`;
  }

  /**
   * Raises `member`'s lease to `timestamp` (a wall-clock millisecond count that only grows): peers
   * take a member whose lease stops rising for gone.
   */
  async renewLease(member: string, timestamp: number): Promise<void> {
    await this.client.putLww(this.leaseKey(member), new TextEncoder().encode(String(timestamp)), timestamp);
  }

  /** `member`'s lease, or null when it has none (never leased, or the directory restarted). */
  async lease(member: string): Promise<number | null> {
    const read = await this.client.getLww(this.leaseKey(member));
    return read === null ? null : read.timestamp;
  }

  /** Writes an LWW value under `${keyPrefix}${name}` (e.g. the configuration the cluster formed with). */
  async putValue(name: string, value: Uint8Array, timestamp: number): Promise<void> {
    await this.client.putLww(`${this.keyPrefix}${name}`, value, timestamp);
  }

  /** The LWW value under `${keyPrefix}${name}`, or null. */
  async getValue(name: string): Promise<Uint8Array | null> {
    return (await this.client.getLww(`${this.keyPrefix}${name}`))?.value ?? null;
  }
}
