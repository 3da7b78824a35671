import {
  AcceptorLog,
  type AcceptorRecords,
  type DurableAcceptor,
  type DurableAcceptorIo,
  type DurableMatchmaker,
  durableAcceptor,
  durableMatchmaker,
  type GroupCommitIo,
  type MatchmakerStateStore,
  MatchmakerStore,
  MemoryStorage,
} from '@paxos/acceptor-log';
import {
  Acceptor,
  type AcceptorAddress,
  type AcceptorOptions,
  type Address,
  type Ballot,
  Batcher,
  type BatcherOptions,
  ballotEquals,
  Client,
  type ConfigChange,
  type ConfigSpec,
  type Configuration,
  compareBallots,
  configSpecId,
  configSpecOf,
  decodeEnvelope,
  type Effect,
  encodeEnvelope,
  formatBallot,
  type MatchB,
  Matchmaker,
  type MatchmakerEpoch,
  type Members,
  MemberView,
  type Message,
  Proposer,
  type ProposerOptions,
  ProxyLeader,
  type ProxyLeaderOptions,
  planConfigChange,
  type Role,
  type RoleEvent,
  Unbatcher,
  type Value,
  valuesEqual,
  withIncarnation,
  withoutIncarnations,
} from '@paxos/core';
import { describe, SafetyChecker } from './checker.ts';
import { SimDirectory } from './directory.ts';
import { EpochChecker } from './epoch-checker.ts';
import { EventQueue } from './event-queue.ts';
import { Rng } from './rng.ts';

/**
 * Probabilities per message sent (drop, duplicate, delay, longDelay) and per step (the rest).
 */
export interface FaultRates {
  readonly drop: number;
  readonly duplicate: number;
  readonly delay: number;
  /** A message held back for a long time (longer than an election), delivered after the world moved on. */
  readonly longDelay: number;
  /**
   * A process crashes and restarts a little later: empty, or, for an acceptor, from its log on
   * its simulated disk (at most f acceptors of a group are down at once through this fault).
   */
  readonly crash: number;
  /** Every acceptor of one group crashes at once (a power cut); each restarts from its log. */
  readonly groupCrash: number;
  /** Some processes are cut off from the rest (and from the directory); several partitions may overlap in time. */
  readonly partition: number;
  /**
   * For a while, one set of processes cannot reach another while the other way works: a process
   * that stops hearing (all its inbound dropped), one that stops being heard, or a cut between two
   * groups of processes.
   */
  readonly oneWay: number;
  /** A process is paused (SIGSTOP): what reaches it waits, its timers fire late, its lease stops. */
  readonly pause: number;
  /** f+1 acceptors of one group are paused at once: the group has no quorum for a while. */
  readonly quorumLoss: number;
  /** The directory restarts and forgets every registration and lease. */
  readonly directoryRestart: number;
  /** A stateless process joins (registers) or leaves (deregisters, drains, stops). */
  readonly membership: number;
  /** A process stops polling the directory for a while: its view goes stale. */
  readonly staleView: number;
  /** A client crashes: its pending commands are abandoned; it comes back as a new incarnation. */
  readonly clientCrash: number;
  /**
   * Per run: once faults stop, one fault stays for good (a proxy leader, batcher or unbatcher
   * dead, or a proposer that cannot hear) and the rest of the cluster must still finish.
   */
  readonly permanent: number;
  /**
   * With matchmakers: the operator changes the configuration (adds a group, removes one, or
   * replaces an acceptor, sometimes after killing it for good). One change at a time; every run
   * with matchmakers also gets one at a random step of the fault phase.
   */
  readonly reconfigure: number;
}

export const DEFAULT_FAULTS: FaultRates = {
  drop: 0.03,
  duplicate: 0.03,
  delay: 0.05,
  longDelay: 0.002,
  crash: 0.01,
  groupCrash: 0.0005,
  partition: 0.005,
  oneWay: 0.003,
  pause: 0.004,
  quorumLoss: 0.001,
  directoryRestart: 0.001,
  membership: 0.003,
  staleView: 0.003,
  clientCrash: 0.001,
  permanent: 0.5,
  reconfigure: 0.002,
};
export const NO_FAULTS: FaultRates = {
  drop: 0,
  duplicate: 0,
  delay: 0,
  longDelay: 0,
  crash: 0,
  groupCrash: 0,
  partition: 0,
  oneWay: 0,
  pause: 0,
  quorumLoss: 0,
  directoryRestart: 0,
  membership: 0,
  staleView: 0,
  clientCrash: 0,
  permanent: 0,
  reconfigure: 0,
};

export interface SimulationOptions {
  readonly seed: number;
  /** Steps (messages delivered and timers fired) during which faults are injected; then the cluster must recover. */
  readonly steps: number;
  readonly f?: number;
  readonly groups?: number;
  readonly proposers?: number;
  readonly batchers?: number;
  readonly proxyLeaders?: number;
  readonly unbatchers?: number;
  readonly clients?: number;
  /**
   * Matchmakers (Matchmaker MultiPaxos): 0 (default) runs without any, as before; otherwise an odd
   * number 2f'+1 of matchmaker processes, each with its own disk, that every election goes
   * through first (f' of them may be down at once through crashes).
   */
  readonly matchmakers?: number;
  /** Each client submits commands in a closed loop while faults are injected, up to this many. */
  readonly commandsPerClient?: number;
  /** Commands each client keeps outstanding. */
  readonly clientWindow?: number;
  readonly batchSize?: number;
  readonly faults?: Partial<FaultRates>;
  /** Virtual time allowed, once faults stop, for every submitted command to be acknowledged. */
  readonly livenessTimeoutMs?: number;
  /** Encode and decode every message with the wire codec, as the real transport does. */
  readonly wire?: boolean;
  /**
   * Acceptors sync their log before replying (DATA_FSYNC). Off, a crash loses what was written
   * since the last sync, and the restart checks must find it.
   */
  readonly fsync?: boolean;
  /**
   * Check each restarted acceptor's memory against what it announced (default). Off, only the
   * cluster-wide invariants remain: what a durability bug does to consensus itself.
   */
  readonly restartChecks?: boolean;
  readonly trace?: (line: string) => void;
  /** Role factories, so tests can plant bugs in a role without touching production code. */
  readonly makeProposer?: (options: ProposerOptions) => Role;
  readonly makeProxyLeader?: (options: ProxyLeaderOptions) => Role;
  readonly makeBatcher?: (options: BatcherOptions) => Role;
  readonly makeAcceptor?: (options: AcceptorOptions) => Acceptor;
  /** How an acceptor is bound to its log (the runtime's group commit unless a test plants a bug). */
  readonly makeDurableAcceptor?: (
    acceptor: Acceptor,
    log: AcceptorRecords,
    io: Required<DurableAcceptorIo>,
  ) => DurableAcceptor;
  /** How a matchmaker is bound to its state file (the runtime's group commit unless a test plants a bug). */
  readonly makeDurableMatchmaker?: (
    matchmaker: Matchmaker,
    store: MatchmakerStateStore,
    io: GroupCommitIo,
  ) => DurableMatchmaker;
}

export interface Violation {
  readonly kind: 'safety' | 'liveness';
  readonly step: number;
  readonly timeMs: number;
  readonly message: string;
}

export interface SimulationStats {
  delivered: number;
  dropped: number;
  duplicated: number;
  longDelays: number;
  crashes: number;
  groupCrashes: number;
  acceptorRestarts: number;
  /** Matchmaker restarts (each from its state file). */
  matchmakerRestarts: number;
  /** Configuration changes the operator asked for (targets written). */
  reconfigurations: number;
  /** Matchmakers the operator replaced (a new one started, the target set written). */
  matchmakerReplacements: number;
  /** Matchmaker sets chosen and adopted by the proposer that replaced them. */
  matchmakerChanges: number;
  /** Acceptors retired (they answered a Retire) and stopped. */
  retiredAcceptors: number;
  /** Moves of a leader to a new configuration without phase 1 (bypass). */
  bypasses: number;
  /** Garbage collections completed at the matchmakers. */
  garbageCollections: number;
  /** Acceptor restarts whose log had rolled: recovery started from a checkpoint. */
  checkpointRecoveries: number;
  restarts: number;
  partitions: number;
  oneWayFaults: number;
  pauses: number;
  quorumLosses: number;
  directoryRestarts: number;
  reregistrations: number;
  joins: number;
  leaves: number;
  staleViews: number;
  clientCrashes: number;
  permanentFaults: number;
  elections: number;
  stepDowns: number;
  submitted: number;
  acknowledged: number;
  slotsChosen: number;
}

export interface SimulationResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly violation: Violation | null;
  readonly steps: number;
  readonly virtualTimeMs: number;
  readonly stats: SimulationStats;
}

type RoleKind = 'proposer' | 'batcher' | 'proxyLeader' | 'acceptor' | 'matchmaker' | 'unbatcher' | 'client';
type DirectoryKind = 'Proposers' | 'Batchers' | 'ProxyLeaders' | 'Unbatchers';

/** The directory kind each role registers under, and the kinds it watches. */
const REGISTERS: Record<RoleKind, DirectoryKind | null> = {
  proposer: 'Proposers',
  batcher: 'Batchers',
  proxyLeader: 'ProxyLeaders',
  unbatcher: 'Unbatchers',
  acceptor: null,
  matchmaker: null,
  client: null,
};
const WATCHES: Record<RoleKind, readonly DirectoryKind[]> = {
  proposer: ['Proposers', 'Batchers', 'ProxyLeaders'],
  batcher: ['Proposers'],
  proxyLeader: ['Unbatchers'],
  unbatcher: [],
  acceptor: [],
  matchmaker: [],
  client: ['Batchers'],
};
const MEMBERS_KEY: Record<DirectoryKind, keyof Members> = {
  Proposers: 'proposers',
  Batchers: 'batchers',
  ProxyLeaders: 'proxyLeaders',
  Unbatchers: 'unbatchers',
};
const PREFIX: Record<RoleKind, string> = {
  proposer: 'proposer',
  batcher: 'batcher',
  proxyLeader: 'proxy',
  unbatcher: 'unbatcher',
  acceptor: 'acceptor',
  matchmaker: 'matchmaker',
  client: 'client',
};

