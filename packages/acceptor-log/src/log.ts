import {
  type AcceptedEntry,
  type AcceptorState,
  type Ballot,
  type ConfigStamp,
  maxBallot,
  ZERO_BALLOT,
} from '@paxos/core';
import { LogExistsError, LogMissingError } from './errors.ts';
import {
  type Checkpoint,
  encodeCheckpoint,
  encodePayload,
  encodeSegmentHeader,
  type LiveSegment,
  type LogIdentity,
  type LogRecord,
  putRecord,
  RECORD_HEADER_BYTES,
  STATE_FILE,
  segmentName,
} from './format.ts';
import { checkIdentity, missingSegment, readCheckpoint, readLayout, readSegmentHeader } from './layout.ts';
import type { ReadCounter } from './read.ts';
import type { LogStorage } from './storage.ts';

export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** Smaller segments would be mostly header; tests use a few KiB to roll often. */
export const MIN_SEGMENT_BYTES = 1024;

/** The group-commit buffer starts at this size and goes back to it after a burst larger than 1 MiB. */
const PENDING_START_BYTES = 64 * 1024;
const PENDING_KEEP_BYTES = 1024 * 1024;

export interface OpenOptions {
  /** Whose log this is: a log of another identity is refused (`LogIdentityError`). */
  readonly identity: LogIdentity;
  /** fdatasync every commit (DATA_FSYNC). Closing a segment syncs it whatever this says. */
  readonly fsync: boolean;
  /** A segment is closed, and the next begun, once a commit leaves it this large. */
  readonly segmentBytes?: number;
  /**
   * When a new, empty log may be created. `if-missing` (default): when the directory is missing
   * or holds no log file, else the log there is opened. `never`: the log must be there, since
   * this acceptor has run before (`LogMissingError` otherwise). `always`: this start must begin a
   * new log, and one already there is refused (`LogExistsError`), never written over.
   */
  readonly create?: CreateMode;
}

/** See `OpenOptions.create`. */
export type CreateMode = 'if-missing' | 'never' | 'always';

/** What opening the log found and read. */
export interface Recovery {
  /** A new log was created (the directory was empty or missing). */
  readonly created: boolean;
  /** Records replayed. */
  readonly records: number;
  /** Bytes of a torn write cut off the end of the last segment. */
  readonly tornBytes: number;
  /** Bytes read through the storage: the state file and the segments that still matter. */
  readonly bytesRead: number;
  /** Segment files in the log, and how many of them were read. */
  readonly segments: number;
  readonly segmentsRead: number;
}

export interface OpenedLog {
  readonly log: AcceptorLog;
  /** What the acceptor must start from: `Acceptor`'s `recovered`. */
  readonly state: AcceptorState;
  readonly recovery: Recovery;
}

interface Summary {
  promised: Ballot;
  watermark: number;
  config: ConfigStamp | null;
  retired: boolean;
}

/**
 * The acceptor's durable memory (design rule 7): its promises and accepts (and, since issue 16,
 * the watermarks `WatermarkA` raised and its retirement), in segments of a directory, over any
 * `LogStorage`.
 *
 * Writing: `promised` and `accepted` buffer a record; `commit` writes every buffered record with
 * one append (and one sync with `fsync`). A commit that leaves the segment at `segmentBytes` or
 * more closes it: it is synced, the next segment is created (header written atomically), and the
 * state file is replaced with a checkpoint of everything in the closed segments.
 *
 * Recovery (`open`) reads the checkpoint, then only the segments that can still matter: those
 * after it, and closed ones holding a slot at or above its watermark (slots below it are chosen
 * and phase 1 never reports them). Steady traffic moves the watermark along with the slots, so
 * that is the last closed segment or two and the open one: start-up reads about the same bytes
 * whether the acceptor ran an hour or a year. Old segments stay on disk; until replicas exist
 * they are the only record of chosen values.
 */
export class AcceptorLog {
  /** Records buffered since the last commit: `pendingBytes` bytes of `pending`, which is reused. */
  private pending = Buffer.allocUnsafe(PENDING_START_BYTES);
  private pendingBytes = 0;
  private pendingRecords = 0;
  private failure: Error | null = null;
  private closed = false;

