import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  AcceptorLog,
  type CreateMode,
  formatIdentity,
  LogExistsError,
  type LogIdentity,
  LogIdentityError,
  LogMissingError,
  nodeStorage,
  type OpenedLog,
} from '@paxos/acceptor-log';
import { z } from 'zod';
import { ConfigError, setting } from './config.ts';

export {
  AcceptorLog,
  type AcceptorRecords,
  DEFAULT_SEGMENT_BYTES,
  type DurableAcceptor,
  type DurableAcceptorIo,
  durableAcceptor,
  LogCorruptError,
  type LogIdentity,
  LogIdentityError,
  type Recovery,
} from '@paxos/acceptor-log';

/**
 * What the operator (or supervisor) knows of an acceptor's past, which its log directory alone
 * cannot tell: `new` (never run, or do not know: create the log if the directory is missing or
 * empty, else open it), `existing` (it has run before: the log must be there), `replacement`
 * (it has run before and its log is lost for good: start a new, empty one). The model is etcd's
 * `--initial-cluster-state new|existing`.
 */
export const ACCEPTOR_LOG_STATES = ['new', 'existing', 'replacement'] as const;
export type AcceptorLogState = (typeof ACCEPTOR_LOG_STATES)[number];

/** The acceptor's ACCEPTOR_LOG_STATE setting; supervisors set it (see `@paxos/launcher`). */
export const ACCEPTOR_LOG_STATE_SETTING = setting({
  env: 'ACCEPTOR_LOG_STATE',
  flag: '--log-state',
  description:
    'new: create the log if its directory is missing or empty, else open it; existing: this acceptor has run before, so its log must be there (refused if missing); replacement: its old log is lost for good, so start a new empty one (refused if a log is there; safe only while at most f acceptors of the group are replaced)',
  expected: 'one of new, existing, replacement',
  schema: z.enum(ACCEPTOR_LOG_STATES),
  default: 'new',
});

/** What each state lets the store do when it opens (the acceptor's log and the matchmaker's state alike). */
export const CREATE_MODE: Readonly<Record<AcceptorLogState, CreateMode>> = {
  new: 'if-missing',
  existing: 'never',
  replacement: 'always',
};

/**
 * The directory of an acceptor's log under DATA_DIR: one per acceptor, so the acceptors of a
 * local cluster can share DATA_DIR. Characters a file name cannot hold become `_` (the header
 * keeps the cluster key as it is). `@paxos/launcher`'s `acceptorLogDirOf` repeats this rule (a
 * test checks they agree).
 */
export function acceptorLogDir(dataDir: string, identity: LogIdentity): string {
  return stateDir(dataDir, identity.cluster, `g${identity.groupId}-a${identity.acceptorId}`);
}

/** `dataDir/<cluster>-<suffix>`, the cluster key's characters a file name cannot hold as `_`. */
export function stateDir(dataDir: string, cluster: string, suffix: string): string {
  return path.join(dataDir, `${cluster.replace(/[^A-Za-z0-9._-]/g, '_')}-${suffix}`);
}

/**
 * Opens the log of acceptor `identity` under `dataDir` on real files (see @paxos/acceptor-log),
 * creating it where `logState` allows (default `new`: if the directory is missing or empty).
 * Refused with a `ConfigError` (one line, exit 2), since the acceptor must not start on a memory
 * that is not its own, nor answer as its old self having forgotten its promises and votes: a log
 * of another acceptor, a directory holding something else, a log in the single-file format of
 * earlier versions, no log with `existing`, a log with `replacement`. Damage is a
 * `LogCorruptError`. `warning`: a line to log at warn (a replacement's new log), or null.
 */
export function openAcceptorLog(
  dataDir: string,
  identity: LogIdentity,
  options: { fsync: boolean; segmentBytes?: number; logState?: AcceptorLogState },
): OpenedLog & { dir: string; warning: string | null } {
  const dir = acceptorLogDir(dataDir, identity);
  const logState = options.logState ?? 'new';
  const legacy = `${dir}.wal`;
  if (existsSync(legacy))
    throw new ConfigError(
      `${legacy} is an acceptor log in the single-file format of earlier versions, which this version does not read (expected the directory ${dir}): run this acceptor with the version that wrote it; an acceptor that starts without its log forgets its promises and votes, which is safe only in a new cluster`,
    );
  const who = `this acceptor (${formatIdentity(identity)})`;
  let opened: OpenedLog;
  try {
    opened = AcceptorLog.open(nodeStorage(dir), {
      identity,
      fsync: options.fsync,
      ...(options.segmentBytes === undefined ? {} : { segmentBytes: options.segmentBytes }),
      create: CREATE_MODE[logState],
    });
  } catch (err) {
    if (err instanceof LogIdentityError) throw new ConfigError(err.message);
    if (err instanceof LogMissingError)
      throw new ConfigError(
        `acceptor log ${dir} is ${existsSync(dir) ? 'empty' : 'missing'}, but ACCEPTOR_LOG_STATE (--log-state) is "existing": ${who} has run before, and starting it without its log would forget its promises and votes, which can let two different values be chosen for one slot. Restore the log there; or, if it is lost for good, start this acceptor as a replacement with ACCEPTOR_LOG_STATE=replacement (--log-state replacement), which is safe only while at most f acceptors of group ${identity.groupId} are replaced`,
      );
    if (err instanceof LogExistsError)
      throw new ConfigError(
        `ACCEPTOR_LOG_STATE (--log-state) is "replacement", which starts ${who} on a new, empty log, but ${dir} already holds a log (${plural(err.segments, 'segment')}${err.hasState ? ' and a state file' : ''}): refusing to discard it. Move it out of the way (e.g. to ${dir}.old) to start the replacement, or start with ACCEPTOR_LOG_STATE=existing to recover from it`,
      );
    throw err;
  }
  const warning =
    logState === 'replacement'
      ? `started as a replacement on a new, empty log: ${who} has forgotten whatever it promised and voted before, which is safe only while at most f acceptors of group ${identity.groupId} are replaced before a reconfiguration retires the old identity; restart it with ACCEPTOR_LOG_STATE=existing from now on`
      : null;
  return { dir, ...opened, warning };
}

const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;