interface Process {
  readonly address: Address;
  readonly kind: RoleKind;
  readonly index: number;
  role: Role;
  /** An acceptor's role inside its durable wrapper, and the disk its log is on. */
  acceptor: Acceptor | null;
  /** A matchmaker's role inside its durable wrapper. */
  matchmaker: Matchmaker | null;
  /**
   * What it accepted, by `slot/ballot`, as each phase 2a was handled: its vote leaves only after
   * the commit, when a later message of the burst may already have moved the entry out of memory.
   */
  readonly acceptedAt: Map<string, Value>;
  readonly disk: MemoryStorage | null;
  alive: boolean;
  /** Gone for good (it left the cluster, or a permanent fault): never restarted. */
  retired: boolean;
  /** Deregistered and draining: it stops for good soon. */
  leaving: boolean;
  incarnation: number;
  readonly timers: Map<string, number>;
  /** Paused until then (Infinity: for good); events for it wait in `held`. */
  pausedUntil: number | null;
  held: SimEvent[];
  /** Inbound messages are dropped until then (Infinity: for good). */
  deafUntil: number;
  deafSince: number;
  /** Outbound messages are dropped until then. */
  muteUntil: number;
  /** Polls of the directory are skipped until then (a stale view). */
  pollsStalledUntil: number;
  /** The last time it came back from a pause or a restart: its timers may fire late until then. */
  wokeAt: number;
  entry: string | null;
  view: MemberView;
  lease: number;
  /** A proposer: the target version it was told (it reads the target key on its polls). */
  knownTarget: number;
  /** A proposer: the version of the operator's matchmaker set it was told. */
  knownMatchmakerTarget: number;
}

type SimEvent =
  | {
      readonly kind: 'deliver';
      readonly from: Address;
      readonly to: Address;
      readonly message: Message;
      readonly frame: Uint8Array | null;
    }
  | {
      readonly kind: 'timer';
      readonly to: Address;
      readonly name: string;
      readonly generation: number;
      readonly incarnation: number;
    }
  | { readonly kind: 'poll'; readonly to: Address; readonly incarnation: number }
  | {
      readonly kind: 'commit';
      readonly to: Address;
      readonly incarnation: number;
      readonly commit: () => void;
    }
  | { readonly kind: 'restart'; readonly to: Address }
  | { readonly kind: 'resume'; readonly to: Address; readonly at: number }
  | { readonly kind: 'retire'; readonly to: Address; readonly incarnation: number }
  | { readonly kind: 'heal'; readonly partition: number }
  | { readonly kind: 'progressCheck' };

/** Virtual-time settings of the simulated cluster: fast, so 1,000 steps see elections, resends and expiries. */
export const SIM_TIMING = {
  proposer: {
    heartbeatIntervalMs: 20,
    electionTimeoutMs: 100,
    electionJitterMs: 100,
    phase1RetryMs: 40,
    resendTimeoutMs: 80,
    stepDownMs: 240,
    stallTimeoutMs: 480,
  },
  /** Small bounds, so the caps, the queue, backpressure and rate-limited resends all take part. */
  proposerLimits: { maxOutstandingSlots: 8, maxPendingBatches: 6, maxResendsPerScan: 4, backoffMs: 10 },
  /** Phase-1 pages of three entries: almost every phase 1 pages. */
  acceptorPageEntries: 3,
  proxyLeader: { thriftyTimeoutMs: 15 },
  batchTimeoutMs: 2,
  /** Two election timeouts without LeaderInfo from the leader it follows. */
  batcherLeaderTimeoutMs: 200,
  clientResendMs: 200,
  pollMs: 30,
  leaseTimeoutMs: 120,
  drainMs: 100,
  /** Clients keep submitting this long after faults stop. */
  trailingLoadMs: 1200,
  /** After faults stop, a leader must know by the end of each such window what was chosen by its start. */
  progressWindowMs: 400,
  latencyMs: [1, 3] as const,
  extraDelayMs: [10, 60] as const,
  longDelayMs: [300, 2000] as const,
  restartAfterMs: [20, 300] as const,
  /** A group commit's write and sync take this long: a crash may fall in between. */
  commitMs: [0, 2] as const,
  /** Small segments, so acceptors roll, checkpoint and recover through several of them. */
  logSegmentBytes: 2048,
  partitionMs: [20, 300] as const,
  oneWayMs: [100, 1500] as const,
  pauseMs: [50, 1500] as const,
  quorumLossMs: [100, 800] as const,
  staleViewMs: [100, 1000] as const,
};

const STATELESS: readonly RoleKind[] = ['proxyLeader', 'batcher', 'unbatcher'];

/** Processes of one stateless kind may grow to this many above the initial count through joins. */
const MAX_JOINS_PER_KIND = 2;
/** The operator never grows the configuration beyond this many acceptor groups. */
const MAX_GROUPS = 4;

/**
 * Runs a whole cluster in one process on a virtual clock. Every random choice (latency, faults,
 * election jitter) comes from one seeded stream, so a seed always replays the same run.
 */
export class Simulation {
  readonly options: Required<
    Omit<
      SimulationOptions,
      | 'trace'
      | 'makeProposer'
      | 'makeProxyLeader'
      | 'makeBatcher'
      | 'makeAcceptor'
      | 'makeDurableAcceptor'
      | 'makeDurableMatchmaker'
      | 'faults'
    >
  >;
  readonly faults: FaultRates;
  readonly config: Configuration;
  readonly checker: SafetyChecker;
  private readonly rng: Rng;
  private readonly queue = new EventQueue<SimEvent>();
  private readonly processes = new Map<Address, Process>();
  private readonly directory = new SimDirectory();
  /** Partition id → the processes cut off together; a process in none is with the directory. */
  private readonly partitions = new Map<number, Set<Address>>();
  /** One-way cuts: messages from `from` to `to` are dropped until `until`. */
  private cuts: { readonly from: Set<Address>; readonly to: Set<Address>; readonly until: number }[] = [];
  private nextPartition = 1;
  private readonly trace: ((line: string) => void) | undefined;
  private readonly makeProposer: (options: ProposerOptions) => Role;
  private readonly makeProxyLeader: (options: ProxyLeaderOptions) => Role;
  private readonly makeBatcher: (options: BatcherOptions) => Role;
  private readonly makeAcceptor: (options: AcceptorOptions) => Acceptor;
  private readonly makeDurableAcceptor: NonNullable<SimulationOptions['makeDurableAcceptor']>;
  private readonly makeDurableMatchmaker: NonNullable<SimulationOptions['makeDurableMatchmaker']>;
  /** The configuration as matchmakers record it: the genesis of every matchmaker. */
  readonly spec: ConfigSpec;
  /** The operator's target configuration (the genesis until it changes one). */
  private target: ConfigSpec;
  private nextGroupId: number;
  /** Per group: the next acceptor id, never reused. */
  private readonly nextAcceptorId = new Map<number, number>();
  /** The step at which the run's guaranteed reconfiguration happens (-1: none, or done). */
  private forcedReconfigureAt = -1;
  /** f of the matchmaker set (its size is 2f+1); unused without matchmakers. */
  private readonly matchmakerF: number;
  /** The operator's matchmaker set (a directory key proposers read) and how often it changed. */
  private matchmakerTarget: Address[] = [];
  private matchmakerTargetVersion = 0;
  /** Matchmaker ids are never reused: the next one a replacement gets. */
  private nextMatchmakerIndex = 0;
  /** The newest matchmaker set a proposer adopted (as a directory hint): where a restarted proposer starts. */
  private publishedMatchmakers: MatchmakerEpoch = { epoch: 0, addresses: [] };
  /** The matchmaker the operator's last change replaces: stopped for good once the new set serves. */
  private replacedMatchmaker: Address | null = null;
  readonly epochs: EpochChecker;
  /**
   * What each matchmaker told proposers in MatchB replies: the highest ballot it answered, and
   * every entry it returned or recorded (by ballot, with its spec id); all must survive crashes.
   */
  private readonly announcedMatches = new Map<
    Address,
    { maxBallot: Ballot; readonly entries: Map<string, { readonly ballot: Ballot; readonly specId: number }> }
  >();
  /** Per client incarnation: commands submitted and acknowledged (a crashed incarnation is dropped). */
  private readonly clientProgress = new Map<Address, { submitted: number; acknowledged: number }>();
  /** Each acceptor's promise in memory, which never goes down while it runs. */
  private readonly promises = new Map<Address, Ballot>();
  /** What each acceptor told others: the highest ballot it promised or voted in … */
  private readonly announcedPromises = new Map<Address, Ballot>();
  /** The highest watermark each acceptor announced in a `WatermarkB` (durable before it left). */
  private readonly announcedWatermarks = new Map<Address, number>();
  /** Acceptors that announced their retirement in a `RetireB`. */
  private readonly announcedRetired = new Set<Address>();
  /** … and, per slot, its latest vote: both must survive its crashes. */
  private readonly votesOf = new Map<Address, Map<number, { ballot: Ballot; value: Value }>>();
  private readonly joined = new Map<RoleKind, number>();
  private now = 0;
  private stepCount = 0;
  private faultPhase = true;
  /** Clients submit new commands until then (a little into recovery, so permanent faults meet load). */
  private submitUntil = Number.POSITIVE_INFINITY;
  private progressMark: { prefix: number; elections: number } | null = null;
  private violation: Violation | null = null;
  readonly stats: SimulationStats = {
    delivered: 0,
    dropped: 0,
    duplicated: 0,
    longDelays: 0,
    crashes: 0,
    groupCrashes: 0,
    acceptorRestarts: 0,
    matchmakerRestarts: 0,
    reconfigurations: 0,
    matchmakerReplacements: 0,
    matchmakerChanges: 0,
    retiredAcceptors: 0,
    bypasses: 0,
    garbageCollections: 0,
    checkpointRecoveries: 0,
    restarts: 0,
    partitions: 0,
    oneWayFaults: 0,
    pauses: 0,
    quorumLosses: 0,
    directoryRestarts: 0,
    reregistrations: 0,
    joins: 0,
    leaves: 0,
    staleViews: 0,
    clientCrashes: 0,
    permanentFaults: 0,
    elections: 0,
    stepDowns: 0,
    submitted: 0,
    acknowledged: 0,
    slotsChosen: 0,
  };

