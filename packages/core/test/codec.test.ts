import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import {
  type BatchDecodeResult,
  DecodeError,
  type DecodeResult,
  decodeBatch,
  decodeEnvelope,
  encodeBatch,
  encodeEnvelope,
  MAX_FRAME_BYTES,
} from '../src/codec/index.ts';
import { paxosSchema } from '../src/codec/schema.generated.ts';
import type {
  Ballot,
  Command,
  ConfigEntry,
  ConfigSpec,
  ConfigStamp,
  Envelope,
  MatchmakerEpoch,
  MatchmakerSnapshot,
  Message,
  Value,
} from '../src/messages.ts';
import { NOOP, UNSTAMPED } from '../src/messages.ts';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const protoPath = fileURLToPath(new URL('../proto/paxos.proto', import.meta.url));
const generatedPath = fileURLToPath(new URL('../src/codec/schema.generated.ts', import.meta.url));

/** A reflection Root independent of the codec, to hand-craft frames the codec would never emit. */
const rawRoot = protobuf.Root.fromJSON(paxosSchema as unknown as protobuf.INamespace);
const RawEnvelope = rawRoot.lookupType('paxos.Envelope');
const RawBatch = rawRoot.lookupType('paxos.Batch');

function rawFrame(obj: Record<string, unknown>): Uint8Array {
  return RawEnvelope.encode(obj).finish();
}

function rawBatch(obj: Record<string, unknown>): Uint8Array {
  return RawBatch.encode(obj).finish();
}

function roundTrip(env: Envelope): Envelope {
  const res = decodeEnvelope(encodeEnvelope(env));
  if (!res.ok) throw new Error(`decode failed: ${res.error.reason}`);
  return res.envelope;
}

function expectError(res: DecodeResult | BatchDecodeResult, pattern: RegExp | string): DecodeError {
  expect(res.ok).toBe(false);
  if (res.ok) throw new Error('unreachable');
  expect(res.error).toBeInstanceOf(DecodeError);
  expect(res.error.reason.length).toBeGreaterThan(0);
  if (typeof pattern === 'string') expect(res.error.reason).toContain(pattern);
  else expect(res.error.reason).toMatch(pattern);
  return res.error;
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const b = (round: number, proposerId: number): Ballot => ({ round, proposerId });
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i);
const PIPES = utf8('|a||b|||');

const cmd = (clientId: string, requestId: number, payload: Uint8Array): Command => ({
  clientId,
  requestId,
  payload,
});
const batch = (...commands: Command[]): Value => ({ kind: 'batch', batch: encodeBatch(commands) });

const spec = (f: number, version: number, ...groups: Array<[number, number[]]>): ConfigSpec => ({
  f,
  version,
  groups: groups.map(([groupId, acceptorIds]) => ({ groupId, acceptorIds })),
});
const SPEC = spec(1, 3, [0, [0, 1, 3]], [0xffffffff, [0, 0xffffffff, 2]]);

// ---------------------------------------------------------------------------------------------
// Round trips, one per message kind
// ---------------------------------------------------------------------------------------------

