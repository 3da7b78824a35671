export { crc32c } from './crc.ts';
export {
  type AcceptorRecords,
  type DurableAcceptor,
  type DurableAcceptorIo,
  durableAcceptor,
} from './durable-acceptor.ts';
export {
  type DurableMatchmaker,
  durableMatchmaker,
  type MatchmakerStateStore,
} from './durable-matchmaker.ts';
export { LogCorruptError, LogExistsError, LogIdentityError, LogMissingError } from './errors.ts';
export {
  type Checkpoint,
  FORMAT_VERSION,
  formatIdentity,
  type LiveSegment,
  type LogIdentity,
  type LogRecord,
  READABLE_VERSIONS,
  RECORD_HEADER_BYTES,
  type SegmentHeader,
  STATE_FILE,
  segmentIndex,
  segmentName,
} from './format.ts';
export { type GroupCommit, type GroupCommitIo, groupCommit } from './group-commit.ts';
export {
  AcceptorLog,
  type CreateMode,
  DEFAULT_SEGMENT_BYTES,
  MIN_SEGMENT_BYTES,
  type OpenedLog,
  type OpenOptions,
  type Recovery,
} from './log.ts';
export {
  formatMatchmakerIdentity,
  MATCHMAKER_FILE,
  MATCHMAKER_FORMAT_VERSION,
  MATCHMAKER_MAGIC,
  type MatchmakerIdentity,
  MatchmakerStore,
  type MatchmakerStoreOptions,
  type OpenedMatchmakerStore,
} from './matchmaker-store.ts';
export { type CrashOptions, MemoryStorage, type StorageStats } from './memory-storage.ts';
export { type NodeStorageOptions, nodeStorage } from './node-storage.ts';
export type { ReadCounter } from './read.ts';
export { readState, type ScanEnd, type ScanItem, type ScanOptions, scanLog } from './scan.ts';
export { type LogStorage, TEMP_SUFFIX } from './storage.ts';
