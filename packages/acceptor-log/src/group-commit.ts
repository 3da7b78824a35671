import type { Effect } from '@paxos/core';

export interface GroupCommitIo {
  /** Performs effects held until what they announce was committed (`Node.perform`). */
  readonly release: (effects: Effect[]) => void;
  /** Runs `commit` once the current read burst is handled; default `setImmediate`. */
  readonly schedule?: (commit: () => void) => void;
}

/** The hold/commit/release discipline shared by `durableAcceptor` and `durableMatchmaker`. */
export interface GroupCommit {
  /** Holds a step's effects until the next commit (scheduling it); returns none to perform now. */
  hold(effects: Effect[]): Effect[];
  /** Effects of a step that changed nothing durable: held only behind held ones, so order is kept. */
  inOrder(effects: Effect[]): Effect[];
  /** Writes (`write`), then releases what was held, in order. If `write` throws, nothing is released. */
  commit(): void;
  /** Messages held until the next commit (after a failed commit: never sent). */
  readonly heldMessages: number;
}

/**
 * Group commit: a step that changed durable state has its effects held, and once the burst of
 * messages being read is handled one `write` makes every change of the burst durable and then
 * the held effects are released in order. A step that changed nothing while effects are held is
 * held too, so replies leave in the order their messages came.
 *
 * If `write` throws (disk full, I/O error), nothing held is released and the error propagates out
 * of the scheduled callback: the process stops (fail-stop) with no reply sent for a change that
 * is not on disk.
 */
export function groupCommit(write: () => void, io: GroupCommitIo): GroupCommit {
  const schedule = io.schedule ?? ((commit: () => void) => setImmediate(commit));
  let held: Effect[] = [];
  let scheduled = false;
  const commit = () => {
    scheduled = false;
    write();
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
  return {
    hold,
    inOrder: (effects) => (held.length > 0 ? hold(effects) : effects),
    commit,
    get heldMessages() {
      return held.filter((e) => e.kind === 'send').length;
    },
  };
}