const examples: Array<[string, Envelope]> = [
  [
    'ClientRequest (every byte value)',
    { from: 'client-1', message: { type: 'ClientRequest', command: cmd('client-1', 7, ALL_BYTES) } },
  ],
  [
    'ClientRequest (| characters, empty payload elsewhere)',
    {
      from: 'tcp://127.0.0.1:9000',
      message: { type: 'ClientRequest', command: cmd('c|1', MAX_SAFE, PIPES) },
    },
  ],
  [
    'ClientRequest (empty payload, request id 0)',
    { from: 'c', message: { type: 'ClientRequest', command: cmd('c', 0, new Uint8Array(0)) } },
  ],
  [
    'ClientReply',
    {
      from: 'unbatcher-0',
      message: { type: 'ClientReply', clientId: 'client-9', requestId: MAX_SAFE - 1, slot: MAX_SAFE },
    },
  ],
  [
    'ClientBatch',
    {
      from: 'batcher-0',
      message: {
        type: 'ClientBatch',
        batch: encodeBatch([cmd('a', 1, ALL_BYTES), cmd('b|c', 2, PIPES), cmd('ü→🙂', 3, new Uint8Array(0))]),
        forwarded: true,
      },
    },
  ],
  [
    'ClientBatch (empty, not forwarded)',
    { from: 'b', message: { type: 'ClientBatch', batch: encodeBatch([]), forwarded: false } },
  ],
  [
    'LeaderInfo',
    {
      from: 'p-1',
      message: { type: 'LeaderInfo', leader: 'tcp://10.0.0.1:7000', ballot: b(3, 1), backoffMs: 0 },
    },
  ],
  [
    'LeaderInfo (back off)',
    {
      from: 'p-1',
      message: { type: 'LeaderInfo', leader: 'p-1', ballot: b(3, 1), backoffMs: 0xffffffff },
    },
  ],
  [
    'Phase1a',
    {
      from: 'p-1',
      message: {
        type: 'Phase1a',
        ballot: b(0xffffffff, 0xffffffff),
        fromSlot: 0,
        config: { id: 0xffffffff, groups: [0, 7, 0xffffffff], acceptorIds: [] },
      },
    },
  ],
  [
    'Phase1a (unstamped)',
    { from: 'p-1', message: { type: 'Phase1a', ballot: b(1, 1), fromSlot: MAX_SAFE, config: UNSTAMPED } },
  ],
  [
    'Phase1b',
    {
      from: 'a-1-2',
      message: {
        type: 'Phase1b',
        ballot: b(4, 2),
        groupId: 1,
        acceptorId: 2,
        watermark: 2 ** 40,
        accepted: [
          { slot: 2 ** 40, ballot: b(3, 1), value: NOOP },
          { slot: 2 ** 40 + 1, ballot: b(3, 0), value: batch(cmd('x', 1, ALL_BYTES)) },
          { slot: MAX_SAFE, ballot: b(0, 0), value: batch() },
        ],
        fromSlot: 2 ** 40,
        nextSlot: MAX_SAFE,
        more: true,
        acceptedEnd: MAX_SAFE,
      },
    },
  ],
  [
    'Phase1b (nothing accepted)',
    {
      from: 'a',
      message: {
        type: 'Phase1b',
        ballot: b(0, 0),
        groupId: 0,
        acceptorId: 0,
        watermark: 0,
        accepted: [],
        fromSlot: 0,
        nextSlot: 0,
        more: false,
        acceptedEnd: 0,
      },
    },
  ],
  [
    'Phase2a (batch, acceptors)',
    {
      from: 'leader',
      message: {
        type: 'Phase2a',
        slot: MAX_SAFE,
        ballot: b(9, 4),
        value: batch(cmd('c1', 1, PIPES), cmd('c2', 2, ALL_BYTES)),
        watermark: MAX_SAFE - 10,
        groupId: 0xffffffff,
        acceptors: ['a-0-0', 'a-0-1', 'tcp://h:1'],
        config: { id: 1, groups: [0xffffffff, 0], acceptorIds: [] },
      },
    },
  ],
  [
    'Phase2a (noop, no acceptors)',
    {
      from: 'proxy-3',
      message: {
        type: 'Phase2a',
        slot: 0,
        ballot: b(1, 0),
        value: NOOP,
        watermark: 0,
        groupId: 0,
        acceptors: [],
        config: UNSTAMPED,
      },
    },
  ],
  [
    'Phase2b',
    {
      from: 'a-1-0',
      message: { type: 'Phase2b', slot: MAX_SAFE - 1, ballot: b(5, 6), groupId: 1, acceptorId: 7 },
    },
  ],
  [
    'Nack (phase 1, slot -1)',
    { from: 'a', message: { type: 'Nack', slot: -1, ballot: b(1, 1), promised: b(2, 0), retired: false } },
  ],
  [
    'Nack (phase 2)',
    {
      from: 'a',
      message: { type: 'Nack', slot: MAX_SAFE, ballot: b(1, 1), promised: b(1, 2), retired: false },
    },
  ],
  [
    'Nack (retired)',
    { from: 'a', message: { type: 'Nack', slot: 7, ballot: b(1, 1), promised: b(0, 0), retired: true } },
  ],
  [
    'Nack (slot 0)',
    { from: 'a', message: { type: 'Nack', slot: 0, ballot: b(0, 0), promised: b(0, 1), retired: false } },
  ],
  [
    'Chosen (batch value)',
    {
      from: 'proxy-0',
      message: { type: 'Chosen', slot: 12, ballot: b(2, 1), value: batch(cmd('c', 5, ALL_BYTES)) },
    },
  ],
  [
    'Chosen (noop value)',
    { from: 'proxy-0', message: { type: 'Chosen', slot: 13, ballot: b(2, 1), value: NOOP } },
  ],
  [
    'Chosen (null value)',
    { from: 'proxy-0', message: { type: 'Chosen', slot: MAX_SAFE, ballot: b(2, 1), value: null } },
  ],
  [
    'Heartbeat',
    {
      from: 'leader',
      message: {
        type: 'Heartbeat',
        ballot: b(8, 3),
        watermark: MAX_SAFE,
        progress: MAX_SAFE,
        pending: 0xffffffff,
      },
    },
  ],
  ['MatchA', { from: 'p-1', message: { type: 'MatchA', epoch: 0, ballot: b(4, 1), spec: SPEC } }],
  [
    'MatchA (epoch and version at their limits, no groups)',
    {
      from: 'p-1',
      message: { type: 'MatchA', epoch: 0xffffffff, ballot: b(0, 0), spec: spec(0, 0xffffffff) },
    },
  ],
  [
    'MatchB',
    {
      from: 'mm-2',
      message: {
        type: 'MatchB',
        epoch: 0,
        ballot: b(9, 2),
        matchmakerId: 2,
        gcBallot: b(3, 1),
        entries: [
          { ballot: b(3, 1), spec: SPEC, startSlot: MAX_SAFE },
          { ballot: b(4, 0), spec: spec(0, 4, [7, [5]]), startSlot: -1 },
          { ballot: b(5, 0), spec: spec(0, 5, [7, [5]]), startSlot: 0 },
        ],
      },
    },
  ],
  [
    'MatchB (no entries)',
    {
      from: 'mm-0',
      message: { type: 'MatchB', epoch: 0, ballot: b(1, 1), matchmakerId: 0, gcBallot: b(0, 0), entries: [] },
    },
  ],
  [
    'MatchNack',
    {
      from: 'mm-1',
      message: { type: 'MatchNack', epoch: 7, ballot: b(2, 1), higher: b(3, 0xffffffff), newer: null },
    },
  ],
  [
    'GarbageA',
    {
      from: 'p-1',
      message: {
        type: 'GarbageA',
        epoch: 0,
        gcBallot: b(4, 1),
        startSlot: MAX_SAFE,
        spec: { f: 1, version: 3, groups: [{ groupId: 2, acceptorIds: [0, 4, 9] }] },
      },
    },
  ],
  [
    'GarbageB',
    { from: 'mm-1', message: { type: 'GarbageB', epoch: 0, matchmakerId: 0xffffffff, gcBallot: b(4, 1) } },
  ],
  [
    'WatermarkA',
    {
      from: 'p-1',
      message: {
        type: 'WatermarkA',
        ballot: b(4, 1),
        watermark: MAX_SAFE,
        config: { id: 9, groups: [0, 1], acceptorIds: [] },
      },
    },
  ],
  [
    'WatermarkA (watermark 0, unstamped)',
    { from: 'p-1', message: { type: 'WatermarkA', ballot: b(0, 0), watermark: 0, config: UNSTAMPED } },
  ],
  [
    'WatermarkB',
    {
      from: 'a-1-2',
      message: { type: 'WatermarkB', groupId: 0xffffffff, acceptorId: 2, watermark: MAX_SAFE },
    },
  ],
  [
    'Retire',
    { from: 'p-1', message: { type: 'Retire', ballot: b(5, 1), groupId: 1, acceptorId: 0xffffffff } },
  ],
  ['RetireB', { from: 'a-1-2', message: { type: 'RetireB', groupId: 0, acceptorId: 0 } }],
  [
    'StopA',
    {
      from: 'p-1',
      message: {
        type: 'StopA',
        epoch: 2,
        ballot: b(3, 1),
        current: { epoch: 2, addresses: ['m0', 'm1', 'm3'] },
      },
    },
  ],
  [
    'StopB (a vote, entries)',
    {
      from: 'm0',
      message: {
        type: 'StopB',
        epoch: 0xffffffff,
        ballot: b(3, 1),
        matchmakerId: 7,
        state: {
          gcBallot: b(2, 1),
          maxBallot: b(9, 2),
          entries: [{ ballot: b(2, 1), spec: SPEC, startSlot: 12 }],
        },
        vote: { ballot: b(2, 2), next: { epoch: 1, addresses: ['m0', 'm1', 'm2'] } },
      },
    },
  ],
  [
    'StopB (no vote, no entries)',
    {
      from: 'm0',
      message: {
        type: 'StopB',
        epoch: 0,
        ballot: b(0, 0),
        matchmakerId: 0,
        state: { gcBallot: b(0, 0), maxBallot: b(0, 0), entries: [] },
        vote: null,
      },
    },
  ],
  [
    'BootstrapA',
    {
      from: 'p-1',
      message: {
        type: 'BootstrapA',
        next: { epoch: 1, addresses: ['m0', 'm1', 'm3'] },
        state: {
          gcBallot: b(2, 1),
          maxBallot: b(4, 1),
          entries: [{ ballot: b(4, 1), spec: SPEC, startSlot: -1 }],
        },
      },
    },
  ],
  ['BootstrapB', { from: 'm3', message: { type: 'BootstrapB', epoch: 1, matchmakerId: 3 } }],
  [
    'EpochAccept',
    {
      from: 'p-1',
      message: { type: 'EpochAccept', epoch: 0, ballot: b(1, 1), next: { epoch: 1, addresses: [] } },
    },
  ],
  [
    'EpochAccepted',
    { from: 'm1', message: { type: 'EpochAccepted', epoch: 0, ballot: b(1, 1), matchmakerId: 1 } },
  ],
  ['EpochNack', { from: 'm1', message: { type: 'EpochNack', epoch: 0, ballot: b(1, 1), higher: b(2, 2) } }],
  ['EpochChosen', { from: 'p-1', message: { type: 'EpochChosen', next: { epoch: 1, addresses: ['m0'] } } }],
  [
    'Stopped (next known)',
    { from: 'm1', message: { type: 'Stopped', epoch: 0, next: { epoch: 1, addresses: ['m0'] } } },
  ],
  ['Stopped (next unknown)', { from: 'm1', message: { type: 'Stopped', epoch: 3, next: null } }],
];

