import {
  type Checkpoint,
  type LogIdentity,
  type LogRecord,
  type SegmentHeader,
  segmentIndex,
} from './format.ts';
import { checkIdentity, missingSegment, readCheckpoint, readLayout, readSegmentHeader } from './layout.ts';
import type { ReadCounter } from './read.ts';
import type { LogStorage } from './storage.ts';

/** What `scanLog` yields, in order: each segment's header, then its records. */
export type ScanItem =
  | { readonly type: 'segment'; readonly file: string; readonly header: SegmentHeader }
  | {
      readonly type: 'record';
      readonly segment: number;
      readonly file: string;
      readonly offset: number;
      readonly bytes: number;
      readonly record: LogRecord;
    };

export interface ScanEnd {
  /** Bytes of a torn write after the last whole record of the last segment (left in place). */
  readonly tornBytes: number;
  /** Where they begin. */
  readonly tornAt: { readonly file: string; readonly offset: number } | null;
}

export interface ScanOptions {
  /** Refuse a log of another acceptor (by default only the segments' agreement is checked). */
  readonly identity?: LogIdentity;
  /** Only these segments (each must exist): `pnpm log dump` of one file. */
  readonly segments?: readonly number[];
  readonly counter?: ReadCounter;
}

/**
 * Every record of the log, segment by segment, streamed and read-only: the whole history, which
 * recovery never needs, for the after-run checks (which values were chosen) and `pnpm log dump`.
 * A torn tail is reported in the return value, not cut off; damage anywhere else throws
 * `LogCorruptError` once the records before it have been yielded.
 */
export function* scanLog(storage: LogStorage, options: ScanOptions = {}): Generator<ScanItem, ScanEnd> {
  const counter = options.counter ?? { bytesRead: 0 };
  // One segment asked for by name is read whatever else the directory holds.
  const segments =
    options.segments === undefined
      ? readLayout(storage).segments
      : storage
          .list()
          .map(segmentIndex)
          .filter((i) => i !== null)
          .sort((a, b) => a - b);
  const wanted = options.segments ?? segments;
  const present = new Set(segments);
  // Only the log's last segment may end in a torn write.
  const last = segments[segments.length - 1];
  let identity = options.identity;
  for (const [i, index] of wanted.entries()) {
    if (!present.has(index)) throw missingSegment(storage, index, 'which was asked for');
    // The history must be whole: a gap in the numbers is a lost segment.
    if (options.segments === undefined && index !== i)
      throw missingSegment(storage, i, `between ${i - 1} and ${index}`);
    const { reader, header, dataStart } = readSegmentHeader(storage, index, counter);
    if (identity === undefined) identity = header;
    checkIdentity(reader.path, header, identity);
    yield { type: 'segment', file: reader.path, header };
    const records = reader.records(dataStart, index === last);
    let r = records.next();
    for (; !r.done; r = records.next())
      yield { type: 'record', segment: index, file: reader.path, ...r.value };
    if (r.value.tornBytes > 0)
      return { tornBytes: r.value.tornBytes, tornAt: { file: reader.path, offset: r.value.end } };
  }
  return { tornBytes: 0, tornAt: null };
}

/** The state file's checkpoint, or null if the log has none yet (no segment was ever closed). */
export function readState(storage: LogStorage, counter: ReadCounter = { bytesRead: 0 }): Checkpoint | null {
  if (!readLayout(storage).hasState) return null;
  return readCheckpoint(storage, counter);
}
