import { compareBallots, maxBallot, ZERO_BALLOT } from '../ballot.ts';
import { configSpecId, validateConfigSpec } from '../configuration.ts';
import { type Effect, Effects, type Role, type RoleEvent } from '../effects.ts';
import type {
  Address,
  Ballot,
  BootstrapA,
  ConfigEntry,
  ConfigSpec,
  EpochAccept,
  EpochChosen,
  EpochVote,
  GarbageA,
  MatchA,
  MatchmakerEpoch,
  MatchmakerSnapshot,
  StopA,
} from '../messages.ts';

/**
 * Everything a matchmaker remembers, and all it must persist: the configurations recorded for
 * ballots at or above `gcBallot`, in ballot order. Small: garbage collection keeps one or two.
 */
export interface MatchmakerState {
  /** The matchmaker set's epoch this state belongs to (0 until matchmakers are reconfigured). */
  readonly epoch: number;
  /** Configurations of ballots below this are dropped; a MatchA below it is refused. */
  readonly gcBallot: Ballot;
  /** The highest ballot ever recorded (its entry may since have been dropped by a GarbageA). */
  readonly maxBallot: Ballot;
  /** Ascending by ballot, at most one per ballot, every one ≥ `gcBallot`. */
  readonly entries: readonly ConfigEntry[];
  /** `epoch`'s set is being replaced: MatchA and GarbageA get `Stopped`, never an answer. */
  readonly stopped: boolean;
  /**
   * This matchmaker as an acceptor of the single-decree Paxos that chooses the set after an
   * epoch it belongs to, for each such epoch whose successor it does not know: at most its own
   * epoch's and the one before (a bootstrapped member of the next set still answers for the
   * previous choice until it learns the outcome).
   */
  readonly decisions: readonly EpochDecision[];
  /** The newest matchmaker set known chosen (from `EpochChosen` or a `StopA`), or null. */
  readonly chosen: MatchmakerEpoch | null;
}

/** Promise and vote in the choice of the set after `epoch`. */
export interface EpochDecision {
  readonly epoch: number;
  readonly promised: Ballot;
  readonly vote: EpochVote | null;
}

export interface MatchmakerOptions {
  readonly address: Address;
  readonly matchmakerId: number;
  /** State recovered from durable storage: a restarted matchmaker answers as its old self. */
  readonly recovered?: MatchmakerState;
  /**
   * The cluster's first configuration, for a matchmaker of a new cluster: it starts serving with
   * the single entry (ballot (0,0), `genesis`, start slot 0). Ignored when `recovered` is given.
   */
  readonly genesis?: ConfigSpec;
}

/** The state of a new cluster's matchmaker: the genesis configuration at ballot (0,0). */
export function genesisState(spec: ConfigSpec): MatchmakerState {
  validateConfigSpec(spec);
  return {
    epoch: 0,
    gcBallot: ZERO_BALLOT,
    maxBallot: ZERO_BALLOT,
    entries: [{ ballot: ZERO_BALLOT, spec, startSlot: 0 }],
    stopped: false,
    decisions: [],
    chosen: null,
  };
}

/** What `state` hands to the next set (its entries ≥ gcBallot, its highest ballot). */
export function snapshotOf(state: MatchmakerState): MatchmakerSnapshot {
  return { gcBallot: state.gcBallot, maxBallot: state.maxBallot, entries: state.entries };
}

/**
 * The union of matchmaker snapshots: the highest gcBallot and maxBallot, and every entry at or
 * above that gcBallot, one per ballot. From f+1 matchmakers of a stopped epoch this holds every
 * configuration a leader of that epoch used or may use (each was recorded by f+1 of them).
 */