describe('codec round trip', () => {
  it('covers every message kind', () => {
    const kinds = new Set(examples.map(([, env]) => env.message.type));
    const all: Message['type'][] = [
      'ClientRequest',
      'ClientReply',
      'ClientBatch',
      'LeaderInfo',
      'Phase1a',
      'Phase1b',
      'Phase2a',
      'Phase2b',
      'Nack',
      'Chosen',
      'Heartbeat',
      'MatchA',
      'MatchB',
      'MatchNack',
      'GarbageA',
      'GarbageB',
      'WatermarkA',
      'WatermarkB',
      'Retire',
      'RetireB',
      'StopA',
      'StopB',
      'BootstrapA',
      'BootstrapB',
      'EpochAccept',
      'EpochAccepted',
      'EpochNack',
      'EpochChosen',
      'Stopped',
    ];
    expect([...kinds].sort()).toEqual([...all].sort());
  });

  it("decodes frames written before the matchmakers' messages existed (their bytes are unchanged)", () => {
    // A Heartbeat frame as the schema of field 12 and below encodes it, byte for byte.
    const old = Uint8Array.of(0x0a, 0x01, 0x61, 0x62, 0x08, 0x0a, 0x04, 0x08, 0x02, 0x10, 0x01, 0x10, 0x05);
    const res = decodeEnvelope(old);
    expect(res.ok && res.envelope).toStrictEqual({
      from: 'a',
      message: { type: 'Heartbeat', ballot: b(2, 1), watermark: 5, progress: 0, pending: 0 },
    });
    expect(encodeEnvelope(res.ok ? res.envelope : (undefined as never))).toStrictEqual(old);
  });

  it('decodes a Nack written before `retired` existed as not retired, and writes it back byte for byte', () => {
    // Nack { slot -1, ballot (1,1), promised (2,0) } as the schema of fields 1-3 encodes it.
    const old = Uint8Array.from(Buffer.from('0a0161520c08011204080110011a020802', 'hex'));
    const res = decodeEnvelope(old);
    expect(res.ok && res.envelope).toStrictEqual({
      from: 'a',
      message: { type: 'Nack', slot: -1, ballot: b(1, 1), promised: b(2, 0), retired: false },
    });
    expect(encodeEnvelope(res.ok ? res.envelope : (undefined as never))).toStrictEqual(old);
  });

  for (const [name, env] of examples) {
    it(name, () => {
      const back = roundTrip(env);
      expect(back).toStrictEqual(env);
    });
  }

  it('keeps every payload byte exactly, as a plain Uint8Array that does not alias the frame', () => {
    const env: Envelope = { from: 'c', message: { type: 'ClientRequest', command: cmd('c', 1, ALL_BYTES) } };
    const frame = Buffer.from(encodeEnvelope(env)); // as a transport would hand it over
    const res = decodeEnvelope(frame);
    if (!res.ok || res.envelope.message.type !== 'ClientRequest') throw new Error('expected a ClientRequest');
    const payload = res.envelope.message.command.payload;
    expect(Object.getPrototypeOf(payload)).toBe(Uint8Array.prototype);
    expect([...payload]).toEqual([...ALL_BYTES]);
    frame.fill(0);
    expect([...payload]).toEqual([...ALL_BYTES]);
  });

  it('decodes a frame that is a view into a larger buffer', () => {
    const env = examples[10]?.[1] as Envelope;
    const frame = encodeEnvelope(env);
    const big = new Uint8Array(frame.length + 20).fill(0xff);
    big.set(frame, 7);
    const res = decodeEnvelope(big.subarray(7, 7 + frame.length));
    expect(res.ok && res.envelope).toStrictEqual(env);
  });

  it('returns frames that stay as they are while the writer and the slabs are reused (no views into the writer)', () => {
    const a = encodeEnvelope(examples[0]?.[1] as Envelope);
    const copy = Uint8Array.from(a);
    const others = examples.map(([, env]) => encodeEnvelope(env));
    const otherCopies = others.map((f) => Uint8Array.from(f));
    for (let i = 0; i < 2_000; i++) encodeEnvelope(examples[i % examples.length]?.[1] as Envelope);
    expect(a).toStrictEqual(copy);
    expect(others).toStrictEqual(otherCopies);
  });

  it('decodes payloads and batches into copies that later frames never overwrite', () => {
    const decoded = examples.map(([, env]) => roundTrip(env));
    for (let i = 0; i < 2_000; i++) roundTrip(examples[i % examples.length]?.[1] as Envelope);
    expect(decoded).toStrictEqual(examples.map(([, env]) => env));
    const big = cmd('c', 1, new Uint8Array(10_000).fill(3)); // beyond a slab: memory of its own
    expect(roundTrip({ from: 'a', message: { type: 'ClientRequest', command: big } })).toStrictEqual({
      from: 'a',
      message: { type: 'ClientRequest', command: big },
    });
  });

  it('encodes a Phase2b compactly', () => {
    const env: Envelope = {
      from: 'tcp://10.0.0.12:7001',
      message: { type: 'Phase2b', slot: 123_456_789, ballot: b(17, 3), groupId: 2, acceptorId: 1 },
    };
    expect(encodeEnvelope(env).length).toBeLessThanOrEqual(40);
  });
});

