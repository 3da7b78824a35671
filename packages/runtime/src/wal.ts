import {
  closeSync,
  existsSync,
  fdatasyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  truncateSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import {
  type AcceptedEntry,
  type Acceptor,
  type AcceptorState,
  type Ballot,
  ballotEquals,
  type ConfigStamp,
  decodeEnvelope,
  type Effect,
  encodeEnvelope,
  maxBallot,
  type Role,
  UNSTAMPED,
  ZERO_BALLOT,
} from '@paxos/core';

/** The group-commit buffer starts at this size and goes back to it after a burst larger than 1 MiB. */
const PENDING_START_BYTES = 64 * 1024;
const PENDING_KEEP_BYTES = 1024 * 1024;

/**
 * The acceptor's durable memory (design rule 7): an append-only log of promises and accepts,
 * each a length-prefixed protobuf envelope (a Phase1a for a promise, a Phase2a for an accept),
 * each stamped with the configuration the acceptor serves, so a restart keeps that pinned too.
 *
 * Group commit: `promised` and `accepted` only buffer a record; `commit` writes every buffered
 * record with one write (and one fdatasync with `fsync`). `durableAcceptor` commits once per read
 * burst and only then lets the burst's replies go, so an acknowledged vote survives a crash of the
 * process (with `fsync`, of the machine) at the cost of one write per burst, not per record.
 */
export class AcceptorLog {
  private readonly fd: number;
  /** Records buffered since the last commit: `pendingBytes` bytes of `pending`, which is reused. */
  private pending = Buffer.allocUnsafe(PENDING_START_BYTES);
  private pendingBytes = 0;
  private pendingRecords = 0;

  private constructor(
    readonly file: string,
    private readonly fsync: boolean,
  ) {
    this.fd = openSync(file, 'a');
  }

  /** Opens (creating if needed) the log and returns the state it holds. */
  static open(
    file: string,
    options: { fsync: boolean },
  ): { log: AcceptorLog; state: AcceptorState; records: number; tornBytes: number } {
    mkdirSync(path.dirname(file), { recursive: true });
    const recovered = existsSync(file)
      ? replay(readFileSync(file), file)
      : { state: EMPTY, records: 0, tornBytes: 0, validBytes: 0 };
    // Appending after a torn record would make it unreadable: cut it off first.
    if (recovered.tornBytes > 0) truncateSync(file, recovered.validBytes);
    const { state, records, tornBytes } = recovered;
    return { log: new AcceptorLog(file, options.fsync), state, records, tornBytes };
  }

  promised(ballot: Ballot, config: ConfigStamp | null): void {
    this.append(
      encodeEnvelope({
        from: 'wal',
        message: { type: 'Phase1a', ballot, fromSlot: 0, config: config ?? UNSTAMPED },
      }),
    );
  }

  accepted(entry: AcceptedEntry, watermark: number, config: ConfigStamp | null): void {
    this.append(
      encodeEnvelope({
        from: 'wal',
        message: {
          type: 'Phase2a',
          slot: entry.slot,
          ballot: entry.ballot,
          value: entry.value,
          watermark,
          groupId: 0,
          acceptors: [],
          config: config ?? UNSTAMPED,
        },
      }),
    );
  }

  /** Records buffered and not yet written. */
  get uncommitted(): number {
    return this.pendingRecords;
  }

  /**
   * Writes the buffered records (one write, retried until every byte is written) and, with
   * `fsync`, syncs them. Throws if the disk refuses: the caller must not act on those records.
   */
  commit(): void {
    if (this.pendingRecords === 0) return;
    const size = this.pendingBytes;
    this.pendingBytes = 0;
    this.pendingRecords = 0;
    let written = 0;
    while (written < size) written += writeSync(this.fd, this.pending, written, size - written);
    // One huge burst should not keep its buffer for the life of the process.
    if (this.pending.length > PENDING_KEEP_BYTES) this.pending = Buffer.allocUnsafe(PENDING_START_BYTES);
    if (this.fsync) fdatasyncSync(this.fd);
  }

  /** Commits what is buffered, then closes the file. */
  close(): void {
    try {
      this.commit();
    } finally {
      closeSync(this.fd);
    }
  }

  /** Buffers one record: the length prefix and the frame together. */
  private append(frame: Uint8Array): void {
    const needed = this.pendingBytes + 4 + frame.length;
    if (needed > this.pending.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, this.pending.length * 2));
      this.pending.copy(grown, 0, 0, this.pendingBytes);
      this.pending = grown;
    }
    this.pending.writeUInt32LE(frame.length, this.pendingBytes);
    this.pending.set(frame, this.pendingBytes + 4);
    this.pendingBytes = needed;
    this.pendingRecords++;
  }
}

const EMPTY: AcceptorState = { promised: ZERO_BALLOT, watermark: 0, accepted: [] };

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
  return {
    address: acceptor.address,
    start: () => acceptor.start(),
    commit,
    step: (now, event) => {
      if (event.type !== 'message')
        return held.length > 0 ? hold(acceptor.step(now, event)) : acceptor.step(now, event);
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
      return held.length > 0 ? hold(effects) : effects;
    },
  };
}

function replay(
  bytes: Buffer,
  file: string,
): { state: AcceptorState; records: number; tornBytes: number; validBytes: number } {
  let promised: Ballot = ZERO_BALLOT;
  let watermark = 0;
  let config: ConfigStamp | null = null;
  const accepted = new Map<number, AcceptedEntry>();
  let offset = 0;
  let records = 0;
  while (offset + 4 <= bytes.length) {
    const length = bytes.readUInt32LE(offset);
    if (offset + 4 + length > bytes.length) break; // a record cut short by a crash
    const decoded = decodeEnvelope(bytes.subarray(offset + 4, offset + 4 + length));
    if (!decoded.ok)
      throw new Error(`${file}: record ${records + 1} at byte ${offset} is corrupt: ${decoded.error.reason}`);
    const m = decoded.envelope.message;
    if (m.type === 'Phase1a' || m.type === 'Phase2a') {
      promised = maxBallot(promised, m.ballot);
      if (m.config.groups.length > 0) config = m.config;
    }
    if (m.type === 'Phase2a') {
      accepted.set(m.slot, { slot: m.slot, ballot: m.ballot, value: m.value });
      watermark = Math.max(watermark, m.watermark);
    }
    offset += 4 + length;
    records++;
  }
  return {
    state: { promised, watermark, accepted: [...accepted.values()], config },
    records,
    tornBytes: bytes.length - offset,
    validBytes: offset,
  };
}