export function mergeSnapshots(snapshots: readonly MatchmakerSnapshot[]): MatchmakerSnapshot {
  let gcBallot = ZERO_BALLOT;
  let top = ZERO_BALLOT;
  for (const s of snapshots) {
    gcBallot = maxBallot(gcBallot, s.gcBallot);
    top = maxBallot(top, s.maxBallot);
  }
  const byBallot = new Map<string, ConfigEntry>();
  for (const s of snapshots)
    for (const entry of s.entries) {
      if (compareBallots(entry.ballot, gcBallot) < 0) continue;
      const key = `${entry.ballot.round}.${entry.ballot.proposerId}`;
      const known = byBallot.get(key);
      // One configuration per ballot; a start slot set by a GarbageA wins over the unknown -1.
      if (known === undefined || (known.startSlot < 0 && entry.startSlot >= 0)) byBallot.set(key, entry);
    }
  const entries = [...byBallot.values()].sort((a, b) => compareBallots(a.ballot, b.ballot));
  return { gcBallot, maxBallot: maxBallot(top, gcBallot), entries };
}

/**
 * A matchmaker (Matchmaker MultiPaxos, issue 16): it records the configuration of each ballot
 * before the ballot's leader uses it, and tells that leader the configurations of the earlier
 * ballots still live, so its phase 1 can cover every one of them.
 *
 * - `MatchA(b, spec)`: `spec`'s version below a recorded entry's → `MatchNack { newer }` (operator
 *   targets only move forward, so an older one may list retired acceptors); `b` below `gcBallot`
 *   → `MatchNack`; `b` equal to the highest recorded
 *   ballot with the same spec (by `configSpecId`) → the `MatchB` again (a resend); `b` not above
 *   the highest recorded ballot otherwise → `MatchNack`; else record `(b, spec)` and reply
 *   `MatchB` with the entries of ballots in [gcBallot, b). So a matchmaker never records two
 *   specs for one ballot, and never records a ballot below one it already answered.
 * - `GarbageA(g, k, spec)`: `gcBallot = max(gcBallot, g)`, entries below it dropped, `k` recorded
 *   as the start slot of entry `g` (kept with `spec` if it was never recorded here); always answered with `GarbageB` and its own
 *   gcBallot, stale requests included: the leader needs the acknowledgement either way.
 *
 * A matchmaker with neither `recovered` nor `genesis` answers nothing until a `BootstrapA`
 * gives it a state. An empty matchmaker in a cluster with history (one whose disk was lost, or a
 * new member not yet bootstrapped) must never act as a fresh one: it would answer a MatchA with
 * no earlier configurations, and a leader counting it among f+1 replies could skip a
 * configuration that still holds accepted values.
 *
 * Matchmaker reconfiguration (docs/design/reconfiguration.md §7), driven by a proposer:
 * - `StopA(e, b, current)`: stop serving epoch e (MatchA and GarbageA of e get `Stopped`) and
 *   promise `b` in the choice of e's successor; `StopB` carries the state and any vote. Once f+1
 *   of e are stopped no ballot can gather f+1 MatchB in e, so the union of f+1 StopB states holds
 *   every configuration used in e.
 * - `BootstrapA(next, state)`: serve `next.epoch` from that union (merged with what it holds).
 * - `EpochAccept(e, b, next)`: vote for `next` unless a higher ballot was promised (`EpochNack`).
 * - `EpochChosen(next)`: the outcome; from then on a stopped epoch's `Stopped` names it.
 * A matchmaker in several epochs in a row keeps the decision of the epoch it left until it learns
 * the outcome, so the choice stays single-decree Paxos among that epoch's members.
 *
 * Pure like every role: the durable wrapper (`durableMatchmaker` in
 * `@paxos/acceptor-log`) holds replies until the state they announce is on disk; `changes`
 * tells it when a step changed the state.
 */
export class Matchmaker implements Role {
  readonly address: Address;
  readonly matchmakerId: number;
  private current: MatchmakerState | null;
  private changeCount = 0;

  constructor(options: MatchmakerOptions) {
    this.address = options.address;
    this.matchmakerId = options.matchmakerId;
    this.current =
      options.recovered ?? (options.genesis === undefined ? null : genesisState(options.genesis));
  }

  /** What to persist; null while the matchmaker has no state (it then answers nothing). */
  get state(): MatchmakerState | null {
    return this.current;
  }

  /** Counts the steps that changed `state`: a step that moved it must be persisted before its replies. */
  get changes(): number {
    return this.changeCount;
  }

  start(): Effect[] {
    return [];
  }