// ---------------------------------------------------------------------------------------------
// Schema drift
// ---------------------------------------------------------------------------------------------

describe('generated schema', () => {
  it('equals what the generator produces from proto/paxos.proto (scripts/gen-proto-schema.mjs)', () => {
    const root = new protobuf.Root().loadSync(protoPath, { keepCase: false });
    root.resolveAll();
    const fromProto: unknown = JSON.parse(JSON.stringify(root.toJSON()));
    expect(paxosSchema).toEqual(fromProto);
  });

  it('carries the generated-file header', () => {
    expect(readFileSync(generatedPath, 'utf8')).toMatch(
      /^\/\/ generated by scripts\/gen-proto-schema\.mjs from proto\/paxos\.proto; do not edit/,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Malformed input
// ---------------------------------------------------------------------------------------------

describe('decodeEnvelope on malformed input', () => {
  const phase2a: Envelope = examples[10]?.[1] as Envelope;

  it('rejects an empty buffer', () => {
    expectError(decodeEnvelope(new Uint8Array(0)), /empty frame/);
  });

  it('rejects a truncated frame', () => {
    const frame = encodeEnvelope(phase2a);
    for (const cut of [1, 2, 5, frame.length >> 1, frame.length - 1]) {
      expectError(decodeEnvelope(frame.subarray(0, cut)), /^truncated frame: /);
    }
  });

  it('rejects an envelope without a body', () => {
    expectError(decodeEnvelope(rawFrame({ from: 'a' })), /^envelope has no message body/);
  });

  it('rejects an empty sender address', () => {
    expectError(decodeEnvelope(rawFrame({ phase2b: { slot: 1, ballot: {} } })), 'Envelope.from is empty');
  });

  it('rejects a Phase2a without a ballot', () => {
    const frame = rawFrame({ from: 'a', phase2a: { slot: 1, value: { noop: {} } } });
    expectError(decodeEnvelope(frame), /^Phase2a\.ballot missing/);
  });

  it('rejects a Phase2a without a value, and a Value with neither noop nor batch', () => {
    expectError(
      decodeEnvelope(rawFrame({ from: 'a', phase2a: { slot: 1, ballot: {} } })),
      /^Phase2a\.value missing/,
    );
    expectError(
      decodeEnvelope(rawFrame({ from: 'a', phase2a: { slot: 1, ballot: {}, value: {} } })),
      /^Phase2a\.value has neither noop nor batch/,
    );
  });

  it('rejects missing ballots in every message that has one', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ leaderInfo: { leader: 'l' } }, 'LeaderInfo.ballot missing'],
      [{ phase1a: {} }, 'Phase1a.ballot missing'],
      [{ phase1b: {} }, 'Phase1b.ballot missing'],
      [{ phase2b: {} }, 'Phase2b.ballot missing'],
      [{ nack: { promised: {} } }, 'Nack.ballot missing'],
      [{ nack: { ballot: {} } }, 'Nack.promised missing'],
      [{ chosen: {} }, 'Chosen.ballot missing'],
      [{ heartbeat: {} }, 'Heartbeat.ballot missing'],
      [{ matchA: { spec: {} } }, 'MatchA.ballot missing'],
      [{ matchB: { gcBallot: {} } }, 'MatchB.ballot missing'],
      [{ matchB: { ballot: {} } }, 'MatchB.gcBallot missing'],
      [{ matchNack: { ballot: {} } }, 'MatchNack.higher missing'],
      [{ garbageA: {} }, 'GarbageA.gcBallot missing'],
      [{ garbageB: {} }, 'GarbageB.gcBallot missing'],
      [{ watermarkA: {} }, 'WatermarkA.ballot missing'],
      [{ retire: {} }, 'Retire.ballot missing'],
      [
        { matchB: { ballot: {}, gcBallot: {}, entries: [{ ballot: {}, spec: {} }, { spec: {} }] } },
        'MatchB.entries[1].ballot missing',
      ],
      [
        { phase1b: { ballot: {}, accepted: [{ ballot: {}, value: { noop: {} } }, { value: { noop: {} } }] } },
        'Phase1b.accepted[1].ballot missing',
      ],
    ];
    for (const [body, reason] of cases) expectError(decodeEnvelope(rawFrame({ from: 'a', ...body })), reason);
  });

  it('rejects a MatchA or a config entry without a spec, and entry start slots below -1', () => {
    expectError(decodeEnvelope(rawFrame({ from: 'a', matchA: { ballot: {} } })), 'MatchA.spec missing');
    expectError(
      decodeEnvelope(
        rawFrame({ from: 'a', matchB: { ballot: {}, gcBallot: {}, entries: [{ ballot: {} }] } }),
      ),
      'MatchB.entries[0].spec missing',
    );
    expectError(
      decodeEnvelope(
        rawFrame({
          from: 'a',
          matchB: { ballot: {}, gcBallot: {}, entries: [{ ballot: {}, spec: {}, startSlot: -2 }] },
        }),
      ),
      'MatchB.entries[0].startSlot -2 is out of range',
    );
    expectError(
      decodeEnvelope(rawFrame({ from: 'a', garbageA: { gcBallot: {}, startSlot: '9007199254740992' } })),
      'GarbageA.startSlot 9007199254740992 exceeds',
    );
  });

  it('rejects a ClientRequest without a command, and a batch with an empty client id where it is decoded', () => {
    expectError(decodeEnvelope(rawFrame({ from: 'a', clientRequest: {} })), 'ClientRequest.command missing');
    expectError(
      decodeEnvelope(rawFrame({ from: 'a', clientRequest: { command: { requestId: 1 } } })),
      'ClientRequest.command.clientId is empty',
    );
    const bad = new Uint8Array(rawBatch({ commands: [{ clientId: 'x' }, { requestId: 1 }] }));
    expectError(decodeBatch(bad), 'Batch.commands[1].clientId is empty');
    // The hops before the unbatcher carry a batch as bytes: the frame is fine, the batch is not.
    const frame = decodeEnvelope(rawFrame({ from: 'a', clientBatch: { batch: bad } }));
    expect(frame.ok && frame.envelope.message).toStrictEqual({
      type: 'ClientBatch',
      batch: bad,
      forwarded: false,
    });
    const entry = { slot: 1, ballot: {}, value: { batch: bad } };
    const p1b = decodeEnvelope(rawFrame({ from: 'a', phase1b: { ballot: {}, accepted: [entry] } }));
    expect(
      p1b.ok && p1b.envelope.message.type === 'Phase1b' && p1b.envelope.message.accepted[0]?.value,
    ).toStrictEqual({ kind: 'batch', batch: bad });
  });

  it('rejects empty addresses', () => {
    expectError(
      decodeEnvelope(rawFrame({ from: 'a', leaderInfo: { ballot: {} } })),
      'LeaderInfo.leader is empty',
    );
    expectError(
      decodeEnvelope(rawFrame({ from: 'a', clientReply: { slot: 1 } })),
      'ClientReply.clientId is empty',
    );
  });

  it('keeps an empty entry in Phase2a.acceptors: an acceptor whose address the leader does not know yet', () => {
    const res = decodeEnvelope(
      rawFrame({ from: 'a', phase2a: { ballot: {}, value: { noop: {} }, acceptors: ['x', ''] } }),
    );
    expect(res.ok && res.envelope.message.type === 'Phase2a' && res.envelope.message.acceptors).toEqual([
      'x',
      '',
    ]);
  });

  it('rejects uint64 values beyond Number.MAX_SAFE_INTEGER, naming the field and the value', () => {
    const twoTo60 = '1152921504606846976' /* 2^60 */;
    expectError(
      decodeEnvelope(rawFrame({ from: 'a', phase2b: { slot: twoTo60, ballot: {} } })),
      'Phase2b.slot 1152921504606846976 exceeds Number.MAX_SAFE_INTEGER',
    );
    const twoTo53 = '9007199254740992' /* 2^53 */;
    expectError(
      decodeEnvelope(rawFrame({ from: 'a', heartbeat: { ballot: {}, watermark: twoTo53 } })),
      'Heartbeat.watermark 9007199254740992 exceeds',
    );
    const max = '18446744073709551615' /* 2^64 - 1 */;
    expectError(
      decodeBatch(rawBatch({ commands: [{ clientId: 'c', requestId: max }] })),
      'Batch.commands[0].requestId 18446744073709551615 exceeds',
    );
    // 2^53 - 1 itself is fine.
    const ok = decodeEnvelope(rawFrame({ from: 'a', phase2b: { slot: MAX_SAFE, ballot: {} } }));
    expect(ok.ok && ok.envelope.message).toMatchObject({ type: 'Phase2b', slot: MAX_SAFE });
  });

  it('rejects Nack slots below -1 or beyond 2^53 - 1', () => {
    expectError(
      decodeEnvelope(rawFrame({ from: 'a', nack: { slot: -2, ballot: {}, promised: {} } })),
      'Nack.slot -2',
    );
    const huge = '-9007199254740993' /* -(2^53 + 1) */;
    expectError(
      decodeEnvelope(rawFrame({ from: 'a', nack: { slot: huge, ballot: {}, promised: {} } })),
      'Nack.slot -9007199254740993 is out of range',
    );
  });

  it('rejects an oversized frame without parsing it', () => {
    expectError(decodeEnvelope(new Uint8Array(MAX_FRAME_BYTES + 1)), /exceeds MAX_FRAME_BYTES/);
  });

  it('rejects invalid UTF-8, bad wire types and field number 0', () => {
    expectError(decodeEnvelope(Uint8Array.of(0x0a, 0x02, 0xc3, 0x28)), /^malformed frame: .*UTF-8/);
    expectError(decodeEnvelope(Uint8Array.of(0x0f, 0x00)), /^malformed frame: invalid wire type 7/);
    expectError(decodeEnvelope(Uint8Array.of(0x00, 0x00)), /^malformed frame: illegal tag/);
  });

  it('rejects deep group nesting', () => {
    const frame = new Uint8Array(10_000).fill(0x1b); // field 3, start group, over and over
    expectError(decodeEnvelope(frame), /^malformed frame: nested too deeply/);
  });

  it('rejects input that is not a Uint8Array', () => {
    expectError(decodeEnvelope('nope' as unknown as Uint8Array), 'expected the frame as a Uint8Array');
    expectError(decodeEnvelope(null as unknown as Uint8Array), 'expected the frame as a Uint8Array');
  });

  it('ignores unknown fields and keeps the last of several bodies (proto3 oneof semantics)', () => {
    const p2b = rawFrame({ from: 'a', phase2b: { slot: 5, ballot: { round: 1 } } });
    const hb = rawFrame({ heartbeat: { ballot: { round: 2 }, watermark: 9 } });
    const unknown = Uint8Array.of(0xf8, 0x07, 0x2a, 0xa2, 0x06, 0x01, 0x78); // field 127 varint, field 100 bytes
    const frame = new Uint8Array([...p2b, ...unknown, ...hb]);
    const res = decodeEnvelope(frame);
    expect(res.ok && res.envelope).toStrictEqual({
      from: 'a',
      message: { type: 'Heartbeat', ballot: b(2, 0), watermark: 9, progress: 0, pending: 0 },
    });
    const back = decodeEnvelope(new Uint8Array([...hb, ...p2b]));
    expect(back.ok && back.envelope.message.type).toBe('Phase2b');
    // Same for a value's oneof: batch then noop → noop.
    const v = rawFrame({ from: 'a', chosen: { ballot: {}, value: { batch: new Uint8Array(0) } } });
    const n = rawFrame({ chosen: { value: { noop: {} } } });
    const merged = decodeEnvelope(new Uint8Array([...v, ...n]));
    expect(merged.ok && merged.envelope.message).toStrictEqual({
      type: 'Chosen',
      slot: 0,
      ballot: b(0, 0),
      value: NOOP,
    });
  });
});

describe('encodeEnvelope on invalid input', () => {
  const p2b = (slot: number): Envelope => ({
    from: 'a',
    message: { type: 'Phase2b', slot, ballot: b(1, 1), groupId: 0, acceptorId: 0 },
  });

  it('throws rather than put a value on the wire that would not round-trip', () => {
    for (const slot of [-1, 1.5, Number.NaN, 2 ** 53, Number.POSITIVE_INFINITY]) {
      expect(() => encodeEnvelope(p2b(slot))).toThrow(/Phase2b\.slot/);
    }
    expect(() => encodeEnvelope({ ...p2b(1), from: '' })).toThrow(/Envelope\.from/);
    expect(() => encodeEnvelope({ ...p2b(1), from: 'a\uD800' })).toThrow(/well-formed/);
    expect(() =>
      encodeEnvelope({
        from: 'a',
        message: { type: 'Heartbeat', ballot: b(2 ** 32, 0), watermark: 0, progress: 0, pending: 0 },
      }),
    ).toThrow(/Heartbeat\.ballot\.round/);
    expect(() =>
      encodeEnvelope({
        from: 'a',
        message: { type: 'Nack', slot: -2, ballot: b(0, 0), promised: b(0, 0), retired: false },
      }),
    ).toThrow(/Nack\.slot/);
    expect(() =>
      encodeEnvelope({
        from: 'a',
        message: { type: 'ClientRequest', command: cmd('', 1, new Uint8Array()) },
      }),
    ).toThrow(/ClientRequest\.command\.clientId/);
    const huge = cmd('c', 1, new Uint8Array(MAX_FRAME_BYTES));
    expect(() => encodeEnvelope({ from: 'a', message: { type: 'ClientRequest', command: huge } })).toThrow(
      /exceeds MAX_FRAME_BYTES/,
    );
    expect(() =>
      encodeEnvelope({ from: 'a', message: { type: 'MatchA', epoch: -1, ballot: b(1, 1), spec: SPEC } }),
    ).toThrow(/MatchA\.epoch/);
    expect(() =>
      encodeEnvelope({
        from: 'a',
        message: { type: 'MatchA', epoch: 0, ballot: b(1, 1), spec: spec(1, 1, [0, [1, 2, 1.5]]) },
      }),
    ).toThrow(/MatchA\.spec\.groups\[\]\.acceptorIds\[\]/);
    expect(() =>
      encodeEnvelope({
        from: 'a',
        message: {
          type: 'MatchB',
          epoch: 0,
          ballot: b(1, 1),
          matchmakerId: 0,
          gcBallot: b(0, 0),
          entries: [{ ballot: b(0, 0), spec: SPEC, startSlot: -2 }],
        },
      }),
    ).toThrow(/MatchB\.entries\[\]\.startSlot/);
    expect(() =>
      encodeEnvelope({
        from: 'a',
        message: {
          type: 'GarbageA',
          epoch: 0,
          gcBallot: b(1, 1),
          startSlot: -1,
          spec: { f: 0, version: 0, groups: [{ groupId: 0, acceptorIds: [0] }] },
        },
      }),
    ).toThrow(/GarbageA\.startSlot/);
    // The shared writer recovers: the next frame is fine.
    expect(roundTrip(p2b(3))).toStrictEqual(p2b(3));
  });
});

// ---------------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------------

/** Plain-prototype records: `toStrictEqual` compares prototypes, and decoding yields plain objects. */
const rec = <T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> =>
  fc.record(model, { noNullPrototype: true });

const u32Arb = fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom(0, 1, 0xffffffff));
const u64Arb = fc.oneof(
  fc.maxSafeNat(),
  fc.nat({ max: 1000 }),
  fc.constantFrom(0, 1, 127, 128, 2 ** 31, 2 ** 32 - 1, 2 ** 32, MAX_SAFE - 1, MAX_SAFE),
);
const addressArb = fc.oneof(
  fc.string({ minLength: 1, maxLength: 24 }),
  fc.string({ minLength: 1, maxLength: 8, unit: 'grapheme' }),
  fc.constantFrom('tcp://127.0.0.1:7000', 'a|b', 'client-1', '\uFEFFbom', '🙂'),
);
const payloadArb = fc.oneof(fc.uint8Array({ maxLength: 48 }), fc.constant(ALL_BYTES), fc.constant(PIPES));
const ballotArb: fc.Arbitrary<Ballot> = rec({ round: u32Arb, proposerId: u32Arb });
const commandArb: fc.Arbitrary<Command> = rec({
  clientId: addressArb,
  requestId: u64Arb,
  payload: payloadArb,
});
const commandsArb = fc.array(commandArb, { maxLength: 4 });
/** A batch as the batcher encodes it, or any bytes at all: to every hop but the unbatcher it is opaque. */
const batchBytesArb = fc.oneof(commandsArb.map(encodeBatch), fc.uint8Array({ maxLength: 48 }));
const valueArb: fc.Arbitrary<Value> = fc.oneof(
  fc.constant(NOOP),
  rec({ kind: fc.constant('batch' as const), batch: batchBytesArb }),
);