  private constructor(
    private readonly storage: LogStorage,
    private readonly identity: LogIdentity,
    private readonly fsync: boolean,
    private readonly segmentBytes: number,
    /** The last checkpoint written (or read). */
    private checkpoint: Checkpoint,
    /** Everything written: the next checkpoint. */
    private readonly summary: Summary,
    /** The segment appended to, and its size. */
    private current: number,
    private currentBytes: number,
    /** Highest accepted slot of each segment after the checkpoint (-1: none), the current one included. */
    private readonly openMaxSlots: Map<number, number>,
  ) {}

  /**
   * Opens the log in `storage`, creating it if the directory is empty or missing (as
   * `options.create` allows), and returns the state it holds. A torn write at the end of the
   * last segment is cut off (and the cut synced) so appends follow the last whole record. Throws
   * `LogIdentityError` for a log of another acceptor, `LogCorruptError` for damage a crash cannot
   * have caused, and `LogMissingError` or `LogExistsError` where `create` forbids what was found.
   * Nothing is written before these checks.
   */
  static open(storage: LogStorage, options: OpenOptions): OpenedLog {
    const { identity, fsync } = options;
    const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    if (!Number.isSafeInteger(segmentBytes) || segmentBytes < MIN_SEGMENT_BYTES)
      throw new RangeError(`segmentBytes is ${segmentBytes}: expected an integer >= ${MIN_SEGMENT_BYTES}`);
    const counter: ReadCounter = { bytesRead: 0 };
    const layout = readLayout(storage);
    const empty = !layout.hasState && layout.segments.length === 0;
    const create = options.create ?? 'if-missing';
    if (empty && create === 'never') throw new LogMissingError(storage.location);
    if (!empty && create === 'always')
      throw new LogExistsError(storage.location, layout.segments.length, layout.hasState);

    if (empty) {
      storage.create();
      const header = encodeSegmentHeader({ ...identity, segment: 0 });
      storage.writeAtomic(segmentName(0), header);
      const checkpoint = emptyCheckpoint(identity);
      const log = new AcceptorLog(
        storage,
        identity,
        fsync,
        segmentBytes,
        checkpoint,
        summaryOf(checkpoint),
        0,
        header.length,
        new Map([[0, -1]]),
      );
      const recovery = {
        created: true,
        records: 0,
        tornBytes: 0,
        bytesRead: 0,
        segments: 1,
        segmentsRead: 0,
      };
      return {
        log,
        state: { promised: ZERO_BALLOT, watermark: 0, accepted: [], config: null, retired: false },
        recovery,
      };
    }

    const checkpoint = layout.hasState ? readCheckpoint(storage, counter) : emptyCheckpoint(identity);
    if (layout.hasState) checkIdentity(storage.pathOf(STATE_FILE), checkpoint, identity);
    const on = new Set(layout.segments);
    const after = layout.segments.filter((s) => s > checkpoint.through);
    const first = checkpoint.through + 1;
    const why = layout.hasState
      ? `which follows segment ${checkpoint.through}, the last the state file covers`
      : 'the first of a log without a state file';
    for (let i = 0; i === 0 || i < after.length; i++)
      if (after[i] !== first + i)
        throw missingSegment(storage, first + i, i === 0 ? why : `between ${first + i - 1} and ${after[i]}`);
    for (const live of checkpoint.live)
      if (!on.has(live.segment))
        throw missingSegment(
          storage,
          live.segment,
          `which the state file says holds slots up to ${live.maxSlot}`,
        );

    const summary = summaryOf(checkpoint);
    const accepted = new Map<number, AcceptedEntry>();
    let records = 0;
    // Closed segments that still matter: only their accepts at or above the checkpoint's
    // watermark; their promises, watermarks, configuration and retirement are in the checkpoint.
    for (const live of [...checkpoint.live].sort((a, b) => a.segment - b.segment)) {
      const { reader, header, dataStart } = readSegmentHeader(storage, live.segment, counter);
      checkIdentity(reader.path, header, identity);
      const stream = reader.records(dataStart, false);
      for (let r = stream.next(); !r.done; r = stream.next()) {
        records++;
        const rec = r.value.record;
        if (rec.kind === 'accept' && rec.slot >= checkpoint.watermark) accept(accepted, rec);
      }
    }
    // Segments after the checkpoint, whole; the last may end in a torn write.
    const openMaxSlots = new Map<number, number>();
    let end = 0;
    let tornBytes = 0;
    for (const [i, index] of after.entries()) {
      const { reader, header, dataStart } = readSegmentHeader(storage, index, counter);
      checkIdentity(reader.path, header, identity);
      let maxSlot = -1;
      const stream = reader.records(dataStart, i === after.length - 1);
      let r = stream.next();
      for (; !r.done; r = stream.next()) {
        records++;
        const rec = r.value.record;
        apply(summary, rec);
        if (rec.kind === 'accept') {
          maxSlot = Math.max(maxSlot, rec.slot);
          if (rec.slot >= summary.watermark) accept(accepted, rec);
        }
        if (rec.kind === 'accept' || rec.kind === 'watermark') prune(accepted, summary.watermark);
      }
      openMaxSlots.set(index, maxSlot);
      end = r.value.end;
      tornBytes = r.value.tornBytes;
    }
    const last = after[after.length - 1] as number;
    if (tornBytes > 0) {
      // Appending after a torn record would leave it, unreadable, in the middle: cut it off.
      storage.truncate(segmentName(last), end);
      storage.sync(segmentName(last));
    }
    const state: AcceptorState = {
      promised: summary.promised,
      watermark: summary.watermark,
      config: summary.config,
      retired: summary.retired,
      accepted: [...accepted.values()]
        .filter((e) => e.slot >= summary.watermark)
        .sort((a, b) => a.slot - b.slot),
    };
    const log = new AcceptorLog(
      storage,
      identity,
      fsync,
      segmentBytes,
      checkpoint,
      summary,
      last,
      end,
      openMaxSlots,
    );
    const recovery = {
      created: false,
      records,
      tornBytes,
      bytesRead: counter.bytesRead,
      segments: layout.segments.length,
      segmentsRead: checkpoint.live.length + after.length,
    };
    return { log, state, recovery };
  }

