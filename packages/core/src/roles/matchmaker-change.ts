import { ballotEquals, compareBallots } from '../ballot.ts';
import type { Effects } from '../effects.ts';
import type {
  Address,
  Ballot,
  BootstrapB,
  EpochAccepted,
  EpochVote,
  MatchmakerEpoch,
  MatchmakerSnapshot,
  StopB,
} from '../messages.ts';
import { mergeSnapshots } from './matchmaker.ts';

/** Sends of the finished stage before a silent new member is taken as gone (like retiring acceptors). */
const MAX_FOLLOW_UP_TRIES = 50;

/**
 * One proposer's attempt to replace the matchmaker set of epoch `from.epoch` (docs/design/reconfiguration.md §7): pure
 * state, driven by the proposer that owns it (its timers resend, its handlers feed replies in).
 *
 * 1. **stop**: `StopA(e, ballot, from)` to epoch e's members, until f+1 `StopB`. The set to
 *    propose is the vote with the highest ballot among them (someone else's change, maybe
 *    half done, must be finished, not overridden), else `{e+1, target}`; the state to hand on is
 *    the union of their states.
 * 2. **bootstrap**: `BootstrapA(proposal, union)` to the proposed set's members, until f+1
 *    `BootstrapB`: a set is only proposed (and so only chosen) once f+1 of it can serve.
 * 3. **accept**: `EpochAccept(e, ballot, proposal)` to epoch e's members, until f+1
 *    `EpochAccepted`: the proposal is chosen.
 * 4. **chosen**: `EpochChosen` to both sets, and `BootstrapA` again to the new members that have
 *    not answered, until they do (or a bounded number of tries: one may be gone for good).
 *
 * An `EpochNack` ends the attempt (`nacked`): the owner tries again later with a higher ballot.
 */
export class MatchmakerChange {
  stage: 'stop' | 'bootstrap' | 'accept' | 'chosen' = 'stop';
  private readonly stops = new Map<number, StopB>();
  private readonly stopped = new Set<Address>();
  private readonly bootstrapped = new Set<Address>();
  private readonly accepted = new Set<number>();
  private readonly acceptedFrom = new Set<Address>();
  private proposal: MatchmakerEpoch | null = null;
  private union: MatchmakerSnapshot | null = null;
  private followUps = 0;

  constructor(
    /** The epoch being replaced: known chosen by the owner, whose matchmakers it uses now. */
    readonly from: MatchmakerEpoch,
    readonly f: number,
    readonly ballot: Ballot,
    /** The members the owner wants (the operator's target), or null to keep `from`'s (finishing a change). */
    private readonly target: readonly Address[] | null,
  ) {}

  /** The set proposed once phase 1 is done (null before). */
  get proposed(): MatchmakerEpoch | null {
    return this.proposal;
  }

  /** Whether the follow-up after the choice has nothing left to do. */
  get settled(): boolean {
    return (
      this.stage === 'chosen' &&
      (this.followUps > MAX_FOLLOW_UP_TRIES ||
        (this.proposal?.addresses.every((a) => this.bootstrapped.has(a)) ?? true))
    );
  }

  /** Sends (or resends, to those that have not answered) what the current stage waits for. */
  send(fx: Effects): void {
    switch (this.stage) {
      case 'stop':
        for (const to of this.from.addresses)
          if (!this.stopped.has(to))
            fx.send(to, { type: 'StopA', epoch: this.from.epoch, ballot: this.ballot, current: this.from });
        break;
      case 'bootstrap':
        this.sendBootstrap(fx);
        break;
      case 'accept':
        for (const to of this.from.addresses)
          if (!this.acceptedFrom.has(to))
            fx.send(to, {
              type: 'EpochAccept',
              epoch: this.from.epoch,
              ballot: this.ballot,
              next: this.proposal as MatchmakerEpoch,
            });
        break;
      case 'chosen': {
        if (this.settled) break;
        this.followUps++;
        this.sendBootstrap(fx);
        const next = this.proposal as MatchmakerEpoch;
        for (const to of new Set([...this.from.addresses, ...next.addresses]))
          fx.send(to, { type: 'EpochChosen', next });
        break;
      }
    }
  }

  private sendBootstrap(fx: Effects): void {
    const next = this.proposal as MatchmakerEpoch;
    const state = this.union as MatchmakerSnapshot;
    for (const to of next.addresses)
      if (!this.bootstrapped.has(to)) fx.send(to, { type: 'BootstrapA', next, state });
  }

  onStopB(fx: Effects, from: Address, msg: StopB): void {
    if (this.stage !== 'stop' || !this.fromOld(from, msg.epoch, msg.ballot)) return;
    this.stopped.add(from);
    this.stops.set(msg.matchmakerId, msg);
    if (this.stops.size < this.quorum()) return;
    const replies = [...this.stops.values()];
    let vote: EpochVote | null = null;
    for (const reply of replies)
      if (reply.vote !== null && (vote === null || compareBallots(reply.vote.ballot, vote.ballot) > 0))
        vote = reply.vote;
    this.proposal = this.choose(vote, {
      epoch: this.from.epoch + 1,
      addresses: this.target ?? this.from.addresses,
    });
    this.union = mergeSnapshots(replies.map((reply) => reply.state));
    this.stage = 'bootstrap';
    this.send(fx);
  }

  onBootstrapB(fx: Effects, from: Address, msg: BootstrapB): void {
    const next = this.proposal;
    if (next === null || msg.epoch !== next.epoch || !next.addresses.includes(from)) return;
    this.bootstrapped.add(from);
    if (this.stage !== 'bootstrap' || this.bootstrapped.size < this.quorum()) return;
    this.stage = 'accept';
    this.send(fx);
  }

  /** The set chosen when this reply completes the choice, else null. */
  onEpochAccepted(fx: Effects, from: Address, msg: EpochAccepted): MatchmakerEpoch | null {
    if (this.stage !== 'accept' || !this.fromOld(from, msg.epoch, msg.ballot)) return null;
    this.acceptedFrom.add(from);
    this.accepted.add(msg.matchmakerId);
    if (this.accepted.size < this.quorum()) return null;
    this.stage = 'chosen';
    this.send(fx);
    return this.proposal;
  }

  /** Whether a nack refuses this attempt (a higher ballot was promised). */
  nacked(epoch: number, ballot: Ballot): boolean {
    return this.stage !== 'chosen' && epoch === this.from.epoch && ballotEquals(ballot, this.ballot);
  }

  /**
   * The set to propose: the highest-ballot vote among the StopB replies, which may already be
   * chosen, else our own. Protected so tests can plant the bug of ignoring the votes.
   */
  protected choose(vote: EpochVote | null, own: MatchmakerEpoch): MatchmakerEpoch {
    return vote?.next ?? own;
  }

  /** Replies each stage needs: f+1 distinct matchmakers. */
  private quorum(): number {
    return this.f + 1;
  }

  private fromOld(from: Address, epoch: number, ballot: Ballot): boolean {
    return (
      epoch === this.from.epoch && ballotEquals(ballot, this.ballot) && this.from.addresses.includes(from)
    );
  }
}
