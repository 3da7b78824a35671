/**
 * The bytes of the log. A log is a directory of segments and one state file:
 *
 *   <12-digit index>.seg   a file header, then records, each
 *                          [u32 payload length][u32 crc32c(payload)][u32 crc32c(the first 8 bytes)][payload]
 *   state                  a file header whose body is the checkpoint (see `Checkpoint`)
 *
 * A file header is [8-byte magic][u32 version][u32 body length][u32 crc32c(body)][body: JSON].
 * Integers are little-endian. A record's payload is a protobuf envelope of @paxos/core: a
 * Phase1a for a promise, a Phase2a for an accept, each stamped with the acceptor's configuration;
 * since format version 2 also a WatermarkA for a durable watermark and a Retire for retirement.
 *
 * The length has its own checksum so that a damaged length is told from a record cut short by
 * a crash: only a record whose header checks out may be believed to run past the end of a file.
 */
import {
  type Ballot,
  type ConfigStamp,
  decodeEnvelope,
  encodeEnvelope,
  MAX_FRAME_BYTES,
  type Message,
  UNSTAMPED,
  type Value,
} from '@paxos/core';
import { crc32c } from './crc.ts';

export const RECORD_HEADER_BYTES = 12;
/** No record is larger than a frame: each holds one message. */
export const MAX_RECORD_BYTES = MAX_FRAME_BYTES;
/**
 * The version new files are written with. 2 added the `watermark` and `retired` records and the
 * checkpoint's `retired`; a version-1 file (written before) reads unchanged. A reader that knows
 * only version 1 refuses version-2 files rather than forget a retirement.
 */
export const FORMAT_VERSION = 2;
/** The versions an acceptor log's files may carry. */
export const READABLE_VERSIONS: readonly number[] = [1, 2];
export const SEGMENT_MAGIC = 'PXACCSEG';
export const STATE_MAGIC = 'PXACCSTA';
export const FILE_HEADER_FIXED_BYTES = 20;
/** A header body is a few hundred bytes; more is damage, not a header. */
export const MAX_HEADER_BODY_BYTES = 1024 * 1024;
export const STATE_FILE = 'state';

/** Which acceptor a log belongs to; written in every file's header and checked on open. */
export interface LogIdentity {
  /** The cluster's key: the ANNA_KEY_PREFIX the acceptor registers under ('paxos' if empty). */
  readonly cluster: string;
  readonly groupId: number;
  readonly acceptorId: number;
}

export function formatIdentity(id: LogIdentity): string {
  return `cluster "${id.cluster}" group ${id.groupId} acceptor ${id.acceptorId}`;
}

export function sameIdentity(a: LogIdentity, b: LogIdentity): boolean {
  return a.cluster === b.cluster && a.groupId === b.groupId && a.acceptorId === b.acceptorId;
}

/**
 * One record: a promise; an accept with the watermark the acceptor knew then; a watermark a
 * `WatermarkA` raised (its `ballot` is the sender's, not a promise); or the acceptor's retirement.
 */
export type LogRecord =
  | { readonly kind: 'promise'; readonly ballot: Ballot; readonly config: ConfigStamp | null }
  | {
      readonly kind: 'accept';
      readonly slot: number;
      readonly ballot: Ballot;
      readonly value: Value;
      readonly watermark: number;
      readonly config: ConfigStamp | null;
    }
  | {
      readonly kind: 'watermark';
      readonly ballot: Ballot;
      readonly watermark: number;
      readonly config: ConfigStamp | null;
    }
  | {
      readonly kind: 'retired';
      readonly ballot: Ballot;
      readonly groupId: number;
      readonly acceptorId: number;
    };

/** A closed segment that may still hold slots at or above the watermark, and its highest slot. */
export interface LiveSegment {
  readonly segment: number;
  readonly maxSlot: number;
}

/**
 * The state file's body, written when a segment is closed: what every record in segments
 * 0..`through` adds up to, so recovery reads none of them except the `live` ones.
 */
export interface Checkpoint extends LogIdentity {
  /** The last segment the summary covers; -1 for none. */
  readonly through: number;
  readonly promised: Ballot;
  readonly watermark: number;
  readonly config: ConfigStamp | null;
  /** A retired record is among them (absent in a version-1 state file: false). */
  readonly retired: boolean;
  /** Segments up to `through` holding a slot at or above `watermark`: their accepts still matter. */
  readonly live: readonly LiveSegment[];
}

export interface SegmentHeader extends LogIdentity {
  readonly segment: number;
}

const SEGMENT_NAME = /^(\d{12})\.seg$/;

export function segmentName(index: number): string {
  return `${String(index).padStart(12, '0')}.seg`;
}

/** The index of a segment file's name, or null for any other name. */
export function segmentIndex(name: string): number | null {
  const match = SEGMENT_NAME.exec(name);
  return match === null ? null : Number(match[1]);
}

// ---------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------

export function encodePayload(record: LogRecord): Uint8Array {
  return encodeEnvelope({ from: 'wal', message: recordMessage(record) });
}

