import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  AcceptorLog,
  type LogIdentity,
  LogIdentityError,
  nodeStorage,
  type OpenedLog,
} from '@paxos/acceptor-log';
import { ConfigError } from './config.ts';

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