  constructor(options: SimulationOptions) {
    this.options = {
      seed: options.seed,
      steps: options.steps,
      f: options.f ?? 1,
      groups: options.groups ?? 2,
      proposers: options.proposers ?? 2,
      batchers: options.batchers ?? 2,
      proxyLeaders: options.proxyLeaders ?? 2,
      unbatchers: options.unbatchers ?? 2,
      clients: options.clients ?? 3,
      matchmakers: options.matchmakers ?? 0,
      commandsPerClient: options.commandsPerClient ?? Number.POSITIVE_INFINITY,
      clientWindow: options.clientWindow ?? 2,
      batchSize: options.batchSize ?? 3,
      livenessTimeoutMs: options.livenessTimeoutMs ?? 10_000,
      wire: options.wire ?? false,
      fsync: options.fsync ?? true,
      restartChecks: options.restartChecks ?? true,
    };
    this.faults = { ...DEFAULT_FAULTS, ...options.faults };
    this.trace = options.trace;
    this.makeProposer = options.makeProposer ?? ((o) => new Proposer(o));
    this.makeProxyLeader = options.makeProxyLeader ?? ((o) => new ProxyLeader(o));
    this.makeBatcher = options.makeBatcher ?? ((o) => new Batcher(o));
    this.makeAcceptor = options.makeAcceptor ?? ((o) => new Acceptor(o));
    this.makeDurableAcceptor = options.makeDurableAcceptor ?? durableAcceptor;
    this.makeDurableMatchmaker = options.makeDurableMatchmaker ?? durableMatchmaker;
    this.rng = new Rng(options.seed);

    const o = this.options;
    this.config = {
      f: o.f,
      groups: Array.from({ length: o.groups }, (_, g) => ({
        groupId: g,
        acceptors: Array.from({ length: 2 * o.f + 1 }, (_, a) => acceptorAddress(g, a)),
      })),
    };
    this.checker = new SafetyChecker(this.config, o.matchmakers > 0);
    this.spec = configSpecOf(this.config, 0);
    this.target = this.spec;
    this.nextGroupId = o.groups;
    for (const group of this.spec.groups) this.nextAcceptorId.set(group.groupId, 2 * o.f + 1);
    if (
      !Number.isInteger(o.matchmakers) ||
      o.matchmakers < 0 ||
      (o.matchmakers > 0 && o.matchmakers % 2 === 0)
    )
      throw new Error(`matchmakers must be 0 or an odd number 2f+1, got ${o.matchmakers}`);
    this.matchmakerF = Math.max(0, (o.matchmakers - 1) / 2);
    this.epochs = new EpochChecker(this.matchmakerF);
    this.matchmakerTarget = this.matchmakerAddresses();
    this.nextMatchmakerIndex = o.matchmakers;
    this.publishedMatchmakers = { epoch: 0, addresses: this.matchmakerTarget };
    if (o.matchmakers > 0) this.forcedReconfigureAt = this.rng.int(1, Math.max(1, o.steps - 1));

    // Everyone registers first, so the first poll shows each process the whole cluster.
    const planned: [RoleKind, number][] = [];
    const plan = (kind: RoleKind, n: number) => {
      for (let i = 0; i < n; i++) planned.push([kind, i]);
    };
    plan('proposer', o.proposers);
    plan('batcher', o.batchers);
    plan('proxyLeader', o.proxyLeaders);
    plan('unbatcher', o.unbatchers);
    plan('client', o.clients);
    for (const [kind, i] of planned) this.addProcess(kind, `${PREFIX[kind]}/${i}`, i);
    for (const group of this.config.groups) {
      for (const [i, address] of group.acceptors.entries()) this.addProcess('acceptor', address, i);
    }
    for (let i = 0; i < o.matchmakers; i++) this.addProcess('matchmaker', `${PREFIX.matchmaker}/${i}`, i);
    for (const p of this.processes.values()) {
      this.poll(p, true);
      p.role = this.newRole(p);
    }
  }

  /** Runs the fault phase, then the recovery phase; stops at the first violation. */
  run(): SimulationResult {
    for (const p of this.processes.values()) {
      this.apply(p, p.role.start(this.now));
      this.schedulePoll(p);
    }
    for (const address of this.clientProgress.keys()) this.fillWindow(address);

    while (this.violation === null && this.stepCount < this.options.steps && this.queue.size > 0) {
      if (this.step()) this.maybeInjectFault();
    }
    if (this.violation === null) this.recover();
    return {
      seed: this.options.seed,
      ok: this.violation === null,
      violation: this.violation,
      steps: this.stepCount,
      virtualTimeMs: this.now,
      stats: this.stats,
    };
  }

  // ---- processes ---------------------------------------------------------------------------

  private addProcess(kind: RoleKind, address: Address, index: number): Process {
    const p: Process = {
      address,
      kind,
      index,
      role: PLACEHOLDER_ROLE,
      acceptor: null,
      matchmaker: null,
      acceptedAt: new Map(),
      disk: kind === 'acceptor' || kind === 'matchmaker' ? new MemoryStorage(`disk of ${address}`) : null,
      alive: true,
      retired: false,
      leaving: false,
      incarnation: 0,
      timers: new Map(),
      pausedUntil: null,
      held: [],
      deafUntil: 0,
      deafSince: 0,
      muteUntil: 0,
      pollsStalledUntil: 0,
      wokeAt: 0,
      entry: null,
      view: new MemberView({ leaseTimeoutMs: SIM_TIMING.leaseTimeoutMs }),
      lease: -1,
      knownTarget: -1,
      knownMatchmakerTarget: -1,
    };
    this.processes.set(address, p);
    if (kind === 'client') this.clientProgress.set(address, { submitted: 0, acknowledged: 0 });
    this.register(p);
    return p;
  }

  private register(p: Process): void {
    const kind = REGISTERS[p.kind];
    if (kind === null) return;
    p.entry = withIncarnation(p.address, String(p.incarnation));
    p.lease = this.now;
    this.directory.putLease(p.entry, p.lease);
    this.directory.register(kind, p.entry);
  }

  private membersOf(p: Process): Members {
    const members: { -readonly [K in keyof Members]: readonly Address[] } = {
      proposers: [],
      batchers: [],
      proxyLeaders: [],
      unbatchers: [],
    };
    for (const kind of WATCHES[p.kind]) members[MEMBERS_KEY[kind]] = withoutIncarnations(p.view.live(kind));
    return members;
  }

  private newRole(p: Process): Role {
    const random = () => this.rng.next();
    const members = this.membersOf(p);
    switch (p.kind) {
      case 'proposer':
        return this.makeProposer({
          address: p.address,
          // Unique per incarnation: a restarted proposer must never reuse a ballot.
          proposerId: p.index + 1 + this.options.proposers * p.incarnation,
          config: this.config,
          members,
          random,
          timing: SIM_TIMING.proposer,
          limits: SIM_TIMING.proposerLimits,
          ...(this.options.matchmakers > 0
            ? {
                matchmakers: {
                  addresses: this.publishedMatchmakers.addresses,
                  epoch: this.publishedMatchmakers.epoch,
                  f: this.matchmakerF,
                },
              }
            : {}),
        });
      case 'batcher':
        return this.makeBatcher({
          address: p.address,
          members,
          batchSize: this.options.batchSize,
          batchTimeoutMs: SIM_TIMING.batchTimeoutMs,
          leaderTimeoutMs: SIM_TIMING.batcherLeaderTimeoutMs,
        });
      case 'proxyLeader':
        return this.makeProxyLeader({ address: p.address, members, timing: SIM_TIMING.proxyLeader });
      case 'acceptor':
        return this.newAcceptor(p);
      case 'matchmaker':
        return this.newMatchmaker(p);
      case 'unbatcher':
        return new Unbatcher({ address: p.address });
      case 'client':
        return new Client({
          address: p.address,
          members,
          resendTimeoutMs: SIM_TIMING.clientResendMs,
          // A new incarnation's ids never collide with an abandoned one's.
          firstRequestId: p.incarnation * 1_000_000 + 1,
        });
    }
  }

  /**
   * An acceptor opens its log (creating it on first boot) and starts from what it recovers, as
   * the acceptor process does; replies wait for their records' commit, a later event.
   */
  private newAcceptor(p: Process): Role {
    const groupId = groupOfAcceptor(p.address);
    const identity = { cluster: 'sim', groupId, acceptorId: p.index };
    const { log, state, recovery } = AcceptorLog.open(p.disk as MemoryStorage, {
      identity,
      fsync: this.options.fsync,
      segmentBytes: SIM_TIMING.logSegmentBytes,
    });
    const acceptor = this.makeAcceptor({
      address: p.address,
      groupId,
      acceptorId: p.index,
      phase1PageEntries: SIM_TIMING.acceptorPageEntries,
      recovered: state,
    });
    p.acceptor = acceptor;
    if (recovery.segments > 1) this.stats.checkpointRecoveries++;
    return this.makeDurableAcceptor(acceptor, log, this.commitIo(p));
  }

  /**
   * How a durable process's group commit runs here: its commit is an event 0–2 ms after the burst
   * (so a crash can fall in between), and what it held is then performed as the process's effects.
   */
  private commitIo(p: Process): Required<DurableAcceptorIo> {
    const incarnation = p.incarnation;
    return {
      release: (effects) => this.apply(p, effects),
      schedule: (commit) => {
        const delay = this.rng.int(SIM_TIMING.commitMs[0], SIM_TIMING.commitMs[1]);
        this.queue.push(this.now + delay, { kind: 'commit', to: p.address, incarnation, commit });
      },
    };
  }

  private matchmakerAddresses(): Address[] {
    return Array.from({ length: this.options.matchmakers }, (_, i) => `${PREFIX.matchmaker}/${i}`);
  }

  /**
   * A matchmaker opens its state file and starts from what it holds; a new one (first boot) from
   * the genesis configuration, saved before it answers anything. Replies that announce a change
   * wait for the save, a later event, as acceptors' replies wait for their commit.
   */
  private newMatchmaker(p: Process): Role {
    const { store, state } = MatchmakerStore.open(p.disk as MemoryStorage, {
      identity: { cluster: 'sim', matchmakerId: p.index },
    });
    const matchmaker = new Matchmaker({
      address: p.address,
      matchmakerId: p.index,
      ...(state !== null ? { recovered: state } : {}),
      // Only a brand-new matchmaker of the first set starts from genesis; a restarted one without a
      // state, or a replacement, stays silent until bootstrapped.
      ...(p.incarnation === 0 && p.index < this.options.matchmakers ? { genesis: this.spec } : {}),
    });
    p.matchmaker = matchmaker;
    return this.makeDurableMatchmaker(matchmaker, store, this.commitIo(p));
  }

