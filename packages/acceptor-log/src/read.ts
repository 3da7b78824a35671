/**
 * Streaming reads of the log's files: a window of at most a chunk (or one record, if larger) is
 * in memory at a time, whatever the file's size. Every byte comes through `LogStorage.read`,
 * and `ReadCounter` adds them up, so tests and start-up logs can show what recovery read.
 */
import { crc32c } from './crc.ts';
import { LogCorruptError } from './errors.ts';
import {
  decodePayload,
  FILE_HEADER_FIXED_BYTES,
  type LogRecord,
  MAX_HEADER_BODY_BYTES,
  MAX_RECORD_BYTES,
  READABLE_VERSIONS,
  RECORD_HEADER_BYTES,
} from './format.ts';
import type { LogStorage } from './storage.ts';

export interface ReadCounter {
  bytesRead: number;
}

const CHUNK_BYTES = 1024 * 1024;

/** A forward-only window over one file. */
class Window {
  private buf: Buffer;
  /** File position of `buf[0]`. */
  private start = 0;
  private length = 0;
  private eof = false;

  constructor(
    private readonly storage: LogStorage,
    private readonly name: string,
    private readonly counter: ReadCounter,
    chunkBytes: number,
  ) {
    this.buf = Buffer.allocUnsafe(chunkBytes);
  }

  /** Makes bytes [pos, pos + n) readable where the file has them; returns how many it has (≤ n). */
  ensure(pos: number, n: number): number {
    const have = () => Math.max(0, Math.min(n, this.start + this.length - pos));
    if (pos + n <= this.start + this.length || this.eof) return have();
    // Keep what is still ahead of `pos`, then fill the rest of the window.
    const keep = Math.max(0, this.start + this.length - pos);
    if (n > this.buf.length) {
      const grown = Buffer.allocUnsafe(n);
      this.buf.copy(grown, 0, this.length - keep, this.length);
      this.buf = grown;
    } else if (keep > 0) {
      this.buf.copy(this.buf, 0, this.length - keep, this.length);
    }
    this.start = pos;
    this.length = keep;
    while (this.length < n && !this.eof) {
      const want = this.buf.length - this.length;
      const got = this.storage.read(
        this.name,
        this.start + this.length,
        this.buf.subarray(this.length),
        want,
      );
      this.counter.bytesRead += got;
      this.length += got;
      if (got < want) this.eof = true;
    }
    return have();
  }

  /** Bytes [pos, pos + n), which `ensure` made readable; valid until the next `ensure`. */
  view(pos: number, n: number): Buffer {
    return this.buf.subarray(pos - this.start, pos - this.start + n);
  }

  /** Whether every byte from `pos` to the end of the file is zero; also returns where it ends. */
  zeroFrom(pos: number): { zero: boolean; end: number } {
    for (let p = pos; ; ) {
      const n = this.ensure(p, CHUNK_BYTES);
      if (n === 0) return { zero: true, end: p };
      const bytes = this.view(p, n);
      for (let i = 0; i < n; i++) if (bytes[i] !== 0) return { zero: false, end: p + i };
      p += n;
    }
  }
}

export interface FileHeader {
  readonly body: Record<string, unknown>;
  /** Where the records begin. */
  readonly dataStart: number;
}

/** Where valid records of a segment end, and what was cut off after them as a torn tail. */
export interface SegmentEnd {
  readonly end: number;
  readonly tornBytes: number;
}

export interface ReadRecord {
  readonly offset: number;
  /** Size on disk, header included. */
  readonly bytes: number;
  readonly record: LogRecord;
}

/**
 * One file of the log, read from its start: its header, then (for segments) its records.
 * Damage throws `LogCorruptError` naming the file, the byte offset and what was expected.
 */
export class LogFileReader {
  private readonly window: Window;
  readonly path: string;

  constructor(
    storage: LogStorage,
    readonly name: string,
    counter: ReadCounter,
    chunkBytes = CHUNK_BYTES,
  ) {
    this.window = new Window(storage, name, counter, chunkBytes);
    this.path = storage.pathOf(name);
  }

