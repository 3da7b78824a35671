import { ballotEquals, compareBallots } from '../ballot.ts';
import { quorumForGroupSize } from '../configuration.ts';
import { type Effect, Effects, type Members, type Role, type RoleEvent } from '../effects.ts';
import type { Address, Ballot, ConfigStamp, Nack, Phase2a, Phase2b, Value } from '../messages.ts';

export interface ProxyLeaderTiming {
  /** Phase-2a goes to f+1 acceptors first; to all 2f+1 if the slot is not chosen within this. */
  readonly thriftyTimeoutMs: number;
  /**
   * An acceptor that let a thrifty send time out is left out of thrifty sends for this long (or
   * until it votes again), so a dead or slow acceptor costs one timeout, not one per slot.
   */
  readonly suspectMs: number;
}

export const DEFAULT_PROXY_LEADER_TIMING: ProxyLeaderTiming = { thriftyTimeoutMs: 50, suspectMs: 1000 };

export interface ProxyLeaderOptions {
  readonly address: Address;
  readonly members: Pick<Members, 'unbatchers'>;
  readonly timing?: Partial<ProxyLeaderTiming>;
}

/** One slot this proxy leader is getting chosen. Exposed to tests that plant vote-counting bugs. */
export interface InFlightSlot {
  readonly slot: number;
  readonly ballot: Ballot;
  readonly value: Value;
  readonly leader: Address;
  readonly groupId: number;
  readonly acceptors: readonly Address[];
  readonly watermark: number;
  readonly config: ConfigStamp;
  /** Indexes in `acceptors` of the acceptors that voted. */
  readonly voters: Set<number>;
  readonly startedAt: number;
  /** The indexes in `acceptors` the thrifty send went to. */
  readonly thrifty: readonly number[];
  sentToAll: boolean;
}

const TIMER_THRIFTY = 'thrifty';

/**
 * Proxy leader: takes the phase-2 work off the leader. Stateless apart from the slots in flight;
 * if it dies the leader re-proposes through another one.
 */
export class ProxyLeader implements Role {
  readonly address: Address;
  private readonly timing: ProxyLeaderTiming;
  private members: Pick<Members, 'unbatchers'>;
  /** Kept in arrival order so the thrifty scan stops at the first young slot. */
  private readonly inflight = new Map<number, InFlightSlot>();
  private unbatcherCursor = 0;
  private scanArmed = false;
  /** Acceptors that let a thrifty send time out, and until when they are passed over. */
  private readonly suspectUntil = new Map<Address, number>();

  constructor(options: ProxyLeaderOptions) {
    this.address = options.address;
    this.members = options.members;
    this.timing = { ...DEFAULT_PROXY_LEADER_TIMING, ...options.timing };
  }

  get inflightSlots(): number {
    return this.inflight.size;
  }

  start(): Effect[] {
    return [];
  }

  step(now: number, event: RoleEvent): Effect[] {
    const fx = new Effects();
    switch (event.type) {
      case 'message': {
        const { from, message } = event;
        switch (message.type) {
          case 'Phase2a':
            this.onPhase2a(fx, now, from, message);
            break;
          case 'Phase2b':
            this.onPhase2b(fx, now, from, message);
            break;
          case 'Nack':
            this.onNack(fx, message);
            break;
          default:
            break;
        }
        break;
      }
      case 'timer':
        if (event.name === TIMER_THRIFTY) this.onThriftyScan(fx, now);
        break;
      case 'membership':
        this.members = { ...this.members, ...event.members };
        break;
    }
    return fx.list;
  }

  private onPhase2a(fx: Effects, now: number, from: Address, msg: Phase2a): void {
    const existing = this.inflight.get(msg.slot);
    if (existing !== undefined && ballotEquals(existing.ballot, msg.ballot)) {
      // The leader resent: our earlier phase-2a may have been lost, so ask everyone this time.
      this.sendToAcceptors(fx, existing, existing.acceptors.keys());
      existing.sentToAll = true;
      fx.inc('retransmissions');
      return;
    }
    if (existing !== undefined && compareBallots(existing.ballot, msg.ballot) > 0) return;
    if (msg.acceptors.length === 0) return;
    // The group's own sequence of slots (every G-th slot is its), so that the rotation below
    // moves on with each of them whatever G is: with G a multiple of the group size, rotating by
    // the slot itself would always pick the same f+1.
    const turn = Math.floor(msg.slot / Math.max(1, msg.config.groups.length));
    const thrifty = this.thriftyAcceptors(now, turn, msg.acceptors);
    const entry: InFlightSlot = {
      slot: msg.slot,
      ballot: msg.ballot,
      value: msg.value,
      leader: from,
      groupId: msg.groupId,
      acceptors: msg.acceptors,
      watermark: msg.watermark,
      config: msg.config,
      voters: new Set(),
      startedAt: now,
      thrifty,
      sentToAll: false,
    };
    this.inflight.delete(msg.slot);
    this.inflight.set(msg.slot, entry);
    this.sendToAcceptors(fx, entry, thrifty);
    if (!this.scanArmed) {
      this.scanArmed = true;
      fx.setTimer(TIMER_THRIFTY, this.timing.thriftyTimeoutMs);
    }
    fx.gauge('inflight_slots', this.inflight.size);
  }