  /**
   * A restarted matchmaker answers as its old self: its maxBallot is at least every ballot it
   * answered with a MatchB, and it still holds every entry at or above its gcBallot that it
   * returned in a MatchB or recorded for one, with the same configuration.
   */
  private checkMatchmakerRecovered(p: Process): void {
    const announced = this.announcedMatches.get(p.address);
    if (!this.options.restartChecks || announced === undefined) return;
    const state = (p.matchmaker as Matchmaker).state;
    if (state === null) {
      this.fail(
        'safety',
        `${p.address} restarted with no state, though it answered MatchB before it crashed`,
      );
      return;
    }
    if (compareBallots(state.maxBallot, announced.maxBallot) < 0) {
      this.fail(
        'safety',
        `${p.address} restarted with maxBallot ${formatBallot(state.maxBallot)}, below the ${formatBallot(announced.maxBallot)} it answered with a MatchB before it crashed`,
      );
      return;
    }
    for (const { ballot, specId } of announced.entries.values()) {
      if (compareBallots(ballot, state.gcBallot) < 0) continue;
      const kept = state.entries.find((e) => ballotEquals(e.ballot, ballot));
      if (kept === undefined || configSpecId(kept.spec) !== specId) {
        this.fail(
          'safety',
          `${p.address} restarted without its entry for ${formatBallot(ballot)} (spec ${specId}) that it answered before it crashed (it holds ${kept === undefined ? 'nothing' : `spec ${configSpecId(kept.spec)}`} there, gcBallot ${formatBallot(state.gcBallot)})`,
        );
        return;
      }
    }
  }

  /**
   * A MatchB a matchmaker sends: one configuration per ballot across all replies (the checker),
   * and what it announced, which it must still know after a crash.
   */
  private observeMatchB(p: Process, reply: MatchB): void {
    const own = (p.matchmaker as Matchmaker).state?.entries.find((e) => ballotEquals(e.ballot, reply.ballot));
    const ownSpecId = own === undefined ? undefined : configSpecId(own.spec);
    const violation = this.checker.recordMatchB(p.address, reply, own?.spec);
    if (violation !== null) {
      this.fail('safety', violation);
      return;
    }
    let announced = this.announcedMatches.get(p.address);
    if (announced === undefined) {
      announced = { maxBallot: reply.ballot, entries: new Map() };
      this.announcedMatches.set(p.address, announced);
    }
    if (compareBallots(reply.ballot, announced.maxBallot) > 0) announced.maxBallot = reply.ballot;
    const entries: { readonly ballot: Ballot; readonly specId: number }[] = reply.entries.map((e) => ({
      ballot: e.ballot,
      specId: configSpecId(e.spec),
    }));
    if (ownSpecId !== undefined) entries.push({ ballot: reply.ballot, specId: ownSpecId });
    for (const e of entries) announced.entries.set(formatBallot(e.ballot), e);
  }

  /**
   * A restarted acceptor answers as its old self: its promise is at least every ballot it
   * promised or voted in before, its watermark at least every one it announced in a `WatermarkB`,
   * it is still retired if it sent a `RetireB`, and it still holds each vote it sent for a slot at
   * or above its watermark (below it, slots are chosen and phase 1 never asks).
   */
  private checkRecovered(p: Process): void {
    const acceptor = p.acceptor as Acceptor;
    if (!this.options.restartChecks) {
      this.promises.set(p.address, acceptor.promised);
      return;
    }
    const announced = this.announcedPromises.get(p.address);
    if (announced !== undefined && compareBallots(acceptor.promised, announced) < 0) {
      this.fail(
        'safety',
        `${p.address} restarted promising ${formatBallot(acceptor.promised)}, below the ${formatBallot(announced)} it announced before it crashed`,
      );
      return;
    }
    this.promises.set(p.address, acceptor.promised);
    const watermark = this.announcedWatermarks.get(p.address);
    if (watermark !== undefined && acceptor.watermark < watermark) {
      this.fail(
        'safety',
        `${p.address} restarted with watermark ${acceptor.watermark}, below the ${watermark} it announced in a WatermarkB before it crashed`,
      );
      return;
    }
    if (this.announcedRetired.has(p.address) && !acceptor.retired) {
      this.fail(
        'safety',
        `${p.address} restarted not retired, though it announced its retirement in a RetireB`,
      );
      return;
    }
    for (const [slot, vote] of this.votesOf.get(p.address) ?? []) {
      if (slot < acceptor.watermark) continue;
      const kept = acceptor.accepted(slot);
      const lost =
        kept === undefined ||
        compareBallots(kept.ballot, vote.ballot) < 0 ||
        (ballotEquals(kept.ballot, vote.ballot) && !valuesEqual(kept.value, vote.value));
      if (lost) {
        this.fail(
          'safety',
          `${p.address} restarted without its vote for slot ${slot} in ${formatBallot(vote.ballot)} (it holds ${kept === undefined ? 'nothing' : formatBallot(kept.ballot)} there, watermark ${acceptor.watermark})`,
        );
        return;
      }
    }
  }

  // ---- the event loop ----------------------------------------------------------------------

  /**
   * Faults stop, partitions heal, paused processes resume, crashed processes restart; perhaps
   * one fault stays for good. Then every submitted command must be
   * acknowledged and the chosen log must fill its holes, within the deadline.
   */
  private recover(): void {
    this.faultPhase = false;
    for (const id of [...this.partitions.keys()]) this.heal(id);
    this.cuts = [];
    for (const p of this.processes.values()) {
      p.deafUntil = 0;
      p.muteUntil = 0;
      p.pollsStalledUntil = 0;
      if (p.pausedUntil !== null) this.resume(p);
      if (!p.alive && !p.retired) this.restart(p);
    }
    if (this.rng.chance(this.faults.permanent)) this.injectPermanentFault();
    this.submitUntil = this.now + SIM_TIMING.trailingLoadMs;
    for (
      let at = SIM_TIMING.progressWindowMs;
      at < SIM_TIMING.trailingLoadMs;
      at += SIM_TIMING.progressWindowMs
    )
      this.queue.push(this.now + at, { kind: 'progressCheck' });
    const deadline = this.now + this.options.livenessTimeoutMs;
    while (
      this.violation === null &&
      !(
        this.allClientsDone() &&
        this.checker.logComplete &&
        this.leaderCaughtUp() &&
        (this.options.matchmakers === 0 || this.targetServed())
      )
    ) {
      const next = this.queue.peekTime();
      if (next === undefined || next > deadline) {
        const after = `${this.options.livenessTimeoutMs} ms after faults stopped`;
        if (!this.allClientsDone()) {
          const pending = [...this.clientProgress.keys()]
            .map((address) => this.processes.get(address) as Process)
            .map((p) => `${p.address}: ${(p.role as Client).pendingRequestIds().join(',') || 'none'}`)
            .join('; ');
          this.fail('liveness', `commands still pending ${after} (${pending})`);
        } else if (this.options.matchmakers > 0 && !this.targetServed()) {
          const leaders = this.live('proposer')
            .map((p) => p.role as Proposer)
            .filter((r) => r.status === 'leader')
            .map(
              (r) =>
                `${r.address} serving version ${r.configuration.version}${r.collected ? '' : ' (older configurations not yet collected)'}`,
            );
          this.fail(
            'liveness',
            `the target configuration (version ${this.target.version}) is not served alone ${after}: ${leaders.join('; ') || 'no leader'}`,
          );
        } else if (!this.checker.logComplete) {
          this.fail(
            'liveness',
            `slot ${this.checker.chosenPrefix} is still a hole in the chosen log ${after}`,
          );
        } else {
          const leaders = this.live('proposer')
            .map((p) => p.role as Proposer)
            .filter((r) => r.status === 'leader')
            .map((r) => `${r.address} at watermark ${r.watermark} with ${r.inflightSlots} slots pending`);
          this.fail(
            'liveness',
            `no leader knows the whole chosen log (${this.checker.chosenPrefix} slots) ${after}: ${leaders.join('; ') || 'no leader'}`,
          );
        }
        return;
      }
      this.step();
    }
  }

  /**
   * Under load and with faults over, a leader keeps up: by the end of each window it knows what
   * was chosen by its start, unless an election began in between. (A slot stuck with a dead
   * proxy leader stalls the watermark while the rest of the log moves on.)
   */
  private checkProgress(): void {
    const mark = this.progressMark;
    this.progressMark = { prefix: this.checker.chosenPrefix, elections: this.stats.elections };
    if (mark === null || mark.elections !== this.stats.elections) return;
    const leaders = this.live('proposer')
      .map((p) => p.role as Proposer)
      .filter((r) => r.status === 'leader');
    if (leaders.some((r) => r.watermark >= mark.prefix)) return;
    this.fail(
      'liveness',
      `with faults over and no election for ${SIM_TIMING.progressWindowMs} ms, no leader knows the ${mark.prefix} slots chosen before (${leaders.map((r) => `${r.address} at watermark ${r.watermark} with ${r.inflightSlots} pending`).join('; ') || 'no leader'})`,
    );
  }

  /** A leader that hears knows every chosen slot and waits for none. */
  private leaderCaughtUp(): boolean {
    return this.live('proposer').some((p) => {
      const r = p.role as Proposer;
      return (
        r.status === 'leader' &&
        this.now >= p.deafUntil &&
        r.watermark >= this.checker.chosenPrefix &&
        r.inflightSlots === 0
      );
    });
  }

  private allClientsDone(): boolean {
    for (const progress of this.clientProgress.values()) {
      if (progress.acknowledged < progress.submitted) return false;
    }
    return true;
  }

