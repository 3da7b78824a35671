import { ballotEquals, compareBallots, maxBallot, ZERO_BALLOT } from '../ballot.ts';
import {
  type AcceptorGroup,
  type Configuration,
  groupForSlot,
  quorumSize,
  validateConfiguration,
} from '../configuration.ts';
import { type Effect, Effects, type Members, type Role, type RoleEvent } from '../effects.ts';
import {
  type AcceptedEntry,
  type Address,
  type Ballot,
  type Chosen,
  type ClientBatch,
  type Heartbeat,
  type LeaderInfo,
  type Nack,
  NOOP,
  type Phase1b,
  type Value,
} from '../messages.ts';

export interface ProposerTiming {
  /** How often the leader tells proposers and batchers it is alive. */
  readonly heartbeatIntervalMs: number;
  /** Silence from the leader after which a follower runs for election (plus jitter). */
  readonly electionTimeoutMs: number;
  /** Random extra wait, in [0, jitter), so proposers that lose a duel don't collide again. */
  readonly electionJitterMs: number;
  /** Resend phase-1a to acceptors that have not answered yet. */
  readonly phase1RetryMs: number;
  /** A slot not chosen within this is proposed again (through another proxy leader). */
  readonly resendTimeoutMs: number;
}

export const DEFAULT_PROPOSER_TIMING: ProposerTiming = {
  heartbeatIntervalMs: 100,
  electionTimeoutMs: 500,
  electionJitterMs: 500,
  phase1RetryMs: 200,
  resendTimeoutMs: 400,
};

export interface ProposerOptions {
  readonly address: Address;
  /** Unique per process incarnation: a restarted proposer must never reuse an old ballot. */
  readonly proposerId: number;
  readonly config: Configuration;
  readonly members: Pick<Members, 'proposers' | 'batchers' | 'proxyLeaders'>;
  /** Injected randomness in [0, 1). */
  readonly random: () => number;
  readonly timing?: Partial<ProposerTiming>;
  /** Batches held while phase 1 runs; beyond this they are dropped (clients resend). */
  readonly maxPendingBatches?: number;
}

export type ProposerStatus = 'follower' | 'candidate' | 'leader';

interface Outstanding {
  readonly value: Value;
  readonly group: AcceptorGroup;
  sentAt: number;
  readonly firstSentAt: number;
}

interface Phase1State {
  readonly ballot: Ballot;
  readonly fromSlot: number;
  /** groupId → acceptorId → promise; quorums count distinct acceptors. */
  readonly promises: Map<number, Map<number, Phase1b>>;
}

const TIMER_ELECTION = 'election';
const TIMER_HEARTBEAT = 'heartbeat';
const TIMER_PHASE1 = 'phase1Retry';
const TIMER_RESEND = 'resend';

/**
 * Proposer: one of them leads. The leader assigns slots to batches, sends each slot's phase-2a
 * through a proxy leader, re-proposes slots not chosen in time, and tracks the chosen watermark.
 * Followers watch the leader's heartbeats and run phase 1 with a higher ballot when it falls silent.
 */
export class Proposer implements Role {
  readonly address: Address;
  readonly proposerId: number;
  readonly config: Configuration;
  protected readonly timing: ProposerTiming;
  private readonly random: () => number;
  private readonly maxPendingBatches: number;
  private members: Pick<Members, 'proposers' | 'batchers' | 'proxyLeaders'>;

  private statusValue: ProposerStatus = 'follower';
  /** Our ballot while candidate or leader. */
  private ballot: Ballot = ZERO_BALLOT;
  /** Highest ballot seen anywhere; a new election picks a round above it. */
  private highestSeen: Ballot = ZERO_BALLOT;
  private knownLeader: Address | null = null;
  private knownLeaderBallot: Ballot = ZERO_BALLOT;
  private phase1: Phase1State | null = null;
  private pendingBatches: ClientBatch[] = [];

  // Leader state.
  private nextSlot = 0;
  private chosenWatermark = 0;
  private readonly chosenAbove = new Set<number>();
  private readonly outstanding = new Map<number, Outstanding>();
  private proxyCursor = 0;

  constructor(options: ProposerOptions) {
    validateConfiguration(options.config);
    this.address = options.address;
    this.proposerId = options.proposerId;
    this.config = options.config;
    this.members = options.members;
    this.random = options.random;
    this.timing = { ...DEFAULT_PROPOSER_TIMING, ...options.timing };
    this.maxPendingBatches = options.maxPendingBatches ?? 1024;
  }

