import type { KindSnapshot } from '@paxos/core';

/**
 * The simulated directory: what the Anna-compatible server keeps (per kind an `observed` and a
 * `removed` set, per entry an LWW lease), in memory, so a restart forgets everything, as the real
 * one does.
 */
export class SimDirectory {
  private readonly observed = new Map<string, Set<string>>();
  private readonly removed = new Map<string, Set<string>>();
  private readonly leases = new Map<string, number>();

  register(kind: string, entry: string): void {
    setOf(this.observed, kind).add(entry);
  }

  deregister(kind: string, entry: string): void {
    setOf(this.removed, kind).add(entry);
  }

  isObserved(kind: string, entry: string): boolean {
    return this.observed.get(kind)?.has(entry) ?? false;
  }

  /** LWW: the higher value wins. */
  putLease(entry: string, value: number): void {
    if ((this.leases.get(entry) ?? -1) < value) this.leases.set(entry, value);
  }

  lease(entry: string): number | undefined {
    return this.leases.get(entry);
  }

  observedOf(kind: string): readonly string[] | null {
    const set = this.observed.get(kind);
    return set === undefined ? null : [...set];
  }

  /** One poll of `kind`: its two sets and the leases of `entries`. */
  read(kind: string, entries: readonly string[]): KindSnapshot {
    const removed = this.removed.get(kind);
    const leases = new Map<string, number>();
    for (const entry of entries) {
      const lease = this.leases.get(entry);
      if (lease !== undefined) leases.set(entry, lease);
    }
    return { observed: this.observedOf(kind), removed: removed === undefined ? null : [...removed], leases };
  }

  /** A restart: everything is gone. */
  clear(): void {
    this.observed.clear();
    this.removed.clear();
    this.leases.clear();
  }
}

function setOf(map: Map<string, Set<string>>, key: string): Set<string> {
  let set = map.get(key);
  if (set === undefined) {
    set = new Set();
    map.set(key, set);
  }
  return set;
}
