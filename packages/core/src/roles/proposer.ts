import { ballotEquals, compareBallots, maxBallot, ZERO_BALLOT } from '../ballot.ts';
import {
  type AcceptorGroup,
  acceptorIdsOf,
  type Configuration,
  configSpecOf,
  configStamp,
  configurationOf,
  groupForSlot,
  groupStamps,
  validateConfigSpec,
  validateConfiguration,
} from '../configuration.ts';
import {
  type AcceptorAddress,
  type Effect,
  Effects,
  type Members,
  type Role,
  type RoleEvent,
} from '../effects.ts';
import {
  type AcceptedEntry,
  type Address,
  type Ballot,
  type Chosen,
  type ClientBatch,
  type ConfigEntry,
  type ConfigSpec,
  type ConfigStamp,
  type EpochAccepted,
  type EpochNack,
  type GarbageB,
  type Heartbeat,
  type LeaderInfo,
  type MatchB,
  type MatchmakerEpoch,
  type MatchNack,
  type Nack,
  NOOP,
  type Phase1b,
  type RetireB,
  type Stopped,
  UNSTAMPED,
  type Value,
  type WatermarkB,
} from '../messages.ts';
import { MatchmakerChange } from './matchmaker-change.ts';

export interface ProposerTiming {
  /** How often the leader tells proposers and batchers it is alive. */
  readonly heartbeatIntervalMs: number;
  /** Silence from the leader after which a follower runs for election (plus jitter). */
  readonly electionTimeoutMs: number;
  /** Random extra wait, in [0, jitter), so proposers that lose a duel don't collide again. */
  readonly electionJitterMs: number;
  /** Resend phase-1a (and phase-1 page requests) to acceptors that have not answered yet. */
  readonly phase1RetryMs: number;
  /** A slot not chosen within this is proposed again (through another proxy leader). */
  readonly resendTimeoutMs: number;
  /**
   * A leader that cannot hear its own heartbeats (it sends one to itself each interval), or that
   * waits for slots and hears nothing about any of them (no chosen, no nack), for this long steps
   * down: it may be able to send but not to receive, and its heartbeats would keep everyone else
   * from taking over.
   */
  readonly stepDownMs: number;
  /**
   * A follower whose leader's heartbeats show slots pending and no progress for this long (plus
   * jitter) runs for election although the heartbeats keep coming.
   */
  readonly stallTimeoutMs: number;
}

export const DEFAULT_PROPOSER_TIMING: ProposerTiming = {
  heartbeatIntervalMs: 100,
  electionTimeoutMs: 500,
  electionJitterMs: 500,
  phase1RetryMs: 200,
  resendTimeoutMs: 400,
  stepDownMs: 1500,
  stallTimeoutMs: 3000,
};

/** Bounds on the leader's work, so no fault can make it (or a frame) grow without limit. */
export interface ProposerLimits {
  /** Slots proposed and not yet known chosen; further work waits in the queue. */
  readonly maxOutstandingSlots: number;
  /** Batches queued (while phase 1 runs, or while the outstanding slots are at their cap). */
  readonly maxPendingBatches: number;
  /** Slots re-proposed per resend scan; the rest wait for the next scan. */
  readonly maxResendsPerScan: number;
  /** How long a batcher told the queue is full holds its batches. */
  readonly backoffMs: number;
}

export const DEFAULT_PROPOSER_LIMITS: ProposerLimits = {
  maxOutstandingSlots: 4096,
  maxPendingBatches: 1024,
  maxResendsPerScan: 512,
  backoffMs: 50,
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
  readonly limits?: Partial<ProposerLimits>;
  /**
   * The matchmakers (Matchmaker MultiPaxos, issue 16): the set of `epoch` (default 0), the newest
   * this proposer knows chosen; a stopped epoch's matchmakers point to the next. Absent or with no addresses,
   * elections go straight to phase 1 as before; present, each election first records this
   * proposer's configuration for its ballot at f+1 matchmakers (MatchA/MatchB).
   */
  readonly matchmakers?: MatchmakerSet;
  /** The version of `config` in the `ConfigSpec` sent to matchmakers (default 0). */
  readonly configVersion?: number;
}

/** A matchmaker set as a proposer addresses it: 2f+1 matchmakers, any f of them may fail. */
export interface MatchmakerSet {
  readonly addresses: readonly Address[];
  readonly f: number;
  /** The set's epoch (default 0: the cluster's first set). */
  readonly epoch?: number;
}

/** The matchmaker set a proposer uses now. */
type CurrentMatchmakers = MatchmakerEpoch & { readonly f: number };

export type ProposerStatus = 'follower' | 'candidate' | 'leader';

/** A slot proposed in phase 2 and not yet known chosen. */
interface Outstanding {
  readonly value: Value;
  /** The ballot it is proposed in: ours, or after a reconfiguration the previous one's. */
  ballot: Ballot;
  group: AcceptorGroup;
  stamp: ConfigStamp;
  sentAt: number;
  readonly firstSentAt: number;
  /** The proxy leader it was last sent through (null: none was known). */
  proxy: Address | null;
}

/**
 * What one acceptor reported in phase 1: the pages received so far cover the slots
 * [coveredFrom, coveredTo) (coveredTo is Infinity once the last page arrived); `entries` holds
 * the reported slots not yet proposed.
 */
interface PromiseStream {
  readonly address: Address;
  readonly coveredFrom: number;
  coveredTo: number;
  readonly entries: Map<number, AcceptedEntry>;
  readonly watermark: number;
  readonly acceptedEnd: number;
  /** When the next page was asked for (null: not asked, or it arrived). */
  requestedAt: number | null;
}

/**
 * Matchmaking for `ballot` with configuration `spec` (an election's, or a leader's move to a new
 * configuration): MatchA sent, MatchB replies gathered by matchmaker id.
 */
interface MatchingState {
  readonly ballot: Ballot;
  readonly spec: ConfigSpec;
  readonly replies: Map<number, MatchB>;
  /** Matchmakers (by address) that answered with a MatchB: the MatchA is not resent to them. */
  readonly answered: Set<Address>;
}

/** A ballot's configuration as this proposer uses it: the spec, its addresses, its stamps by group. */
interface BallotConfig {
  readonly spec: ConfigSpec;
  readonly config: Configuration;
  readonly stamps: ReadonlyMap<number, ConfigStamp>;
}

/** Acceptor identities as map keys: `groupId/acceptorId`. */
const identityKey = (groupId: number, acceptorId: number): string => `${groupId}/${acceptorId}`;

interface Phase1State {
  readonly ballot: Ballot;
  readonly fromSlot: number;
  /** The configurations phase 1 covers: every earlier one still live (one without matchmakers). */
  configs: readonly BallotConfig[];
  /** Acceptor identity → what it promised and reported; quorums count distinct identities. */
  readonly streams: Map<string, PromiseStream>;
}

/**
 * Garbage collection after a ballot's start (docs/design/reconfiguration.md §6): once every slot below `k` is chosen and
 * f+1 acceptors of every group of the ballot's configuration hold a watermark ≥ k durably, the
 * matchmakers drop the configurations of earlier ballots, and acceptors only those listed are
 * retired.
 */
interface GcTask {
  readonly ballot: Ballot;
  readonly k: number;
  config: BallotConfig;
  /** Identities listed by an earlier configuration and not by this ballot's. */
  readonly toRetire: readonly { readonly groupId: number; readonly acceptorId: number }[];
  stage: 'waitChosen' | 'watermark' | 'collect' | 'retire' | 'done';
  /** Identity → the watermark it acknowledged durably. */
  readonly watermarks: Map<string, number>;
  /** Matchmaker ids whose gcBallot reached ours. */
  readonly collected: Set<number>;
  readonly retired: Set<string>;
  /** Resends of the current stage; the retire stage gives up on silent acceptors after a while. */
  tries: number;
}

/**
 * A new leader re-proposes the slots [cursor, end) from phase-1 pages, in slot order, as f+1
 * acceptors of each slot's group have reported on it; it asks for pages only a window ahead, so
 * an unchosen tail of any length costs bounded memory and frames.
 */
interface Recovery {
  readonly ballot: Ballot;
  configs: readonly BallotConfig[];
  readonly streams: Map<string, PromiseStream>;
  cursor: number;
  readonly end: number;
}

const TIMER_ELECTION = 'election';
const TIMER_HEARTBEAT = 'heartbeat';
const TIMER_PHASE1 = 'phase1Retry';
const TIMER_RESEND = 'resend';
/** The leader's matchmaking for a new configuration and its garbage collection. */
const TIMER_CONTROL = 'control';
/** Retire messages sent to a silent acceptor before the leader stops trying (it may be gone for good). */
const MAX_RETIRE_TRIES = 50;

