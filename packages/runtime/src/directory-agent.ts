import type { MemberKind, Membership } from '@paxos/anna-client';
import { type MemberChange, MemberView } from '@paxos/core';
import type { Metrics } from '@paxos/metrics';
import type { Logger } from 'pino';

export interface DirectoryAgentOptions {
  readonly membership: Membership;
  readonly pollMs: number;
  /** A peer whose lease has not risen for this long (and a few polls) is no longer routed to. */
  readonly leaseTimeoutMs: number;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Wall-clock milliseconds (leases are timestamps); injectable for tests. */
  readonly clock?: () => number;
}

interface Registration {
  readonly kind: MemberKind;
  readonly entry: string;
}

/**
 * Keeps this process in the directory and the directory's membership in this process, as one
 * poll loop. Each poll it raises the lease of every entry it registered, registers again any
 * entry the directory lost (a directory restart), writes again what it published, then reads
 * the kinds it watches and folds them into a `MemberView` (leases, not single polls, decide who
 * is gone). A poll that fails changes nothing: the last view stands until the directory answers.
 */
export class DirectoryAgent {
  readonly view: MemberView;
  private readonly registrations: Registration[] = [];
  private readonly watched = new Set<MemberKind>();
  private readonly seen = new Set<MemberKind>();
  private readonly published = new Map<string, { value: Uint8Array; timestamp: number }>();
  private readonly listeners: ((change: MemberChange) => void)[] = [];
  private readonly readyWaiters: { kinds: MemberKind[]; resolve: () => void }[] = [];
  private readonly clock: () => number;
  private lease = 0;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | null = null;
  private stopped = false;
  private leaving = false;
  private failing = false;

  constructor(private readonly options: DirectoryAgentOptions) {
    this.view = new MemberView({ leaseTimeoutMs: options.leaseTimeoutMs });
    this.clock = options.clock ?? Date.now;
  }

  /** Adds `entry` to `kind`'s observed set (with a fresh lease first) and keeps it there. */
  async register(kind: MemberKind, entry: string): Promise<void> {
    await this.options.membership.renewLease(entry, this.nextLease());
    await this.options.membership.register(kind, entry);
    this.registrations.push({ kind, entry });
    this.schedule();
  }

  /**
   * Writes a named LWW value and writes it again every poll, so it survives a directory restart.
   * Every writer of `name` uses the same timestamp, so equal values never conflict.
   */
  async publish(name: string, value: Uint8Array, timestamp = 1): Promise<void> {
    await this.options.membership.putValue(name, value, timestamp);
    this.published.set(name, { value, timestamp });
    this.schedule();
  }

  /** Calls `listener` with every change of a watched kind (the first poll of a kind included). */
  onChange(listener: (change: MemberChange) => void): void {
    this.listeners.push(listener);
  }

  /** Starts reading `kinds` every poll; resolves once each has been read successfully. */
  async watch(kinds: readonly MemberKind[]): Promise<void> {
    for (const kind of kinds) this.watched.add(kind);
    const pending = kinds.filter((k) => !this.seen.has(k));
    if (pending.length === 0) return;
    const ready = new Promise<void>((resolve) => this.readyWaiters.push({ kinds: pending, resolve }));
    this.pollSoon();
    await ready;
  }

  /** Stops raising leases and moves every registered entry to `removed` (a graceful leave). */
  async deregister(): Promise<void> {
    this.leaving = true;
    await Promise.all(
      this.registrations.map((r) =>
        this.options.membership.deregister(r.kind, r.entry).catch((err: Error) => {
          this.options.logger.warn({ kind: r.kind, err: err.message }, 'could not deregister');
        }),
      ),
    );
  }

  /** False from a failed poll until the next one succeeds (the directory unreachable). */
  get reachable(): boolean {
    return !this.failing;
  }

  get registered(): number {
    return this.registrations.length;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    for (const waiter of this.readyWaiters.splice(0)) waiter.resolve();
  }

