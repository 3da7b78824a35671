import { compareBallots, ZERO_BALLOT } from '../ballot.ts';
import { groupIdForSlot } from '../configuration.ts';
import { type Effect, Effects, type Role, type RoleEvent } from '../effects.ts';
import type {
  AcceptedEntry,
  Address,
  Ballot,
  ConfigStamp,
  Phase1a,
  Phase2a,
  Retire,
  WatermarkA,
} from '../messages.ts';
import { valueSizeEstimate } from '../values.ts';

export interface AcceptorOptions {
  readonly address: Address;
  readonly groupId: number;
  /** Index of this acceptor in its group; quorums count distinct ids. */
  readonly acceptorId: number;
  /** State recovered from durable storage: a restarted acceptor must answer as its old self. */
  readonly recovered?: AcceptorState;
  /** Phase-1 pages hold at most this many entries … */
  readonly phase1PageEntries?: number;
  /** … and about this many bytes, far below the frame limit. */
  readonly phase1PageBytes?: number;
}

export interface AcceptorState {
  readonly promised: Ballot;
  readonly watermark: number;
  readonly accepted: Iterable<AcceptedEntry>;
  /** The configuration this acceptor serves, once a leader told it (null before). */
  readonly config?: ConfigStamp | null;
  /** A `Retire` was obeyed: the acceptor refuses everything for good (absent: false). */
  readonly retired?: boolean;
}

export const DEFAULT_PHASE1_PAGE_ENTRIES = 2048;
export const DEFAULT_PHASE1_PAGE_BYTES = 1024 * 1024;

/**
 * The only role whose memory decides safety: it promises not to accept below a ballot and
 * remembers what it accepted. Until replicas exist, accepted entries are the log (design rule 9).
 * It serves one configuration: the first stamped phase-1a, phase-2a or watermark pins it, and it
 * refuses messages of another configuration and slots its group does not own.
 *
 * Issue 16 adds a durable watermark (`WatermarkA` → `WatermarkB`) and retirement (`Retire` →
 * `RetireB`): a retired acceptor answers every phase-1a, phase-2a and watermark with
 * `Nack { retired: true }` and never promises or votes again.
 */
export class Acceptor implements Role {
  readonly address: Address;
  readonly groupId: number;
  readonly acceptorId: number;
  private readonly pageEntries: number;
  private readonly pageBytes: number;
  private promisedBallot: Ballot = ZERO_BALLOT;
  private chosenWatermark = 0;
  private acceptedEndSlot = 0;
  private pinned: ConfigStamp | null = null;
  private isRetired = false;
  private readonly acceptedBySlot = new Map<number, AcceptedEntry>();
  /**
   * The slots phase 1 of one ballot pages through, sorted once. Entries below that ballot can no
   * longer change once it is promised, so later pages read the same list.
   */
  private phase1Slots: { readonly ballot: Ballot; readonly slots: readonly number[] } | null = null;

  constructor(options: AcceptorOptions) {
    this.address = options.address;
    this.groupId = options.groupId;
    this.acceptorId = options.acceptorId;
    this.pageEntries = options.phase1PageEntries ?? DEFAULT_PHASE1_PAGE_ENTRIES;
    this.pageBytes = options.phase1PageBytes ?? DEFAULT_PHASE1_PAGE_BYTES;
    const recovered = options.recovered;
    if (recovered !== undefined) {
      this.promisedBallot = recovered.promised;
      this.chosenWatermark = recovered.watermark;
      this.pinned = recovered.config ?? null;
      this.isRetired = recovered.retired ?? false;
      for (const entry of recovered.accepted) {
        this.acceptedEndSlot = Math.max(this.acceptedEndSlot, entry.slot + 1);
        if (entry.slot >= this.chosenWatermark) this.acceptedBySlot.set(entry.slot, entry);
      }
    }
  }

  /** Slots accepted and still in memory (those at or above the watermark, and the latest ones). */
  get acceptedInMemory(): number {
    return this.acceptedBySlot.size;
  }

  get promised(): Ballot {
    return this.promisedBallot;
  }

  get watermark(): number {
    return this.chosenWatermark;
  }

  /** The configuration this acceptor serves, or null until a leader stamps one. */
  get config(): ConfigStamp | null {
    return this.pinned;
  }