  promised(ballot: Ballot, config: ConfigStamp | null): void {
    this.append({ kind: 'promise', ballot, config });
  }

  accepted(entry: AcceptedEntry, watermark: number, config: ConfigStamp | null): void {
    this.append({
      kind: 'accept',
      slot: entry.slot,
      ballot: entry.ballot,
      value: entry.value,
      watermark,
      config,
    });
  }

  /** A `WatermarkA` raised the watermark to `watermark` (`ballot` is its sender's, not a promise). */
  watermarkRaised(ballot: Ballot, watermark: number, config: ConfigStamp | null): void {
    this.append({ kind: 'watermark', ballot, watermark, config });
  }

  /** The acceptor obeyed a `Retire` of `ballot`: it refuses everything from now on. */
  retired(ballot: Ballot): void {
    const { groupId, acceptorId } = this.identity;
    this.append({ kind: 'retired', ballot, groupId, acceptorId });
  }

  /** Records buffered and not yet written. */
  get uncommitted(): number {
    return this.pendingRecords;
  }

  /** The segment records are appended to. */
  get segment(): number {
    return this.current;
  }

  /**
   * Writes the buffered records with one append and, with `fsync`, one sync; then closes the
   * segment if it is full. Throws if the storage refuses: the caller must not act on those
   * records, and the log writes nothing more (what reached the disk of a failed append is a
   * torn tail the next start cuts off).
   */
  commit(): void {
    if (this.failure !== null)
      throw new Error(
        `${this.storage.location}: the log failed earlier (${this.failure.message}); it writes nothing more`,
      );
    if (this.pendingRecords === 0) return;
    try {
      const size = this.pendingBytes;
      this.storage.append(segmentName(this.current), this.pending, size);
      if (this.fsync) this.storage.sync(segmentName(this.current));
      this.currentBytes += size;
      this.pendingBytes = 0;
      this.pendingRecords = 0;
      // One huge burst should not keep its buffer for the life of the process.
      if (this.pending.length > PENDING_KEEP_BYTES) this.pending = Buffer.allocUnsafe(PENDING_START_BYTES);
      if (this.currentBytes >= this.segmentBytes) this.roll();
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err));
      throw err;
    }
  }

  /** Commits what is buffered, then lets go of the storage. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.failure === null) this.commit();
    } finally {
      this.storage.close();
    }
  }

  /**
   * Closes the current segment and begins the next. Order matters for a crash at any point:
   * the closed segment is synced first (so only the last segment can ever end torn), the new one
   * exists before the checkpoint that names it, and the checkpoint replaces the old atomically;
   * a crash before it leaves the old checkpoint, which still covers everything.
   */
  private roll(): void {
    const closing = this.current;
    this.storage.sync(segmentName(closing));
    const next = closing + 1;
    const header = encodeSegmentHeader({ ...this.identity, segment: next });
    this.storage.writeAtomic(segmentName(next), header);
    const watermark = this.summary.watermark;
    const live: LiveSegment[] = [
      ...this.checkpoint.live,
      ...[...this.openMaxSlots].map(([segment, maxSlot]) => ({ segment, maxSlot })),
    ].filter((s) => s.maxSlot >= watermark);
    const checkpoint: Checkpoint = {
      ...this.identity,
      through: closing,
      promised: this.summary.promised,
      watermark,
      config: this.summary.config,
      retired: this.summary.retired,
      live,
    };
    this.storage.writeAtomic(STATE_FILE, encodeCheckpoint(checkpoint));
    this.checkpoint = checkpoint;
    this.openMaxSlots.clear();
    this.openMaxSlots.set(next, -1);
    this.current = next;
    this.currentBytes = header.length;
  }

  /** Buffers one record and counts it into the summary the next checkpoint writes. */
  private append(record: LogRecord): void {
    if (this.closed) throw new Error(`${this.storage.location}: the log is closed`);
    const payload = encodePayload(record);
    const needed = this.pendingBytes + RECORD_HEADER_BYTES + payload.length;
    if (needed > this.pending.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, this.pending.length * 2));
      this.pending.copy(grown, 0, 0, this.pendingBytes);
      this.pending = grown;
    }
    this.pendingBytes += putRecord(this.pending, this.pendingBytes, payload);
    this.pendingRecords++;
    apply(this.summary, record);
    if (record.kind === 'accept')
      this.openMaxSlots.set(this.current, Math.max(this.openMaxSlots.get(this.current) ?? -1, record.slot));
  }
}