  private nextLease(): number {
    this.lease = Math.max(this.lease + 1, this.clock());
    return this.lease;
  }

  private schedule(): void {
    if (this.stopped || this.timer !== undefined || this.polling !== null) return;
    this.timer = setTimeout(() => this.runPoll(), this.options.pollMs);
  }

  private pollSoon(): void {
    if (this.stopped || this.polling !== null) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.runPoll(), 0);
  }

  private runPoll(): void {
    this.timer = undefined;
    this.polling = this.poll().finally(() => {
      this.polling = null;
      this.schedule();
    });
  }

  private async poll(): Promise<void> {
    const { membership, logger } = this.options;
    const reads = new Map<MemberKind, ReturnType<Membership['read']>>();
    const read = (kind: MemberKind) => {
      let sets = reads.get(kind);
      if (sets === undefined) {
        sets = membership.read(kind);
        reads.set(kind, sets);
      }
      return sets;
    };
    try {
      // Polls only count against peers' leases when the directory holds state: ours was just
      // written (a failed write ends the poll), or, for a process without one, a watched kind exists.
      if (!this.leaving) await this.refresh(read);
      const healthy =
        (!this.leaving && this.registrations.length > 0) ||
        (await Promise.all([...this.watched].map(read))).some((sets) => sets.observed !== null);
      for (const kind of this.watched) {
        const sets = await read(kind);
        const entries = this.view.entriesToRead(kind, sets.observed);
        const leases = new Map<string, number>();
        await Promise.all(
          entries.map(async (entry) => {
            const lease = await membership.lease(entry);
            if (lease !== null) leases.set(entry, lease);
          }),
        );
        if (this.stopped) return;
        const change = this.view.update(this.clock(), kind, { ...sets, leases }, healthy);
        this.seen.add(kind);
        if (change !== null) this.report(change);
      }
      if (this.failing) logger.info('directory reachable again');
      this.failing = false;
      this.resolveReady();
    } catch (err) {
      if (this.stopped) return; // the directory client is closing with the process
      if (!this.failing) {
        logger.warn(
          { err: (err as Error).message },
          'directory poll failed; keeping the last view and retrying',
        );
      }
      this.failing = true;
    }
  }

  /** Raises our leases, registers again what the directory lost, writes again what we published. */
  private async refresh(read: (kind: MemberKind) => ReturnType<Membership['read']>): Promise<void> {
    const { membership, logger, metrics } = this.options;
    const lease = this.nextLease();
    await Promise.all([
      ...this.registrations.map((r) => membership.renewLease(r.entry, lease)),
      ...[...this.published].map(([name, p]) => membership.putValue(name, p.value, p.timestamp)),
    ]);
    for (const r of this.registrations) {
      const sets = await read(r.kind);
      if (sets.observed?.includes(r.entry)) continue;
      await membership.register(r.kind, r.entry);
      metrics.reregistered();
      logger.info({ kind: r.kind, entry: r.entry }, 'registered again: the directory had lost this entry');
    }
  }

  private report(change: MemberChange): void {
    if (change.joined.length > 0 || change.left.length > 0) {
      this.options.logger.info(
        { kind: change.kind, joined: change.joined, left: change.left, expired: change.expired },
        'membership changed',
      );
    }
    if (change.expired.length > 0) this.options.metrics.leasesExpired(change.expired.length);
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (err) {
        this.options.logger.error({ err }, 'membership listener failed');
      }
    }
  }

  private resolveReady(): void {
    for (let i = this.readyWaiters.length - 1; i >= 0; i--) {
      const waiter = this.readyWaiters[i] as (typeof this.readyWaiters)[number];
      if (waiter.kinds.every((k) => this.seen.has(k))) {
        this.readyWaiters.splice(i, 1);
        waiter.resolve();
      }
    }
  }
}
