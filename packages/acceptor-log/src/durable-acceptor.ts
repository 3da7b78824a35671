import { type Acceptor, ballotEquals, type Effect, type Role } from '@paxos/core';
import type { AcceptorLog } from './log.ts';

/** What `durableAcceptor` needs of a log (an `AcceptorLog`). */
export type AcceptorRecords = Pick<AcceptorLog, 'promised' | 'accepted' | 'commit'>;

export interface DurableAcceptorIo {
  /** Performs effects held until their records were committed (`Node.perform`). */
  readonly release: (effects: Effect[]) => void;
  /** Runs `commit` once the current read burst is handled; default `setImmediate`. */
  readonly schedule?: (commit: () => void) => void;
}

export interface DurableAcceptor extends Role {
  /** Commits the buffered records now and releases the replies held for them (tests, shutdown). */
  commit(): void;
  /** Messages held until their records are committed (after a failed commit: never sent). */
  readonly heldMessages: number;
}

/**
 * Wraps an acceptor so every promise, accept and configuration pin reaches the log before any
 * effect that announces it. A step that logs a record returns nothing: its effects are held, and
 * once the burst of messages being read is handled, one commit writes (and syncs) every record
 * of the burst and then releases the held effects in order. A step that logs nothing while
 * effects are held is held too, so replies leave in the order their messages came.
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
  const schedule = io.schedule ?? ((commit: () => void) => setImmediate(commit));
  let held: Effect[] = [];
  let scheduled = false;
  const commit = () => {
    scheduled = false;
    log.commit();
    if (held.length === 0) return;
    const effects = held;
    held = [];
    io.release(effects);
  };
  const hold = (effects: Effect[]): Effect[] => {
    for (const e of effects) held.push(e);
    if (!scheduled) {
      scheduled = true;
      schedule(commit);
    }
    return [];
  };
  /** Effects that log nothing wait only behind held ones, so replies keep their messages' order. */
  const inOrder = (effects: Effect[]): Effect[] => (held.length > 0 ? hold(effects) : effects);
  return {
    address: acceptor.address,
    start: () => acceptor.start(),
    commit,
    get heldMessages() {
      return held.filter((e) => e.kind === 'send').length;
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