function emptyCheckpoint(identity: LogIdentity): Checkpoint {
  return {
    ...identity,
    through: -1,
    promised: ZERO_BALLOT,
    watermark: 0,
    config: null,
    retired: false,
    live: [],
  };
}

function summaryOf(c: Checkpoint): Summary {
  // A checkpoint written before stamps listed acceptor ids has none: the same as an empty list.
  const config = c.config === null ? null : { ...c.config, acceptorIds: c.config.acceptorIds ?? [] };
  return { promised: c.promised, watermark: c.watermark, config, retired: c.retired };
}

/**
 * What a record adds to the promise, the watermark, the pinned configuration and the retirement.
 * A watermark record's ballot is not a promise (a `WatermarkA` leaves the promise alone).
 */
function apply(summary: Summary, record: LogRecord): void {
  if (record.kind === 'retired') {
    summary.retired = true;
    return;
  }
  if (record.kind !== 'watermark') summary.promised = maxBallot(summary.promised, record.ballot);
  if (record.config !== null) summary.config = record.config;
  if (record.kind !== 'promise' && record.watermark > summary.watermark) summary.watermark = record.watermark;
}

function accept(accepted: Map<number, AcceptedEntry>, rec: LogRecord & { kind: 'accept' }): void {
  accepted.set(rec.slot, { slot: rec.slot, ballot: rec.ballot, value: rec.value });
}

/**
 * Entries below the watermark are chosen and dropped, as the acceptor does: slots arrive about in
 * order, so the scan stops at the first one still needed (the final filter catches stragglers).
 */
function prune(accepted: Map<number, AcceptedEntry>, watermark: number): void {
  for (const slot of accepted.keys()) {
    if (slot >= watermark) break;
    accepted.delete(slot);
  }
}
