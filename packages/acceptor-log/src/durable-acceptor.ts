import { type Acceptor, ballotEquals, type Role } from '@paxos/core';
import { type GroupCommitIo, groupCommit } from './group-commit.ts';
import type { AcceptorLog } from './log.ts';

/** What `durableAcceptor` needs of a log (an `AcceptorLog`). */
export type AcceptorRecords = Pick<AcceptorLog, 'promised' | 'accepted' | 'commit'>;

export type DurableAcceptorIo = GroupCommitIo;

export interface DurableAcceptor extends Role {
  /** Commits the buffered records now and releases the replies held for them (tests, shutdown). */
  commit(): void;
  /** Messages held until their records are committed (after a failed commit: never sent). */
  readonly heldMessages: number;
}

/**
 * Wraps an acceptor so every promise, accept and configuration pin reaches the log before any
 * effect that announces it (`groupCommit`). A step that logs a record returns nothing: its
 * effects are held, and once the burst of messages being read is handled, one commit writes (and
 * syncs) every record of the burst and then releases the held effects in order. A step that logs
 * nothing while effects are held is held too, so replies leave in the order their messages came.
 *
 * If the commit throws (disk full, I/O error), nothing held is released and the error propagates
 * out of the scheduled callback: the process stops (fail-stop) with no reply sent for a record
 * that is not on disk.
 */
export function durableAcceptor(
  acceptor: Acceptor,
  log: AcceptorRecords,
  io: DurableAcceptorIo,
): DurableAcceptor {
  const group = groupCommit(() => log.commit(), io);
  const { hold, inOrder, commit } = group;
  return {
    address: acceptor.address,
    start: () => acceptor.start(),
    commit,
    get heldMessages() {
      return group.heldMessages;
    },
    step: (now, event) => {
      if (event.type !== 'message') return inOrder(acceptor.step(now, event));
      const m = event.message;
      const before = acceptor.promised;
      const pinnedBefore = acceptor.config;
      const effects = acceptor.step(now, event);
      const pinned = acceptor.config !== pinnedBefore;
      if (m.type === 'Phase2a') {
        const entry = acceptor.accepted(m.slot);
        if (entry !== undefined && ballotEquals(entry.ballot, m.ballot)) {
          log.accepted(entry, acceptor.watermark, acceptor.config);
          return hold(effects);
        }
      }
      if (pinned || (m.type === 'Phase1a' && !ballotEquals(acceptor.promised, before))) {
        log.promised(acceptor.promised, acceptor.config);
        return hold(effects);
      }
      return inOrder(effects);
    },
  };
}
