import type { Ballot } from './messages.ts';

export const ZERO_BALLOT: Ballot = Object.freeze({ round: 0, proposerId: 0 });

/** Negative, zero or positive as `a` orders before, equal to or after `b`. */
export function compareBallots(a: Ballot, b: Ballot): number {
  return a.round !== b.round ? a.round - b.round : a.proposerId - b.proposerId;
}

export function ballotEquals(a: Ballot, b: Ballot): boolean {
  return a.round === b.round && a.proposerId === b.proposerId;
}

export function maxBallot(a: Ballot, b: Ballot): Ballot {
  return compareBallots(a, b) >= 0 ? a : b;
}

export function formatBallot(b: Ballot): string {
  return `(${b.round},${b.proposerId})`;
}