function recordMessage(record: LogRecord): Message {
  switch (record.kind) {
    case 'promise':
      return { type: 'Phase1a', ballot: record.ballot, fromSlot: 0, config: record.config ?? UNSTAMPED };
    case 'accept':
      return {
        type: 'Phase2a',
        slot: record.slot,
        ballot: record.ballot,
        value: record.value,
        watermark: record.watermark,
        groupId: 0,
        acceptors: [],
        config: record.config ?? UNSTAMPED,
      };
    case 'watermark':
      return {
        type: 'WatermarkA',
        ballot: record.ballot,
        watermark: record.watermark,
        config: record.config ?? UNSTAMPED,
      };
    case 'retired': {
      const { ballot, groupId, acceptorId } = record;
      return { type: 'Retire', ballot, groupId, acceptorId };
    }
  }
}

/** The record a payload holds, or why it holds none. */
export function decodePayload(payload: Uint8Array): LogRecord | string {
  const decoded = decodeEnvelope(payload);
  if (!decoded.ok) return `payload does not decode: ${decoded.error.reason}`;
  const m = decoded.envelope.message;
  // A log written before configurations were stamped has unstamped records: no pin yet.
  const config = (stamp: ConfigStamp) => (stamp.groups.length > 0 ? stamp : null);
  if (m.type === 'Phase1a') return { kind: 'promise', ballot: m.ballot, config: config(m.config) };
  if (m.type === 'Phase2a')
    return {
      kind: 'accept',
      slot: m.slot,
      ballot: m.ballot,
      value: m.value,
      watermark: m.watermark,
      config: config(m.config),
    };
  if (m.type === 'WatermarkA')
    return { kind: 'watermark', ballot: m.ballot, watermark: m.watermark, config: config(m.config) };
  if (m.type === 'Retire')
    return { kind: 'retired', ballot: m.ballot, groupId: m.groupId, acceptorId: m.acceptorId };
  return `payload is a ${m.type} message`;
}

/** Writes one record (header and payload) at `at` of `into`, which must have room; returns its size. */
export function putRecord(into: Buffer, at: number, payload: Uint8Array): number {
  into.writeUInt32LE(payload.length, at);
  into.set(payload, at + RECORD_HEADER_BYTES);
  into.writeUInt32LE(
    crc32c(into.subarray(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + payload.length)),
    at + 4,
  );
  into.writeUInt32LE(crc32c(into.subarray(at, at + 8)), at + 8);
  return RECORD_HEADER_BYTES + payload.length;
}

// ---------------------------------------------------------------------------------------------
// File headers
// ---------------------------------------------------------------------------------------------

export function encodeFileHeader(magic: string, body: object, version = FORMAT_VERSION): Buffer {
  const json = Buffer.from(JSON.stringify(body), 'utf8');
  const out = Buffer.alloc(FILE_HEADER_FIXED_BYTES + json.length);
  out.write(magic, 0, 'latin1');
  out.writeUInt32LE(version, 8);
  out.writeUInt32LE(json.length, 12);
  out.writeUInt32LE(crc32c(json), 16);
  json.copy(out, FILE_HEADER_FIXED_BYTES);
  return out;
}

export function encodeSegmentHeader(header: SegmentHeader): Buffer {
  const { cluster, groupId, acceptorId, segment } = header;
  return encodeFileHeader(SEGMENT_MAGIC, { cluster, groupId, acceptorId, segment });
}

export function encodeCheckpoint(c: Checkpoint): Buffer {
  const { cluster, groupId, acceptorId, through, promised, watermark, config, retired, live } = c;
  return encodeFileHeader(STATE_MAGIC, {
    cluster,
    groupId,
    acceptorId,
    through,
    promised,
    watermark,
    config,
    retired,
    live,
  });
}

// Header bodies are checked field by field: a body that passed its CRC but not this was written
// by something else (another version, another program), and its values must not be trusted.

type Check = (body: Record<string, unknown>) => string | null;

export const isCount = (v: unknown): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
export const isBallot = (v: unknown): v is Ballot =>
  typeof v === 'object' && v !== null && isCount((v as Ballot).round) && isCount((v as Ballot).proposerId);
const isConfig = (v: unknown): v is ConfigStamp | null =>
  v === null ||
  (typeof v === 'object' &&
    isCount((v as ConfigStamp).id) &&
    Array.isArray((v as ConfigStamp).groups) &&
    (v as ConfigStamp).groups.every(isCount));

const identityCheck: Check = (b) =>
  typeof b.cluster === 'string' && isCount(b.groupId) && isCount(b.acceptorId)
    ? null
    : 'cluster (a string), groupId and acceptorId (integers >= 0)';

export const checkSegmentHeader: Check = (b) =>
  identityCheck(b) ?? (isCount(b.segment) ? null : 'segment (an integer >= 0)');

export const checkCheckpoint: Check = (b) => {
  const id = identityCheck(b);
  if (id !== null) return id;
  if (!(typeof b.through === 'number' && Number.isSafeInteger(b.through) && b.through >= -1))
    return 'through (an integer >= -1)';
  if (!isBallot(b.promised)) return 'promised (a ballot { round, proposerId })';
  if (!isCount(b.watermark)) return 'watermark (an integer >= 0)';
  if (!isConfig(b.config)) return 'config (null or { id, groups })';
  if (b.retired !== undefined && typeof b.retired !== 'boolean') return 'retired (a boolean, or absent)';
  const live = b.live;
  if (
    !Array.isArray(live) ||
    !live.every(
      (l: unknown) =>
        typeof l === 'object' &&
        l !== null &&
        isCount((l as LiveSegment).segment) &&
        isCount((l as LiveSegment).maxSlot),
    )
  )
    return 'live (a list of { segment, maxSlot })';
  return null;
};