  step(_now: number, event: RoleEvent): Effect[] {
    const fx = new Effects();
    if (event.type !== 'message') return fx.list;
    const { from, message } = event;
    switch (message.type) {
      case 'MatchA':
        this.onMatchA(fx, from, message);
        break;
      case 'GarbageA':
        this.onGarbageA(fx, from, message);
        break;
      case 'StopA':
        this.onStopA(fx, from, message);
        break;
      case 'EpochAccept':
        this.onEpochAccept(fx, from, message);
        break;
      case 'BootstrapA':
        this.onBootstrapA(fx, from, message);
        break;
      case 'EpochChosen':
        this.onEpochChosen(message);
        break;
      default:
        break;
    }
    return fx.list;
  }

  /**
   * The state to serve `epoch` from, or null. A stopped or earlier epoch is answered `Stopped`
   * (with the newest set known chosen after it, if any); no state or a later epoch than ours (not
   * bootstrapped into it yet) is not answered.
   */
  private serving(fx: Effects, from: Address, epoch: number): MatchmakerState | null {
    const state = this.current;
    if (state === null || epoch > state.epoch) {
      fx.inc('rejected_messages');
      return null;
    }
    if (epoch < state.epoch || state.stopped) {
      this.sendStopped(fx, from, state, epoch);
      return null;
    }
    return state;
  }

  private sendStopped(fx: Effects, to: Address, state: MatchmakerState, epoch: number): void {
    const next = state.chosen !== null && state.chosen.epoch > epoch ? state.chosen : null;
    fx.send(to, { type: 'Stopped', epoch, next });
  }

  /**
   * The decision of the set after `epoch`, for a StopA or EpochAccept: kept, or new (and our own
   * epoch stopped) when `epoch` is ours. Null when it was dropped because a later set is known
   * chosen (answered `Stopped`) or when this matchmaker never was in `epoch`.
   */
  private decisionFor(
    fx: Effects,
    from: Address,
    state: MatchmakerState,
    epoch: number,
  ): EpochDecision | null {
    const kept = state.decisions.find((d) => d.epoch === epoch);
    if (kept !== undefined) return kept;
    if (epoch === state.epoch) return { epoch, promised: ZERO_BALLOT, vote: null };
    if (epoch < state.epoch && state.chosen !== null && state.chosen.epoch > epoch)
      this.sendStopped(fx, from, state, epoch);
    else fx.inc('rejected_messages');
    return null;
  }

  /** `state` with `decision` stored (replacing the one of its epoch) and its own epoch stopped if it is `decision`'s. */
  private withDecision(state: MatchmakerState, decision: EpochDecision): MatchmakerState {
    return {
      ...state,
      stopped: state.stopped || decision.epoch === state.epoch,
      decisions: [...state.decisions.filter((d) => d.epoch !== decision.epoch), decision].sort(
        (a, b) => a.epoch - b.epoch,
      ),
    };
  }

  private onStopA(fx: Effects, from: Address, msg: StopA): void {
    let state = this.current;
    if (state === null || msg.epoch > state.epoch || msg.current.epoch !== msg.epoch) {
      fx.inc('rejected_messages');
      return;
    }
    state = this.learnChosen(state, msg.current);
    const decision = this.decisionFor(fx, from, state, msg.epoch);
    if (decision === null) return;
    if (compareBallots(msg.ballot, decision.promised) < 0) {
      fx.send(from, { type: 'EpochNack', epoch: msg.epoch, ballot: msg.ballot, higher: decision.promised });
      return;
    }
    const next = this.withDecision(state, { ...decision, promised: msg.ballot });
    const resend =
      state === this.current &&
      state.decisions.includes(decision) &&
      compareBallots(decision.promised, msg.ballot) === 0;
    if (!resend) this.update(next); // a resent StopA changes nothing to persist
    fx.send(from, {
      type: 'StopB',
      epoch: msg.epoch,
      ballot: msg.ballot,
      matchmakerId: this.matchmakerId,
      state: snapshotOf(next),
      vote: decision.vote,
    });
  }