/**
 * Proposer: one of them leads. The leader assigns slots to batches, sends each slot's phase-2a
 * through a proxy leader, re-proposes slots not chosen in time (through another proxy leader),
 * and tracks the chosen watermark. Followers watch the leader's heartbeats and run phase 1 with a
 * higher ballot when it falls silent or its heartbeats show it stuck.
 */
export class Proposer implements Role {
  readonly address: Address;
  readonly proposerId: number;
  readonly config: Configuration;
  protected readonly timing: ProposerTiming;
  private readonly limits: ProposerLimits;
  /** Without matchmakers: the one stamp of the configuration fixed for the cluster's life. */
  private readonly stamp: ConfigStamp;
  /** Matchmakers to match each ballot at (null: elections skip matchmaking). */
  private matchmakers: CurrentMatchmakers | null;
  /** The operator's matchmaker set (a directory key), or null: keep the current one. */
  private matchmakerTarget: readonly Address[] | null = null;
  /** This proposer's replacement of the matchmaker set, while it runs (and its follow-up). */
  private matchmakerChange: MatchmakerChange | null = null;
  /** Highest ballot seen in the choice of a matchmaker set. */
  private matchmakerBallotSeen: Ballot = ZERO_BALLOT;
  /** No new matchmaker change before this time (after one was refused). */
  private matchmakerRetryAt = 0;
  /** This proposer's configuration at start, as matchmakers record it. */
  readonly spec: ConfigSpec;
  /** Acceptor addresses by identity: the start configuration's, then `acceptors` events. */
  private readonly addressBook = new Map<string, Address>();
  /** The newest configuration known (by version): what elections and reconfigurations use. */
  private latest: ConfigSpec;
  /** The configuration of our ballot (the start one until an election or reconfiguration). */
  private active: BallotConfig;
  /**
   * After a reconfiguration, until the chosen watermark reaches it: the start slot of our ballot.
   * Slots below it finish in the previous ballot (their outstanding entries carry it).
   */
  private previousUntil: number | null = null;
  /** A leader's matchmaking for a new configuration (while it goes on serving). */
  private reconfig: MatchingState | null = null;
  /** No new reconfiguration before this time (after a matchmaker refused one). */
  private reconfigNotBefore = 0;
  private gc: GcTask | null = null;
  private readonly random: () => number;
  private members: Pick<Members, 'proposers' | 'batchers' | 'proxyLeaders'>;

  private statusValue: ProposerStatus = 'follower';
  /** Our ballot while candidate or leader. */
  private ballot: Ballot = ZERO_BALLOT;
  /** Highest ballot seen anywhere; a new election picks a round above it. */
  private highestSeen: Ballot = ZERO_BALLOT;
  private knownLeader: Address | null = null;
  private knownLeaderBallot: Ballot = ZERO_BALLOT;
  private phase1: Phase1State | null = null;
  /** While a candidate waits for f+1 MatchB of its ballot (before its phase 1). */
  private matching: MatchingState | null = null;
  /** Batches waiting for a slot (FIFO from `pendingHead`). */
  private pendingBatches: ClientBatch[] = [];
  private pendingHead = 0;
  /**
   * Set when this proposer stepped down because it heard nothing: it may be deaf, and a deaf
   * candidate would only disturb the next leader's election, so it does not run until it hears a
   * message or this time has passed (a silent cluster with no leader is silent too).
   */
  private mayBeDeafUntil = 0;
  /** Follower's view of the leader's progress, to notice a leader that heartbeats but is stuck. */
  private stall: { ballot: Ballot; progress: number; since: number | null; deadline: number } | null = null;

  // Leader state.
  private nextSlot = 0;
  private chosenWatermark = 0;
  private readonly chosenAbove = new Set<number>();
  private readonly outstanding = new Map<number, Outstanding>();
  private recovery: Recovery | null = null;
  private proxyCursor = 0;
  /** Proxy leaders that let a slot expire, and when; skipped until they answer again. */
  private readonly suspects = new Map<Address, number>();
  /** Slots learnt chosen in this ballot (heartbeats carry it). */
  private progress = 0;
  /** Last time the leader heard anything about its slots (a chosen, a nack, a phase-1 page). */
  private lastHeardAt = 0;
  /** When the outstanding slots last went from none to some. */
  private awaitingSince = 0;
  /** Last time the leader received its own heartbeat: proof that its receive path works. */
  private lastHeardSelfAt = 0;
  /** Resend scans in a row that found the leader deaf or stuck (one could follow a stall of this process). */
  private silentScans = 0;
  private sawOtherProposer = false;

