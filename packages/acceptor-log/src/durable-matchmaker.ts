import type { Matchmaker, Role } from '@paxos/core';
import { type GroupCommitIo, groupCommit } from './group-commit.ts';
import type { MatchmakerStore } from './matchmaker-store.ts';

/** What `durableMatchmaker` needs of a store (a `MatchmakerStore`). */
export type MatchmakerStateStore = Pick<MatchmakerStore, 'saved' | 'save'>;

export interface DurableMatchmaker extends Role {
  /** Saves the state now if it changed and releases the replies held for it (tests, shutdown). */
  commit(): void;
  /** Messages held until the state they announce is saved (after a failed save: never sent). */
  readonly heldMessages: number;
}

/**
 * Wraps a matchmaker so every change of its state is saved before any effect that announces it,
 * with the acceptor's group commit (`groupCommit`): a step that changed the state (a recorded
 * MatchA, a GarbageA that collected) returns nothing; once the burst being read is handled, one
 * save writes the whole state and the held replies are released in order. A step that changed
 * nothing (a nack, a resent MatchA, a stale GarbageA) waits only behind held replies.
 *
 * A matchmaker that starts from genesis with nothing saved yet is saved here, before it can
 * answer anything. If a save throws, nothing held is released and the error propagates out of the
 * scheduled callback: the process stops (fail-stop) with no reply sent for a state not on disk.
 */
export function durableMatchmaker(
  matchmaker: Matchmaker,
  store: MatchmakerStateStore,
  io: GroupCommitIo,
): DurableMatchmaker {
  if (matchmaker.state !== null && store.saved === null) store.save(matchmaker.state);
  let savedAt = matchmaker.changes;
  const group = groupCommit(() => {
    const state = matchmaker.state;
    if (matchmaker.changes === savedAt || state === null) return;
    const changes = matchmaker.changes;
    store.save(state);
    savedAt = changes;
  }, io);
  return {
    address: matchmaker.address,
    start: () => matchmaker.start(),
    commit: group.commit,
    get heldMessages() {
      return group.heldMessages;
    },
    step: (now, event) => {
      const before = matchmaker.changes;
      const effects = matchmaker.step(now, event);
      return matchmaker.changes !== before ? group.hold(effects) : group.inOrder(effects);
    },
  };
}
