/**
 * Who is alive, from directory polls: pure logic (time injected), so the runtime and the
 * simulator decide membership the same way.
 *
 * The directory keeps, per member kind, an `observed` and a `removed` set (a two-phase set of
 * incarnation-tagged entries) and, per entry, a lease: a number its process raises every poll.
 * A member is live while it is observed, not removed, and its lease keeps rising. Leases are
 * judged on the observer's own clock (how long since the value last rose), so hosts need not
 * agree on the time; only an entry seen for the first time is judged by the lease's value, a
 * wall-clock timestamp of its writer, so a dead incarnation is not taken for a live one.
 *
 * A directory that restarted empty (or a poll that found nothing) must not look like everyone
 * leaving at once: staleness only counts on polls the caller vouches for (`directoryHealthy`,
 * e.g. it has just written its own lease), and entries missing from `observed` are kept until their lease
 * expires, while their processes register again.
 */

export interface KindSnapshot {
  /** The kind's `observed` entries, or null when the key does not exist. */
  readonly observed: readonly string[] | null;
  /** The kind's `removed` entries, or null when the key does not exist. */
  readonly removed: readonly string[] | null;
  /** Lease values read, by entry; an entry without a lease key is absent. */
  readonly leases: ReadonlyMap<string, number>;
}

export interface MemberViewOptions {
  /** A lease that has not risen for this long (observer's clock) has expired. */
  readonly leaseTimeoutMs: number;
  /** Polls vouched healthy that must see a lease still before it can expire. */
  readonly minStalePolls?: number;
}

export interface MemberChange {
  readonly kind: string;
  /** Live entries after the change, sorted. */
  readonly members: readonly string[];
  readonly joined: readonly string[];
  readonly left: readonly string[];
  /** Those of `left` that went because their lease stopped rising (the rest deregistered). */
  readonly expired: readonly string[];
}

interface Tracked {
  lease: number;
  /** Observer time the lease last rose (or the entry was first seen). */
  risenAt: number;
  stalePolls: number;
  live: boolean;
}

interface KindState {
  readonly tracked: Map<string, Tracked>;
  /** Entries seen in `removed`; they never come back, even if the directory forgets them. */
  readonly departed: Set<string>;
  live: readonly string[] | null;
}

const DEPARTED_LIMIT = 4096;

export class MemberView {
  private readonly leaseTimeoutMs: number;
  private readonly minStalePolls: number;
  private readonly kinds = new Map<string, KindState>();

  constructor(options: MemberViewOptions) {
    if (!(Number.isFinite(options.leaseTimeoutMs) && options.leaseTimeoutMs > 0)) {
      throw new RangeError(`leaseTimeoutMs must be a positive number, got ${options.leaseTimeoutMs}`);
    }
    this.leaseTimeoutMs = options.leaseTimeoutMs;
    this.minStalePolls = options.minStalePolls ?? 3;
  }

  /** The entries whose leases the next poll of `kind` should read: everything observed or tracked. */
  entriesToRead(kind: string, observed: readonly string[] | null): string[] {
    const state = this.kinds.get(kind);
    const entries = new Set(observed ?? []);
    if (state !== undefined) {
      for (const entry of state.tracked.keys()) entries.add(entry);
      for (const entry of state.departed) entries.delete(entry);
    }
    return [...entries];
  }

  /** Live entries of `kind` (sorted), or [] before its first poll. */
  live(kind: string): readonly string[] {
    return this.kinds.get(kind)?.live ?? [];
  }

  /**
   * Folds one poll of `kind` in at observer time `now` (the wall clock's milliseconds: first
   * sightings compare it with lease values). Returns the change, or null when the live set did
   * not change; the first poll of a kind always returns one.
   */
  update(now: number, kind: string, snapshot: KindSnapshot, directoryHealthy: boolean): MemberChange | null {
    let state = this.kinds.get(kind);
    if (state === undefined) {
      state = { tracked: new Map(), departed: new Set(), live: null };
      this.kinds.set(kind, state);
    }
    const removed = new Set(snapshot.removed ?? []);
    for (const entry of removed) {
      state.tracked.delete(entry);
      if (!state.departed.has(entry)) {
        state.departed.add(entry);
        if (state.departed.size > DEPARTED_LIMIT) {
          state.departed.delete(state.departed.values().next().value as string);
        }
      }
    }
    const firstSeen = new Set<string>();
    for (const entry of snapshot.observed ?? []) {
      if (state.departed.has(entry) || state.tracked.has(entry)) continue;
      const lease = snapshot.leases.get(entry);
      // A lease already older than the timeout when first seen belongs to a dead incarnation.
      const live = lease === undefined || now - lease < this.leaseTimeoutMs;
      state.tracked.set(entry, { lease: lease ?? -1, risenAt: now, stalePolls: 0, live });
      firstSeen.add(entry);
    }
    for (const [entry, t] of state.tracked) {
      if (firstSeen.has(entry)) continue;
      const lease = snapshot.leases.get(entry);
      if (lease !== undefined && lease > t.lease) {
        t.lease = lease;
        t.risenAt = now;
        t.stalePolls = 0;
        t.live = true;
      } else if (directoryHealthy) {
        t.stalePolls++;
        if (t.live && t.stalePolls >= this.minStalePolls && now - t.risenAt >= this.leaseTimeoutMs) {
          t.live = false;
        }
      }
    }
    const members = [...state.tracked].flatMap(([entry, t]) => (t.live ? [entry] : [])).sort();
    const before = state.live;
    state.live = members;
    if (before === null) return { kind, members, joined: members, left: [], expired: [] };
    const beforeSet = new Set(before);
    const nowSet = new Set(members);
    const joined = members.filter((m) => !beforeSet.has(m));
    const left = before.filter((m) => !nowSet.has(m));
    if (joined.length === 0 && left.length === 0) return null;
    return { kind, members, joined, left, expired: left.filter((m) => !removed.has(m)) };
  }
}

/** A directory entry is `<address>@<incarnation>`: each life of a process registers anew. */
export function withIncarnation(address: string, incarnation: string): string {
  return `${address}@${incarnation}`;
}

/** The addresses of directory entries, without their incarnation tags, deduplicated, in order. */
export function withoutIncarnations(entries: readonly string[]): string[] {
  const seen = new Set<string>();
  for (const entry of entries) {
    const at = entry.lastIndexOf('@');
    seen.add(at === -1 ? entry : entry.slice(0, at));
  }
  return [...seen];
}