  /** Handles the next event; true if it was a step (a message delivered or a timer fired). */
  private step(): boolean {
    const next = this.queue.pop();
    if (next === undefined) return false;
    this.now = next.time;
    const event = next.item;
    switch (event.kind) {
      case 'deliver': {
        const p = this.processes.get(event.to);
        if (p !== undefined && this.hold(p, event)) return false;
        this.stepCount++;
        this.deliver(event.from, event.to, event.message, event.frame);
        return true;
      }
      case 'timer': {
        const p = this.processes.get(event.to);
        if (p === undefined || !p.alive || p.incarnation !== event.incarnation) return false;
        if (p.timers.get(event.name) !== event.generation) return false;
        if (this.hold(p, event)) return false;
        this.stepCount++;
        p.timers.delete(event.name);
        this.log(`timer ${event.to} ${event.name}`);
        this.apply(p, p.role.step(this.now, { type: 'timer', name: event.name }));
        return true;
      }
      case 'poll': {
        const p = this.processes.get(event.to);
        if (p === undefined || !p.alive || p.incarnation !== event.incarnation) return false;
        if (this.hold(p, event)) return false;
        this.poll(p, false);
        this.schedulePoll(p);
        return false;
      }
      case 'commit': {
        const p = this.processes.get(event.to);
        if (p === undefined || !p.alive || p.incarnation !== event.incarnation) return false;
        if (this.hold(p, event)) return false;
        event.commit();
        return false;
      }
      case 'restart': {
        const p = this.processes.get(event.to);
        if (p !== undefined && !p.alive && !p.retired) this.restart(p);
        return false;
      }
      case 'resume': {
        const p = this.processes.get(event.to);
        if (p !== undefined && p.pausedUntil === event.at) this.resume(p);
        return false;
      }
      case 'retire': {
        const p = this.processes.get(event.to);
        if (p?.alive && p.incarnation === event.incarnation) this.stop(p, 'LEFT');
        return false;
      }
      case 'heal':
        this.heal(event.partition);
        return false;
      case 'progressCheck':
        this.checkProgress();
        return false;
    }
  }

  /** A paused process keeps what reaches it until it resumes. */
  private hold(p: Process, event: SimEvent): boolean {
    if (p.pausedUntil === null || !p.alive) return false;
    p.held.push(event);
    return true;
  }

  private deliver(from: Address, to: Address, sent: Message, frame: Uint8Array | null): void {
    const p = this.processes.get(to);
    let why: string | null = null;
    if (p === undefined || !p.alive) why = 'crashed';
    else if (this.partitionOf(from) !== this.partitionOf(to)) why = 'partitioned';
    else if (this.now < p.deafUntil) why = 'deaf';
    else if (this.isCut(from, to)) why = 'one-way cut';
    if (p === undefined || why !== null) {
      this.stats.dropped++;
      this.log(`lost ${from} -> ${to} ${summarize(sent)} (${why})`);
      return;
    }
    let message = sent;
    if (frame !== null) {
      const decoded = decodeEnvelope(frame);
      if (!decoded.ok) {
        this.fail('safety', `a frame from ${from} did not decode: ${decoded.error.reason}`);
        return;
      }
      message = decoded.envelope.message;
    }
    this.stats.delivered++;
    this.log(`deliver ${from} -> ${to} ${summarize(message)}`);
    const event: RoleEvent = { type: 'message', from, message };
    const effects = p.role.step(this.now, event);
    if (p.kind === 'acceptor') {
      this.checkPromise(p);
      if (message.type === 'Phase2a') {
        const entry = (p.acceptor as Acceptor).accepted(message.slot);
        if (entry !== undefined && ballotEquals(entry.ballot, message.ballot))
          p.acceptedAt.set(`${message.slot}/${formatBallot(message.ballot)}`, entry.value);
      }
    }
    this.apply(p, effects);
  }

  /** An acceptor's promise never decreases, whatever it is sent. */
  private checkPromise(p: Process): void {
    const promised = (p.acceptor as Acceptor).promised;
    const before = this.promises.get(p.address);
    if (before !== undefined && compareBallots(promised, before) < 0) {
      this.fail(
        'safety',
        `${p.address}'s promise went down from ${formatBallot(before)} to ${formatBallot(promised)}`,
      );
    }
    this.promises.set(p.address, promised);
  }

  private apply(p: Process, effects: Effect[]): void {
    for (const effect of effects) {
      if (this.violation !== null) return;
      switch (effect.kind) {
        case 'send':
          this.observeSend(p, effect.to, effect.message);
          this.send(p, effect.to, effect.message);
          break;
        case 'setTimer': {
          const generation = (p.timers.get(effect.name) ?? 0) + 1;
          p.timers.set(effect.name, generation);
          this.queue.push(this.now + effect.delayMs, {
            kind: 'timer',
            to: p.address,
            name: effect.name,
            generation,
            incarnation: p.incarnation,
          });
          break;
        }
        case 'cancelTimer':
          p.timers.delete(effect.name);
          break;
        case 'metric':
          if (effect.name === 'leader_elections') this.stats.elections += effect.value;
          if (effect.name === 'leader_step_downs') this.stats.stepDowns += effect.value;
          if (effect.name === 'reconfigurations') this.stats.bypasses += effect.value;
          if (effect.name === 'matchmaker_reconfigurations') this.stats.matchmakerChanges += effect.value;
          if (effect.name === 'garbage_collections') this.stats.garbageCollections += effect.value;
          break;
        case 'acknowledged': {
          const violation = this.checker.checkAcknowledged(p.address, effect.requestId, effect.slot);
          if (violation !== null) {
            this.fail('safety', violation);
            return;
          }
          this.stats.acknowledged++;
          const progress = this.clientProgress.get(p.address);
          if (progress !== undefined) progress.acknowledged++;
          this.log(`ack ${p.address}#${effect.requestId} at slot ${effect.slot}`);
          this.submitNext(p.address);
          break;
        }
      }
    }
  }

  /** Ground truth comes from what acceptors vote and what proxy leaders announce. */
  private observeSend(p: Process, to: Address, message: Message): void {
    if (
      p.kind === 'acceptor' &&
      this.announcedRetired.has(p.address) &&
      (message.type === 'Phase2b' || message.type === 'Phase1b' || message.type === 'WatermarkB')
    ) {
      this.fail('safety', `${p.address} sent a ${message.type} after it retired`);
      return;
    }
    if (p.kind === 'proposer' && message.type === 'Phase2a') {
      const violation = this.checker.checkProposal(message.slot, message.ballot, message.value);
      if (violation !== null) {
        this.fail('safety', `${p.address}: ${violation}`);
        return;
      }
    }
    if (p.kind === 'proposer' && message.type === 'GarbageA') {
      const violation = this.checker.checkGarbageCollection(
        message.gcBallot,
        message.startSlot,
        (groupId, acceptorId) => this.announcedWatermarks.get(acceptorAddress(groupId, acceptorId)) ?? 0,
      );
      if (violation !== null) {
        this.fail('safety', `${p.address}: ${violation}`);
        return;
      }
    }
    if (p.kind === 'acceptor') this.observeAnnouncement(p, message);
    if (p.kind === 'matchmaker' && message.type === 'MatchB') this.observeMatchB(p, message);
    const epochViolation =
      p.kind === 'proposer' && message.type === 'EpochAccept'
        ? this.epochs.recordProposal(p.address, message.epoch, message.ballot, message.next)
        : p.kind === 'matchmaker' && message.type === 'EpochAccepted'
          ? this.epochs.recordVote(message.epoch, message.ballot, message.matchmakerId)
          : p.kind === 'proposer' && (message.type === 'MatchA' || message.type === 'GarbageA')
            ? this.epochs.checkUse(p.address, to, message.type, message.epoch)
            : null;
    if (epochViolation !== null) {
      this.fail('safety', epochViolation);
      return;
    }
    if (p.kind === 'acceptor' && message.type === 'Phase2b') {
      const accepted = this.acceptedFor(p, message.slot, message.ballot);
      if (accepted === undefined) {
        this.fail('safety', `${p.address} voted for slot ${message.slot} without accepting it`);
        return;
      }
      const before = this.checker.chosen.size;
      const violation = this.checker.recordVote(
        message.groupId,
        message.acceptorId,
        message.slot,
        message.ballot,
        accepted,
      );
      if (violation !== null) {
        this.fail('safety', violation);
        return;
      }
      if (this.checker.chosen.size > before) {
        this.stats.slotsChosen++;
        this.log(`CHOSEN slot ${message.slot} = ${describe(accepted)} in ${formatBallot(message.ballot)}`);
      }
    } else if (p.kind === 'proxyLeader' && message.type === 'Chosen') {
      const violation = this.checker.checkAnnouncement(message.slot, message.value);
      if (violation !== null) this.fail('safety', `${p.address} -> ${to}: ${violation}`);
    } else if (p.kind === 'proposer' && message.type === 'Heartbeat') {
      this.checkDeafLeader(p);
    }
  }

  /**
   * What an acceptor says it promised, voted, made its watermark or retired, which it must still
   * know after a crash.
   */
  private observeAnnouncement(p: Process, message: Message): void {
    if (message.type === 'WatermarkB') {
      const before = this.announcedWatermarks.get(p.address) ?? 0;
      if (message.watermark > before) this.announcedWatermarks.set(p.address, message.watermark);
      return;
    }
    if (message.type === 'RetireB') {
      if (!this.announcedRetired.has(p.address)) {
        this.announcedRetired.add(p.address);
        this.stats.retiredAcceptors++;
        // Retired for good: the operator stops the process (its log stays, archived).
        this.queue.push(this.now + 1, { kind: 'retire', to: p.address, incarnation: p.incarnation });
      }
      return;
    }
    let ballot: Ballot;
    if (message.type === 'Phase1b' || message.type === 'Phase2b') ballot = message.ballot;
    else if (message.type === 'Nack') ballot = message.promised;
    else return;
    const before = this.announcedPromises.get(p.address);
    if (before === undefined || compareBallots(ballot, before) > 0)
      this.announcedPromises.set(p.address, ballot);
    if (message.type !== 'Phase2b') return;
    const accepted = this.acceptedFor(p, message.slot, message.ballot);
    if (accepted === undefined) return;
    let votes = this.votesOf.get(p.address);
    if (votes === undefined) {
      votes = new Map();
      this.votesOf.set(p.address, votes);
    }
    const previous = votes.get(message.slot);
    if (previous === undefined || compareBallots(message.ballot, previous.ballot) >= 0)
      votes.set(message.slot, { ballot: message.ballot, value: accepted });
  }