  get status(): ProposerStatus {
    return this.statusValue;
  }
  get currentBallot(): Ballot {
    return this.ballot;
  }
  get watermark(): number {
    return this.chosenWatermark;
  }
  get leader(): Address | null {
    return this.statusValue === 'leader' ? this.address : this.knownLeader;
  }
  get inflightSlots(): number {
    return this.outstanding.size;
  }

  start(_now: number): Effect[] {
    const fx = new Effects();
    // The first election waits only the jitter, so a fresh cluster gets a leader quickly.
    fx.setTimer(TIMER_ELECTION, Math.floor(this.random() * this.timing.electionJitterMs) + 1);
    fx.gauge('is_leader', 0);
    return fx.list;
  }

  step(now: number, event: RoleEvent): Effect[] {
    const fx = new Effects();
    switch (event.type) {
      case 'message': {
        const { from, message } = event;
        switch (message.type) {
          case 'ClientBatch':
            this.onClientBatch(fx, now, from, message);
            break;
          case 'Phase1b':
            this.onPhase1b(fx, now, from, message);
            break;
          case 'Chosen':
            this.onChosen(fx, now, message);
            break;
          case 'Nack':
            this.onNack(fx, message);
            break;
          case 'Heartbeat':
            this.onHeartbeat(fx, from, message);
            break;
          case 'LeaderInfo':
            this.onLeaderInfo(message);
            break;
          default:
            break;
        }
        break;
      }
      case 'timer':
        this.onTimer(fx, now, event.name);
        break;
      case 'membership':
        this.members = { ...this.members, ...event.members };
        break;
    }
    return fx.list;
  }

  // ---- message handlers -------------------------------------------------------------------

  private onClientBatch(fx: Effects, now: number, from: Address, msg: ClientBatch): void {
    if (this.statusValue === 'leader') {
      fx.observe('batch_size', msg.commands.length);
      this.propose(fx, now, this.nextSlot++, { kind: 'batch', commands: msg.commands });
      return;
    }
    if (this.statusValue === 'candidate') {
      if (this.pendingBatches.length < this.maxPendingBatches) this.pendingBatches.push(msg);
      return;
    }
    // A follower passes the batch on once and tells the batcher where the leader is.
    if (this.knownLeader !== null && this.knownLeader !== this.address) {
      if (!msg.forwarded) {
        fx.send(this.knownLeader, { ...msg, forwarded: true });
        fx.send(from, { type: 'LeaderInfo', leader: this.knownLeader, ballot: this.knownLeaderBallot });
      }
    }
  }

  private onPhase1b(fx: Effects, now: number, from: Address, msg: Phase1b): void {
    this.highestSeen = maxBallot(this.highestSeen, msg.ballot);
    const phase1 = this.phase1;
    if (this.statusValue !== 'candidate' || phase1 === null || !ballotEquals(msg.ballot, phase1.ballot))
      return;
    const group = this.config.groups.find((g) => g.groupId === msg.groupId);
    if (group === undefined || group.acceptors[msg.acceptorId] !== from) return;
    let promises = phase1.promises.get(msg.groupId);
    if (promises === undefined) {
      promises = new Map();
      phase1.promises.set(msg.groupId, promises);
    }
    promises.set(msg.acceptorId, msg);
    const quorum = quorumSize(this.config);
    for (const g of this.config.groups) {
      if ((phase1.promises.get(g.groupId)?.size ?? 0) < quorum) return;
    }
    this.becomeLeader(fx, now, phase1);
  }

  private onChosen(fx: Effects, now: number, msg: Chosen): void {
    if (msg.slot < this.chosenWatermark || this.chosenAbove.has(msg.slot)) return;
    const pending = this.outstanding.get(msg.slot);
    if (pending !== undefined) {
      fx.observe('phase2_latency_ms', now - pending.firstSentAt);
      this.outstanding.delete(msg.slot);
    }
    this.chosenAbove.add(msg.slot);
    fx.inc('slots_chosen');
    const before = this.chosenWatermark;
    while (this.chosenAbove.delete(this.chosenWatermark)) this.chosenWatermark++;
    if (this.chosenWatermark !== before) fx.gauge('chosen_watermark', this.chosenWatermark);
    fx.gauge('inflight_slots', this.outstanding.size);
  }

  private onNack(fx: Effects, msg: Nack): void {
    this.highestSeen = maxBallot(this.highestSeen, msg.promised);
    if (this.statusValue === 'follower') return;
    if (compareBallots(msg.promised, this.ballot) > 0) {
      if (this.statusValue === 'candidate') fx.inc('p1b_preempted');
      this.stepDown(fx, null, msg.promised);
    }
  }

