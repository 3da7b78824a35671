/**
 * Membership on top of Anna, with the original system's key scheme:
 *
 *   `${keyPrefix}observed${kind}` — SET of members that ever registered
 *   `${keyPrefix}removed${kind}`  — SET of members that deregistered
 *
 * A member is live while it is in `observed` and not in `removed` (a two-phase set: Anna
 * cannot delete). A removed member stays removed, so a process that comes back registers
 * under a new member string. Readers poll with GET and diff.
 */

import { type AnnaClient, AnnaError } from './client.ts';

/** A role's member list, or (a group id) the acceptors of that group. */
export type MemberKind =
  | 'Batchers'
  | 'Proposers'
  | 'ProxyLeaders'
  | 'AcceptorGroups'
  | 'Unbatchers'
  | `${number}`;

export interface MembershipChange {
  kind: MemberKind;
  /** The live members after the change, sorted. */
  members: string[];
  /** Members live now that were not at the previous poll (at the first poll: all of them). */
  joined: string[];
  /** Members live at the previous poll that are not any more. */
  left: string[];
}

export interface Subscription {
  /** Stops polling; no change is emitted after it returns. */
  stop(): void;
  /** Resolves after the first successful poll of every kind (rejects if stopped before). */
  ready: Promise<void>;
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

  /**
   * Polls the live set of every kind every `intervalMs` and calls `onChange` for each kind whose
   * live set changed since its previous successful poll (the first poll emits the initial set,
   * even an empty one). Errors go to `onError` (also an exception thrown by `onChange`), and
   * polling goes on. Polls never overlap: the next one starts `intervalMs` after the previous
   * one ended. Polling ends by itself once the client is closed (reported once per kind).
   */
  subscribe(
    kinds: MemberKind[],
    intervalMs: number,
    onChange: (change: MembershipChange) => void,
    onError?: (err: Error) => void,
  ): Subscription {
    if (!Number.isFinite(intervalMs) || intervalMs <= 0) {
      throw new RangeError(`subscribe: intervalMs must be a positive number, got ${intervalMs}`);
    }
    const unique = [...new Set(kinds)];
    const previous = new Map<MemberKind, string[]>();
    let stopped = false;
    let clientClosed = false;
    let timer: NodeJS.Timeout | undefined;
    let resolveReady: () => void = () => {};
    let rejectReady: (err: Error) => void = () => {};
    const ready = new Promise<void>((resolve, reject) => {
      resolveReady = resolve;
      rejectReady = reject;
    });
    // The caller may never await `ready`; a rejection on stop must not become unhandled.
    ready.catch(() => {});

    const report = (err: unknown): void => {
      if (stopped || onError === undefined) return;
      try {
        onError(err instanceof Error ? err : new Error(String(err)));
      } catch {
        // an onError that throws must not stop polling
      }
    };

    const pollKind = async (kind: MemberKind): Promise<void> => {
      let members: string[];
      try {
        members = await this.live(kind);
      } catch (err) {
        if (err instanceof AnnaError && err.code === 'CLOSED') clientClosed = true;
        report(err);
        return;
      }
      if (stopped) return;
      const before = previous.get(kind);
      previous.set(kind, members);
      if (previous.size === unique.length) resolveReady();
      const beforeSet = new Set(before ?? []);
      const nowSet = new Set(members);
      const joined = members.filter((m) => !beforeSet.has(m));
      const left = (before ?? []).filter((m) => !nowSet.has(m));
      if (before !== undefined && joined.length === 0 && left.length === 0) return;
      try {
        onChange({ kind, members, joined, left });
      } catch (err) {
        report(err);
      }
    };

    const poll = async (): Promise<void> => {
      timer = undefined;
      await Promise.all(unique.map(pollKind));
      // A closed client never answers again: stop instead of reporting it every interval.
      if (!stopped && !clientClosed) timer = setTimeout(() => void poll(), intervalMs);
    };

    if (unique.length === 0) resolveReady();
    void poll();

    return {
      ready,
      stop: () => {
        if (stopped) return;
        stopped = true;
        if (timer !== undefined) clearTimeout(timer);
        rejectReady(new Error('membership subscription stopped before its first complete poll'));
      },
    };
  }
}