  /** The value acceptor `p` accepted at `slot` in `ballot` (undefined: it accepted none). */
  private acceptedFor(p: Process, slot: number, ballot: Ballot): Value | undefined {
    return p.acceptedAt.get(`${slot}/${formatBallot(ballot)}`);
  }

  /**
   * A leader that hears nothing must step down (stop heartbeating) within its step-down time
   * and two resend scans, if another proposer could take over; else it holds the cluster hostage.
   */
  private checkDeafLeader(p: Process): void {
    if (this.now >= p.deafUntil) return;
    const proposer = p.role as Proposer;
    if (proposer.status !== 'leader') return;
    if (!proposer.knownMembers.proposers.some((a) => a !== p.address)) return;
    const deafFor = this.now - Math.max(p.deafSince, p.wokeAt);
    const t = SIM_TIMING.proposer;
    const allowed = t.stepDownMs + t.resendTimeoutMs + t.heartbeatIntervalMs;
    if (deafFor > allowed) {
      this.fail(
        'liveness',
        `${p.address} still heartbeats as leader ${deafFor} ms after it stopped hearing (it must step down within ${allowed} ms)`,
      );
    }
  }

  private send(p: Process, to: Address, message: Message): void {
    const from = p.address;
    const frame = this.options.wire ? encodeEnvelope({ from, message }) : null;
    if (this.now < p.muteUntil) {
      this.stats.dropped++;
      this.log(`lost ${from} -> ${to} ${summarize(message)} (mute)`);
      return;
    }
    if (this.faultPhase && this.rng.chance(this.faults.drop)) {
      this.stats.dropped++;
      this.log(`drop ${from} -> ${to} ${summarize(message)}`);
      return;
    }
    const copies = this.faultPhase && this.rng.chance(this.faults.duplicate) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      let latency = this.rng.int(SIM_TIMING.latencyMs[0], SIM_TIMING.latencyMs[1]);
      if (this.faultPhase && this.rng.chance(this.faults.delay)) {
        latency += this.rng.int(SIM_TIMING.extraDelayMs[0], SIM_TIMING.extraDelayMs[1]);
      }
      if (this.faultPhase && this.rng.chance(this.faults.longDelay)) {
        latency += this.rng.int(SIM_TIMING.longDelayMs[0], SIM_TIMING.longDelayMs[1]);
        this.stats.longDelays++;
        this.log(`HOLD ${from} -> ${to} ${summarize(message)} for ${latency} ms`);
      }
      this.queue.push(this.now + latency, { kind: 'deliver', from, to, message, frame });
    }
  }

  // ---- the directory -----------------------------------------------------------------------

  private schedulePoll(p: Process): void {
    if (REGISTERS[p.kind] === null && WATCHES[p.kind].length === 0) return;
    const delay = SIM_TIMING.pollMs + this.rng.int(-5, 5);
    this.queue.push(this.now + delay, { kind: 'poll', to: p.address, incarnation: p.incarnation });
  }

  /**
   * One membership poll, as the runtime does it: refresh the lease and re-register if the
   * directory lost the entry (unless the process cannot reach it), then read the watched kinds
   * (unless its view is stale or it cannot hear) and hand changes to the role.
   */
  private poll(p: Process, initial: boolean): void {
    const reachable = this.partitionOf(p.address) === 0;
    const kind = REGISTERS[p.kind];
    if (kind !== null && p.entry !== null && reachable && this.now >= p.muteUntil) {
      p.lease = Math.max(p.lease + 1, this.now);
      this.directory.putLease(p.entry, p.lease);
      if (!this.directory.isObserved(kind, p.entry)) {
        this.directory.register(kind, p.entry);
        this.stats.reregistrations++;
        this.log(`REREGISTER ${p.entry}`);
      }
    }
    if (!reachable || this.now < p.deafUntil || this.now < p.pollsStalledUntil) return;
    const healthy =
      p.entry !== null
        ? this.directory.lease(p.entry) !== undefined
        : WATCHES[p.kind].some((k) => this.directory.observedOf(k) !== null);
    const changed: Partial<Record<keyof Members, readonly Address[]>> = {};
    let any = false;
    for (const watched of WATCHES[p.kind]) {
      const snapshot = this.directory.read(
        watched,
        p.view.entriesToRead(watched, this.directory.observedOf(watched)),
      );
      const change = p.view.update(this.now, watched, snapshot, healthy);
      if (change === null || initial) continue;
      changed[MEMBERS_KEY[watched]] = withoutIncarnations(change.members);
      any = true;
      this.log(
        `VIEW ${p.address} ${watched}: ${change.joined.map((e) => `+${e}`).join(' ')} ${change.left.map((e) => `-${e}`).join(' ')}`,
      );
    }
    if (any) this.apply(p, p.role.step(this.now, { type: 'membership', members: changed }));
    if (p.kind === 'proposer' && !initial && p.knownTarget < this.target.version) {
      // The acceptors and target keys, read on the same poll.
      p.knownTarget = this.target.version;
      this.apply(p, p.role.step(this.now, { type: 'acceptors', acceptors: this.acceptorBook() }));
      this.apply(p, p.role.step(this.now, { type: 'target', spec: this.target }));
    }
    if (p.kind === 'proposer' && !initial && this.options.matchmakers > 0) {
      if (p.knownMatchmakerTarget < this.matchmakerTargetVersion) {
        p.knownMatchmakerTarget = this.matchmakerTargetVersion;
        this.apply(p, p.role.step(this.now, { type: 'matchmakers', addresses: this.matchmakerTarget }));
      }
      // Proposers publish the matchmaker set they use (known chosen) for those that restart.
      const set = (p.role as Proposer).matchmakerSet;
      if (set !== null && set.epoch > this.publishedMatchmakers.epoch) this.publishedMatchmakers = set;
    }
  }

  // ---- faults ------------------------------------------------------------------------------

  private maybeInjectFault(): void {
    const f = this.faults;
    if (this.rng.chance(f.crash)) this.crashSomeone();
    if (this.rng.chance(f.groupCrash)) this.crashGroup();
    if (this.partitions.size < 3 && this.rng.chance(f.partition)) this.partition();
    if (this.rng.chance(f.oneWay)) this.oneWay();
    if (this.rng.chance(f.pause)) this.pauseSomeone();
    if (this.rng.chance(f.quorumLoss)) this.loseQuorum();
    if (this.rng.chance(f.directoryRestart)) this.restartDirectory();
    if (this.rng.chance(f.membership)) this.changeMembership();
    if (this.rng.chance(f.staleView)) this.staleView();
    if (this.rng.chance(f.clientCrash)) this.crashClient();
    if (this.options.matchmakers > 0) {
      const forced = this.forcedReconfigureAt >= 0 && this.stepCount >= this.forcedReconfigureAt;
      if ((forced || this.rng.chance(f.reconfigure)) && this.reconfigure()) this.forcedReconfigureAt = -1;
    }
  }

  // ---- the operator (reconfiguration) ------------------------------------------------------

  /**
   * Whether a live leader serves the target configuration and the matchmakers dropped the older
   * ones (the operator's last change is done: no live configuration lists what it replaced).
   */
  private targetServed(): boolean {
    return this.live('proposer').some((p) => {
      const r = p.role as Proposer;
      const set = r.matchmakerSet?.addresses ?? [];
      return (
        r.status === 'leader' &&
        r.configuration.version >= this.target.version &&
        r.collected &&
        set.length === this.matchmakerTarget.length &&
        this.matchmakerTarget.every((a) => set.includes(a))
      );
    });
  }

  /**
   * The operator changes the target configuration, as `pnpm cluster reconfigure` / `replace`
   * would: new acceptors start first (empty logs, new never-reused ids), then the target is
   * written. One change at a time: nothing until the last one is served. Returns whether it
   * changed anything.
   */
  private reconfigure(): boolean {
    if (!this.targetServed()) return false;
    if (this.replacedMatchmaker !== null) {
      // The new set serves: the replaced matchmaker is stopped for good (its state file is kept).
      const old = this.processes.get(this.replacedMatchmaker) as Process;
      if (old.alive) this.stop(old, 'GONE FOR GOOD');
      old.retired = true;
      this.replacedMatchmaker = null;
    }
    const groups = this.target.groups;
    const f = this.options.f;
    const kind = this.rng.int(0, 3);
    let change: ConfigChange;
    if (kind === 3) {
      this.replaceMatchmaker();
      return true;
    }
    if (kind === 0 && groups.length < MAX_GROUPS) {
      change = { kind: 'groups', groups: groups.length + 1, nextGroupId: this.nextGroupId };
    } else if (kind === 1 && groups.length > 1) {
      change = { kind: 'removeGroup', groupId: this.rng.pick(groups).groupId };
    } else {
      const group = this.rng.pick(groups);
      const old = this.rng.pick(group.acceptorIds);
      const oldProcess = this.processes.get(acceptorAddress(group.groupId, old)) as Process;
      const groupDown = group.acceptorIds.filter(
        (id) => !(this.processes.get(acceptorAddress(group.groupId, id)) as Process).alive,
      ).length;
      // Sometimes its host is lost for good first (never more than f of the group down).
      if (oldProcess.alive && groupDown < f && this.rng.chance(0.5)) this.stop(oldProcess, 'GONE FOR GOOD');
      const newAcceptorId = this.nextAcceptorId.get(group.groupId) as number;
      change = { kind: 'replace', groupId: group.groupId, acceptorId: old, newAcceptorId };
    }
    const plan = planConfigChange(this.target, change);
    for (const { groupId, acceptorId } of plan.start) {
      this.nextGroupId = Math.max(this.nextGroupId, groupId + 1);
      this.nextAcceptorId.set(groupId, Math.max(this.nextAcceptorId.get(groupId) ?? 0, acceptorId + 1));
      this.startAcceptor(groupId, acceptorId);
    }
    this.log(`RECONFIGURE ${JSON.stringify(change)} -> version ${plan.target.version}`);
    this.target = plan.target;
    this.stats.reconfigurations++;
    return true;
  }

  /**
   * The operator replaces one matchmaker, as `pnpm cluster replace matchmaker-N` would: a new,
   * empty matchmaker starts (a new id, never reused), then the target set is written; sometimes
   * the old one's host is lost for good first (never more than f of the set down).
   */
  private replaceMatchmaker(): void {
    const old = this.rng.pick(this.matchmakerTarget);
    const oldProcess = this.processes.get(old) as Process;
    if (oldProcess.alive && this.matchmakersDown() < this.matchmakerF && this.rng.chance(0.5))
      this.stop(oldProcess, 'GONE FOR GOOD');
    const index = this.nextMatchmakerIndex++;
    const p = this.addProcess('matchmaker', `${PREFIX.matchmaker}/${index}`, index);
    this.boot(p);
    this.matchmakerTarget = this.matchmakerTarget.map((a) => (a === old ? p.address : a));
    this.matchmakerTargetVersion++;
    this.replacedMatchmaker = old;
    this.stats.matchmakerReplacements++;
    this.log(`REPLACE MATCHMAKER ${old} -> ${p.address}`);
  }

  /** Matchmakers down (crashed or gone) among the sets in use: the target and the newest published. */
  private matchmakersDown(): number {
    const inUse = new Set([...this.matchmakerTarget, ...this.publishedMatchmakers.addresses]);
    return [...inUse].filter((a) => !(this.processes.get(a) as Process).alive).length;
  }

  private startAcceptor(groupId: number, acceptorId: number): void {
    const p = this.addProcess('acceptor', acceptorAddress(groupId, acceptorId), acceptorId);
    this.boot(p);
  }

  /** Every acceptor's address by identity, as the directory lists them for proposers. */
  private acceptorBook(): AcceptorAddress[] {
    return [...this.processes.values()]
      .filter((p) => p.kind === 'acceptor')
      .map((p) => ({ groupId: groupOfAcceptor(p.address), acceptorId: p.index, address: p.address }));
  }

  /** The acceptor groups of the target configuration, with their processes' addresses. */
  private groupsNow(): { readonly groupId: number; readonly acceptors: readonly Address[] }[] {
    return this.target.groups.map((g) => ({
      groupId: g.groupId,
      acceptors: g.acceptorIds.map((id) => acceptorAddress(g.groupId, id)),
    }));
  }

  private live(kind?: RoleKind): Process[] {
    return [...this.processes.values()].filter((p) => p.alive && (kind === undefined || p.kind === kind));
  }

  private crashSomeone(): void {
    const crashedPerGroup = new Map<number, number>();
    for (const p of this.processes.values()) {
      if (p.kind === 'acceptor' && !p.alive && !this.announcedRetired.has(p.address)) {
        const g = groupOfAcceptor(p.address);
        crashedPerGroup.set(g, (crashedPerGroup.get(g) ?? 0) + 1);
      }
    }
    const matchmakersDown = this.matchmakersDown();
    const candidates = this.live().filter(
      (p) =>
        p.kind !== 'client' &&
        (p.kind !== 'acceptor' || (crashedPerGroup.get(groupOfAcceptor(p.address)) ?? 0) < this.options.f) &&
        (p.kind !== 'matchmaker' || matchmakersDown < this.matchmakerF),
    );
    if (candidates.length === 0) return;
    const victim = this.rng.pick(candidates);
    this.stats.crashes++;
    // Sometimes a host is lost for good: a proxy leader, batcher or unbatcher that never returns
    // (while another of its kind serves), with whatever it held in flight.
    const others = this.live(victim.kind).filter((p) => p !== victim && !p.leaving);
    if (STATELESS.includes(victim.kind) && others.length > 0 && this.rng.chance(0.2)) {
      this.stop(victim, 'GONE FOR GOOD');
      return;
    }
    this.crashAndRestart(victim);
  }

  /** A crash and, a little later, a restart: empty, or for an acceptor from its disk. */
  private crashAndRestart(p: Process): void {
    this.stop(p, 'CRASH');
    const after = this.rng.int(SIM_TIMING.restartAfterMs[0], SIM_TIMING.restartAfterMs[1]);
    this.queue.push(this.now + after, { kind: 'restart', to: p.address });
  }

  /** Power fails under a whole group: all 2f+1 acceptors crash, and each restarts from its log. */
  private crashGroup(): void {
    const group = this.rng.pick(this.groupsNow());
    const victims = group.acceptors.map((a) => this.processes.get(a) as Process).filter((p) => p.alive);
    if (victims.length === 0) return;
    this.stats.groupCrashes++;
    this.log(`GROUP CRASH group ${group.groupId}`);
    for (const p of victims) this.crashAndRestart(p);
  }

  private stop(p: Process, what: 'CRASH' | 'LEFT' | 'GONE FOR GOOD'): void {
    p.alive = false;
    p.timers.clear();
    p.held = [];
    p.pausedUntil = null;
    if (what !== 'CRASH') p.retired = true;
    this.log(`${what} ${p.address}`);
    // The machine stops: its disk keeps what was synced, and sometimes part of what was not.
    if (p.disk !== null) {
      const torn = this.rng.chance(0.3);
      p.disk.crash({ keepUnsynced: (_, unsynced) => (torn ? this.rng.int(0, unsynced) : 0) });
    }
  }

  /** Builds a (re)started process's role from a fresh view of the directory, and starts it. */
  private boot(p: Process): void {
    this.poll(p, true);
    p.role = this.newRole(p);
    this.apply(p, p.role.start(this.now));
    this.schedulePoll(p);
  }

  private restart(p: Process): void {
    p.incarnation++;
    p.alive = true;
    p.leaving = false;
    p.timers.clear();
    p.wokeAt = this.now;
    p.view = new MemberView({ leaseTimeoutMs: SIM_TIMING.leaseTimeoutMs });
    p.knownTarget = -1;
    p.knownMatchmakerTarget = -1;
    this.register(p);
    this.stats.restarts++;
    this.log(`RESTART ${p.address} (incarnation ${p.incarnation})`);
    p.acceptedAt.clear();
    this.boot(p);
    if (p.kind === 'acceptor') {
      this.stats.acceptorRestarts++;
      this.checkRecovered(p);
    }
    if (p.kind === 'matchmaker') {
      this.stats.matchmakerRestarts++;
      this.checkMatchmakerRecovered(p);
    }
    if (p.kind === 'client') {
      this.clientProgress.set(p.address, { submitted: 0, acknowledged: 0 });
      this.fillWindow(p.address);
    }
  }

  private partition(): void {
    const candidates = [...this.processes.keys()].filter((a) => this.partitionOf(a) === 0);
    if (candidates.length < 4) return;
    const size = this.rng.int(1, Math.max(1, Math.floor(candidates.length / 3)));
    const members = new Set<Address>();
    while (members.size < size) members.add(this.rng.pick(candidates));
    const id = this.nextPartition++;
    this.partitions.set(id, members);
    this.stats.partitions++;
    this.log(`PARTITION #${id} {${[...members].join(' ')}} from the rest`);
    const duration = this.rng.int(SIM_TIMING.partitionMs[0], SIM_TIMING.partitionMs[1]);
    this.queue.push(this.now + duration, { kind: 'heal', partition: id });
  }

  private heal(id: number): void {
    if (this.partitions.delete(id)) this.log(`HEAL partition #${id}`);
  }

  /** 0: with the directory and the rest; otherwise the id of the partition it is cut off in. */
  private partitionOf(address: Address): number {
    for (const [id, members] of this.partitions) if (members.has(address)) return id;
    return 0;
  }

  private oneWay(): void {
    const candidates = this.live().filter((x) => x.kind !== 'client');
    const p = this.rng.pick(candidates);
    const until = this.now + this.rng.int(SIM_TIMING.oneWayMs[0], SIM_TIMING.oneWayMs[1]);
    this.stats.oneWayFaults++;
    const shape = this.rng.next();
    if (shape < 0.3) {
      // Two disjoint groups; one of them cannot reach the other.
      const from = new Set<Address>();
      const to = new Set<Address>();
      for (const x of candidates) {
        const side = this.rng.int(0, 2);
        if (side === 0) from.add(x.address);
        else if (side === 1) to.add(x.address);
      }
      this.cuts.push({ from, to, until });
      this.log(`CUT {${[...from].join(' ')}} -/-> {${[...to].join(' ')}} until ${until}`);
    } else if (shape < 0.8) {
      if (this.now >= p.deafUntil) p.deafSince = this.now;
      p.deafUntil = Math.max(p.deafUntil, until);
      this.log(`DEAF ${p.address} until ${p.deafUntil}`);
    } else {
      p.muteUntil = Math.max(p.muteUntil, until);
      this.log(`MUTE ${p.address} until ${p.muteUntil}`);
    }
  }

  private isCut(from: Address, to: Address): boolean {
    if (this.cuts.length === 0) return false;
    this.cuts = this.cuts.filter((c) => c.until > this.now);
    return this.cuts.some((c) => c.from.has(from) && c.to.has(to));
  }

  private pause(p: Process, until: number): void {
    if (p.pausedUntil !== null) return;
    p.pausedUntil = until;
    this.stats.pauses++;
    this.log(`PAUSE ${p.address} until ${until}`);
    if (Number.isFinite(until)) this.queue.push(until, { kind: 'resume', to: p.address, at: until });
  }

  private resume(p: Process): void {
    p.pausedUntil = null;
    p.wokeAt = this.now;
    const held = p.held;
    p.held = [];
    this.log(`RESUME ${p.address} (${held.length} events waited)`);
    for (const event of held) this.queue.push(this.now, event);
  }

  private pauseSomeone(): void {
    const candidates = this.live().filter((p) => p.kind !== 'client' && p.pausedUntil === null);
    if (candidates.length === 0) return;
    const p = this.rng.pick(candidates);
    this.pause(p, this.now + this.rng.int(SIM_TIMING.pauseMs[0], SIM_TIMING.pauseMs[1]));
  }

  /** More than f acceptors of a group go quiet for a while: nothing of that group can be chosen. */
  private loseQuorum(): void {
    const group = this.rng.pick(this.groupsNow());
    const alive = group.acceptors
      .map((a) => this.processes.get(a) as Process)
      .filter((p) => p.alive && p.pausedUntil === null);
    const until = this.now + this.rng.int(SIM_TIMING.quorumLossMs[0], SIM_TIMING.quorumLossMs[1]);
    const victims = alive.slice(0, Math.min(alive.length, this.options.f + 1));
    this.stats.quorumLosses++;
    this.log(`QUORUM LOSS group ${group.groupId}`);
    for (const p of victims) this.pause(p, until);
  }

  private restartDirectory(): void {
    this.directory.clear();
    this.stats.directoryRestarts++;
    this.log('DIRECTORY RESTART (everything forgotten)');
  }

  /** A stateless process joins, or one leaves gracefully (deregisters, drains, stops). */
  private changeMembership(): void {
    const kind = this.rng.pick(STATELESS);
    const count = [...this.processes.values()].filter((p) => p.kind === kind).length;
    const joined = this.joined.get(kind) ?? 0;
    if (this.rng.chance(0.5) && joined < MAX_JOINS_PER_KIND) {
      this.joined.set(kind, joined + 1);
      const p = this.addProcess(kind, `${PREFIX[kind]}/${count}`, count);
      this.stats.joins++;
      this.log(`JOIN ${p.address}`);
      this.boot(p);
      return;
    }
    const serving = this.live(kind).filter((p) => p.pausedUntil === null && !p.leaving);
    if (serving.length < 2) return;
    const p = this.rng.pick(serving);
    p.leaving = true;
    this.directory.deregister(REGISTERS[kind] as DirectoryKind, p.entry as string);
    this.stats.leaves++;
    this.log(`LEAVE ${p.address} (deregistered; stops in ${SIM_TIMING.drainMs} ms)`);
    this.queue.push(this.now + SIM_TIMING.drainMs, {
      kind: 'retire',
      to: p.address,
      incarnation: p.incarnation,
    });
  }

  private staleView(): void {
    const candidates = this.live().filter((p) => WATCHES[p.kind].length > 0);
    if (candidates.length === 0) return;
    const p = this.rng.pick(candidates);
    p.pollsStalledUntil = this.now + this.rng.int(SIM_TIMING.staleViewMs[0], SIM_TIMING.staleViewMs[1]);
    this.stats.staleViews++;
    this.log(`STALE VIEW ${p.address} until ${p.pollsStalledUntil}`);
  }

  /** A client crashes: what it had pending is abandoned (never checked for liveness). */
  private crashClient(): void {
    const candidates = this.live('client');
    if (candidates.length === 0) return;
    const p = this.rng.pick(candidates);
    this.clientProgress.delete(p.address);
    this.stop(p, 'CRASH');
    this.stats.clientCrashes++;
    const after = this.rng.int(SIM_TIMING.restartAfterMs[0], SIM_TIMING.restartAfterMs[1]);
    this.queue.push(this.now + after, { kind: 'restart', to: p.address });
  }

  /**
   * One fault that outlives the fault phase, chosen so that a working core remains: a proxy
   * leader, batcher or unbatcher gone for good (its lease simply stops), or a proposer that
   * can no longer hear anything.
   */
  private injectPermanentFault(): void {
    const options: (() => boolean)[] = [
      ...STATELESS.map((kind) => () => this.killForGood(kind)),
      () => {
        const hearing = this.live('proposer').filter((p) => p.deafUntil === 0);
        if (hearing.length < 2) return false;
        const p = this.rng.pick(hearing);
        p.deafSince = this.now;
        p.deafUntil = Number.POSITIVE_INFINITY;
        this.log(`DEAF FOR GOOD ${p.address}`);
        return true;
      },
    ];
    if (this.rng.pick(options)()) this.stats.permanentFaults++;
  }

  private killForGood(kind: RoleKind): boolean {
    const alive = this.live(kind).filter((p) => !p.leaving);
    if (alive.length < 2) return false;
    this.stop(this.rng.pick(alive), 'GONE FOR GOOD');
    return true;
  }

  // ---- clients -----------------------------------------------------------------------------

  private fillWindow(address: Address): void {
    for (let i = 0; i < this.options.clientWindow; i++) this.submitNext(address);
  }

  private submitNext(address: Address): void {
    const progress = this.clientProgress.get(address);
    const p = this.processes.get(address);
    if (this.now >= this.submitUntil || progress === undefined || p === undefined || !p.alive) return;
    if (progress.submitted >= this.options.commandsPerClient) return;
    progress.submitted++;
    this.stats.submitted++;
    // Payloads include '|' and arbitrary bytes: the original split messages on '|'.
    const payload = new Uint8Array([
      ...new TextEncoder().encode(`${address}|${p.incarnation}|${progress.submitted}|`),
      this.rng.int(0, 255),
    ]);
    const client = p.role as Client;
    const { requestId, effects } = client.submit(this.now, payload);
    this.checker.recordSubmitted({ clientId: address, requestId, payload });
    this.log(`submit ${address}#${requestId}`);
    this.apply(p, effects);
  }

  private fail(kind: Violation['kind'], message: string): void {
    if (this.violation !== null) return;
    this.violation = { kind, step: this.stepCount, timeMs: this.now, message };
    this.log(`VIOLATION (${kind}): ${message}`);
  }

  private log(line: string): void {
    if (this.trace !== undefined)
      this.trace(`[${String(this.now).padStart(6)} ms #${this.stepCount}] ${line}`);
  }
}