  private onHeartbeat(fx: Effects, from: Address, msg: Heartbeat): void {
    fx.inc('leader_heartbeat_received');
    this.highestSeen = maxBallot(this.highestSeen, msg.ballot);
    if (msg.watermark > this.chosenWatermark && this.statusValue !== 'leader') {
      this.chosenWatermark = msg.watermark;
    }
    if (this.statusValue !== 'follower') {
      if (compareBallots(msg.ballot, this.ballot) > 0) {
        this.stepDown(fx, from, msg.ballot);
      } else if (this.statusValue === 'leader' && compareBallots(msg.ballot, this.ballot) < 0) {
        // A stale leader is still talking: tell it who leads now.
        fx.send(from, { type: 'Heartbeat', ballot: this.ballot, watermark: this.chosenWatermark });
      }
      return;
    }
    if (compareBallots(msg.ballot, this.knownLeaderBallot) >= 0) {
      this.knownLeader = from;
      this.knownLeaderBallot = msg.ballot;
      this.armElectionTimer(fx);
    }
  }

  private onLeaderInfo(msg: LeaderInfo): void {
    this.highestSeen = maxBallot(this.highestSeen, msg.ballot);
  }

  private onTimer(fx: Effects, now: number, name: string): void {
    switch (name) {
      case TIMER_ELECTION:
        if (this.statusValue === 'follower') this.startElection(fx);
        break;
      case TIMER_PHASE1:
        if (this.statusValue === 'candidate') this.sendPhase1a(fx);
        break;
      case TIMER_HEARTBEAT:
        if (this.statusValue === 'leader') this.sendHeartbeats(fx);
        break;
      case TIMER_RESEND:
        if (this.statusValue === 'leader') this.resendExpired(fx, now);
        break;
      default:
        break;
    }
  }

  // ---- election ---------------------------------------------------------------------------

  private startElection(fx: Effects): void {
    this.statusValue = 'candidate';
    this.ballot = { round: this.highestSeen.round + 1, proposerId: this.proposerId };
    this.highestSeen = this.ballot;
    this.phase1 = { ballot: this.ballot, fromSlot: this.chosenWatermark, promises: new Map() };
    this.knownLeader = null;
    fx.inc('leader_elections');
    this.sendPhase1a(fx);
  }

  private sendPhase1a(fx: Effects): void {
    const phase1 = this.phase1;
    if (phase1 === null) return;
    for (const group of this.config.groups) {
      const promised = phase1.promises.get(group.groupId);
      group.acceptors.forEach((acceptor, acceptorId) => {
        if (promised?.has(acceptorId)) return;
        fx.send(acceptor, { type: 'Phase1a', ballot: phase1.ballot, fromSlot: phase1.fromSlot });
        fx.inc('p1a');
      });
    }
    fx.setTimer(TIMER_PHASE1, this.timing.phase1RetryMs);
  }

  private becomeLeader(fx: Effects, now: number, phase1: Phase1State): void {
    // Every slot below the highest watermark any acceptor reported is chosen.
    let watermark = Math.max(this.chosenWatermark, phase1.fromSlot);
    for (const promises of phase1.promises.values()) {
      for (const p of promises.values()) watermark = Math.max(watermark, p.watermark);
    }
    // For each slot, the value with the highest ballot reported by that slot's own group.
    const reported = new Map<number, AcceptedEntry>();
    let nextSlot = watermark;
    for (const [groupId, promises] of phase1.promises) {
      for (const p of promises.values()) {
        for (const entry of p.accepted) {
          if (entry.slot < watermark || groupForSlot(this.config, entry.slot).groupId !== groupId) continue;
          const best = reported.get(entry.slot);
          if (best === undefined || compareBallots(entry.ballot, best.ballot) > 0)
            reported.set(entry.slot, entry);
          nextSlot = Math.max(nextSlot, entry.slot + 1);
        }
      }
    }

    this.statusValue = 'leader';
    this.phase1 = null;
    this.knownLeader = this.address;
    this.knownLeaderBallot = this.ballot;
    this.chosenWatermark = watermark;
    this.chosenAbove.clear();
    this.outstanding.clear();
    this.nextSlot = nextSlot;
    fx.cancelTimer(TIMER_PHASE1);
    fx.cancelTimer(TIMER_ELECTION);
    fx.gauge('is_leader', 1);
    fx.gauge('chosen_watermark', watermark);

    for (let slot = watermark; slot < nextSlot; slot++) {
      this.propose(fx, now, slot, this.valueAfterPhase1(slot, reported.get(slot)));
    }
    const pending = this.pendingBatches;
    this.pendingBatches = [];
    for (const batch of pending)
      this.propose(fx, now, this.nextSlot++, { kind: 'batch', commands: batch.commands });

    this.sendHeartbeats(fx);
    fx.setTimer(TIMER_RESEND, Math.max(1, Math.floor(this.timing.resendTimeoutMs / 2)));
  }

