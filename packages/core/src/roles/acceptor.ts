import { compareBallots, ZERO_BALLOT } from '../ballot.ts';
import { type Effect, Effects, type Role, type RoleEvent } from '../effects.ts';
import type { AcceptedEntry, Address, Ballot, Phase1a, Phase2a } from '../messages.ts';

export interface AcceptorOptions {
  readonly address: Address;
  readonly groupId: number;
  /** Index of this acceptor in its group; quorums count distinct ids. */
  readonly acceptorId: number;
  /** State recovered from durable storage: a restarted acceptor must answer as its old self. */
  readonly recovered?: AcceptorState;
}

export interface AcceptorState {
  readonly promised: Ballot;
  readonly watermark: number;
  readonly accepted: Iterable<AcceptedEntry>;
}

/**
 * The only role whose memory decides safety: it promises not to accept below a ballot and
 * remembers what it accepted. Until replicas exist, accepted entries are the log (design rule 9).
 */
export class Acceptor implements Role {
  readonly address: Address;
  readonly groupId: number;
  readonly acceptorId: number;
  private promisedBallot: Ballot = ZERO_BALLOT;
  private chosenWatermark = 0;
  private readonly acceptedBySlot = new Map<number, AcceptedEntry>();

  constructor(options: AcceptorOptions) {
    this.address = options.address;
    this.groupId = options.groupId;
    this.acceptorId = options.acceptorId;
    if (options.recovered !== undefined) {
      this.promisedBallot = options.recovered.promised;
      this.chosenWatermark = options.recovered.watermark;
      for (const entry of options.recovered.accepted) {
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

  accepted(slot: number): AcceptedEntry | undefined {
    return this.acceptedBySlot.get(slot);
  }

  start(): Effect[] {
    return [];
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
      default:
        break;
    }
    return fx.list;
  }

  private onPhase1a(fx: Effects, from: Address, msg: Phase1a): void {
    fx.inc('p1a');
    if (compareBallots(msg.ballot, this.promisedBallot) < 0) {
      fx.inc('p1b_preempted');
      fx.send(from, { type: 'Nack', slot: -1, ballot: msg.ballot, promised: this.promisedBallot });
      return;
    }
    this.promisedBallot = msg.ballot;
    // Slots below our watermark are chosen; the new leader need not hear about them.
    const fromSlot = Math.max(msg.fromSlot, this.chosenWatermark);
    const accepted: AcceptedEntry[] = [];
    for (const entry of this.acceptedBySlot.values()) {
      if (entry.slot >= fromSlot) accepted.push(entry);
    }
    accepted.sort((a, b) => a.slot - b.slot);
    fx.inc('p1b_success');
    fx.send(from, {
      type: 'Phase1b',
      ballot: msg.ballot,
      groupId: this.groupId,
      acceptorId: this.acceptorId,
      watermark: this.chosenWatermark,
      accepted,
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
    for (const slot of this.acceptedBySlot.keys()) {
      if (slot >= watermark) break;
      this.acceptedBySlot.delete(slot);
    }
  }

  private onPhase2a(fx: Effects, from: Address, msg: Phase2a): void {
    if (compareBallots(msg.ballot, this.promisedBallot) < 0) {
      fx.inc('p2b_preempted');
      fx.send(from, { type: 'Nack', slot: msg.slot, ballot: msg.ballot, promised: this.promisedBallot });
      return;
    }
    this.promisedBallot = msg.ballot;
    if (msg.watermark > this.chosenWatermark) this.advanceWatermark(msg.watermark);
    this.acceptedBySlot.set(msg.slot, { slot: msg.slot, ballot: msg.ballot, value: msg.value });
    fx.send(from, {
      type: 'Phase2b',
      slot: msg.slot,
      ballot: msg.ballot,
      groupId: this.groupId,
      acceptorId: this.acceptorId,
    });
  }
}
