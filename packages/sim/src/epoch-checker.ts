import { type Address, type Ballot, formatBallot, type MatchmakerEpoch } from '@paxos/core';

/**
 * Ground truth for matchmaker reconfiguration: the set after epoch e is chosen when f+1 of epoch
 * e's matchmakers voted (`EpochAccepted`) for the value a proposer proposed in one ballot
 * (`EpochAccept`). Checks that each epoch gets at most one set, and that proposers only send
 * MatchA and GarbageA of an epoch after 0 to that epoch's chosen set.
 */
export class EpochChecker {
  /** `epoch/ballot` → the set proposed there (a proposer proposes one value per ballot). */
  private readonly proposals = new Map<string, MatchmakerEpoch>();
  /** `epoch/ballot` → matchmaker ids that voted for its proposal. */
  private readonly votes = new Map<string, Set<number>>();
  /** Epoch e+1 → the set chosen for it (and the ballot it was chosen in). */
  private readonly chosenSets = new Map<number, { readonly set: MatchmakerEpoch; readonly ballot: Ballot }>();

  constructor(private readonly f: number) {}

  /** The set chosen as epoch `epoch` (epoch 0 is the cluster's first set, not chosen here). */
  chosen(epoch: number): MatchmakerEpoch | undefined {
    return this.chosenSets.get(epoch)?.set;
  }

  /** A proposer sent EpochAccept(epoch, ballot, next). Returns a violation, or null. */
  recordProposal(from: Address, epoch: number, ballot: Ballot, next: MatchmakerEpoch): string | null {
    const key = `${epoch}/${formatBallot(ballot)}`;
    const known = this.proposals.get(key);
    if (known !== undefined && !sameSet(known, next))
      return `${from} proposed two matchmaker sets after epoch ${epoch} in ${formatBallot(ballot)}`;
    this.proposals.set(key, next);
    return null;
  }

  /** A matchmaker voted. Returns a violation (two sets chosen for one epoch), or null. */
  recordVote(epoch: number, ballot: Ballot, matchmakerId: number): string | null {
    const key = `${epoch}/${formatBallot(ballot)}`;
    const proposal = this.proposals.get(key);
    if (proposal === undefined) return `a matchmaker voted in ${key} for a set no proposer proposed`;
    let voters = this.votes.get(key);
    if (voters === undefined) {
      voters = new Set();
      this.votes.set(key, voters);
    }
    voters.add(matchmakerId);
    if (voters.size < this.f + 1) return null;
    const known = this.chosenSets.get(epoch + 1);
    if (known === undefined) {
      this.chosenSets.set(epoch + 1, { set: proposal, ballot });
      return null;
    }
    return sameSet(known.set, proposal)
      ? null
      : `two matchmaker sets chosen for epoch ${epoch + 1}: [${known.set.addresses.join(' ')}] in ${formatBallot(known.ballot)} and [${proposal.addresses.join(' ')}] in ${formatBallot(ballot)}`;
  }

  /** A proposer sent a MatchA or GarbageA of `epoch` to `to`. Returns a violation, or null. */
  checkUse(from: Address, to: Address, type: string, epoch: number): string | null {
    if (epoch === 0) return null;
    const set = this.chosen(epoch);
    if (set === undefined)
      return `${from} sent a ${type} in matchmaker epoch ${epoch}, which was never chosen`;
    if (!set.addresses.includes(to))
      return `${from} sent a ${type} of epoch ${epoch} to ${to}, which is not in that epoch's chosen set [${set.addresses.join(' ')}]`;
    return null;
  }
}

function sameSet(a: MatchmakerEpoch, b: MatchmakerEpoch): boolean {
  return (
    a.epoch === b.epoch &&
    a.addresses.length === b.addresses.length &&
    a.addresses.every((x) => b.addresses.includes(x))
  );
}
