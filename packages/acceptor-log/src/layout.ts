import { LogCorruptError, LogIdentityError } from './errors.ts';
import {
  type Checkpoint,
  checkCheckpoint,
  checkSegmentHeader,
  formatIdentity,
  type LogIdentity,
  SEGMENT_MAGIC,
  type SegmentHeader,
  STATE_FILE,
  STATE_MAGIC,
  sameIdentity,
  segmentIndex,
  segmentName,
} from './format.ts';
import { LogFileReader, type ReadCounter } from './read.ts';
import { type LogStorage, TEMP_SUFFIX } from './storage.ts';

/** The log's files: its segments (sorted by index) and whether it has a state file. */
export interface Layout {
  readonly segments: readonly number[];
  readonly hasState: boolean;
}

/**
 * Lists the directory. Leftover temporary files of an interrupted `writeAtomic` are ignored;
 * any other file that is no part of a log means this is not (only) an acceptor log directory,
 * and writing a log into it could mix two things up: refused.
 */
export function readLayout(storage: LogStorage): Layout {
  const segments: number[] = [];
  let hasState = false;
  const foreign: string[] = [];
  for (const name of storage.list()) {
    const index = segmentIndex(name);
    if (index !== null) segments.push(index);
    else if (name === STATE_FILE) hasState = true;
    else if (!name.endsWith(TEMP_SUFFIX)) foreign.push(name);
  }
  if (foreign.length > 0)
    throw new LogIdentityError(
      `${storage.location} is not an acceptor log directory: it holds ${foreign
        .sort()
        .slice(0, 3)
        .map((f) => JSON.stringify(f))
        .join(
          ', ',
        )}${foreign.length > 3 ? ` and ${foreign.length - 3} more` : ''} (expected only <index>.seg files and "state")`,
    );
  return { segments: segments.sort((a, b) => a - b), hasState };
}

/** The state file's checkpoint. */
export function readCheckpoint(storage: LogStorage, counter: ReadCounter): Checkpoint {
  const reader = new LogFileReader(storage, STATE_FILE, counter);
  const body = reader.header(STATE_MAGIC, checkCheckpoint).body as unknown as Checkpoint;
  // A version-1 state file has no `retired`: nothing retired then.
  return { ...body, retired: body.retired === true };
}

/** A segment's header, checked against its file name; the reader is left at its first record. */
export function readSegmentHeader(
  storage: LogStorage,
  index: number,
  counter: ReadCounter,
): { reader: LogFileReader; header: SegmentHeader; dataStart: number } {
  const reader = new LogFileReader(storage, segmentName(index), counter);
  const { body, dataStart } = reader.header(SEGMENT_MAGIC, checkSegmentHeader);
  const header = body as unknown as SegmentHeader;
  if (header.segment !== index)
    throw reader.corrupt(
      20,
      `a header of segment ${header.segment}`,
      `segment ${index}, as the file's name says`,
    );
  return { reader, header, dataStart };
}

/** Refuses a file whose header names another acceptor than `expected`. */
export function checkIdentity(file: string, found: LogIdentity, expected: LogIdentity): void {
  if (!sameIdentity(found, expected))
    throw new LogIdentityError(
      `${file} belongs to ${formatIdentity(found)}, not to this acceptor (${formatIdentity(expected)}): refusing to start on another acceptor's log`,
    );
}

/** A segment the layout needs and the directory lacks. */
export function missingSegment(storage: LogStorage, index: number, why: string): LogCorruptError {
  return new LogCorruptError(
    storage.pathOf(segmentName(index)),
    0,
    'the file is missing',
    `segment ${index}, ${why}`,
  );
}