  private onEpochAccept(fx: Effects, from: Address, msg: EpochAccept): void {
    const state = this.current;
    if (state === null || msg.epoch > state.epoch || msg.next.epoch !== msg.epoch + 1) {
      fx.inc('rejected_messages');
      return;
    }
    const decision = this.decisionFor(fx, from, state, msg.epoch);
    if (decision === null) return;
    if (compareBallots(msg.ballot, decision.promised) < 0) {
      fx.send(from, { type: 'EpochNack', epoch: msg.epoch, ballot: msg.ballot, higher: decision.promised });
      return;
    }
    this.update(
      this.withDecision(state, {
        epoch: msg.epoch,
        promised: msg.ballot,
        vote: { ballot: msg.ballot, next: msg.next },
      }),
    );
    fx.send(from, {
      type: 'EpochAccepted',
      epoch: msg.epoch,
      ballot: msg.ballot,
      matchmakerId: this.matchmakerId,
    });
  }

  /**
   * Serve `next.epoch` from the stopped set's state. An empty matchmaker (a replacement) gets its
   * first state here; a member of the stopped set keeps its decisions, since it still answers for
   * the choice of this set until it learns the outcome. A second bootstrap of the same epoch (the
   * proposer resending, or another proposer's) merges: each snapshot is a complete union of f+1
   * stopped matchmakers, and their union is too.
   */
  private onBootstrapA(fx: Effects, from: Address, msg: BootstrapA): void {
    const state = this.current;
    const epoch = msg.next.epoch;
    if (state !== null && state.epoch > epoch) {
      fx.inc('rejected_messages');
      return;
    }
    const own = state === null ? [] : [snapshotOf(state)];
    const merged = mergeSnapshots([msg.state, ...own]);
    // A member of an earlier epoch that was never stopped there still answers for that epoch's
    // choice: it leaves that epoch now, as if stopped, with nothing promised yet.
    const decisions =
      state === null || state.epoch === epoch || state.decisions.some((d) => d.epoch === state.epoch)
        ? (state?.decisions ?? [])
        : [...state.decisions, { epoch: state.epoch, promised: ZERO_BALLOT, vote: null }];
    const next: MatchmakerState = {
      epoch,
      ...merged,
      stopped: state !== null && state.epoch === epoch && state.stopped,
      decisions,
      chosen: state?.chosen ?? null,
    };
    if (state === null || !sameState(state, next)) this.update(next);
    fx.send(from, { type: 'BootstrapB', epoch, matchmakerId: this.matchmakerId });
  }

  private onEpochChosen(msg: EpochChosen): void {
    const state = this.current;
    if (state === null) return;
    const next = this.learnChosen(state, msg.next);
    if (next !== state) this.update(next);
  }

  /** `state` knowing `set` chosen: kept if newer than the one known, and the decisions it settles dropped. */
  private learnChosen(state: MatchmakerState, set: MatchmakerEpoch): MatchmakerState {
    if (state.chosen !== null && state.chosen.epoch >= set.epoch) return state;
    return { ...state, chosen: set, decisions: state.decisions.filter((d) => d.epoch >= set.epoch) };
  }

  private onMatchA(fx: Effects, from: Address, msg: MatchA): void {
    const state = this.serving(fx, from, msg.epoch);
    if (state === null) return;
    try {
      validateConfigSpec(msg.spec);
    } catch {
      fx.inc('rejected_messages'); // a proposer bug: never record a configuration that cannot work
      return;
    }
    const vsMax = compareBallots(msg.ballot, state.maxBallot);
    const newer = this.newerThan(state, msg.spec);
    if (newer !== null) {
      // Versions never go back: a configuration older than one already recorded was built before
      // it, and may list acceptors it retired.
      fx.send(from, {
        type: 'MatchNack',
        epoch: state.epoch,
        ballot: msg.ballot,
        higher: maxBallot(state.maxBallot, state.gcBallot),
        newer,
      });
    } else if (compareBallots(msg.ballot, state.gcBallot) >= 0 && vsMax > 0) {
      const next: MatchmakerState = {
        ...state,
        maxBallot: msg.ballot,
        entries: [...state.entries, { ballot: msg.ballot, spec: msg.spec, startSlot: -1 }],
      };
      this.update(next);
      this.matchB(fx, from, next, msg.ballot);
    } else if (compareBallots(msg.ballot, state.gcBallot) >= 0 && vsMax === 0 && this.isLast(state, msg)) {
      this.matchB(fx, from, state, msg.ballot); // a resend: the same answer, nothing new to persist
    } else {
      fx.send(from, {
        type: 'MatchNack',
        epoch: state.epoch,
        ballot: msg.ballot,
        higher: maxBallot(state.maxBallot, state.gcBallot),
        newer: null,
      });
    }
  }