const stampArb: fc.Arbitrary<ConfigStamp> = rec({
  id: u32Arb,
  groups: fc.array(u32Arb, { maxLength: 4 }),
  acceptorIds: fc.array(u32Arb, { maxLength: 5 }),
});
const specArb: fc.Arbitrary<ConfigSpec> = rec({
  f: u32Arb,
  version: u32Arb,
  groups: fc.array(rec({ groupId: u32Arb, acceptorIds: fc.array(u32Arb, { maxLength: 5 }) }), {
    maxLength: 3,
  }),
});
const entryArb: fc.Arbitrary<ConfigEntry> = rec({
  ballot: ballotArb,
  spec: specArb,
  startSlot: fc.oneof(fc.constant(-1), u64Arb),
});
const mmEpochArb: fc.Arbitrary<MatchmakerEpoch> = rec({
  epoch: u32Arb,
  addresses: fc.array(addressArb, { maxLength: 3 }),
});
const snapshotArb: fc.Arbitrary<MatchmakerSnapshot> = rec({
  gcBallot: ballotArb,
  maxBallot: ballotArb,
  entries: fc.array(entryArb, { maxLength: 2 }),
});
const messageArb: fc.Arbitrary<Message> = fc.oneof(
  rec({ type: fc.constant('ClientRequest' as const), command: commandArb }),
  rec({ type: fc.constant('ClientReply' as const), clientId: addressArb, requestId: u64Arb, slot: u64Arb }),
  rec({ type: fc.constant('ClientBatch' as const), batch: batchBytesArb, forwarded: fc.boolean() }),
  rec({ type: fc.constant('LeaderInfo' as const), leader: addressArb, ballot: ballotArb, backoffMs: u32Arb }),
  rec({ type: fc.constant('Phase1a' as const), ballot: ballotArb, fromSlot: u64Arb, config: stampArb }),
  rec({
    type: fc.constant('Phase1b' as const),
    ballot: ballotArb,
    groupId: u32Arb,
    acceptorId: u32Arb,
    watermark: u64Arb,
    accepted: fc.array(rec({ slot: u64Arb, ballot: ballotArb, value: valueArb }), { maxLength: 3 }),
    fromSlot: u64Arb,
    nextSlot: u64Arb,
    more: fc.boolean(),
    acceptedEnd: u64Arb,
  }),
  rec({
    type: fc.constant('Phase2a' as const),
    slot: u64Arb,
    ballot: ballotArb,
    value: valueArb,
    watermark: u64Arb,
    groupId: u32Arb,
    acceptors: fc.array(addressArb, { maxLength: 3 }),
    config: stampArb,
  }),
  rec({
    type: fc.constant('Phase2b' as const),
    slot: u64Arb,
    ballot: ballotArb,
    groupId: u32Arb,
    acceptorId: u32Arb,
  }),
  rec({
    type: fc.constant('Nack' as const),
    slot: fc.oneof(fc.constant(-1), u64Arb),
    ballot: ballotArb,
    promised: ballotArb,
    retired: fc.boolean(),
  }),
  rec({
    type: fc.constant('Chosen' as const),
    slot: u64Arb,
    ballot: ballotArb,
    value: fc.option(valueArb, { nil: null }),
  }),
  rec({
    type: fc.constant('Heartbeat' as const),
    ballot: ballotArb,
    watermark: u64Arb,
    progress: u64Arb,
    pending: u32Arb,
  }),
  rec({ type: fc.constant('MatchA' as const), epoch: u32Arb, ballot: ballotArb, spec: specArb }),
  rec({
    type: fc.constant('MatchB' as const),
    epoch: u32Arb,
    ballot: ballotArb,
    matchmakerId: u32Arb,
    gcBallot: ballotArb,
    entries: fc.array(entryArb, { maxLength: 3 }),
  }),
  rec({
    type: fc.constant('MatchNack' as const),
    epoch: u32Arb,
    ballot: ballotArb,
    higher: ballotArb,
    newer: fc.option(specArb, { nil: null }),
  }),
  rec({
    type: fc.constant('GarbageA' as const),
    epoch: u32Arb,
    gcBallot: ballotArb,
    startSlot: u64Arb,
    spec: specArb,
  }),
  rec({ type: fc.constant('GarbageB' as const), epoch: u32Arb, matchmakerId: u32Arb, gcBallot: ballotArb }),
  rec({ type: fc.constant('WatermarkA' as const), ballot: ballotArb, watermark: u64Arb, config: stampArb }),
  rec({ type: fc.constant('WatermarkB' as const), groupId: u32Arb, acceptorId: u32Arb, watermark: u64Arb }),
  rec({ type: fc.constant('Retire' as const), ballot: ballotArb, groupId: u32Arb, acceptorId: u32Arb }),
  rec({ type: fc.constant('RetireB' as const), groupId: u32Arb, acceptorId: u32Arb }),
  rec({ type: fc.constant('StopA' as const), epoch: u32Arb, ballot: ballotArb, current: mmEpochArb }),
  rec({
    type: fc.constant('StopB' as const),
    epoch: u32Arb,
    ballot: ballotArb,
    matchmakerId: u32Arb,
    state: snapshotArb,
    vote: fc.option(rec({ ballot: ballotArb, next: mmEpochArb }), { nil: null }),
  }),
  rec({ type: fc.constant('BootstrapA' as const), next: mmEpochArb, state: snapshotArb }),
  rec({ type: fc.constant('BootstrapB' as const), epoch: u32Arb, matchmakerId: u32Arb }),
  rec({ type: fc.constant('EpochAccept' as const), epoch: u32Arb, ballot: ballotArb, next: mmEpochArb }),
  rec({
    type: fc.constant('EpochAccepted' as const),
    epoch: u32Arb,
    ballot: ballotArb,
    matchmakerId: u32Arb,
  }),
  rec({ type: fc.constant('EpochNack' as const), epoch: u32Arb, ballot: ballotArb, higher: ballotArb }),
  rec({ type: fc.constant('EpochChosen' as const), next: mmEpochArb }),
  rec({ type: fc.constant('Stopped' as const), epoch: u32Arb, next: fc.option(mmEpochArb, { nil: null }) }),
);
const envelopeArb: fc.Arbitrary<Envelope> = rec({ from: addressArb, message: messageArb });

