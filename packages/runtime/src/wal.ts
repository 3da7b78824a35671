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
  encodeEnvelope,
  maxBallot,
  type Role,
  UNSTAMPED,
  ZERO_BALLOT,
} from '@paxos/core';

/**
 * The acceptor's durable memory (design rule 7): an append-only log of promises and accepts,
 * each a length-prefixed protobuf envelope (a Phase1a for a promise, a Phase2a for an accept),
 * each stamped with the configuration the acceptor serves, so a restart keeps that pinned too.
 * Records are written before the acceptor replies, so an acknowledged vote survives a crash of
 * the process (`fsync` also survives a crash of the machine, at a cost per record).
 */
export class AcceptorLog {
  private readonly fd: number;

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

  sync(): void {
    if (this.fsync) fdatasyncSync(this.fd);
  }

  close(): void {
    closeSync(this.fd);
  }

  /** One write per record: the length prefix and the frame together. */
  private append(frame: Uint8Array): void {
    const record = Buffer.allocUnsafe(4 + frame.length);
    record.writeUInt32LE(frame.length, 0);
    record.set(frame, 4);
    writeSync(this.fd, record);
  }
}

const EMPTY: AcceptorState = { promised: ZERO_BALLOT, watermark: 0, accepted: [] };

/**
 * Wraps an acceptor so every promise, accept and configuration pin reaches the log before the
 * effects that announce it (the runtime performs effects only after `step` returns).
 */
export function durableAcceptor(acceptor: Acceptor, log: AcceptorLog): Role {
  return {
    address: acceptor.address,
    start: () => acceptor.start(),
    step: (now, event) => {
      if (event.type !== 'message') return acceptor.step(now, event);
      const m = event.message;
      const before = acceptor.promised;
      const pinnedBefore = acceptor.config;
      const effects = acceptor.step(now, event);
      const pinned = acceptor.config !== pinnedBefore;
      if (m.type === 'Phase2a') {
        const entry = acceptor.accepted(m.slot);
        if (entry !== undefined && ballotEquals(entry.ballot, m.ballot)) {
          log.accepted(entry, acceptor.watermark, acceptor.config);
          log.sync();
          return effects;
        }
      }
      if (pinned || (m.type === 'Phase1a' && !ballotEquals(acceptor.promised, before))) {
        log.promised(acceptor.promised, acceptor.config);
        log.sync();
      }
      return effects;
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