  constructor(options: ProposerOptions) {
    validateConfiguration(options.config);
    this.address = options.address;
    this.proposerId = options.proposerId;
    this.config = options.config;
    this.stamp = configStamp(options.config);
    this.matchmakers =
      options.matchmakers === undefined || options.matchmakers.addresses.length === 0
        ? null
        : {
            epoch: options.matchmakers.epoch ?? 0,
            addresses: options.matchmakers.addresses,
            f: options.matchmakers.f,
          };
    this.spec = configSpecOf(options.config, options.configVersion ?? 0);
    for (const group of options.config.groups) {
      acceptorIdsOf(group).forEach((id, i) => {
        this.addressBook.set(identityKey(group.groupId, id), group.acceptors[i] as Address);
      });
    }
    this.latest = this.spec;
    this.active = this.bind(this.spec);
    this.members = options.members;
    this.noteOtherProposers();
    this.random = options.random;
    this.timing = { ...DEFAULT_PROPOSER_TIMING, ...options.timing };
    this.limits = { ...DEFAULT_PROPOSER_LIMITS, ...options.limits };
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
  /** Batches waiting for a slot. */
  get queuedBatches(): number {
    return this.pendingBatches.length - this.pendingHead;
  }
  /** The proposers, batchers and proxy leaders this proposer knows of. */
  get knownMembers(): Pick<Members, 'proposers' | 'batchers' | 'proxyLeaders'> {
    return this.members;
  }
  /** The configuration of this proposer's ballot. */
  get configuration(): ConfigSpec {
    return this.active.spec;
  }
  /** The newest configuration this proposer knows of (a target it has not moved to yet, say). */
  get latestConfiguration(): ConfigSpec {
    return this.latest;
  }
  /**
   * Whether the matchmakers dropped every configuration older than this leader's ballot's
   * (retiring the acceptors only those listed may still be under way).
   */
  get collected(): boolean {
    return this.gc?.stage === 'retire' || this.gc?.stage === 'done';
  }
  /** The matchmaker set this proposer uses (the newest it knows chosen), or null without matchmakers. */
  get matchmakerSet(): MatchmakerEpoch | null {
    return this.matchmakers === null
      ? null
      : { epoch: this.matchmakers.epoch, addresses: this.matchmakers.addresses };
  }
  /** Slots a new leader still has to re-propose from phase 1. */
  get recoveringSlots(): number {
    return this.recovery === null ? 0 : this.recovery.end - this.recovery.cursor;
  }

  start(_now: number): Effect[] {
    const fx = new Effects();
    // The first election waits only the jitter, so a fresh cluster gets a leader quickly.
    fx.setTimer(TIMER_ELECTION, Math.floor(this.random() * this.timing.electionJitterMs) + 1);
    fx.gauge('is_leader', 0);
    if (this.matchmakers !== null) fx.gauge('matchmaker_epoch', this.matchmakers.epoch);
    return fx.list;
  }

  step(now: number, event: RoleEvent): Effect[] {
    const fx = new Effects();
    switch (event.type) {
      case 'message': {
        const { from, message } = event;
        this.mayBeDeafUntil = 0;
        switch (message.type) {
          case 'ClientBatch':
            this.onClientBatch(fx, now, from, message);
            break;
          case 'Phase1b':
            this.onPhase1b(fx, now, from, message);
            break;
          case 'Chosen':
            this.onChosen(fx, now, from, message);
            break;
          case 'Nack':
            this.onNack(fx, now, from, message);
            break;
          case 'Heartbeat':
            this.onHeartbeat(fx, now, from, message);
            break;
          case 'LeaderInfo':
            this.onLeaderInfo(message);
            break;
          case 'MatchB':
            this.onMatchB(fx, now, from, message);
            break;
          case 'MatchNack':
            this.onMatchNack(fx, now, message);
            break;
          case 'WatermarkB':
            this.onWatermarkB(fx, from, message);
            break;
          case 'GarbageB':
            this.onGarbageB(fx, from, message);
            break;
          case 'RetireB':
            this.onRetireB(fx, message);
            break;
          case 'StopB':
            this.matchmakerChange?.onStopB(fx, from, message);
            break;
          case 'BootstrapB':
            this.matchmakerChange?.onBootstrapB(fx, from, message);
            break;
          case 'EpochAccepted':
            this.onEpochAccepted(fx, now, from, message);
            break;
          case 'EpochNack':
            this.onEpochNack(now, message);
            break;
          case 'Stopped':
            this.onStopped(fx, now, message);
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
        this.noteOtherProposers();
        if (event.members.proxyLeaders !== undefined && this.statusValue === 'leader')
          this.onProxyLeadersChanged(fx, now);
        break;
      case 'acceptors':
        this.onAcceptors(event.acceptors);
        break;
      case 'target':
        this.onTarget(fx, now, event.spec);
        break;
      case 'matchmakers':
        this.onMatchmakerTarget(fx, now, event.addresses);
        break;
    }
    return fx.list;
  }

  // ---- message handlers -------------------------------------------------------------------

  private onClientBatch(fx: Effects, now: number, from: Address, msg: ClientBatch): void {
    if (this.statusValue === 'leader') {
      if (
        this.queuedBatches === 0 &&
        this.recovery === null &&
        this.outstanding.size < this.limits.maxOutstandingSlots
      ) {
        this.propose(fx, now, this.nextSlot++, { kind: 'batch', batch: msg.batch });
      } else {
        this.enqueue(fx, from, msg);
        this.pump(fx, now);
      }
      return;
    }
    if (this.statusValue === 'candidate') {
      this.enqueue(fx, from, msg);
      return;
    }
    // A follower passes the batch on once and tells the batcher where the leader is.
    if (this.knownLeader !== null && this.knownLeader !== this.address) {
      if (!msg.forwarded) {
        fx.send(this.knownLeader, { ...msg, forwarded: true });
        fx.send(from, {
          type: 'LeaderInfo',
          leader: this.knownLeader,
          ballot: this.knownLeaderBallot,
          backoffMs: 0,
        });
      }
    }
  }

  /** Queues a batch; a full queue refuses it and asks its batcher to hold back for a while. */
  private enqueue(fx: Effects, from: Address, msg: ClientBatch): void {
    if (this.queuedBatches < this.limits.maxPendingBatches) {
      this.pendingBatches.push(msg);
      return;
    }
    fx.inc('batches_refused');
    if (!msg.forwarded)
      fx.send(from, {
        type: 'LeaderInfo',
        leader: this.address,
        ballot: this.ballot,
        backoffMs: this.limits.backoffMs,
      });
  }

  private dequeue(): ClientBatch | undefined {
    const batch = this.pendingBatches[this.pendingHead];
    if (batch === undefined) return undefined;
    this.pendingHead++;
    if (this.pendingHead >= 1024 && this.pendingHead * 2 >= this.pendingBatches.length) {
      this.pendingBatches = this.pendingBatches.slice(this.pendingHead);
      this.pendingHead = 0;
    }
    return batch;
  }

  private onPhase1b(fx: Effects, now: number, from: Address, msg: Phase1b): void {
    this.highestSeen = maxBallot(this.highestSeen, msg.ballot);
    const target =
      this.statusValue === 'candidate' && this.phase1 !== null && ballotEquals(msg.ballot, this.phase1.ballot)
        ? this.phase1
        : this.statusValue === 'leader' && this.recovery !== null && ballotEquals(msg.ballot, this.ballot)
          ? this.recovery
          : null;
    if (target === null || !isListedAt(target.configs, msg.groupId, msg.acceptorId, from)) return;
    const streams = target.streams;
    this.lastHeardAt = now;
    const key = identityKey(msg.groupId, msg.acceptorId);
    let stream = streams.get(key);
    if (stream === undefined) {
      // Its first page is its promise.
      stream = {
        address: from,
        coveredFrom: msg.fromSlot,
        coveredTo: msg.fromSlot,
        entries: new Map(),
        watermark: msg.watermark,
        acceptedEnd: msg.acceptedEnd,
        requestedAt: null,
      };
      streams.set(key, stream);
    } else if (msg.fromSlot !== stream.coveredTo) {
      return; // a duplicate, or a page we no longer need
    }
    this.addPage(stream, msg);
    if (this.statusValue === 'leader') this.learnChosenBelow(fx, now, msg.watermark);
    if (this.statusValue === 'candidate' && this.phase1 !== null) {
      if (promisedEverywhere(this.phase1)) this.becomeLeader(fx, now, this.phase1);
    } else {
      this.pump(fx, now);
    }
  }

  private addPage(stream: PromiseStream, msg: Phase1b): void {
    for (const entry of msg.accepted) {
      if (entry.slot >= msg.fromSlot && (!msg.more || entry.slot < msg.nextSlot))
        stream.entries.set(entry.slot, entry);
    }
    stream.coveredTo = msg.more ? Math.max(msg.nextSlot, msg.fromSlot) : Number.POSITIVE_INFINITY;
    stream.requestedAt = null;
  }

  private onChosen(fx: Effects, now: number, from: Address, msg: Chosen): void {
    this.heardFromProxy(from, now);
    const pending = this.outstanding.get(msg.slot);
    if (pending !== undefined) {
      fx.observe('phase2_latency_ms', now - pending.firstSentAt);
      this.outstanding.delete(msg.slot);
    }
    if (this.isKnownChosen(msg.slot)) {
      if (pending !== undefined) fx.gauge('inflight_slots', this.outstanding.size);
      return;
    }
    this.chosenAbove.add(msg.slot);
    this.progress++;
    fx.inc('slots_chosen');
    const before = this.chosenWatermark;
    while (this.chosenAbove.delete(this.chosenWatermark)) this.chosenWatermark++;
    if (this.chosenWatermark !== before) {
      fx.gauge('chosen_watermark', this.chosenWatermark);
      this.watermarkMoved(fx, now);
    }
    if (this.statusValue === 'leader') this.pump(fx, now);
    fx.gauge('inflight_slots', this.outstanding.size);
  }

  /** The chosen watermark moved: the previous ballot may be done, and garbage collection may go on. */
  private watermarkMoved(fx: Effects, now: number): void {
    if (this.statusValue !== 'leader') return;
    if (this.previousUntil !== null && this.chosenWatermark >= this.previousUntil) {
      this.previousUntil = null;
      this.maybeReconfigure(fx, now);
    }
    if (this.gc?.stage === 'waitChosen') this.advanceGc(fx);
  }

  private onNack(fx: Effects, now: number, from: Address, msg: Nack): void {
    this.highestSeen = maxBallot(this.highestSeen, msg.promised);
    if (msg.slot >= 0) this.heardFromProxy(from, now);
    if (this.statusValue === 'follower') return;
    const old = msg.slot >= 0 ? this.outstanding.get(msg.slot) : undefined;
    if (
      this.statusValue === 'leader' &&
      old !== undefined &&
      ballotEquals(old.ballot, msg.ballot) &&
      compareBallots(old.ballot, this.ballot) < 0 &&
      compareBallots(msg.promised, this.ballot) <= 0
    ) {
      // A slot of the previous ballot, refused by an acceptor our new ballot reached first:
      // propose it again, same value, in the new ballot (docs/design/reconfiguration.md §4.2 step 4).
      this.resend(fx, now, msg.slot, old);
      return;
    }
    if (compareBallots(msg.promised, this.ballot) > 0) {
      if (this.statusValue === 'candidate') fx.inc('p1b_preempted');
      this.stepDown(fx, null, msg.promised);
    }
  }

  /**
   * Every slot below `watermark` is chosen: an acceptor's page says so, and reports nothing below
   * its watermark. A page asked for during recovery (a retry to an acceptor that had not answered)
   * can carry a higher watermark than phase 1 found; without this its silence below the watermark
   * would read as "nothing accepted" and the leader would propose noops over chosen slots.
   */
  private learnChosenBelow(fx: Effects, now: number, watermark: number): void {
    if (watermark <= this.chosenWatermark) return;
    this.chosenWatermark = watermark;
    for (const slot of this.chosenAbove) if (slot < watermark) this.chosenAbove.delete(slot);
    while (this.chosenAbove.delete(this.chosenWatermark)) this.chosenWatermark++;
    for (const slot of this.outstanding.keys())
      if (slot < this.chosenWatermark) this.outstanding.delete(slot);
    // Phase 1's quorums make the recovery end at least any acceptor's watermark; never propose a
    // new batch below one all the same.
    this.nextSlot = Math.max(this.nextSlot, this.chosenWatermark);
    fx.gauge('chosen_watermark', this.chosenWatermark);
    fx.gauge('inflight_slots', this.outstanding.size);
    this.watermarkMoved(fx, now);
  }

  private isKnownChosen(slot: number): boolean {
    return slot < this.chosenWatermark || this.chosenAbove.has(slot);
  }

  /** A proxy leader answered: it is alive, and so is our receive path. */
  private heardFromProxy(proxy: Address, now: number): void {
    this.lastHeardAt = now;
    this.suspects.delete(proxy);
  }

  private onHeartbeat(fx: Effects, now: number, from: Address, msg: Heartbeat): void {
    if (from === this.address) {
      if (this.statusValue === 'leader' && ballotEquals(msg.ballot, this.ballot)) this.lastHeardSelfAt = now;
      return;
    }
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
        fx.send(from, this.heartbeat());
      }
      return;
    }
    if (compareBallots(msg.ballot, this.knownLeaderBallot) >= 0) {
      this.knownLeader = from;
      this.knownLeaderBallot = msg.ballot;
      if (this.leaderLooksStuck(now, msg)) {
        this.startElection(fx);
        return;
      }
      this.armElectionTimer(fx);
    }
  }

  /**
   * Whether the leader's heartbeats have shown slots pending and no progress for the stall
   * timeout: a leader that can send but not hear keeps heartbeating while nothing gets chosen.
   */
  private leaderLooksStuck(now: number, msg: Heartbeat): boolean {
    const stall = this.stall;
    if (stall === null || !ballotEquals(stall.ballot, msg.ballot) || msg.progress !== stall.progress) {
      this.stall = {
        ballot: msg.ballot,
        progress: msg.progress,
        since: msg.pending > 0 ? now : null,
        deadline: this.timing.stallTimeoutMs + Math.floor(this.random() * this.timing.electionJitterMs),
      };
      return false;
    }
    if (msg.pending === 0) {
      stall.since = null;
      return false;
    }
    if (stall.since === null) stall.since = now;
    return now - stall.since >= stall.deadline;
  }

  private onLeaderInfo(msg: LeaderInfo): void {
    this.highestSeen = maxBallot(this.highestSeen, msg.ballot);
  }

  private onTimer(fx: Effects, now: number, name: string): void {
    switch (name) {
      case TIMER_ELECTION:
        if (this.statusValue !== 'follower') break;
        if (now < this.mayBeDeafUntil) this.armElectionTimer(fx);
        else this.startElection(fx);
        break;
      case TIMER_PHASE1:
        if (this.statusValue === 'candidate' && this.matching !== null) {
          this.sendMatchA(fx, this.matching);
          this.matchmakerChange?.send(fx);
          fx.setTimer(TIMER_PHASE1, this.timing.phase1RetryMs);
        } else if (this.statusValue === 'candidate') this.sendPhase1a(fx);
        else if (this.statusValue === 'leader' && this.recovery !== null) {
          this.requestPages(fx, now, true);
          fx.setTimer(TIMER_PHASE1, this.timing.phase1RetryMs);
        }
        break;
      case TIMER_HEARTBEAT:
        if (this.statusValue === 'leader') this.sendHeartbeats(fx);
        break;
      case TIMER_RESEND:
        if (this.statusValue === 'leader') this.onResendScan(fx, now);
        break;
      case TIMER_CONTROL:
        if (this.statusValue === 'leader') this.onControlTimer(fx, now);
        break;
      default:
        break;
    }
  }

  private onProxyLeadersChanged(fx: Effects, now: number): void {
    const live = new Set(this.members.proxyLeaders);
    for (const proxy of this.suspects.keys()) if (!live.has(proxy)) this.suspects.delete(proxy);
    // Slots in the hands of a proxy leader that left are re-proposed now, not at their timeout.
    const orphaned: [number, Outstanding][] = [];
    for (const [slot, entry] of this.outstanding) {
      if (orphaned.length >= this.limits.maxResendsPerScan) break;
      if (entry.proxy !== null && !live.has(entry.proxy)) orphaned.push([slot, entry]);
    }
    for (const [slot, entry] of orphaned) this.resend(fx, now, slot, entry);
  }

  // ---- election ---------------------------------------------------------------------------

  /** The ballot this proposer runs for or leads in, for operators (the status page shows the leader's). */
  private ballotGauges(fx: Effects): void {
    fx.gauge('ballot_round', this.ballot.round);
    fx.gauge('ballot_proposer_id', this.ballot.proposerId);
  }

  private startElection(fx: Effects): void {
    this.statusValue = 'candidate';
    this.ballot = { round: this.highestSeen.round + 1, proposerId: this.proposerId };
    this.highestSeen = this.ballot;
    this.knownLeader = null;
    this.stall = null;
    fx.inc('leader_elections');
    this.ballotGauges(fx);
    if (this.matchmakers !== null) {
      this.phase1 = null;
      this.matching = { ballot: this.ballot, spec: this.latest, replies: new Map(), answered: new Set() };
      this.sendMatchA(fx, this.matching);
      fx.setTimer(TIMER_PHASE1, this.timing.phase1RetryMs);
      return;
    }
    this.startPhase1(fx, [this.active]);
  }

  private startPhase1(fx: Effects, configs: readonly BallotConfig[]): void {
    this.phase1 = { ballot: this.ballot, fromSlot: this.chosenWatermark, configs, streams: new Map() };
    this.sendPhase1a(fx);
  }

  // ---- matchmaking ------------------------------------------------------------------------

  /** Sends a matching's MatchA to the matchmakers that have not answered it (resent on a timer). */
  private sendMatchA(fx: Effects, matching: MatchingState): void {
    for (const matchmaker of this.matchmakers?.addresses ?? []) {
      if (matching.answered.has(matchmaker)) continue;
      fx.send(matchmaker, {
        type: 'MatchA',
        epoch: this.matchmakers?.epoch ?? 0,
        ballot: matching.ballot,
        spec: matching.spec,
      });
    }
  }

  private onMatchB(fx: Effects, now: number, from: Address, msg: MatchB): void {
    const matching =
      this.statusValue === 'candidate' ? this.matching : this.statusValue === 'leader' ? this.reconfig : null;
    if (
      matching === null ||
      msg.epoch !== this.matchmakers?.epoch ||
      !ballotEquals(msg.ballot, matching.ballot) ||
      !this.matchmakers?.addresses.includes(from)
    )
      return;
    matching.answered.add(from);
    matching.replies.set(msg.matchmakerId, msg);
    if (matching.replies.size < this.matchQuorum()) return;
    const priors = this.priorConfigurations([...matching.replies.values()]);
    for (const entry of priors) this.learnSpec(entry.spec);
    if (this.statusValue === 'leader') {
      this.reconfig = null;
      this.onReconfigMatched(fx, now, matching, priors);
      return;
    }
    this.matching = null;
    this.active = this.bind(matching.spec);
    const configs = priors.map((entry) => this.bind(entry.spec));
    this.startPhase1(fx, configs.length > 0 ? configs : [this.active]);
  }

  private onMatchNack(fx: Effects, now: number, msg: MatchNack): void {
    this.highestSeen = maxBallot(this.highestSeen, msg.higher);
    if (msg.newer !== null && this.learnSpec(msg.newer)) fx.inc('stale_configurations');
    const reconfig = this.reconfig;
    if (this.statusValue === 'leader' && reconfig !== null && ballotEquals(msg.ballot, reconfig.ballot)) {
      // Another proposer matched a higher ballot (it is running for election), or our target is
      // older than one recorded: try again later, with what we learnt.
      this.reconfig = null;
      this.reconfigNotBefore = now + this.timing.electionTimeoutMs;
      fx.inc('match_preempted');
      return;
    }
    const matching = this.matching;
    if (this.statusValue !== 'candidate' || matching === null || msg.epoch !== this.matchmakers?.epoch)
      return;
    if (msg.newer !== null && ballotEquals(msg.ballot, matching.ballot)) {
      fx.inc('match_preempted');
      this.stepDown(fx, null, maxBallot(msg.higher, matching.ballot));
      return;
    }
    if (!ballotEquals(msg.ballot, matching.ballot) || compareBallots(msg.higher, matching.ballot) <= 0)
      return;
    // A higher ballot was matched: like a Nack, run again later with a higher round.
    fx.inc('match_preempted');
    this.stepDown(fx, null, msg.higher);
  }

  /** MatchB replies an election needs: f+1 distinct matchmakers. Protected so tests can plant f. */
  protected matchQuorum(): number {
    return (this.matchmakers?.f ?? 0) + 1;
  }

  /**
   * The configurations phase 1 must cover, from the MatchB replies: every entry with a ballot at
   * or above the highest gcBallot among them (older ones were garbage collected), one per
   * ballot, in ballot order. Protected so tests can plant the bug of skipping one.
   */
  protected priorConfigurations(replies: readonly MatchB[]): ConfigEntry[] {
    let gc = ZERO_BALLOT;
    for (const reply of replies) gc = maxBallot(gc, reply.gcBallot);
    const byBallot = new Map<string, ConfigEntry>();
    for (const reply of replies) {
      for (const entry of reply.entries) {
        if (compareBallots(entry.ballot, gc) < 0) continue;
        const key = `${entry.ballot.round}.${entry.ballot.proposerId}`;
        if (!byBallot.has(key)) byBallot.set(key, entry);
      }
    }
    // An entry above the gcBallot with an older version than the gcBallot's own configuration
    // never reached f+1 matchmakers (each of the f+1 that recorded the newer one refuses older
    // versions after it), so phase 2 never ran in it; and its acceptors may be retired.
    const floor = byBallot.get(`${gc.round}.${gc.proposerId}`)?.spec.version ?? 0;
    return [...byBallot.values()]
      .filter((entry) => entry.spec.version >= floor)
      .sort((a, b) => compareBallots(a.ballot, b.ballot));
  }

  /**
   * One Phase1a per acceptor identity that has not promised, stamped with a configuration phase 1
   * covers that lists it: one promise covers every configuration the acceptor is in.
   */
  private sendPhase1a(fx: Effects): void {
    const phase1 = this.phase1;
    if (phase1 === null) return;
    const asked = new Set<string>();
    for (const bc of phase1.configs) {
      for (const group of bc.config.groups) {
        acceptorIdsOf(group).forEach((id, i) => {
          const key = identityKey(group.groupId, id);
          const acceptor = group.acceptors[i] as Address;
          if (phase1.streams.has(key) || asked.has(key) || acceptor === '') return;
          asked.add(key);
          fx.send(acceptor, {
            type: 'Phase1a',
            ballot: phase1.ballot,
            fromSlot: phase1.fromSlot,
            config: stampOf(bc, group.groupId),
          });
          fx.inc('p1a');
        });
      }
    }
    fx.setTimer(TIMER_PHASE1, this.timing.phase1RetryMs);
  }

  private becomeLeader(fx: Effects, now: number, phase1: Phase1State): void {
    // Every slot below the highest watermark any acceptor reported is chosen; above the highest
    // slot any promising acceptor accepted, nothing needs recovering.
    let watermark = Math.max(this.chosenWatermark, phase1.fromSlot);
    let end = 0;
    for (const s of phase1.streams.values()) {
      watermark = Math.max(watermark, s.watermark);
      end = Math.max(end, s.acceptedEnd);
    }
    end = Math.max(end, watermark);

    this.statusValue = 'leader';
    this.phase1 = null;
    this.knownLeader = this.address;
    this.knownLeaderBallot = this.ballot;
    this.chosenWatermark = watermark;
    this.chosenAbove.clear();
    this.outstanding.clear();
    this.suspects.clear();
    this.nextSlot = end;
    this.progress = 0;
    this.lastHeardAt = now;
    this.lastHeardSelfAt = now;
    this.silentScans = 0;
    this.recovery =
      end > watermark
        ? { ballot: this.ballot, configs: phase1.configs, streams: phase1.streams, cursor: watermark, end }
        : null;
    this.previousUntil = null;
    this.reconfig = null;
    this.gc = this.matchmakers === null ? null : this.newGc(this.ballot, end, phase1.configs);
    fx.cancelTimer(TIMER_ELECTION);
    fx.gauge('is_leader', 1);
    fx.gauge('chosen_watermark', watermark);
    fx.gauge('configuration_version', this.active.spec.version);
    if (this.matchmakers !== null) fx.setTimer(TIMER_CONTROL, this.timing.phase1RetryMs);
    if (this.recovery !== null) fx.setTimer(TIMER_PHASE1, this.timing.phase1RetryMs);
    else fx.cancelTimer(TIMER_PHASE1);

    this.pump(fx, now);
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
    this.matching = null;
    this.recovery = null;
    this.previousUntil = null;
    this.reconfig = null;
    this.gc = null;
    if (this.matchmakerChange?.stage !== 'chosen') this.matchmakerChange = null;
    this.pendingBatches = [];
    this.pendingHead = 0;
    this.outstanding.clear();
    this.chosenAbove.clear();
    this.knownLeader = leader;
    this.knownLeaderBallot = ballot;
    this.highestSeen = maxBallot(this.highestSeen, ballot);
    this.stall = null;
    fx.cancelTimer(TIMER_PHASE1);
    fx.cancelTimer(TIMER_HEARTBEAT);
    fx.cancelTimer(TIMER_RESEND);
    fx.cancelTimer(TIMER_CONTROL);
    fx.gauge('is_leader', 0);
    fx.gauge('inflight_slots', 0);
    this.armElectionTimer(fx);
  }

  private armElectionTimer(fx: Effects): void {
    const jitter = Math.floor(this.random() * this.timing.electionJitterMs);
    fx.setTimer(TIMER_ELECTION, this.timing.electionTimeoutMs + jitter);
  }

  private heartbeat(): Heartbeat {
    return {
      type: 'Heartbeat',
      ballot: this.ballot,
      watermark: this.chosenWatermark,
      progress: this.progress,
      pending: this.outstanding.size,
    };
  }

  private sendHeartbeats(fx: Effects): void {
    const heartbeat = this.heartbeat();
    for (const proposer of this.members.proposers) {
      if (proposer !== this.address) fx.send(proposer, heartbeat);
    }
    // The hearing test: a leader that stops receiving its own heartbeats is deaf.
    fx.send(this.address, heartbeat);
    const info: LeaderInfo = { type: 'LeaderInfo', leader: this.address, ballot: this.ballot, backoffMs: 0 };
    for (const batcher of this.members.batchers) fx.send(batcher, info);
    fx.setTimer(TIMER_HEARTBEAT, this.timing.heartbeatIntervalMs);
  }

  // ---- configurations and reconfiguration (issue 16) ---------------------------------------

  /** A configuration with the addresses known now, and its stamps. */
  private bind(spec: ConfigSpec): BallotConfig {
    const config = configurationOf(spec, (groupId, acceptorId) =>
      this.addressBook.get(identityKey(groupId, acceptorId)),
    );
    const stamps =
      this.matchmakers === null
        ? new Map(config.groups.map((g) => [g.groupId, this.stamp] as const))
        : groupStamps(config);
    return { spec, config, stamps };
  }

  private onAcceptors(acceptors: readonly AcceptorAddress[]): void {
    let changed = false;
    for (const { groupId, acceptorId, address } of acceptors) {
      const key = identityKey(groupId, acceptorId);
      if (this.addressBook.get(key) === address) continue;
      this.addressBook.set(key, address);
      changed = true;
    }
    if (!changed || this.matchmakers === null) return;
    // An acceptor that had no address yet (a new one, or one this proposer never heard of) is
    // reachable from now on, in phase 1 too.
    this.active = this.bind(this.active.spec);
    for (const phase of [this.phase1, this.recovery])
      if (phase !== null) phase.configs = phase.configs.map((bc) => this.bind(bc.spec));
    if (this.gc !== null) this.gc.config = this.bind(this.gc.config.spec);
  }

  /** Keeps `spec` if it is newer than every configuration known; true if it was. */
  private learnSpec(spec: ConfigSpec): boolean {
    if (spec.version <= this.latest.version) return false;
    this.latest = spec;
    return true;
  }

  private onTarget(fx: Effects, now: number, spec: ConfigSpec): void {
    if (this.matchmakers === null) return;
    try {
      validateConfigSpec(spec);
    } catch {
      fx.inc('rejected_messages');
      return;
    }
    if (this.learnSpec(spec)) this.maybeReconfigure(fx, now);
  }

  /**
   * A leader moves to the newest configuration once it may: recovery is over (every slot below
   * `nextSlot` has a value it knows), the previous move is finished, and none is being matched.
   * It matches a new ballot with the new configuration and keeps serving in the old one meanwhile.
   */
  private maybeReconfigure(fx: Effects, now: number): void {
    if (
      this.statusValue !== 'leader' ||
      this.matchmakers === null ||
      this.latest.version <= this.active.spec.version ||
      this.recovery !== null ||
      this.previousUntil !== null ||
      this.reconfig !== null ||
      now < this.reconfigNotBefore
    )
      return;
    const ballot = {
      round: Math.max(this.highestSeen.round, this.ballot.round) + 1,
      proposerId: this.proposerId,
    };
    this.highestSeen = maxBallot(this.highestSeen, ballot);
    this.reconfig = { ballot, spec: this.latest, replies: new Map(), answered: new Set() };
    this.sendMatchA(fx, this.reconfig);
  }

  /**
   * f+1 matchmakers recorded the new ballot's configuration. With no configuration between our
   * ballot and the new one, the new ballot needs no phase 1 (phase-1 bypass): every slot from
   * `nextSlot` on is unproposed in ours, and ours covered every earlier ballot. Slots below it
   * finish in our ballot, or are proposed again, same value, in the new one.
   */
  private onReconfigMatched(
    fx: Effects,
    now: number,
    matching: MatchingState,
    priors: readonly ConfigEntry[],
  ): void {
    if (priors.some((entry) => compareBallots(entry.ballot, this.ballot) > 0)) {
      // Another proposer matched a ballot in between: it may have run phase 1 and proposed, so
      // ours can no longer skip it. Step down; an election covers it.
      fx.inc('match_preempted');
      this.stepDown(fx, null, matching.ballot);
      return;
    }
    if (matching.spec.version < this.latest.version) return; // a newer target: the next move takes it
    const k = this.bypassStart(this.nextSlot);
    this.previousUntil = this.chosenWatermark >= k ? null : k;
    this.ballot = matching.ballot;
    this.knownLeaderBallot = matching.ballot;
    this.active = this.bind(matching.spec);
    this.nextSlot = k;
    this.progress = 0;
    this.gc = this.newGc(
      matching.ballot,
      k,
      priors.map((entry) => this.bind(entry.spec)),
    );
    fx.inc('reconfigurations');
    fx.gauge('configuration_version', matching.spec.version);
    this.ballotGauges(fx);
    this.sendHeartbeats(fx);
    this.pump(fx, now);
    this.advanceGc(fx);
  }

  /**
   * The first slot a reconfigured ballot proposes in: the next unproposed one. Protected so tests
   * can plant the bug of reusing a slot the old ballot proposed.
   */
  protected bypassStart(nextSlot: number): number {
    return nextSlot;
  }

  /**
   * The watermark garbage collection of a ballot starting at `k` waits for: every slot below it
   * chosen, and durable at f+1 acceptors of each group. Protected so tests can plant the bug of
   * collecting one slot early.
   */
  protected gcWatermark(k: number): number {
    return k;
  }

  private newGc(ballot: Ballot, k: number, priors: readonly BallotConfig[]): GcTask {
    const keep = new Set<string>();
    for (const group of this.active.spec.groups)
      for (const id of group.acceptorIds) keep.add(identityKey(group.groupId, id));
    const toRetire = new Map<string, { groupId: number; acceptorId: number }>();
    for (const prior of priors)
      for (const group of prior.spec.groups)
        for (const acceptorId of group.acceptorIds) {
          const key = identityKey(group.groupId, acceptorId);
          if (!keep.has(key)) toRetire.set(key, { groupId: group.groupId, acceptorId });
        }
    return {
      ballot,
      k,
      config: this.active,
      toRetire: [...toRetire.values()],
      stage: 'waitChosen',
      watermarks: new Map(),
      collected: new Set(),
      retired: new Set(),
      tries: 0,
    };
  }

  /** Moves garbage collection to its next stage when the current one is done, and sends for it. */
  private advanceGc(fx: Effects): void {
    const gc = this.gc;
    if (gc === null || this.statusValue !== 'leader') return;
    const before = gc.stage;
    if (gc.stage === 'waitChosen' && this.chosenWatermark >= this.gcWatermark(gc.k)) gc.stage = 'watermark';
    if (gc.stage === 'watermark' && this.watermarksDurable(gc)) gc.stage = 'collect';
    if (gc.stage === 'collect' && gc.collected.size >= this.matchQuorum()) {
      gc.stage = gc.toRetire.length > 0 ? 'retire' : 'done';
      fx.inc('garbage_collections');
    }
    if (gc.stage === 'retire' && gc.retired.size >= gc.toRetire.length) gc.stage = 'done';
    if (gc.stage !== before) {
      gc.tries = 0;
      this.sendGcStage(fx, gc);
    }
  }

  /** Whether f+1 acceptors of every group of the ballot's configuration acknowledged the watermark. */
  private watermarksDurable(gc: GcTask): boolean {
    const needed = this.gcWatermark(gc.k);
    for (const group of gc.config.spec.groups) {
      let acked = 0;
      for (const id of group.acceptorIds)
        if ((gc.watermarks.get(identityKey(group.groupId, id)) ?? -1) >= needed) acked++;
      if (acked < gc.config.spec.f + 1) return false;
    }
    return true;
  }

  /** Sends (or resends, to those that have not answered) what the current stage waits for. */
  private sendGcStage(fx: Effects, gc: GcTask): void {
    switch (gc.stage) {
      case 'watermark':
        for (const group of gc.config.config.groups) {
          acceptorIdsOf(group).forEach((id, i) => {
            const acceptor = group.acceptors[i] as Address;
            const acked = gc.watermarks.get(identityKey(group.groupId, id)) ?? -1;
            if (acceptor === '' || acked >= this.gcWatermark(gc.k)) return;
            fx.send(acceptor, {
              type: 'WatermarkA',
              ballot: gc.ballot,
              watermark: this.chosenWatermark,
              config: stampOf(gc.config, group.groupId),
            });
          });
        }
        break;
      case 'collect':
        for (const matchmaker of this.matchmakers?.addresses ?? [])
          fx.send(matchmaker, {
            type: 'GarbageA',
            epoch: this.matchmakers?.epoch ?? 0,
            gcBallot: gc.ballot,
            startSlot: gc.k,
            spec: gc.config.spec,
          });
        break;
      case 'retire':
        for (const { groupId, acceptorId } of gc.toRetire) {
          const key = identityKey(groupId, acceptorId);
          const acceptor = this.addressBook.get(key);
          if (acceptor === undefined || gc.retired.has(key)) continue;
          fx.send(acceptor, { type: 'Retire', ballot: gc.ballot, groupId, acceptorId });
        }
        break;
      default:
        break;
    }
  }

  private onWatermarkB(fx: Effects, from: Address, msg: WatermarkB): void {
    const gc = this.gc;
    if (gc === null || gc.stage !== 'watermark') return;
    const key = identityKey(msg.groupId, msg.acceptorId);
    if (this.addressBook.get(key) !== from) return;
    gc.watermarks.set(key, Math.max(gc.watermarks.get(key) ?? -1, msg.watermark));
    this.advanceGc(fx);
  }

  private onGarbageB(fx: Effects, from: Address, msg: GarbageB): void {
    const gc = this.gc;
    if (gc === null || gc.stage !== 'collect' || msg.epoch !== this.matchmakers?.epoch) return;
    if (!this.matchmakers?.addresses.includes(from) || compareBallots(msg.gcBallot, gc.ballot) < 0) return;
    gc.collected.add(msg.matchmakerId);
    this.advanceGc(fx);
  }

  private onRetireB(fx: Effects, msg: RetireB): void {
    const gc = this.gc;
    if (gc === null || gc.stage !== 'retire') return;
    const key = identityKey(msg.groupId, msg.acceptorId);
    if (!gc.toRetire.some((a) => identityKey(a.groupId, a.acceptorId) === key) || gc.retired.has(key)) return;
    gc.retired.add(key);
    fx.inc('retired_acceptors');
    this.advanceGc(fx);
  }

  /** The leader's control tick: resend an unanswered MatchA or garbage-collection stage, or start a move. */
  private onControlTimer(fx: Effects, now: number): void {
    if (this.reconfig !== null) this.sendMatchA(fx, this.reconfig);
    else this.maybeReconfigure(fx, now);
    if (this.matchmakerChange !== null) {
      this.matchmakerChange.send(fx);
      if (this.matchmakerChange.settled) this.matchmakerChange = null;
    } else if (this.matchmakerTargetDiffers()) this.changeMatchmakers(fx, now, this.matchmakerTarget);
    const gc = this.gc;
    if (gc !== null && gc.stage !== 'done' && gc.stage !== 'waitChosen') {
      gc.tries++;
      if (gc.stage === 'retire' && gc.tries > MAX_RETIRE_TRIES)
        gc.stage = 'done'; // gone for good
      else this.sendGcStage(fx, gc);
    }
    fx.setTimer(TIMER_CONTROL, this.timing.phase1RetryMs);
  }

  // ---- matchmaker reconfiguration (docs/design/reconfiguration.md §7) ---------------------

  private onMatchmakerTarget(fx: Effects, now: number, addresses: readonly Address[]): void {
    const mm = this.matchmakers;
    if (mm === null) return;
    if (
      addresses.length !== 2 * mm.f + 1 ||
      new Set(addresses).size !== addresses.length ||
      addresses.some((a) => a.length === 0)
    ) {
      fx.inc('rejected_messages'); // an operator's set must be 2f+1 distinct matchmakers
      return;
    }
    this.matchmakerTarget = addresses;
    if (this.statusValue === 'leader' && this.matchmakerChange === null && this.matchmakerTargetDiffers())
      this.changeMatchmakers(fx, now, addresses);
  }

  private matchmakerTargetDiffers(): boolean {
    const mm = this.matchmakers;
    const target = this.matchmakerTarget;
    if (mm === null || target === null) return false;
    return target.length !== mm.addresses.length || target.some((a) => !mm.addresses.includes(a));
  }

  /**
   * Starts replacing the current matchmaker set by `target` (null: finish whatever change its
   * matchmakers voted for, else move to the same members in the next epoch).
   */
  private changeMatchmakers(fx: Effects, now: number, target: readonly Address[] | null): void {
    const mm = this.matchmakers;
    if (mm === null || now < this.matchmakerRetryAt) return;
    const ballot = { round: this.matchmakerBallotSeen.round + 1, proposerId: this.proposerId };
    this.matchmakerBallotSeen = ballot;
    this.matchmakerChange = this.newMatchmakerChange(
      { epoch: mm.epoch, addresses: mm.addresses },
      mm.f,
      ballot,
      target,
    );
    this.matchmakerChange.send(fx);
  }

  /** A new change attempt. Protected so tests can plant a broken one. */
  protected newMatchmakerChange(
    from: MatchmakerEpoch,
    f: number,
    ballot: Ballot,
    target: readonly Address[] | null,
  ): MatchmakerChange {
    return new MatchmakerChange(from, f, ballot, target);
  }

  /**
   * Our MatchA or GarbageA reached a stopped epoch. With the next set named, use it; otherwise
   * the change that stopped it may have lost its proposer: finish it (the stop phase finds its
   * vote, if any). Changes of ours under way continue on their own.
   */
  private onStopped(fx: Effects, now: number, msg: Stopped): void {
    const mm = this.matchmakers;
    if (mm === null || msg.epoch !== mm.epoch) return;
    if (msg.next !== null) {
      this.adoptMatchmakers(fx, msg.next);
      return;
    }
    if (this.matchmakerChange === null || this.matchmakerChange.stage === 'chosen')
      this.changeMatchmakers(fx, now, this.matchmakerTargetDiffers() ? this.matchmakerTarget : null);
  }

  private onEpochAccepted(fx: Effects, _now: number, from: Address, msg: EpochAccepted): void {
    const chosen = this.matchmakerChange?.onEpochAccepted(fx, from, msg) ?? null;
    if (chosen === null) return;
    fx.inc('matchmaker_reconfigurations');
    this.adoptMatchmakers(fx, chosen);
  }

  private onEpochNack(now: number, msg: EpochNack): void {
    this.matchmakerBallotSeen = maxBallot(this.matchmakerBallotSeen, msg.higher);
    if (this.matchmakerChange?.nacked(msg.epoch, msg.ballot) !== true) return;
    // Another proposer is choosing the next set: let it, and retry later if it does not finish.
    this.matchmakerChange = null;
    this.matchmakerRetryAt =
      now + this.timing.phase1RetryMs + Math.floor(this.random() * this.timing.electionJitterMs);
  }

  /**
   * Uses `set`, known chosen, from now on. What waited on the old epoch's matchmakers (an
   * election's or a move's matching, a garbage collection's GarbageA) starts over in the new one:
   * replies of a stopped epoch do not count in the next.
   */
  private adoptMatchmakers(fx: Effects, set: MatchmakerEpoch): void {
    const mm = this.matchmakers;
    if (mm === null || set.epoch <= mm.epoch) return;
    this.matchmakers = { epoch: set.epoch, addresses: set.addresses, f: mm.f };
    if (this.matchmakerChange !== null && this.matchmakerChange.proposed?.epoch !== set.epoch)
      this.matchmakerChange = null;
    fx.gauge('matchmaker_epoch', set.epoch);
    for (const matching of [this.matching, this.reconfig]) {
      if (matching === null) continue;
      matching.replies.clear();
      matching.answered.clear();
      this.sendMatchA(fx, matching);
    }
    const gc = this.gc;
    if (gc !== null && gc.stage === 'collect') {
      gc.collected.clear();
      this.sendGcStage(fx, gc);
    }
  }

  // ---- phase 1 recovery -------------------------------------------------------------------

  /**
   * Asks each promising acceptor for its next page once the slots it covers run less than a
   * window ahead of the recovery cursor (or, with `retry`, again if an ask went unanswered). A
   * group with fewer than f+1 acceptors covering its next slot also asks the acceptors that have
   * not promised yet, so one acceptor dying during recovery cannot stall it.
   */
  private requestPages(fx: Effects, now: number, retry: boolean): void {
    const recovery = this.recovery;
    if (recovery === null) return;
    const horizon = recovery.cursor + this.limits.maxOutstandingSlots;
    for (const bc of recovery.configs) {
      const quorum = bc.config.f + 1;
      for (const group of bc.config.groups) {
        const ids = acceptorIdsOf(group);
        let covering = 0;
        const groupNext = nextSlotOfGroup(bc.config, recovery.cursor, group.groupId);
        for (const id of ids) {
          const stream = recovery.streams.get(identityKey(group.groupId, id));
          if (stream === undefined) continue;
          if (stream.coveredFrom <= groupNext && groupNext < stream.coveredTo) covering++;
          if (stream.coveredTo >= recovery.end || stream.coveredTo >= horizon) continue;
          const asked = stream.requestedAt;
          if (asked !== null && !(retry && now - asked >= this.timing.phase1RetryMs)) continue;
          stream.requestedAt = now;
          fx.send(stream.address, {
            type: 'Phase1a',
            ballot: recovery.ballot,
            fromSlot: stream.coveredTo,
            config: stampOf(bc, group.groupId),
          });
        }
        if (retry && covering < quorum && groupNext < recovery.end) {
          ids.forEach((id, i) => {
            const acceptor = group.acceptors[i] as Address;
            if (recovery.streams.has(identityKey(group.groupId, id)) || acceptor === '') return;
            fx.send(acceptor, {
              type: 'Phase1a',
              ballot: recovery.ballot,
              fromSlot: groupNext,
              config: stampOf(bc, group.groupId),
            });
          });
        }
      }
    }
  }

  /**
   * The value to re-propose at the recovery cursor, once f+1 acceptors of its group in every
   * configuration phase 1 covers have reported on it (undefined: not yet; null: nothing to
   * propose, the slot is known chosen, as an earlier ballot's proxy leader may announce before we
   * get there). The value reported with the highest ballot wins, whichever configuration it came
   * from.
   */
  private recoveredValue(recovery: Recovery, slot: number): Value | null | undefined {
    if (this.isKnownChosen(slot)) {
      for (const stream of recovery.streams.values()) stream.entries.delete(slot);
      return null;
    }
    let best: AcceptedEntry | undefined;
    for (const bc of recovery.configs) {
      const group = groupForSlot(bc.config, slot);
      let covering = 0;
      for (const id of acceptorIdsOf(group)) {
        const stream = recovery.streams.get(identityKey(group.groupId, id));
        if (stream === undefined || slot < stream.coveredFrom || slot >= stream.coveredTo) continue;
        covering++;
        const entry = stream.entries.get(slot);
        if (entry !== undefined && (best === undefined || compareBallots(entry.ballot, best.ballot) > 0))
          best = entry;
      }
      if (covering < bc.config.f + 1) return undefined;
    }
    for (const stream of recovery.streams.values()) stream.entries.delete(slot);
    return this.valueAfterPhase1(slot, best);
  }

  // ---- phase 2 ----------------------------------------------------------------------------

  /**
   * Proposes what is waiting, while the outstanding slots are below their cap: the slots phase 1
   * recovered first, in order, then queued batches.
   */
  private pump(fx: Effects, now: number): void {
    const cap = this.limits.maxOutstandingSlots;
    const recovery = this.recovery;
    if (recovery !== null) {
      while (this.outstanding.size < cap && recovery.cursor < recovery.end) {
        const slot = recovery.cursor;
        const value = this.recoveredValue(recovery, slot);
        if (value === undefined) break;
        if (value !== null) this.propose(fx, now, slot, value);
        recovery.cursor++;
      }
      if (recovery.cursor >= recovery.end) {
        this.recovery = null;
        fx.cancelTimer(TIMER_PHASE1);
        this.maybeReconfigure(fx, now);
      } else {
        this.requestPages(fx, now, false);
      }
    }
    while (this.outstanding.size < cap) {
      const batch = this.dequeue();
      if (batch === undefined) break;
      this.propose(fx, now, this.nextSlot++, { kind: 'batch', batch: batch.batch });
    }
  }

  private propose(fx: Effects, now: number, slot: number, value: Value): void {
    const group = this.groupForProposal(slot, value);
    const entry: Outstanding = {
      value,
      ballot: this.ballot,
      group,
      stamp: stampOf(this.active, group.groupId),
      sentAt: now,
      firstSentAt: now,
      proxy: null,
    };
    if (this.outstanding.size === 0) this.awaitingSince = now;
    this.outstanding.set(slot, entry);
    this.sendPhase2a(fx, now, slot, entry, null);
    fx.gauge('inflight_slots', this.outstanding.size);
  }

  /**
   * The group a slot's value goes to: always the slot's own group (design rule 2). Protected so
   * tests can plant the original's bug of sending holes elsewhere.
   */
  protected groupForProposal(slot: number, _value: Value): AcceptorGroup {
    return groupForSlot(this.active.config, slot);
  }

  /**
   * The proxy leader for a slot: round robin over those not suspected, never `failed` (the one
   * that let this slot expire) unless it is the only one. A suspect gets a slot again once its
   * suspicion is older than two resend timeouts, so a proxy leader that comes back is used again.
   * Protected so tests can plant the bug of resending through the same proxy leader forever.
   */
  protected pickProxy(now: number, failed: Address | null): Address | null {
    const proxies = this.members.proxyLeaders;
    const n = proxies.length;
    if (n === 0) return null;
    const suspicionMs = 2 * this.timing.resendTimeoutMs;
    for (let i = 0; i < n; i++) {
      const proxy = proxies[this.proxyCursor++ % n] as Address;
      if (proxy === failed) continue;
      const since = this.suspects.get(proxy);
      if (since !== undefined && now - since < suspicionMs) continue;
      return proxy;
    }
    for (let i = 0; i < n; i++) {
      const proxy = proxies[this.proxyCursor++ % n] as Address;
      if (proxy !== failed) return proxy;
    }
    return proxies[0] as Address;
  }

  private sendPhase2a(
    fx: Effects,
    now: number,
    slot: number,
    entry: Outstanding,
    failed: Address | null,
  ): void {
    const proxy = this.pickProxy(now, failed);
    entry.proxy = proxy;
    if (proxy === null) return; // the resend scan retries once a proxy leader joins
    fx.send(proxy, {
      type: 'Phase2a',
      slot,
      ballot: entry.ballot,
      value: entry.value,
      watermark: this.chosenWatermark,
      groupId: entry.group.groupId,
      acceptors: entry.group.acceptors,
      config: entry.stamp,
    });
  }

  private resend(fx: Effects, now: number, slot: number, entry: Outstanding): void {
    const failed = entry.proxy;
    if (compareBallots(entry.ballot, this.ballot) < 0) {
      // A slot of the previous ballot goes again in ours, with the same value: it was safe in the
      // previous ballot, which proposed nothing else there, and no ballot between the two has a
      // configuration (docs/design/reconfiguration.md §4.2 step 4). In our configuration it belongs to another group.
      entry.ballot = this.ballot;
      entry.group = this.groupForProposal(slot, entry.value);
      entry.stamp = stampOf(this.active, entry.group.groupId);
    }
    this.outstanding.delete(slot);
    entry.sentAt = now;
    this.outstanding.set(slot, entry);
    this.sendPhase2a(fx, now, slot, entry, failed);
    fx.inc('retransmissions');
  }

  private onResendScan(fx: Effects, now: number): void {
    // `outstanding` is kept in send order (a resent slot moves to the end), so stop at the first
    // fresh one; at most `maxResendsPerScan` go per scan, the rest at the next.
    const expired: [number, Outstanding][] = [];
    for (const [slot, entry] of this.outstanding) {
      if (now - entry.sentAt < this.timing.resendTimeoutMs || expired.length >= this.limits.maxResendsPerScan)
        break;
      expired.push([slot, entry]);
    }
    for (const [, entry] of expired) {
      if (entry.proxy !== null && !this.suspects.has(entry.proxy)) fx.inc('proxy_leaders_suspected');
      if (entry.proxy !== null) this.suspects.set(entry.proxy, now);
    }
    for (const [slot, entry] of expired) this.resend(fx, now, slot, entry);
    this.silentScans = this.shouldStepDown(now) ? this.silentScans + 1 : 0;
    if (this.silentScans >= 2) {
      fx.inc('leader_step_downs');
      this.stepDown(fx, null, this.ballot);
      this.mayBeDeafUntil = now + 4 * (this.timing.electionTimeoutMs + this.timing.electionJitterMs);
      return;
    }
    fx.setTimer(TIMER_RESEND, Math.max(1, Math.floor(this.timing.resendTimeoutMs / 2)));
  }

  /**
   * Whether another proposer was ever in view. A leader that stops hearing stops reading the
   * directory too, so its view may have lost a proposer that was only paused: it must still
   * step down for it.
   */
  private noteOtherProposers(): void {
    if (this.members.proposers.some((p) => p !== this.address)) this.sawOtherProposer = true;
  }

  /**
   * Whether the leader should step down (two scans in a row must agree): for `stepDownMs` it has
   * not heard its own heartbeats, or (when another proposer could take over) it waited for slots
   * and heard nothing about any of them although proxy leaders exist. Protected so tests can
   * plant the bug of a leader that keeps heartbeating while it hears nothing.
   */
  protected shouldStepDown(now: number): boolean {
    // A leader that cannot hear itself steps down even if it never saw another proposer: its
    // view may be empty because the others were paused when it started, and its heartbeats
    // would keep batchers following a leader that can never hear a Chosen.
    if (now - this.lastHeardSelfAt >= this.timing.stepDownMs) return true;
    if (!this.sawOtherProposer) return false;
    if (this.outstanding.size === 0 || this.members.proxyLeaders.length === 0) return false;
    return now - Math.max(this.lastHeardAt, this.awaitingSince) >= this.timing.stepDownMs;
  }
}

/** The stamp of `bc`'s messages for group `groupId`. */
function stampOf(bc: BallotConfig, groupId: number): ConfigStamp {
  return bc.stamps.get(groupId) ?? UNSTAMPED;
}

/** Whether some configuration lists acceptor `(groupId, acceptorId)` at address `from`. */
function isListedAt(
  configs: readonly BallotConfig[],
  groupId: number,
  acceptorId: number,
  from: Address,
): boolean {
  for (const bc of configs) {
    const group = bc.config.groups.find((g) => g.groupId === groupId);
    if (group === undefined) continue;
    const index = acceptorIdsOf(group).indexOf(acceptorId);
    if (index >= 0 && group.acceptors[index] === from) return true;
  }
  return false;
}

/** Whether f+1 acceptors of every group of every configuration phase 1 covers have promised. */
function promisedEverywhere(phase1: Phase1State): boolean {
  for (const bc of phase1.configs) {
    for (const group of bc.config.groups) {
      let promised = 0;
      for (const id of acceptorIdsOf(group))
        if (phase1.streams.has(identityKey(group.groupId, id))) promised++;
      if (promised < bc.config.f + 1) return false;
    }
  }
  return true;
}

/** The first slot ≥ `from` that belongs to group `groupId` under `config`. */
function nextSlotOfGroup(config: Configuration, from: number, groupId: number): number {
  for (let slot = from; slot < from + config.groups.length; slot++) {
    if (groupForSlot(config, slot).groupId === groupId) return slot;
  }
  return from;
}
