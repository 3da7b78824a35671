import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  AcceptorLog,
  type LogIdentity,
  LogIdentityError,
  nodeStorage,
  type OpenedLog,
} from '@paxos/acceptor-log';
import { type Acceptor, ballotEquals, type Effect, type Role } from '@paxos/core';
import { ConfigError } from './config.ts';

export {
  AcceptorLog,
  DEFAULT_SEGMENT_BYTES,
  LogCorruptError,
  type LogIdentity,
  LogIdentityError,
  type Recovery,
} from '@paxos/acceptor-log';

/**
 * The directory of an acceptor's log under DATA_DIR: one per acceptor, so the acceptors of a
 * local cluster can share DATA_DIR. Characters a file name cannot hold become `_` (the header
 * keeps the cluster key as it is).
 */
export function acceptorLogDir(dataDir: string, identity: LogIdentity): string {
  const cluster = identity.cluster.replace(/[^A-Za-z0-9._-]/g, '_');
  return path.join(dataDir, `${cluster}-g${identity.groupId}-a${identity.acceptorId}`);
}

/**
 * Opens (creating if new) the log of acceptor `identity` under `dataDir` on real files (see
 * @paxos/acceptor-log). A log of another acceptor, a directory holding something else, or a log
 * in the single-file format of earlier versions is a `ConfigError` (one line, exit 2): the
 * acceptor must not start on a memory that is not its own. Damage is a `LogCorruptError`.
 */
export function openAcceptorLog(
  dataDir: string,
  identity: LogIdentity,
  options: { fsync: boolean; segmentBytes?: number },
): OpenedLog & { dir: string } {
  const dir = acceptorLogDir(dataDir, identity);
  const legacy = `${dir}.wal`;
  if (existsSync(legacy))
    throw new ConfigError(
      `${legacy} is an acceptor log in the single-file format of earlier versions, which this version does not read (expected the directory ${dir}): run this acceptor with the version that wrote it; an acceptor that starts without its log forgets its promises and votes, which is safe only in a new cluster`,
    );
  try {
    return { dir, ...AcceptorLog.open(nodeStorage(dir), { identity, ...options }) };
  } catch (err) {
    if (err instanceof LogIdentityError) throw new ConfigError(err.message);
    throw err;
  }
}

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