  /**
   * What a new leader proposes in a slot after phase 1: the reported value with the highest
   * ballot, or a noop for a hole. Protected so tests can plant the classic bug of ignoring it.
   */
  protected valueAfterPhase1(_slot: number, reported: AcceptedEntry | undefined): Value {
    return reported === undefined ? NOOP : reported.value;
  }

  private stepDown(fx: Effects, leader: Address | null, ballot: Ballot): void {
    this.statusValue = 'follower';
    this.phase1 = null;
    this.pendingBatches = [];
    this.outstanding.clear();
    this.chosenAbove.clear();
    this.knownLeader = leader;
    this.knownLeaderBallot = ballot;
    this.highestSeen = maxBallot(this.highestSeen, ballot);
    fx.cancelTimer(TIMER_PHASE1);
    fx.cancelTimer(TIMER_HEARTBEAT);
    fx.cancelTimer(TIMER_RESEND);
    fx.gauge('is_leader', 0);
    fx.gauge('inflight_slots', 0);
    this.armElectionTimer(fx);
  }

  private armElectionTimer(fx: Effects): void {
    const jitter = Math.floor(this.random() * this.timing.electionJitterMs);
    fx.setTimer(TIMER_ELECTION, this.timing.electionTimeoutMs + jitter);
  }

  private sendHeartbeats(fx: Effects): void {
    const heartbeat: Heartbeat = { type: 'Heartbeat', ballot: this.ballot, watermark: this.chosenWatermark };
    for (const proposer of this.members.proposers) {
      if (proposer !== this.address) fx.send(proposer, heartbeat);
    }
    const info: LeaderInfo = { type: 'LeaderInfo', leader: this.address, ballot: this.ballot };
    for (const batcher of this.members.batchers) fx.send(batcher, info);
    fx.setTimer(TIMER_HEARTBEAT, this.timing.heartbeatIntervalMs);
  }

  // ---- phase 2 ----------------------------------------------------------------------------

  private propose(fx: Effects, now: number, slot: number, value: Value): void {
    const group = this.groupForProposal(slot, value);
    const entry: Outstanding = { value, group, sentAt: now, firstSentAt: now };
    this.outstanding.set(slot, entry);
    this.sendPhase2a(fx, slot, entry);
    fx.gauge('inflight_slots', this.outstanding.size);
  }

  /**
   * The group a slot's value goes to: always the slot's own group (design rule 2). Protected so
   * tests can plant the original's bug of sending holes elsewhere.
   */
  protected groupForProposal(slot: number, _value: Value): AcceptorGroup {
    return groupForSlot(this.config, slot);
  }

  private sendPhase2a(fx: Effects, slot: number, entry: Outstanding): void {
    const proxies = this.members.proxyLeaders;
    if (proxies.length === 0) return; // the resend scan retries once a proxy leader joins
    const proxy = proxies[this.proxyCursor++ % proxies.length] as Address;
    fx.send(proxy, {
      type: 'Phase2a',
      slot,
      ballot: this.ballot,
      value: entry.value,
      watermark: this.chosenWatermark,
      groupId: entry.group.groupId,
      acceptors: entry.group.acceptors,
    });
  }

  private resendExpired(fx: Effects, now: number): void {
    // `outstanding` is kept in send order (a resent slot moves to the end), so stop at the first fresh one.
    const expired: [number, Outstanding][] = [];
    for (const [slot, entry] of this.outstanding) {
      if (now - entry.sentAt < this.timing.resendTimeoutMs) break;
      expired.push([slot, entry]);
    }
    for (const [slot, entry] of expired) {
      this.outstanding.delete(slot);
      entry.sentAt = now;
      this.outstanding.set(slot, entry);
      this.sendPhase2a(fx, slot, entry);
      fx.inc('retransmissions');
    }
    fx.setTimer(TIMER_RESEND, Math.max(1, Math.floor(this.timing.resendTimeoutMs / 2)));
  }
}