  /** Whether this acceptor obeyed a `Retire`: it refuses everything from then on. */
  get retired(): boolean {
    return this.isRetired;
  }

  accepted(slot: number): AcceptedEntry | undefined {
    return this.acceptedBySlot.get(slot);
  }

  start(): Effect[] {
    const fx = new Effects();
    fx.gauge('acceptor_retired', this.isRetired ? 1 : 0);
    return fx.list;
  }

  step(_now: number, event: RoleEvent): Effect[] {
    const fx = new Effects();
    if (event.type !== 'message') return fx.list;
    const { from, message } = event;
    switch (message.type) {
      case 'Phase1a':
        this.onPhase1a(fx, from, message);
        break;
      case 'Phase2a':
        this.onPhase2a(fx, from, message);
        break;
      case 'WatermarkA':
        this.onWatermarkA(fx, from, message);
        break;
      case 'Retire':
        this.onRetire(fx, from, message);
        break;
      default:
        break;
    }
    return fx.list;
  }

  /**
   * Whether a message of configuration `stamp` (for `slot`, in phase 2) may be served; without
   * matchmakers, the first stamp seen is pinned. A leader of another configuration maps slots to other groups, and a
   * slot of another group is never this group's to accept: both are refused. Protected so tests
   * can plant the unpinned acceptor of old, which served any configuration.
   */
  protected admits(stamp: ConfigStamp, slot: number | null): boolean {
    if (!stamp.groups.includes(this.groupId)) return false;
    if (stamp.acceptorIds.length > 0) {
      // Under matchmakers each ballot has its own configuration, recorded before the ballot is
      // used: no pin, but a configuration that does not list this acceptor (it was replaced or
      // removed there) gets nothing from it.
      if (!stamp.acceptorIds.includes(this.acceptorId)) return false;
    } else if (this.pinned === null) {
      this.pinned = { id: stamp.id, groups: [...stamp.groups], acceptorIds: [] };
    } else if (this.pinned.id !== stamp.id) {
      return false;
    }
    return slot === null || groupIdForSlot(stamp, slot) === this.groupId;
  }

  /**
   * A retired acceptor answers every phase message with `Nack { retired }`, before any other
   * check: it never promises or votes again, and the sender learns why.
   */
  private refusedAsRetired(fx: Effects, from: Address, slot: number, ballot: Ballot): boolean {
    if (!this.isRetired) return false;
    fx.inc('rejected_messages');
    fx.send(from, { type: 'Nack', slot, ballot, promised: this.promisedBallot, retired: true });
    return true;
  }

  private onPhase1a(fx: Effects, from: Address, msg: Phase1a): void {
    fx.inc('p1a');
    if (this.refusedAsRetired(fx, from, -1, msg.ballot)) return;
    if (!this.admits(msg.config, null)) {
      fx.inc('rejected_messages');
      return;
    }
    if (compareBallots(msg.ballot, this.promisedBallot) < 0) {
      fx.inc('p1b_preempted');
      fx.send(from, {
        type: 'Nack',
        slot: -1,
        ballot: msg.ballot,
        promised: this.promisedBallot,
        retired: false,
      });
      return;
    }
    this.promisedBallot = msg.ballot;
    fx.inc('p1b_success');
    this.sendPage(fx, from, msg.ballot, msg.fromSlot);
  }

  /** One page of phase 1: accepted slots from `fromSlot` (slots below the watermark are chosen). */
  private sendPage(fx: Effects, to: Address, ballot: Ballot, fromSlot: number): void {
    let cached = this.phase1Slots;
    if (cached === null || compareBallots(cached.ballot, ballot) !== 0) {
      const slots = [...this.acceptedBySlot.keys()].sort((a, b) => a - b);
      cached = { ballot, slots };
      this.phase1Slots = cached;
    }
    const slots = cached.slots;
    const start = Math.max(fromSlot, this.chosenWatermark);
    let i = lowerBound(slots, start);
    const accepted: AcceptedEntry[] = [];
    let bytes = 0;
    for (; i < slots.length; i++) {
      if (accepted.length >= this.pageEntries || (accepted.length > 0 && bytes >= this.pageBytes)) break;
      const entry = this.acceptedBySlot.get(slots[i] as number);
      if (entry === undefined) continue; // pruned by a watermark since the list was made
      accepted.push(entry);
      bytes += valueSizeEstimate(entry.value) + 24;
    }
    const more = i < slots.length;
    fx.send(to, {
      type: 'Phase1b',
      ballot,
      groupId: this.groupId,
      acceptorId: this.acceptorId,
      watermark: this.chosenWatermark,
      accepted,
      fromSlot,
      nextSlot: more ? (slots[i] as number) : 0,
      more,
      acceptedEnd: this.acceptedEndSlot,
    });
  }

