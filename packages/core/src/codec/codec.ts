/**
 * The wire codec: `Envelope` (src/messages.ts) ⇄ protobuf bytes (proto/paxos.proto).
 *
 * - The protobufjs Root is built from the generated JSON descriptor (`schema.generated.ts`), so
 *   nothing is read from disk at runtime.
 * - `encodeEnvelope` throws (TypeError/RangeError) on an envelope that could not round-trip, e.g.
 *   a slot that is not a safe non-negative integer or an empty address: a bug in the caller
 *   must not turn silently into a different value on the wire.
 * - `decodeEnvelope` never throws: any input yields either an envelope satisfying the TS types or
 *   a `DecodeError` whose `reason` says what was wrong and what was expected.
 * - Decoded payloads and batches are fresh copies; they never alias the frame's buffer.
 * - A batch (`Value.batch`, `ClientBatch.batch`) is opaque here: `encodeBatch` makes it from
 *   commands (the batcher) and `decodeBatch` reads them back (the unbatcher, the checkers), so
 *   the hops between copy its bytes and never touch the commands inside.
 * - Messages are encoded straight from their TS objects where the layouts agree, so they must be
 *   plain data (own properties, as object literals, spreads and frozen objects have), not class
 *   instances with prototype getters.
 */

import protobuf from 'protobufjs';
import type {
  Address,
  Ballot,
  Chosen,
  Command,
  ConfigEntry,
  ConfigSpec,
  ConfigStamp,
  Envelope,
  MatchB,
  MatchmakerEpoch,
  MatchmakerSnapshot,
  Message,
  Phase1b,
  Phase2a,
  Value,
} from '../messages.ts';
import { NOOP, UNSTAMPED } from '../messages.ts';
import { paxosSchema } from './schema.generated.ts';
import { copyBytes } from './slab.ts';

/** Frames larger than this are rejected by `decodeEnvelope` without being parsed. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

/** Why a frame could not be decoded; `reason` names the fault and what was expected. */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
  readonly reason: string;

  constructor(reason: string) {
    super(reason);
    this.reason = reason;
  }
}

export type DecodeResult =
  | { readonly ok: true; readonly envelope: Envelope }
  | { readonly ok: false; readonly error: DecodeError };

// ---------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------

const root = protobuf.Root.fromJSON(paxosSchema as unknown as protobuf.INamespace);
const EnvelopeType = root.lookupType('paxos.Envelope');
const BatchType = root.lookupType('paxos.Batch');

/**
 * protobufjs's generated decoder records which member of a oneof it read by assigning the
 * oneof's name (`m.body = 'phase2b'`) to an accessor that `delete`s every other member, which
 * costs about a fifth of a small frame's decode time. This Root is private to the codec, so
 * interpose a prototype holding a plain writable data property of that name: the assignment
 * then just records the member read last (proto3's "last one wins"), and any other member
 * present is ignored by `toEnvelope`. (The accessor itself is non-configurable, hence the extra
 * prototype; the decoder instantiates with `new C`, which picks the new prototype up.)
 */
for (const type of [EnvelopeType, root.lookupType('paxos.Value')]) {
  const ctor = type.ctor;
  const props: PropertyDescriptorMap = {};
  for (const oneof of type.oneofsArray) props[oneof.name] = { value: undefined, writable: true };
  ctor.prototype = Object.create(ctor.prototype as object, props);
}
// Generate the encoder/decoder now rather than on the first frame.
EnvelopeType.setup();
BatchType.setup();

/**
 * One writer, reused by every `encodeEnvelope` call (encoding is synchronous and re-entrancy
 * free): a fresh protobufjs writer costs two buffer allocations per frame. Its buffer grows to
 * the largest frame encoded; one larger than `WRITER_KEEP_BYTES` is dropped after use.
 */
let writer = new protobuf.Writer();
const WRITER_KEEP_BYTES = 64 * 1024;

function encodeFrame(pb: object, type: protobuf.Type = EnvelopeType): Uint8Array {
  const w = writer;
  w.pos = 0;
  w.states = null;
  type.encode(pb, w);
  const size = w.pos;
  if (w.buf.length > WRITER_KEEP_BYTES) writer = new protobuf.Writer();
  if (size > MAX_FRAME_BYTES) {
    throw new RangeError(`encoded frame of ${size} bytes exceeds MAX_FRAME_BYTES (${MAX_FRAME_BYTES})`);
  }
  // An exact-size copy, never a view into the shared writer buffer.
  return copyBytes(w.buf.subarray(0, size));
}

// ---------------------------------------------------------------------------------------------
// Decoded shapes (what protobufjs hands back; absent message fields read as null, absent
// scalars as their proto3 default, uint64/sint64 as Long, or number without long.js)
// ---------------------------------------------------------------------------------------------

interface LongLike {
  readonly low: number;
  readonly high: number;
  toString(): string;
}
type Int64 = number | LongLike;