type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; byte: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; count: number }
  | { op: 'truncate'; at: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  rec({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }),
  rec({
    op: fc.constant('set' as const),
    at: fc.nat(),
    byte: fc.constantFrom(0, 0x7f, 0x80, 0xff, 0x0a, 0x12),
  }),
  rec({
    op: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 4 }),
  }),
  rec({ op: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 4 }) }),
  rec({ op: fc.constant('truncate' as const), at: fc.nat() }),
);

function mutate(frame: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let bytes = Array.from(frame);
  for (const m of mutations) {
    const at = bytes.length === 0 ? 0 : m.at % (bytes.length + (m.op === 'insert' ? 1 : 0));
    switch (m.op) {
      case 'flip':
        if (bytes.length > 0) bytes[at] = (bytes[at] as number) ^ (1 << m.bit);
        break;
      case 'set':
        if (bytes.length > 0) bytes[at] = m.byte;
        break;
      case 'insert':
        bytes.splice(at, 0, ...m.bytes);
        break;
      case 'delete':
        bytes.splice(at, m.count);
        break;
      case 'truncate':
        bytes = bytes.slice(0, at);
        break;
    }
  }
  return Uint8Array.from(bytes);
}

/** decodeEnvelope must not throw; an ok result must itself be a valid envelope (re-encodes and round-trips). */
function checkTotal(bytes: Uint8Array): void {
  const res = decodeEnvelope(bytes);
  if (res.ok) {
    expect(roundTrip(res.envelope)).toStrictEqual(res.envelope);
  } else {
    expect(res.error).toBeInstanceOf(DecodeError);
    expect(typeof res.error.reason).toBe('string');
    expect(res.error.reason.length).toBeGreaterThan(0);
  }
}

