/**
 * What the log needs of a file system: one flat directory of files, appended to, read by range,
 * synced, and a small file replaced atomically. The log's logic (format, replay, recovery,
 * rolling) is written against this alone, so the runtime gives it real files (`nodeStorage`)
 * and a simulator gives it memory that loses what was never synced (`MemoryStorage`).
 *
 * Every call is synchronous: the acceptor commits a burst and only then releases its replies,
 * so nothing else may run in between. A call that cannot do all it was asked throws.
 */
export interface LogStorage {
  /** Where the log lives, for messages (the directory's path for files on disk). */
  readonly location: string;
  /** The name `location` gives one of its files, for messages (a path for files on disk). */
  pathOf(name: string): string;
  /** Names of the files in the directory, in no particular order; none if it does not exist. */
  list(): string[];
  /** Makes the directory (and its parents) if missing, durably: the parent is synced too. */
  create(): void;
  /** Size of a file in bytes. */
  size(name: string): number;
  /**
   * Reads up to `length` bytes from `position` of a file into `into` (from its start); returns
   * how many were read, fewer only at the end of the file.
   */
  read(name: string, position: number, into: Uint8Array, length: number): number;
  /** Appends the first `length` bytes of `data` to a file, every one of them or throws. */
  append(name: string, data: Uint8Array, length: number): void;
  /** Makes what was written to a file durable (fdatasync). */
  sync(name: string): void;
  /** Cuts a file to `size` bytes (not yet durable: `sync` it). */
  truncate(name: string, size: number): void;
  /**
   * Replaces (or creates) a whole file so that after a crash it holds either its old content or
   * `data`, never a mix: written to a temporary file, synced, renamed over `name`, directory
   * synced. Segments are created this way too, so a segment on disk always has its header.
   */
  writeAtomic(name: string, data: Uint8Array): void;
  /** Closes whatever the storage holds open. */
  close(): void;
}

/** The temporary name `writeAtomic` writes first; the log ignores such leftovers of a crash. */
export const TEMP_SUFFIX = '.tmp';
