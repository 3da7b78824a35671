import { type Acceptor, ballotEquals, type Effect, type Role } from '@paxos/core';
import { type GroupCommitIo, groupCommit } from './group-commit.ts';
import type { AcceptorLog } from './log.ts';

/** What `durableAcceptor` needs of a log (an `AcceptorLog`). */
export type AcceptorRecords = Pick<
  AcceptorLog,
  'promised' | 'accepted' | 'watermarkRaised' | 'retired' | 'commit'
>;

export type DurableAcceptorIo = GroupCommitIo;

export interface DurableAcceptor extends Role {
  /** Commits the buffered records now and releases the replies held for them (tests, shutdown). */
  commit(): void;
  /** Messages held until their records are committed (after a failed commit: never sent). */
  readonly heldMessages: number;
}

/** A `WatermarkB` or `RetireB`: it may leave only once what it announces is committed. */
function announcesDurableState(effects: readonly Effect[]): boolean {
  return effects.some(
    (e) => e.kind === 'send' && (e.message.type === 'WatermarkB' || e.message.type === 'RetireB'),
  );
}

/**
 * Wraps an acceptor so every promise, accept, configuration pin, raised watermark and retirement
 * reaches the log before any effect that announces it (`groupCommit`). A step that logs a record returns nothing: its
 * effects are held, and once the burst of messages being read is handled, one commit writes (and
 * syncs) every record of the burst and then releases the held effects in order. A step that logs
 * nothing while effects are held is held too, so replies leave in the order their messages came.
 * A `WatermarkB` or `RetireB` is always held until the next commit, even where its step logged
 * nothing (a repeat): what it announces is then on disk however it got into memory. A retired
 * acceptor's `Nack(retired)` changes nothing and is answered at once.
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
      const watermarkBefore = acceptor.watermark;
      const retiredBefore = acceptor.retired;
      const effects = acceptor.step(now, event);
      const pinned = acceptor.config !== pinnedBefore;
      if (m.type === 'WatermarkA' && (acceptor.watermark > watermarkBefore || pinned)) {
        log.watermarkRaised(m.ballot, acceptor.watermark, acceptor.config);
        return hold(effects);
      }
      if (m.type === 'Retire' && acceptor.retired && !retiredBefore) {
        log.retired(m.ballot);
        return hold(effects);
      }
      if (announcesDurableState(effects)) return hold(effects);
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