interface PbBallot {
  readonly round: number;
  readonly proposerId: number;
}
interface PbCommand {
  readonly clientId: string;
  readonly requestId: Int64;
  readonly payload: Uint8Array;
}
interface PbValue {
  /** The oneof: the member read last, if any. */
  readonly kind: 'noop' | 'batch' | undefined;
  readonly noop: object | null;
  readonly batch: Uint8Array | null;
}
interface PbBatch {
  readonly commands: readonly PbCommand[];
}
interface PbAcceptedEntry {
  readonly slot: Int64;
  readonly ballot: PbBallot | null;
  readonly value: PbValue | null;
}
interface PbClientRequest {
  readonly command: PbCommand | null;
}
interface PbClientReply {
  readonly clientId: string;
  readonly requestId: Int64;
  readonly slot: Int64;
}
interface PbClientBatch {
  readonly batch: Uint8Array;
  readonly forwarded: boolean;
}
interface PbLeaderInfo {
  readonly leader: string;
  readonly ballot: PbBallot | null;
  readonly backoffMs: number;
}
interface PbConfigStamp {
  readonly id: number;
  readonly groups: readonly number[];
  readonly acceptorIds: readonly number[];
}
interface PbPhase1a {
  readonly ballot: PbBallot | null;
  readonly fromSlot: Int64;
  readonly config: PbConfigStamp | null;
}
interface PbPhase1b {
  readonly ballot: PbBallot | null;
  readonly groupId: number;
  readonly acceptorId: number;
  readonly watermark: Int64;
  readonly accepted: readonly PbAcceptedEntry[];
  readonly fromSlot: Int64;
  readonly nextSlot: Int64;
  readonly more: boolean;
  readonly acceptedEnd: Int64;
}
interface PbPhase2a {
  readonly slot: Int64;
  readonly ballot: PbBallot | null;
  readonly value: PbValue | null;
  readonly watermark: Int64;
  readonly groupId: number;
  readonly acceptors: readonly string[];
  readonly config: PbConfigStamp | null;
}
interface PbPhase2b {
  readonly slot: Int64;
  readonly ballot: PbBallot | null;
  readonly groupId: number;
  readonly acceptorId: number;
}
interface PbNack {
  readonly slot: Int64;
  readonly ballot: PbBallot | null;
  readonly promised: PbBallot | null;
  readonly retired: boolean;
}
interface PbChosen {
  readonly slot: Int64;
  readonly ballot: PbBallot | null;
  readonly value: PbValue | null;
}
interface PbHeartbeat {
  readonly ballot: PbBallot | null;
  readonly watermark: Int64;
  readonly progress: Int64;
  readonly pending: number;
}
interface PbConfigSpec {
  readonly f: number;
  readonly version: number;
  readonly groups: readonly { readonly groupId: number; readonly acceptorIds: readonly number[] }[];
}
interface PbConfigEntry {
  readonly ballot: PbBallot | null;
  readonly spec: PbConfigSpec | null;
  readonly startSlot: Int64;
}
interface PbMatchA {
  readonly epoch: number;
  readonly ballot: PbBallot | null;
  readonly spec: PbConfigSpec | null;
}
interface PbMatchB {
  readonly epoch: number;
  readonly ballot: PbBallot | null;
  readonly matchmakerId: number;
  readonly gcBallot: PbBallot | null;
  readonly entries: readonly PbConfigEntry[];
}
interface PbMatchNack {
  readonly epoch: number;
  readonly ballot: PbBallot | null;
  readonly higher: PbBallot | null;
  readonly newer: PbConfigSpec | null;
}
interface PbGarbageA {
  readonly epoch: number;
  readonly gcBallot: PbBallot | null;
  readonly startSlot: Int64;
  readonly spec: PbConfigSpec | null;
}
interface PbGarbageB {
  readonly epoch: number;
  readonly matchmakerId: number;
  readonly gcBallot: PbBallot | null;
}
interface PbWatermarkA {
  readonly ballot: PbBallot | null;
  readonly watermark: Int64;
  readonly config: PbConfigStamp | null;
}
interface PbWatermarkB {
  readonly groupId: number;
  readonly acceptorId: number;
  readonly watermark: Int64;
}
interface PbRetire {
  readonly ballot: PbBallot | null;
  readonly groupId: number;
  readonly acceptorId: number;
}
interface PbRetireB {
  readonly groupId: number;
  readonly acceptorId: number;
}
interface PbMatchmakerEpoch {
  readonly epoch: number;
  readonly addresses: readonly string[];
}
interface PbMatchmakerSnapshot {
  readonly gcBallot: PbBallot | null;
  readonly maxBallot: PbBallot | null;
  readonly entries: readonly PbConfigEntry[];
}
interface PbStopA {
  readonly epoch: number;
  readonly ballot: PbBallot | null;
  readonly current: PbMatchmakerEpoch | null;
}
interface PbStopB {
  readonly epoch: number;
  readonly ballot: PbBallot | null;
  readonly matchmakerId: number;
  readonly state: PbMatchmakerSnapshot | null;
  readonly vote: { readonly ballot: PbBallot | null; readonly next: PbMatchmakerEpoch | null } | null;
}
interface PbBootstrapA {
  readonly next: PbMatchmakerEpoch | null;
  readonly state: PbMatchmakerSnapshot | null;
}
interface PbBootstrapB {
  readonly epoch: number;
  readonly matchmakerId: number;
}
interface PbEpochAccept {
  readonly epoch: number;
  readonly ballot: PbBallot | null;
  readonly next: PbMatchmakerEpoch | null;
}
interface PbEpochAccepted {
  readonly epoch: number;
  readonly ballot: PbBallot | null;
  readonly matchmakerId: number;
}
interface PbEpochNack {
  readonly epoch: number;
  readonly ballot: PbBallot | null;
  readonly higher: PbBallot | null;
}
interface PbEpochChosen {
  readonly next: PbMatchmakerEpoch | null;
}
interface PbStopped {
  readonly epoch: number;
  readonly next: PbMatchmakerEpoch | null;
}
interface PbEnvelope {
  readonly from: string;
  /** The oneof: the name of the body field read last, if any (see the Root setup above). */
  readonly body: string | undefined;
  readonly clientRequest: PbClientRequest;
  readonly clientReply: PbClientReply;
  readonly clientBatch: PbClientBatch;
  readonly leaderInfo: PbLeaderInfo;
  readonly phase1a: PbPhase1a;
  readonly phase1b: PbPhase1b;
  readonly phase2a: PbPhase2a;
  readonly phase2b: PbPhase2b;
  readonly nack: PbNack;
  readonly chosen: PbChosen;
  readonly heartbeat: PbHeartbeat;
  readonly matchA: PbMatchA;
  readonly matchB: PbMatchB;
  readonly matchNack: PbMatchNack;
  readonly garbageA: PbGarbageA;
  readonly garbageB: PbGarbageB;
  readonly watermarkA: PbWatermarkA;
  readonly watermarkB: PbWatermarkB;
  readonly retire: PbRetire;
  readonly retireB: PbRetireB;
  readonly stopA: PbStopA;
  readonly stopB: PbStopB;
  readonly bootstrapA: PbBootstrapA;
  readonly bootstrapB: PbBootstrapB;
  readonly epochAccept: PbEpochAccept;
  readonly epochAccepted: PbEpochAccepted;
  readonly epochNack: PbEpochNack;
  readonly epochChosen: PbEpochChosen;
  readonly stopped: PbStopped;
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

const PB_NOOP_VALUE = Object.freeze({ noop: Object.freeze({}) });

/** TS value → the proto `Value` shape (a batch value already has the proto layout). */
function pbValue(v: Value): object {
  return v.kind === 'noop' ? PB_NOOP_VALUE : v;
}

/**
 * Encodes commands as one batch: what the batcher sends and the slot's value. Throws
 * (TypeError/RangeError) on a command that could not round-trip, as `encodeEnvelope` does.
 */
export function encodeBatch(commands: readonly Command[]): Uint8Array {
  checkCommands(commands, 'Batch.commands');
  return encodeFrame({ commands }, BatchType);
}

export type BatchDecodeResult =
  | { readonly ok: true; readonly commands: Command[] }
  | { readonly ok: false; readonly error: DecodeError };

/**
 * Decodes a batch made by `encodeBatch`. Never throws: bytes that are not a batch of valid
 * commands give a `DecodeError` naming the bad field. Where a batch is decoded (the unbatcher,
 * a checker) is where a malformed one is found; the hops before only carry it.
 */
export function decodeBatch(bytes: Uint8Array): BatchDecodeResult {
  try {
    const reader = protobuf.Reader.create(bytes);
    reader.discardUnknown = true;
    const pb = BatchType.decode(reader) as unknown as PbBatch;
    return { ok: true, commands: commands(pb.commands, 'Batch.commands') };
  } catch (e) {
    return { ok: false, error: asDecodeError(e) };
  }
}

/**
 * Encodes one frame. Throws TypeError/RangeError if `env` holds a value that cannot round-trip
 * (or the frame would exceed `MAX_FRAME_BYTES`): whatever this returns, `decodeEnvelope` accepts.
 */
export function encodeEnvelope(env: Envelope): Uint8Array {
  checkAddress(env.from, 'Envelope.from');
  const m = env.message;
  let pb: object;
  switch (m.type) {
    // Where the TS layout equals the proto layout the message object is encoded as is (the
    // generated encoder reads only the schema's fields, so the extra `type` is ignored).
    case 'ClientRequest':
      checkCommand(m.command, 'ClientRequest.command');
      pb = { from: env.from, clientRequest: m };
      break;
    case 'ClientReply':
      checkAddress(m.clientId, 'ClientReply.clientId');
      checkU64(m.requestId, 'ClientReply.requestId');
      checkU64(m.slot, 'ClientReply.slot');
      pb = { from: env.from, clientReply: m };
      break;
    case 'ClientBatch':
      checkBytes(m.batch, 'ClientBatch.batch');
      checkBool(m.forwarded, 'ClientBatch.forwarded');
      pb = { from: env.from, clientBatch: m };
      break;
    case 'LeaderInfo':
      checkAddress(m.leader, 'LeaderInfo.leader');
      checkBallot(m.ballot, 'LeaderInfo.ballot');
      checkU32(m.backoffMs, 'LeaderInfo.backoffMs');
      pb = { from: env.from, leaderInfo: m };
      break;
    case 'Phase1a':
      checkBallot(m.ballot, 'Phase1a.ballot');
      checkU64(m.fromSlot, 'Phase1a.fromSlot');
      checkConfigStamp(m.config, 'Phase1a.config');
      pb = { from: env.from, phase1a: m };
      break;
    case 'Phase1b':
      pb = { from: env.from, phase1b: pbPhase1b(m) };
      break;
    case 'Phase2a':
      pb = { from: env.from, phase2a: pbPhase2a(m) };
      break;
    case 'Phase2b':
      checkU64(m.slot, 'Phase2b.slot');
      checkBallot(m.ballot, 'Phase2b.ballot');
      checkU32(m.groupId, 'Phase2b.groupId');
      checkU32(m.acceptorId, 'Phase2b.acceptorId');
      pb = { from: env.from, phase2b: m };
      break;
    case 'Nack':
      checkSlotOrMinus1(m.slot, 'Nack.slot');
      checkBallot(m.ballot, 'Nack.ballot');
      checkBallot(m.promised, 'Nack.promised');
      checkBool(m.retired, 'Nack.retired');
      pb = { from: env.from, nack: m };
      break;
    case 'Chosen':
      pb = { from: env.from, chosen: pbChosen(m) };
      break;
    case 'Heartbeat':
      checkBallot(m.ballot, 'Heartbeat.ballot');
      checkU64(m.watermark, 'Heartbeat.watermark');
      checkU64(m.progress, 'Heartbeat.progress');
      checkU32(m.pending, 'Heartbeat.pending');
      pb = { from: env.from, heartbeat: m };
      break;
    // The matchmakers' messages and their building blocks have the proto layout too.
    case 'MatchA':
      checkU32(m.epoch, 'MatchA.epoch');
      checkBallot(m.ballot, 'MatchA.ballot');
      checkConfigSpec(m.spec, 'MatchA.spec');
      pb = { from: env.from, matchA: m };
      break;
    case 'MatchB':
      checkU32(m.epoch, 'MatchB.epoch');
      checkBallot(m.ballot, 'MatchB.ballot');
      checkU32(m.matchmakerId, 'MatchB.matchmakerId');
      checkBallot(m.gcBallot, 'MatchB.gcBallot');
      checkArray(m.entries, 'MatchB.entries');
      for (const e of m.entries) checkConfigEntry(e, 'MatchB.entries[]');
      pb = { from: env.from, matchB: m };
      break;
    case 'MatchNack':
      checkU32(m.epoch, 'MatchNack.epoch');
      checkBallot(m.ballot, 'MatchNack.ballot');
      checkBallot(m.higher, 'MatchNack.higher');
      if (m.newer !== null) checkConfigSpec(m.newer, 'MatchNack.newer');
      pb = { from: env.from, matchNack: m };
      break;
    case 'GarbageA':
      checkU32(m.epoch, 'GarbageA.epoch');
      checkBallot(m.gcBallot, 'GarbageA.gcBallot');
      checkU64(m.startSlot, 'GarbageA.startSlot');
      checkConfigSpec(m.spec, 'GarbageA.spec');
      pb = { from: env.from, garbageA: m };
      break;
    case 'GarbageB':
      checkU32(m.epoch, 'GarbageB.epoch');
      checkU32(m.matchmakerId, 'GarbageB.matchmakerId');
      checkBallot(m.gcBallot, 'GarbageB.gcBallot');
      pb = { from: env.from, garbageB: m };
      break;
    // Acceptors' durable watermark and retirement: the proto layout as well.
    case 'WatermarkA':
      checkBallot(m.ballot, 'WatermarkA.ballot');
      checkU64(m.watermark, 'WatermarkA.watermark');
      checkConfigStamp(m.config, 'WatermarkA.config');
      pb = { from: env.from, watermarkA: m };
      break;
    case 'WatermarkB':
      checkU32(m.groupId, 'WatermarkB.groupId');
      checkU32(m.acceptorId, 'WatermarkB.acceptorId');
      checkU64(m.watermark, 'WatermarkB.watermark');
      pb = { from: env.from, watermarkB: m };
      break;
    case 'Retire':
      checkBallot(m.ballot, 'Retire.ballot');
      checkU32(m.groupId, 'Retire.groupId');
      checkU32(m.acceptorId, 'Retire.acceptorId');
      pb = { from: env.from, retire: m };
      break;
    case 'RetireB':
      checkU32(m.groupId, 'RetireB.groupId');
      checkU32(m.acceptorId, 'RetireB.acceptorId');
      pb = { from: env.from, retireB: m };
      break;
    // Matchmaker reconfiguration: the proto layout too.
    case 'StopA':
      checkU32(m.epoch, 'StopA.epoch');
      checkBallot(m.ballot, 'StopA.ballot');
      checkMatchmakerEpoch(m.current, 'StopA.current');
      pb = { from: env.from, stopA: m };
      break;
    case 'StopB':
      checkU32(m.epoch, 'StopB.epoch');
      checkBallot(m.ballot, 'StopB.ballot');
      checkU32(m.matchmakerId, 'StopB.matchmakerId');
      checkSnapshot(m.state, 'StopB.state');
      if (m.vote !== null) {
        checkBallot(m.vote.ballot, 'StopB.vote.ballot');
        checkMatchmakerEpoch(m.vote.next, 'StopB.vote.next');
      }
      pb = { from: env.from, stopB: m };
      break;
    case 'BootstrapA':
      checkMatchmakerEpoch(m.next, 'BootstrapA.next');
      checkSnapshot(m.state, 'BootstrapA.state');
      pb = { from: env.from, bootstrapA: m };
      break;
    case 'BootstrapB':
      checkU32(m.epoch, 'BootstrapB.epoch');
      checkU32(m.matchmakerId, 'BootstrapB.matchmakerId');
      pb = { from: env.from, bootstrapB: m };
      break;
    case 'EpochAccept':
      checkU32(m.epoch, 'EpochAccept.epoch');
      checkBallot(m.ballot, 'EpochAccept.ballot');
      checkMatchmakerEpoch(m.next, 'EpochAccept.next');
      pb = { from: env.from, epochAccept: m };
      break;
    case 'EpochAccepted':
      checkU32(m.epoch, 'EpochAccepted.epoch');
      checkBallot(m.ballot, 'EpochAccepted.ballot');
      checkU32(m.matchmakerId, 'EpochAccepted.matchmakerId');
      pb = { from: env.from, epochAccepted: m };
      break;
    case 'EpochNack':
      checkU32(m.epoch, 'EpochNack.epoch');
      checkBallot(m.ballot, 'EpochNack.ballot');
      checkBallot(m.higher, 'EpochNack.higher');
      pb = { from: env.from, epochNack: m };
      break;
    case 'EpochChosen':
      checkMatchmakerEpoch(m.next, 'EpochChosen.next');
      pb = { from: env.from, epochChosen: m };
      break;
    case 'Stopped':
      checkU32(m.epoch, 'Stopped.epoch');
      if (m.next !== null) checkMatchmakerEpoch(m.next, 'Stopped.next');
      pb = { from: env.from, stopped: m };
      break;
    default:
      throw new TypeError(`unknown message type ${String((m as { type?: unknown }).type)}`);
  }
  return encodeFrame(pb);
}

function pbPhase1b(m: Phase1b): object {
  checkBallot(m.ballot, 'Phase1b.ballot');
  checkU32(m.groupId, 'Phase1b.groupId');
  checkU32(m.acceptorId, 'Phase1b.acceptorId');
  checkU64(m.watermark, 'Phase1b.watermark');
  checkU64(m.fromSlot, 'Phase1b.fromSlot');
  checkU64(m.nextSlot, 'Phase1b.nextSlot');
  checkBool(m.more, 'Phase1b.more');
  checkU64(m.acceptedEnd, 'Phase1b.acceptedEnd');
  const entries = m.accepted;
  checkArray(entries, 'Phase1b.accepted');
  const accepted = new Array<object>(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as Phase1b['accepted'][number];
    checkU64(e.slot, 'Phase1b.accepted[].slot');
    checkBallot(e.ballot, 'Phase1b.accepted[].ballot');
    checkValue(e.value, 'Phase1b.accepted[].value');
    accepted[i] = { slot: e.slot, ballot: e.ballot, value: pbValue(e.value) };
  }
  return {
    ballot: m.ballot,
    groupId: m.groupId,
    acceptorId: m.acceptorId,
    watermark: m.watermark,
    accepted,
    fromSlot: m.fromSlot,
    nextSlot: m.nextSlot,
    more: m.more,
    acceptedEnd: m.acceptedEnd,
  };
}

function pbPhase2a(m: Phase2a): object {
  checkU64(m.slot, 'Phase2a.slot');
  checkBallot(m.ballot, 'Phase2a.ballot');
  checkValue(m.value, 'Phase2a.value');
  checkU64(m.watermark, 'Phase2a.watermark');
  checkU32(m.groupId, 'Phase2a.groupId');
  checkArray(m.acceptors, 'Phase2a.acceptors');
  // '' stands for an acceptor whose address the leader does not know yet (proxy leaders skip it).
  for (const a of m.acceptors) if (a !== '') checkAddress(a, 'Phase2a.acceptors[]');
  checkConfigStamp(m.config, 'Phase2a.config');
  return {
    slot: m.slot,
    ballot: m.ballot,
    value: pbValue(m.value),
    watermark: m.watermark,
    groupId: m.groupId,
    acceptors: m.acceptors,
    config: m.config,
  };
}

function pbChosen(m: Chosen): object {
  checkU64(m.slot, 'Chosen.slot');
  checkBallot(m.ballot, 'Chosen.ballot');
  if (m.value === null) return { slot: m.slot, ballot: m.ballot };
  checkValue(m.value, 'Chosen.value');
  return { slot: m.slot, ballot: m.ballot, value: pbValue(m.value) };
}

function checkU64(n: number, what: string): void {
  if (!(Number.isSafeInteger(n) && n >= 0)) {
    throw new RangeError(`${what} must be a safe non-negative integer, got ${String(n)}`);
  }
}

function checkU32(n: number, what: string): void {
  if (!(Number.isInteger(n) && n >= 0 && n <= 0xffffffff)) {
    throw new RangeError(`${what} must be an integer in [0, 2^32-1], got ${String(n)}`);
  }
}

function checkBool(b: boolean, what: string): void {
  if (typeof b !== 'boolean') throw new TypeError(`${what} must be a boolean, got ${typeof b}`);
}

function checkArray(a: unknown, what: string): void {
  if (!Array.isArray(a)) throw new TypeError(`${what} must be an array`);
}

const wellFormed = (String.prototype as { isWellFormed?: () => boolean }).isWellFormed;

function checkAddress(s: Address, what: string): void {
  if (typeof s !== 'string' || s.length === 0) {
    throw new TypeError(`${what} must be a non-empty string`);
  }
  // Lone surrogates cannot be encoded as UTF-8 and would not survive the round trip.
  if (wellFormed !== undefined && !wellFormed.call(s)) {
    throw new TypeError(`${what} must be well-formed Unicode (it has a lone surrogate)`);
  }
}

function checkBallot(b: Ballot, what: string): void {
  if (b === null || typeof b !== 'object') throw new TypeError(`${what} must be a Ballot`);
  checkU32(b.round, `${what}.round`);
  checkU32(b.proposerId, `${what}.proposerId`);
}

function checkConfigStamp(c: ConfigStamp, what: string): void {
  if (c === null || typeof c !== 'object') throw new TypeError(`${what} must be a ConfigStamp`);
  checkU32(c.id, `${what}.id`);
  checkArray(c.groups, `${what}.groups`);
  for (const g of c.groups) checkU32(g, `${what}.groups[]`);
  checkArray(c.acceptorIds, `${what}.acceptorIds`);
  for (const id of c.acceptorIds) checkU32(id, `${what}.acceptorIds[]`);
}

function checkConfigSpec(c: ConfigSpec, what: string): void {
  if (c === null || typeof c !== 'object') throw new TypeError(`${what} must be a ConfigSpec`);
  checkU32(c.f, `${what}.f`);
  checkU32(c.version, `${what}.version`);
  checkArray(c.groups, `${what}.groups`);
  for (const g of c.groups) {
    if (g === null || typeof g !== 'object')
      throw new TypeError(`${what}.groups[] must be a ConfigSpecGroup`);
    checkU32(g.groupId, `${what}.groups[].groupId`);
    checkArray(g.acceptorIds, `${what}.groups[].acceptorIds`);
    for (const id of g.acceptorIds) checkU32(id, `${what}.groups[].acceptorIds[]`);
  }
}

function checkConfigEntry(e: ConfigEntry, what: string): void {
  if (e === null || typeof e !== 'object') throw new TypeError(`${what} must be a ConfigEntry`);
  checkBallot(e.ballot, `${what}.ballot`);
  checkConfigSpec(e.spec, `${what}.spec`);
  checkSlotOrMinus1(e.startSlot, `${what}.startSlot`);
}

function checkMatchmakerEpoch(e: MatchmakerEpoch, what: string): void {
  if (e === null || typeof e !== 'object') throw new TypeError(`${what} must be a MatchmakerEpoch`);
  checkU32(e.epoch, `${what}.epoch`);
  checkArray(e.addresses, `${what}.addresses`);
  for (const a of e.addresses) checkAddress(a, `${what}.addresses[]`);
}

function checkSnapshot(s: MatchmakerSnapshot, what: string): void {
  if (s === null || typeof s !== 'object') throw new TypeError(`${what} must be a MatchmakerSnapshot`);
  checkBallot(s.gcBallot, `${what}.gcBallot`);
  checkBallot(s.maxBallot, `${what}.maxBallot`);
  checkArray(s.entries, `${what}.entries`);
  for (const e of s.entries) checkConfigEntry(e, `${what}.entries[]`);
}

function checkSlotOrMinus1(n: number, what: string): void {
  if (!(Number.isSafeInteger(n) && n >= -1)) {
    throw new RangeError(`${what} must be -1 or a safe non-negative integer, got ${String(n)}`);
  }
}

function checkCommand(c: Command, what: string): void {
  if (c === null || typeof c !== 'object') throw new TypeError(`${what} must be a Command`);
  checkAddress(c.clientId, `${what}.clientId`);
  checkU64(c.requestId, `${what}.requestId`);
  if (!(c.payload instanceof Uint8Array)) throw new TypeError(`${what}.payload must be a Uint8Array`);
}

function checkBytes(b: Uint8Array, what: string): void {
  if (!(b instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`);
}

function checkCommands(cs: readonly Command[], what: string): void {
  checkArray(cs, what);
  for (let i = 0; i < cs.length; i++) checkCommand(cs[i] as Command, what);
}

function checkValue(v: Value, what: string): void {
  if (v === null || typeof v !== 'object') throw new TypeError(`${what} must be a Value`);
  if (v.kind === 'batch') checkBytes(v.batch, `${what}.batch`);
  else if (v.kind !== 'noop') throw new TypeError(`${what}.kind must be 'noop' or 'batch'`);
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

const BODY_FIELDS =
  'clientRequest, clientReply, clientBatch, leaderInfo, phase1a, phase1b, phase2a, phase2b, nack, chosen, heartbeat, matchA, matchB, matchNack, garbageA, garbageB, watermarkA, watermarkB, retire, retireB, stopA, stopB, bootstrapA, bootstrapB, epochAccept, epochAccepted, epochNack, epochChosen, stopped';

/** Decodes one frame. Never throws. */
export function decodeEnvelope(bytes: Uint8Array): DecodeResult {
  try {
    if (!(bytes instanceof Uint8Array)) return fail('expected the frame as a Uint8Array');
    const n = bytes.length;
    if (n > MAX_FRAME_BYTES) {
      return fail(`frame of ${n} bytes exceeds MAX_FRAME_BYTES (${MAX_FRAME_BYTES})`);
    }
    if (n === 0) return fail(`empty frame: envelope has no message body (expected one of ${BODY_FIELDS})`);
    const reader = protobuf.Reader.create(bytes);
    reader.discardUnknown = true;
    const pb = EnvelopeType.decode(reader) as unknown as PbEnvelope;
    return { ok: true, envelope: toEnvelope(pb) };
  } catch (e) {
    return { ok: false, error: asDecodeError(e) };
  }
}

function fail(reason: string): DecodeResult {
  return { ok: false, error: new DecodeError(reason) };
}

function asDecodeError(e: unknown): DecodeError {
  if (e instanceof DecodeError) return e;
  let msg: string;
  try {
    msg = e instanceof Error ? e.message : String(e);
  } catch {
    msg = 'unknown error';
  }
  if (msg.startsWith('index out of range')) {
    return new DecodeError(`truncated frame: a field runs past the end of its enclosing message (${msg})`);
  }
  if (e instanceof TypeError && /utf-?8|encoded data/i.test(msg)) {
    return new DecodeError(`malformed frame: a string field is not valid UTF-8 (${msg})`);
  }
  if (msg === 'max depth exceeded' || msg.startsWith('Maximum call stack')) {
    return new DecodeError(`malformed frame: nested too deeply (${msg})`);
  }
  return new DecodeError(`malformed frame: ${msg || 'protobuf decoding failed'}`);
}

function toEnvelope(pb: PbEnvelope): Envelope {
  const from = pb.from;
  if (from.length === 0) throw new DecodeError('Envelope.from is empty (expected the sender address)');
  let message: Message;
  switch (pb.body) {
    case 'clientRequest':
      message = {
        type: 'ClientRequest',
        command: command(pb.clientRequest.command, 'ClientRequest.command', -1),
      };
      break;
    case 'clientReply': {
      const m = pb.clientReply;
      message = {
        type: 'ClientReply',
        clientId: address(m.clientId, 'ClientReply.clientId'),
        requestId: u64(m.requestId, 'ClientReply.requestId'),
        slot: u64(m.slot, 'ClientReply.slot'),
      };
      break;
    }
    case 'clientBatch': {
      const m = pb.clientBatch;
      message = {
        type: 'ClientBatch',
        // Copy: never alias (and pin) the frame's buffer.
        batch: copyBytes(m.batch),
        forwarded: m.forwarded === true,
      };
      break;
    }
    case 'leaderInfo': {
      const m = pb.leaderInfo;
      message = {
        type: 'LeaderInfo',
        leader: address(m.leader, 'LeaderInfo.leader'),
        ballot: ballot(m.ballot, 'LeaderInfo.ballot'),
        backoffMs: m.backoffMs,
      };
      break;
    }
    case 'phase1a': {
      const m = pb.phase1a;
      message = {
        type: 'Phase1a',
        ballot: ballot(m.ballot, 'Phase1a.ballot'),
        fromSlot: u64(m.fromSlot, 'Phase1a.fromSlot'),
        config: configStamp(m.config),
      };
      break;
    }
    case 'phase1b':
      message = phase1b(pb.phase1b);
      break;
    case 'phase2a':
      message = phase2a(pb.phase2a);
      break;
    case 'phase2b': {
      const m = pb.phase2b;
      message = {
        type: 'Phase2b',
        slot: u64(m.slot, 'Phase2b.slot'),
        ballot: ballot(m.ballot, 'Phase2b.ballot'),
        groupId: m.groupId,
        acceptorId: m.acceptorId,
      };
      break;
    }
    case 'nack': {
      const m = pb.nack;
      message = {
        type: 'Nack',
        slot: slotOrMinus1(m.slot, 'Nack.slot'),
        ballot: ballot(m.ballot, 'Nack.ballot'),
        promised: ballot(m.promised, 'Nack.promised'),
        retired: m.retired === true,
      };
      break;
    }
    case 'chosen': {
      const m = pb.chosen;
      message = {
        type: 'Chosen',
        slot: u64(m.slot, 'Chosen.slot'),
        ballot: ballot(m.ballot, 'Chosen.ballot'),
        value: m.value == null ? null : value(m.value, 'Chosen.value'),
      };
      break;
    }
    case 'heartbeat': {
      const m = pb.heartbeat;
      message = {
        type: 'Heartbeat',
        ballot: ballot(m.ballot, 'Heartbeat.ballot'),
        watermark: u64(m.watermark, 'Heartbeat.watermark'),
        progress: u64(m.progress, 'Heartbeat.progress'),
        pending: m.pending,
      };
      break;
    }
    case 'matchA': {
      const m = pb.matchA;
      message = {
        type: 'MatchA',
        epoch: m.epoch,
        ballot: ballot(m.ballot, 'MatchA.ballot'),
        spec: configSpec(m.spec, 'MatchA.spec'),
      };
      break;
    }
    case 'matchB':
      message = matchB(pb.matchB);
      break;
    case 'matchNack': {
      const m = pb.matchNack;
      message = {
        type: 'MatchNack',
        epoch: m.epoch,
        ballot: ballot(m.ballot, 'MatchNack.ballot'),
        higher: ballot(m.higher, 'MatchNack.higher'),
        newer: m.newer == null ? null : configSpec(m.newer, 'MatchNack.newer'),
      };
      break;
    }
    case 'garbageA': {
      const m = pb.garbageA;
      message = {
        type: 'GarbageA',
        epoch: m.epoch,
        gcBallot: ballot(m.gcBallot, 'GarbageA.gcBallot'),
        startSlot: u64(m.startSlot, 'GarbageA.startSlot'),
        spec: configSpec(m.spec, 'GarbageA.spec'),
      };
      break;
    }
    case 'garbageB': {
      const m = pb.garbageB;
      message = {
        type: 'GarbageB',
        epoch: m.epoch,
        matchmakerId: m.matchmakerId,
        gcBallot: ballot(m.gcBallot, 'GarbageB.gcBallot'),
      };
      break;
    }
    case 'watermarkA': {
      const m = pb.watermarkA;
      message = {
        type: 'WatermarkA',
        ballot: ballot(m.ballot, 'WatermarkA.ballot'),
        watermark: u64(m.watermark, 'WatermarkA.watermark'),
        config: configStamp(m.config),
      };
      break;
    }
    case 'watermarkB': {
      const m = pb.watermarkB;
      message = {
        type: 'WatermarkB',
        groupId: m.groupId,
        acceptorId: m.acceptorId,
        watermark: u64(m.watermark, 'WatermarkB.watermark'),
      };
      break;
    }
    case 'retire': {
      const m = pb.retire;
      message = {
        type: 'Retire',
        ballot: ballot(m.ballot, 'Retire.ballot'),
        groupId: m.groupId,
        acceptorId: m.acceptorId,
      };
      break;
    }
    case 'retireB': {
      const m = pb.retireB;
      message = { type: 'RetireB', groupId: m.groupId, acceptorId: m.acceptorId };
      break;
    }
    case 'stopA': {
      const m = pb.stopA;
      message = {
        type: 'StopA',
        epoch: m.epoch,
        ballot: ballot(m.ballot, 'StopA.ballot'),
        current: matchmakerEpoch(m.current, 'StopA.current'),
      };
      break;
    }
    case 'stopB': {
      const m = pb.stopB;
      message = {
        type: 'StopB',
        epoch: m.epoch,
        ballot: ballot(m.ballot, 'StopB.ballot'),
        matchmakerId: m.matchmakerId,
        state: snapshot(m.state, 'StopB.state'),
        vote:
          m.vote == null
            ? null
            : {
                ballot: ballot(m.vote.ballot, 'StopB.vote.ballot'),
                next: matchmakerEpoch(m.vote.next, 'StopB.vote.next'),
              },
      };
      break;
    }
    case 'bootstrapA': {
      const m = pb.bootstrapA;
      message = {
        type: 'BootstrapA',
        next: matchmakerEpoch(m.next, 'BootstrapA.next'),
        state: snapshot(m.state, 'BootstrapA.state'),
      };
      break;
    }
    case 'bootstrapB': {
      const m = pb.bootstrapB;
      message = { type: 'BootstrapB', epoch: m.epoch, matchmakerId: m.matchmakerId };
      break;
    }
    case 'epochAccept': {
      const m = pb.epochAccept;
      message = {
        type: 'EpochAccept',
        epoch: m.epoch,
        ballot: ballot(m.ballot, 'EpochAccept.ballot'),
        next: matchmakerEpoch(m.next, 'EpochAccept.next'),
      };
      break;
    }
    case 'epochAccepted': {
      const m = pb.epochAccepted;
      message = {
        type: 'EpochAccepted',
        epoch: m.epoch,
        ballot: ballot(m.ballot, 'EpochAccepted.ballot'),
        matchmakerId: m.matchmakerId,
      };
      break;
    }
    case 'epochNack': {
      const m = pb.epochNack;
      message = {
        type: 'EpochNack',
        epoch: m.epoch,
        ballot: ballot(m.ballot, 'EpochNack.ballot'),
        higher: ballot(m.higher, 'EpochNack.higher'),
      };
      break;
    }
    case 'epochChosen':
      message = { type: 'EpochChosen', next: matchmakerEpoch(pb.epochChosen.next, 'EpochChosen.next') };
      break;
    case 'stopped': {
      const m = pb.stopped;
      message = {
        type: 'Stopped',
        epoch: m.epoch,
        next: m.next == null ? null : matchmakerEpoch(m.next, 'Stopped.next'),
      };
      break;
    }
    default:
      throw new DecodeError(`envelope has no message body (expected one of ${BODY_FIELDS})`);
  }
  return { from, message };
}

function phase1b(m: PbPhase1b): Phase1b {
  const src = m.accepted;
  const accepted = new Array<Phase1b['accepted'][number]>(src.length);
  for (let i = 0; i < src.length; i++) {
    const e = src[i] as PbAcceptedEntry;
    try {
      accepted[i] = {
        slot: u64(e.slot, 'Phase1b.accepted[].slot'),
        ballot: ballot(e.ballot, 'Phase1b.accepted[].ballot'),
        value: value(e.value, 'Phase1b.accepted[].value'),
      };
    } catch (err) {
      // Name the offending entry (the index is only rendered on this error path).
      if (err instanceof DecodeError) {
        throw new DecodeError(err.reason.replace('Phase1b.accepted[]', `Phase1b.accepted[${i}]`));
      }
      throw err;
    }
  }
  return {
    type: 'Phase1b',
    ballot: ballot(m.ballot, 'Phase1b.ballot'),
    groupId: m.groupId,
    acceptorId: m.acceptorId,
    watermark: u64(m.watermark, 'Phase1b.watermark'),
    accepted,
    fromSlot: u64(m.fromSlot, 'Phase1b.fromSlot'),
    nextSlot: u64(m.nextSlot, 'Phase1b.nextSlot'),
    more: m.more === true,
    acceptedEnd: u64(m.acceptedEnd, 'Phase1b.acceptedEnd'),
  };
}

function phase2a(m: PbPhase2a): Phase2a {
  // An empty entry is an acceptor whose address the leader does not know yet: it keeps its index.
  const acceptors: Address[] = [...m.acceptors];
  return {
    type: 'Phase2a',
    slot: u64(m.slot, 'Phase2a.slot'),
    ballot: ballot(m.ballot, 'Phase2a.ballot'),
    value: value(m.value, 'Phase2a.value'),
    watermark: u64(m.watermark, 'Phase2a.watermark'),
    groupId: m.groupId,
    acceptors,
    config: configStamp(m.config),
  };
}

function matchB(m: PbMatchB): MatchB {
  return {
    type: 'MatchB',
    epoch: m.epoch,
    ballot: ballot(m.ballot, 'MatchB.ballot'),
    matchmakerId: m.matchmakerId,
    gcBallot: ballot(m.gcBallot, 'MatchB.gcBallot'),
    entries: configEntries(m.entries, 'MatchB.entries'),
  };
}

function configEntries(src: readonly PbConfigEntry[], what: string): ConfigEntry[] {
  const entries = new Array<ConfigEntry>(src.length);
  for (let i = 0; i < src.length; i++) {
    const e = src[i] as PbConfigEntry;
    const where = `${what}[${i}]`; // rare messages: the index is rendered up front
    entries[i] = {
      ballot: ballot(e.ballot, `${where}.ballot`),
      spec: configSpec(e.spec, `${where}.spec`),
      startSlot: slotOrMinus1(e.startSlot, `${where}.startSlot`),
    };
  }
  return entries;
}

function matchmakerEpoch(e: PbMatchmakerEpoch | null, where: string): MatchmakerEpoch {
  if (e == null) throw new DecodeError(`${where} missing (expected a MatchmakerEpoch)`);
  for (let i = 0; i < e.addresses.length; i++) address(e.addresses[i] as string, `${where}.addresses[${i}]`);
  return { epoch: e.epoch, addresses: [...e.addresses] };
}

function snapshot(s: PbMatchmakerSnapshot | null, where: string): MatchmakerSnapshot {
  if (s == null) throw new DecodeError(`${where} missing (expected a MatchmakerSnapshot)`);
  return {
    gcBallot: ballot(s.gcBallot, `${where}.gcBallot`),
    maxBallot: ballot(s.maxBallot, `${where}.maxBallot`),
    entries: configEntries(s.entries, `${where}.entries`),
  };
}

/** A spec is required where it appears: a configuration cannot default to nothing. */
function configSpec(c: PbConfigSpec | null, where: string): ConfigSpec {
  if (c == null) throw new DecodeError(`${where} missing (expected a ConfigSpec)`);
  // Fresh arrays per decode: nothing of the frame is aliased.
  return {
    f: c.f,
    version: c.version,
    groups: c.groups.map((g) => ({ groupId: g.groupId, acceptorIds: g.acceptorIds })),
  };
}

// Field names in error reasons are constant strings (no allocation on the happy path); indices
// into repeated fields are rendered only when an error is raised.

/** A missing stamp (a frame or log record from before stamps existed) reads as `UNSTAMPED`. */
function configStamp(c: PbConfigStamp | null): ConfigStamp {
  // `groups` is a fresh array of numbers per decode (or protobufjs' frozen empty one): nothing
  // of the frame is aliased, so no copy is needed.
  return c == null ? UNSTAMPED : { id: c.id, groups: c.groups, acceptorIds: c.acceptorIds };
}

function ballot(b: PbBallot | null, where: string): Ballot {
  if (b == null) throw new DecodeError(`${where} missing (expected a Ballot)`);
  return { round: b.round, proposerId: b.proposerId };
}

const TWO_32 = 4294967296;

/** uint64 → number, or -1 if it exceeds Number.MAX_SAFE_INTEGER. */
function u64OrMinus1(v: Int64): number {
  if (typeof v === 'number') return v <= Number.MAX_SAFE_INTEGER ? v : -1;
  const hi = v.high >>> 0;
  return hi <= 0x1fffff ? hi * TWO_32 + (v.low >>> 0) : -1;
}

/** uint64 → number, rejecting values above Number.MAX_SAFE_INTEGER. */
function u64(v: Int64, where: string): number {
  const n = u64OrMinus1(v);
  if (n < 0) throw tooLarge(v, where);
  return n;
}

function tooLarge(v: Int64, where: string): DecodeError {
  const exact =
    typeof v === 'number' ? String(v) : (BigInt(v.high >>> 0) * 4294967296n + BigInt(v.low >>> 0)).toString();
  return new DecodeError(`${where} ${exact} exceeds Number.MAX_SAFE_INTEGER (expected a value < 2^53)`);
}

/** A sint64 slot (Nack.slot, ConfigEntry.startSlot) → number: -1 or a safe non-negative slot. */
function slotOrMinus1(v: Int64, where: string): number {
  const n = typeof v === 'number' ? v : v.high * TWO_32 + (v.low >>> 0);
  if (Number.isSafeInteger(n) && n >= -1) return n;
  const exact =
    typeof v === 'number' ? String(v) : (BigInt(v.high) * 4294967296n + BigInt(v.low >>> 0)).toString();
  throw new DecodeError(`${where} ${exact} is out of range (expected -1 or a slot in [0, 2^53-1])`);
}

function address(s: string, where: string): Address {
  if (s.length === 0) throw new DecodeError(`${where} is empty (expected an address)`);
  return s;
}

/** `index` ≥ 0: element `index` of the repeated field `where`. */
function command(c: PbCommand | null, where: string, index: number): Command {
  if (c == null) throw new DecodeError(`${where} missing (expected a Command)`);
  if (c.clientId.length === 0) {
    throw new DecodeError(
      `${index >= 0 ? `${where}[${index}]` : where}.clientId is empty (expected an address)`,
    );
  }
  const requestId = u64OrMinus1(c.requestId);
  if (requestId < 0) throw tooLarge(c.requestId, `${index >= 0 ? `${where}[${index}]` : where}.requestId`);
  return {
    clientId: c.clientId,
    requestId,
    // Copy: never alias (and pin) the frame's buffer.
    payload: copyBytes(c.payload),
  };
}

function commands(src: readonly PbCommand[], where: string): Command[] {
  const out = new Array<Command>(src.length);
  for (let i = 0; i < src.length; i++) out[i] = command(src[i] as PbCommand, where, i);
  return out;
}

function value(v: PbValue | null, where: string): Value {
  if (v == null) throw new DecodeError(`${where} missing (expected a Value)`);
  const kind = v.kind;
  if (kind === 'batch' && v.batch != null) {
    // Copy: never alias (and pin) the frame's buffer. The bytes are not looked into.
    return { kind: 'batch', batch: copyBytes(v.batch) };
  }
  if (kind === 'noop') return NOOP;
  throw new DecodeError(`${where} has neither noop nor batch (expected exactly one)`);
}