describe('codec properties (fast-check)', () => {
  it('round-trips any valid envelope exactly', () => {
    fc.assert(
      fc.property(envelopeArb, (env) => {
        expect(roundTrip(env)).toStrictEqual(env);
      }),
      { numRuns: 3_000, seed: 42 },
    );
  });

  it('never throws on random bytes (0..512)', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 512 }), checkTotal), {
      numRuns: 10_000,
      seed: 42,
    });
  });

  it('never throws on random bytes that start like an envelope', () => {
    // Random bodies behind a plausible prefix reach deeper into the decoders than pure noise.
    const prefixArb = fc.constantFrom(
      ...[2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17].map((field) => {
        const tag = (field << 3) | 2; // a varint: two bytes from field 16 on
        return Uint8Array.of(0x0a, 0x01, 0x61, ...(tag < 0x80 ? [tag] : [(tag & 0x7f) | 0x80, tag >> 7]));
      }),
    );
    fc.assert(
      fc.property(prefixArb, fc.uint8Array({ maxLength: 64 }), (prefix, rest) => {
        const frame = new Uint8Array(prefix.length + 1 + rest.length);
        frame.set(prefix);
        frame[prefix.length] = rest.length;
        frame.set(rest, prefix.length + 1);
        checkTotal(frame);
      }),
      { numRuns: 5_000, seed: 42 },
    );
  });

  it('round-trips any batch of valid commands exactly', () => {
    fc.assert(
      fc.property(fc.array(commandArb, { maxLength: 8 }), (commands) => {
        const decoded = decodeBatch(encodeBatch(commands));
        expect(decoded.ok && decoded.commands).toStrictEqual(commands);
      }),
      { numRuns: 2_000, seed: 42 },
    );
  });

  it('decodeBatch never throws on random or mutated batches; what it accepts re-encodes to the same commands', () => {
    const total = (bytes: Uint8Array) => {
      const res = decodeBatch(bytes);
      if (res.ok) {
        const again = decodeBatch(encodeBatch(res.commands));
        expect(again.ok && again.commands).toStrictEqual(res.commands);
      } else {
        expect(res.error).toBeInstanceOf(DecodeError);
        expect(res.error.reason.length).toBeGreaterThan(0);
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), total), { numRuns: 5_000, seed: 42 });
    fc.assert(
      fc.property(
        commandsArb,
        fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
        (commands, mutations) => {
          total(mutate(encodeBatch(commands), mutations));
        },
      ),
      { numRuns: 5_000, seed: 42 },
    );
  });

  it('never throws on mutated valid frames', () => {
    fc.assert(
      fc.property(envelopeArb, fc.array(mutationArb, { minLength: 1, maxLength: 4 }), (env, mutations) => {
        checkTotal(mutate(encodeEnvelope(env), mutations));
      }),
      { numRuns: 10_000, seed: 42 },
    );
  });
});