  private onPhase2b(fx: Effects, now: number, from: Address, msg: Phase2b): void {
    const entry = this.inflight.get(msg.slot);
    if (entry === undefined || !ballotEquals(entry.ballot, msg.ballot) || entry.groupId !== msg.groupId)
      return;
    // Votes are counted by index in the group: under matchmakers the stamp lists each index's
    // acceptor id (a replacement has a new id); otherwise the id is the index.
    const ids = entry.config.acceptorIds;
    const index = ids.length > 0 ? ids.indexOf(msg.acceptorId) : msg.acceptorId;
    if (index < 0 || entry.acceptors[index] !== from) return;
    this.suspectUntil.delete(from);
    if (this.countVote(entry, index) < quorumForGroupSize(entry.acceptors.length)) return;

    this.inflight.delete(msg.slot);
    fx.observe('phase2_latency_ms', now - entry.startedAt);
    fx.inc('slots_chosen');
    const unbatchers = this.members.unbatchers;
    if (unbatchers.length > 0) {
      const unbatcher = unbatchers[this.unbatcherCursor++ % unbatchers.length] as Address;
      fx.send(unbatcher, { type: 'Chosen', slot: entry.slot, ballot: entry.ballot, value: entry.value });
    }
    fx.send(entry.leader, { type: 'Chosen', slot: entry.slot, ballot: entry.ballot, value: null });
    fx.gauge('inflight_slots', this.inflight.size);
  }

  /**
   * Records a vote and returns how many count towards the quorum: distinct acceptors, never
   * messages, since the network may duplicate a phase-2b (design rule 4).
   */
  protected countVote(entry: InFlightSlot, index: number): number {
    entry.voters.add(index);
    return entry.voters.size;
  }

  private onNack(fx: Effects, msg: Nack): void {
    const entry = this.inflight.get(msg.slot);
    if (entry === undefined || !ballotEquals(entry.ballot, msg.ballot)) return;
    this.inflight.delete(msg.slot);
    fx.inc('p2b_preempted');
    fx.send(entry.leader, {
      type: 'Nack',
      slot: msg.slot,
      ballot: msg.ballot,
      promised: msg.promised,
      retired: msg.retired,
    });
    fx.gauge('inflight_slots', this.inflight.size);
  }

  private onThriftyScan(fx: Effects, now: number): void {
    for (const [acceptor, until] of this.suspectUntil) if (until <= now) this.suspectUntil.delete(acceptor);
    for (const entry of this.inflight.values()) {
      if (now - entry.startedAt < this.timing.thriftyTimeoutMs) break;
      if (entry.sentToAll) continue;
      entry.sentToAll = true;
      for (const id of entry.thrifty) {
        if (!entry.voters.has(id))
          this.suspectUntil.set(entry.acceptors[id] as Address, now + this.timing.suspectMs);
      }
      // The ones the thrifty send skipped.
      this.sendToAcceptors(
        fx,
        entry,
        [...entry.acceptors.keys()].filter((id) => !entry.thrifty.includes(id)),
      );
    }
    this.scanArmed = this.inflight.size > 0;
    if (this.scanArmed) fx.setTimer(TIMER_THRIFTY, this.timing.thriftyTimeoutMs);
  }

  /**
   * Thrifty: f+1 acceptors, rotating with the group's turn so load spreads across it, passing over
   * suspected ones while enough others remain.
   */
  private thriftyAcceptors(now: number, turn: number, acceptors: readonly Address[]): number[] {
    const n = acceptors.length;
    const quorum = quorumForGroupSize(n);
    const chosen: number[] = [];
    const suspected: number[] = [];
    for (let i = 0; i < n; i++) {
      const id = (turn + i) % n;
      const until = this.suspectUntil.get(acceptors[id] as Address);
      if (until !== undefined && now < until) suspected.push(id);
      else if (chosen.length < quorum) chosen.push(id);
    }
    for (const id of suspected) if (chosen.length < quorum) chosen.push(id);
    return chosen;
  }

  private sendToAcceptors(fx: Effects, entry: InFlightSlot, ids: Iterable<number>): void {
    const phase2a: Phase2a = {
      type: 'Phase2a',
      slot: entry.slot,
      ballot: entry.ballot,
      value: entry.value,
      watermark: entry.watermark,
      groupId: entry.groupId,
      acceptors: [],
      config: entry.config,
    };
    for (const id of ids) {
      const acceptor = entry.acceptors[id] as Address;
      // An acceptor whose address the leader does not know yet (it is not in the directory).
      if (acceptor !== '') fx.send(acceptor, phase2a);
    }
  }
}