  /**
   * The header: `magic`, one of `versions`, a body that passes its CRC and `check` (null: valid;
   * else what is expected).
   */
  header(
    magic: string,
    check: (body: Record<string, unknown>) => string | null,
    versions: readonly number[] = READABLE_VERSIONS,
  ): FileHeader {
    const w = this.window;
    const fixed = w.ensure(0, FILE_HEADER_FIXED_BYTES);
    const what = `a ${magic} file header`;
    if (fixed < FILE_HEADER_FIXED_BYTES)
      throw this.corrupt(
        0,
        `the file is ${fixed} bytes long`,
        `${what} of at least ${FILE_HEADER_FIXED_BYTES} bytes`,
      );
    const head = w.view(0, FILE_HEADER_FIXED_BYTES);
    const found = head.toString('latin1', 0, 8);
    if (found !== magic) throw this.corrupt(0, `magic ${JSON.stringify(found)}`, `"${magic}"`);
    const version = head.readUInt32LE(8);
    if (!versions.includes(version))
      throw this.corrupt(8, `format version ${version}`, `version ${versions.join(' or ')}`);
    const length = head.readUInt32LE(12);
    const crc = head.readUInt32LE(16);
    if (length > MAX_HEADER_BODY_BYTES)
      throw this.corrupt(12, `header body length ${length}`, `at most ${MAX_HEADER_BODY_BYTES}`);
    const got = w.ensure(FILE_HEADER_FIXED_BYTES, length);
    if (got < length)
      throw this.corrupt(
        FILE_HEADER_FIXED_BYTES,
        `header body of ${got} bytes`,
        `${length} bytes, as its length says`,
      );
    const bodyBytes = w.view(FILE_HEADER_FIXED_BYTES, length);
    const actual = crc32c(bodyBytes);
    if (actual !== crc) throw this.corrupt(FILE_HEADER_FIXED_BYTES, `header CRC32C ${hex(actual)}`, hex(crc));
    let body: unknown;
    try {
      body = JSON.parse(bodyBytes.toString('utf8'));
    } catch {
      body = null;
    }
    const problem =
      typeof body === 'object' && body !== null && !Array.isArray(body)
        ? check(body as Record<string, unknown>)
        : 'a JSON object';
    if (problem !== null)
      throw this.corrupt(FILE_HEADER_FIXED_BYTES, 'a header body without its fields', problem);
    return { body: body as Record<string, unknown>, dataStart: FILE_HEADER_FIXED_BYTES + length };
  }

  /**
   * The records from `dataStart` on. With `tail` (the last segment of a log) a damaged record
   * followed by nothing but zero bytes is a torn write, the end of what a crash let reach the
   * disk: the generator returns where the valid records end and how many bytes follow. Anywhere
   * else, and in any other segment, a damaged record throws.
   */
  *records(dataStart: number, tail: boolean): Generator<ReadRecord, SegmentEnd> {
    const w = this.window;
    let p = dataStart;
    for (;;) {
      const got = w.ensure(p, RECORD_HEADER_BYTES);
      if (got === 0) return { end: p, tornBytes: 0 };
      if (got < RECORD_HEADER_BYTES) {
        if (tail) return { end: p, tornBytes: got };
        throw this.corrupt(p, `a record header cut short at ${got} bytes`, `${RECORD_HEADER_BYTES} bytes`);
      }
      const head = w.view(p, RECORD_HEADER_BYTES);
      const length = head.readUInt32LE(0);
      const payloadCrc = head.readUInt32LE(4);
      const headerCrc = head.readUInt32LE(8);
      const actualHeaderCrc = crc32c(head.subarray(0, 8));
      if (actualHeaderCrc !== headerCrc) {
        const torn = this.tornAt(p, p + RECORD_HEADER_BYTES, tail);
        if (torn !== null) return torn;
        throw this.corrupt(
          p,
          `record header CRC32C ${hex(actualHeaderCrc)}`,
          `${hex(headerCrc)}${this.notTorn(tail)}`,
        );
      }
      if (length > MAX_RECORD_BYTES)
        throw this.corrupt(p, `record length ${length}`, `at most ${MAX_RECORD_BYTES}`);
      const whole = w.ensure(p, RECORD_HEADER_BYTES + length);
      if (whole < RECORD_HEADER_BYTES + length) {
        // The header checks out, so the length is what was written: the rest never reached the disk.
        if (tail) return { end: p, tornBytes: whole };
        throw this.corrupt(
          p,
          `a record cut short at ${whole} bytes`,
          `${RECORD_HEADER_BYTES + length} bytes`,
        );
      }
      const payload = w.view(p + RECORD_HEADER_BYTES, length);
      const actualPayloadCrc = crc32c(payload);
      if (actualPayloadCrc !== payloadCrc) {
        const torn = this.tornAt(p, p + RECORD_HEADER_BYTES + length, tail);
        if (torn !== null) return torn;
        throw this.corrupt(
          p,
          `record CRC32C ${hex(actualPayloadCrc)}`,
          `${hex(payloadCrc)}${this.notTorn(tail)}`,
        );
      }
      const record = decodePayload(payload);
      if (typeof record === 'string')
        throw this.corrupt(
          p,
          record,
          'a promise (Phase1a), an accept (Phase2a), a watermark (WatermarkA) or a retirement (Retire)',
        );
      yield { offset: p, bytes: RECORD_HEADER_BYTES + length, record };
      p += RECORD_HEADER_BYTES + length;
    }
  }

  /** A damaged record at `at` is a torn tail if it is in the last segment and only zeros follow `after`. */
  private tornAt(at: number, after: number, tail: boolean): SegmentEnd | null {
    if (!tail) return null;
    const { zero, end } = this.window.zeroFrom(after);
    return zero ? { end: at, tornBytes: Math.max(end, after) - at } : null;
  }

  private notTorn(tail: boolean): string {
    return tail
      ? '; non-zero bytes follow it, so it is not a torn tail'
      : '; only the last segment may end in a torn write';
  }

  corrupt(offset: number, problem: string, expected: string): LogCorruptError {
    return new LogCorruptError(this.path, offset, problem, expected);
  }
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}