  /**
   * Slots below the watermark are chosen and phase 1 never reports them, so memory keeps only
   * the rest; the durable log (see the runtime) keeps everything. Slots arrive roughly in
   * order, so the scan stops at the first entry still needed: each entry is visited about once,
   * and one that arrived out of order goes when the entries before it have.
   */
  private advanceWatermark(watermark: number): void {
    this.chosenWatermark = watermark;
    const paged = this.phase1Slots?.slots;
    if (paged !== undefined && (paged.length === 0 || (paged[paged.length - 1] as number) < watermark))
      this.phase1Slots = null;
    for (const slot of this.acceptedBySlot.keys()) {
      if (slot >= watermark) break;
      this.acceptedBySlot.delete(slot);
    }
  }

  private onPhase2a(fx: Effects, from: Address, msg: Phase2a): void {
    if (this.refusedAsRetired(fx, from, msg.slot, msg.ballot)) return;
    if (!this.admits(msg.config, msg.slot)) {
      fx.inc('rejected_messages');
      return;
    }
    if (compareBallots(msg.ballot, this.promisedBallot) < 0) {
      fx.inc('p2b_preempted');
      fx.send(from, {
        type: 'Nack',
        slot: msg.slot,
        ballot: msg.ballot,
        promised: this.promisedBallot,
        retired: false,
      });
      return;
    }
    this.promisedBallot = msg.ballot;
    if (msg.watermark > this.chosenWatermark) this.advanceWatermark(msg.watermark);
    this.acceptedBySlot.set(msg.slot, { slot: msg.slot, ballot: msg.ballot, value: msg.value });
    if (msg.slot >= this.acceptedEndSlot) this.acceptedEndSlot = msg.slot + 1;
    fx.send(from, {
      type: 'Phase2b',
      slot: msg.slot,
      ballot: msg.ballot,
      groupId: this.groupId,
      acceptorId: this.acceptorId,
    });
  }

  /**
   * Every slot below `msg.watermark` is chosen: raise the watermark (pruning as a phase-2a's
   * does) and answer with it. Admitted as a phase-1a is; no ballot check, since what is chosen is
   * chosen in every ballot, and the promise is left as it is. The durable wrapper logs the raise
   * and holds the `WatermarkB` until it is on disk.
   */
  private onWatermarkA(fx: Effects, from: Address, msg: WatermarkA): void {
    if (this.refusedAsRetired(fx, from, -1, msg.ballot)) return;
    if (!this.admits(msg.config, null)) {
      fx.inc('rejected_messages');
      return;
    }
    if (msg.watermark > this.chosenWatermark) this.advanceWatermark(msg.watermark);
    fx.send(from, {
      type: 'WatermarkB',
      groupId: this.groupId,
      acceptorId: this.acceptorId,
      watermark: this.chosenWatermark,
    });
  }

  /**
   * Retire, if addressed to this acceptor (a `Retire` for another identity, say the one that
   * replaced it, is refused): from now on every phase message gets `Nack { retired }`. Sent only
   * once no live configuration lists this acceptor, so no ballot check; a repeated one is
   * answered again. The durable wrapper logs it and holds the `RetireB` until it is on disk.
   */
  private onRetire(fx: Effects, from: Address, msg: Retire): void {
    if (msg.groupId !== this.groupId || msg.acceptorId !== this.acceptorId) {
      fx.inc('rejected_messages');
      return;
    }
    this.isRetired = true;
    fx.gauge('acceptor_retired', 1);
    fx.send(from, { type: 'RetireB', groupId: this.groupId, acceptorId: this.acceptorId });
  }
}

/** The first index of sorted `values` holding a value ≥ `target`. */
function lowerBound(values: readonly number[], target: number): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((values[mid] as number) < target) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
