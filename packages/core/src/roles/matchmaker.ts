import { compareBallots, maxBallot, ZERO_BALLOT } from '../ballot.ts';
import { configSpecId, validateConfigSpec } from '../configuration.ts';
import { type Effect, Effects, type Role, type RoleEvent } from '../effects.ts';
import type { Address, Ballot, ConfigEntry, ConfigSpec, GarbageA, MatchA } from '../messages.ts';

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
  };
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
 * A matchmaker with neither `recovered` nor `genesis` answers nothing. An empty matchmaker in a
 * cluster with history (one whose disk was lost, or a new member not yet bootstrapped) must never
 * act as a fresh one: it would answer a MatchA with no earlier configurations, and a leader
 * counting it among f+1 replies could skip a configuration that still holds accepted values.
 * Silence costs only a resend; the later Bootstrap step (matchmaker reconfiguration) is what
 * will give such a matchmaker a state.
 *
 * `epoch` is carried for that later step: a message of another epoch than the state's is not
 * answered. Pure like every role: the durable wrapper (`durableMatchmaker` in
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
      default:
        break;
    }
    return fx.list;
  }

  /** The state to serve `epoch` from, or null: not bootstrapped, or another epoch (no answer). */
  private serving(fx: Effects, epoch: number): MatchmakerState | null {
    const state = this.current;
    if (state === null || state.epoch !== epoch) {
      fx.inc('rejected_messages');
      return null;
    }
    return state;
  }

  private onMatchA(fx: Effects, from: Address, msg: MatchA): void {
    const state = this.serving(fx, msg.epoch);
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
    const state = this.serving(fx, msg.epoch);
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