/** Stands in for a role until the first poll has built the process's view. */
const PLACEHOLDER_ROLE: Role = { address: '', start: () => [], step: () => [] };

function acceptorAddress(groupId: number, acceptorId: number): Address {
  return `acceptor/g${groupId}/${acceptorId}`;
}

function groupOfAcceptor(address: Address): number {
  return Number(address.split('/')[1]?.slice(1));
}

/** One line per message for traces. */
export function summarize(m: Message): string {
  switch (m.type) {
    case 'ClientRequest':
      return `ClientRequest #${m.command.requestId}`;
    case 'ClientReply':
      return `ClientReply #${m.requestId} slot=${m.slot}`;
    case 'ClientBatch':
      return `ClientBatch ${describe({ kind: 'batch', batch: m.batch })}${m.forwarded ? ' (forwarded)' : ''}`;
    case 'LeaderInfo':
      return `LeaderInfo ${m.leader} ${formatBallot(m.ballot)}${m.backoffMs > 0 ? ` backoff=${m.backoffMs}` : ''}`;
    case 'Phase1a':
      return `Phase1a ${formatBallot(m.ballot)} from slot ${m.fromSlot} config=${m.config.id}`;
    case 'Phase1b':
      return `Phase1b ${formatBallot(m.ballot)} g${m.groupId}/${m.acceptorId} wm=${m.watermark} from=${m.fromSlot}${m.more ? ` next=${m.nextSlot}` : ''} end=${m.acceptedEnd} accepted=[${m.accepted.map((e) => `${e.slot}:${formatBallot(e.ballot)}`).join(' ')}]`;
    case 'Phase2a':
      return `Phase2a slot=${m.slot} ${formatBallot(m.ballot)} g${m.groupId} ${describe(m.value)} wm=${m.watermark}`;
    case 'Phase2b':
      return `Phase2b slot=${m.slot} ${formatBallot(m.ballot)} g${m.groupId}/${m.acceptorId}`;
    case 'Nack':
      return `Nack slot=${m.slot} ${formatBallot(m.ballot)} promised=${formatBallot(m.promised)}${m.retired ? ' retired' : ''}`;
    case 'Chosen':
      return `Chosen slot=${m.slot} ${formatBallot(m.ballot)}${m.value === null ? '' : ` ${describe(m.value)}`}`;
    case 'Heartbeat':
      return `Heartbeat ${formatBallot(m.ballot)} wm=${m.watermark} progress=${m.progress} pending=${m.pending}`;
    case 'MatchA':
      return `MatchA e${m.epoch} ${formatBallot(m.ballot)} spec=${configSpecId(m.spec)} v${m.spec.version}`;
    case 'MatchB':
      return `MatchB e${m.epoch} ${formatBallot(m.ballot)} mm${m.matchmakerId} gc=${formatBallot(m.gcBallot)} entries=[${m.entries.map((e) => `${formatBallot(e.ballot)}:${configSpecId(e.spec)}@${e.startSlot}`).join(' ')}]`;
    case 'MatchNack':
      return `MatchNack e${m.epoch} ${formatBallot(m.ballot)} higher=${formatBallot(m.higher)}`;
    case 'GarbageA':
      return `GarbageA e${m.epoch} gc=${formatBallot(m.gcBallot)} start=${m.startSlot}`;
    case 'GarbageB':
      return `GarbageB e${m.epoch} mm${m.matchmakerId} gc=${formatBallot(m.gcBallot)}`;
    case 'WatermarkA':
      return `WatermarkA ${formatBallot(m.ballot)} wm=${m.watermark} cfg=${m.config.id}`;
    case 'WatermarkB':
      return `WatermarkB g${m.groupId}/a${m.acceptorId} wm=${m.watermark}`;
    case 'Retire':
      return `Retire ${formatBallot(m.ballot)} g${m.groupId}/a${m.acceptorId}`;
    case 'RetireB':
      return `RetireB g${m.groupId}/a${m.acceptorId}`;
    case 'StopA':
      return `StopA e${m.epoch} ${formatBallot(m.ballot)}`;
    case 'StopB':
      return `StopB e${m.epoch} ${formatBallot(m.ballot)} mm${m.matchmakerId} gc=${formatBallot(m.state.gcBallot)} entries=${m.state.entries.length}${m.vote === null ? '' : ` vote=${formatBallot(m.vote.ballot)}:e${m.vote.next.epoch}[${m.vote.next.addresses.join(' ')}]`}`;
    case 'BootstrapA':
      return `BootstrapA e${m.next.epoch} gc=${formatBallot(m.state.gcBallot)} entries=${m.state.entries.length}`;
    case 'BootstrapB':
      return `BootstrapB e${m.epoch} mm${m.matchmakerId}`;
    case 'EpochAccept':
      return `EpochAccept e${m.epoch} ${formatBallot(m.ballot)} next=[${m.next.addresses.join(' ')}]`;
    case 'EpochAccepted':
      return `EpochAccepted e${m.epoch} ${formatBallot(m.ballot)} mm${m.matchmakerId}`;
    case 'EpochNack':
      return `EpochNack e${m.epoch} ${formatBallot(m.ballot)} higher=${formatBallot(m.higher)}`;
    case 'EpochChosen':
      return `EpochChosen e${m.next.epoch} [${m.next.addresses.join(' ')}]`;
    case 'Stopped':
      return `Stopped e${m.epoch}${m.next === null ? '' : ` next=e${m.next.epoch}`}`;
  }
}

export function runSimulation(options: SimulationOptions): SimulationResult {
  return new Simulation(options).run();
}