  /** The newest recorded configuration if its version is above `spec`'s, else null. */
  private newerThan(state: MatchmakerState, spec: ConfigSpec): ConfigSpec | null {
    let newest: ConfigSpec | null = null;
    for (const entry of state.entries)
      if (entry.spec.version > spec.version && (newest === null || entry.spec.version > newest.version))
        newest = entry.spec;
    return newest;
  }

  /** Whether the last recorded entry is `msg`'s ballot with the same configuration. */
  private isLast(state: MatchmakerState, msg: MatchA): boolean {
    const last = state.entries[state.entries.length - 1];
    return (
      last !== undefined &&
      compareBallots(last.ballot, msg.ballot) === 0 &&
      configSpecId(last.spec) === configSpecId(msg.spec)
    );
  }

  /** Replies with the entries of ballots in [gcBallot, ballot): every entry kept is ≥ gcBallot. */
  private matchB(fx: Effects, to: Address, state: MatchmakerState, ballot: Ballot): void {
    fx.send(to, {
      type: 'MatchB',
      epoch: state.epoch,
      ballot,
      matchmakerId: this.matchmakerId,
      gcBallot: state.gcBallot,
      entries: state.entries.filter((e) => compareBallots(e.ballot, ballot) < 0),
    });
  }

  private onGarbageA(fx: Effects, from: Address, msg: GarbageA): void {
    const state = this.serving(fx, from, msg.epoch);
    if (state === null) return;
    const gcBallot = maxBallot(state.gcBallot, msg.gcBallot);
    let changed = compareBallots(gcBallot, state.gcBallot) !== 0;
    const entries: ConfigEntry[] = [];
    if (
      compareBallots(gcBallot, msg.gcBallot) === 0 &&
      !state.entries.some((entry) => compareBallots(entry.ballot, gcBallot) === 0)
    ) {
      // Never recorded here (this matchmaker was not among the f+1 that answered its MatchA):
      // keep it, so the oldest entry always bounds the versions accepted after it.
      entries.push({ ballot: gcBallot, spec: msg.spec, startSlot: msg.startSlot });
      changed = true;
    }
    for (const entry of state.entries) {
      const order = compareBallots(entry.ballot, gcBallot);
      if (order < 0) continue;
      if (
        order === 0 &&
        compareBallots(entry.ballot, msg.gcBallot) === 0 &&
        entry.startSlot !== msg.startSlot
      ) {
        entries.push({ ...entry, startSlot: msg.startSlot });
        changed = true;
      } else {
        entries.push(entry);
      }
    }
    // A kept entry is a recorded ballot: never record another configuration for it.
    const next = changed
      ? { ...state, gcBallot, maxBallot: maxBallot(state.maxBallot, gcBallot), entries }
      : state;
    if (changed) this.update(next);
    fx.send(from, {
      type: 'GarbageB',
      epoch: next.epoch,
      matchmakerId: this.matchmakerId,
      gcBallot: next.gcBallot,
    });
  }

  private update(next: MatchmakerState): void {
    this.current = next;
    this.changeCount++;
  }
}

/** Whether two states serve alike (same epoch, ballots and entries); decisions are not compared. */
function sameState(a: MatchmakerState, b: MatchmakerState): boolean {
  return (
    a.epoch === b.epoch &&
    a.stopped === b.stopped &&
    compareBallots(a.gcBallot, b.gcBallot) === 0 &&
    compareBallots(a.maxBallot, b.maxBallot) === 0 &&
    a.entries.length === b.entries.length &&
    a.entries.every((e, i) => {
      const o = b.entries[i] as ConfigEntry;
      return compareBallots(e.ballot, o.ballot) === 0 && e.startSlot === o.startSlot;
    })
  );
}
