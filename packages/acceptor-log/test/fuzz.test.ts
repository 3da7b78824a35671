import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AcceptorLog,
  LogCorruptError,
  LogIdentityError,
  type LogRecord,
  MemoryStorage,
  scanLog,
} from '../src/index.ts';
import { b, config, fullReplay, identity, value, writeHistory } from './helpers.ts';

const SEGMENT_BYTES = 1024;

/** A log of several segments and a state file, the same every time. */
function sampleLog(storage = new MemoryStorage('disk')): MemoryStorage {
  const { log } = AcceptorLog.open(storage, { identity, fsync: true, segmentBytes: SEGMENT_BYTES });
  writeHistory(log, { slots: 40, promiseEvery: 15, lag: 10, burst: 3, valueBytes: 60 });
  log.close();
  return storage;
}

type Damage =
  | { kind: 'flip'; file: number; at: number; bit: number }
  | { kind: 'truncate'; file: number; at: number }
  | { kind: 'append'; file: number; bytes: number[] };

const damage: fc.Arbitrary<Damage> = fc.oneof(
  fc.record({
    kind: fc.constant('flip' as const),
    file: fc.nat(),
    at: fc.double({ min: 0, max: 1, noNaN: true }),
    bit: fc.nat(7),
  }),
  fc.record({
    kind: fc.constant('truncate' as const),
    file: fc.nat(),
    at: fc.double({ min: 0, max: 1, noNaN: true }),
  }),
  fc.record({
    kind: fc.constant('append' as const),
    file: fc.nat(),
    bytes: fc.oneof(fc.array(fc.constant(0), { maxLength: 64 }), fc.array(fc.nat(255), { maxLength: 64 })),
  }),
);

function apply(storage: MemoryStorage, d: Damage): void {
  const files = storage.list().sort();
  const file = files[d.file % files.length] as string;
  const size = storage.size(file);
  if (d.kind === 'flip' && size > 0)
    storage.flipBit(file, Math.min(size - 1, Math.floor(d.at * size)), d.bit);
  if (d.kind === 'truncate') storage.truncate(file, Math.floor(d.at * size));
  if (d.kind === 'append') storage.append(file, new Uint8Array(d.bytes), d.bytes.length);
}

/** What the log promises to throw on bad input; anything else (a RangeError, a TypeError) is a bug. */
function documented(err: unknown): boolean {
  return err instanceof LogCorruptError || err instanceof LogIdentityError;
}

/** Opening and scanning a damaged log either work or throw a documented error. */
function survives(makeStorage: () => MemoryStorage) {
  return (damages: Damage[]) => {
    for (const read of ['open', 'scan'] as const) {
      const storage = makeStorage();
      for (const d of damages) apply(storage, d);
      try {
        if (read === 'open')
          AcceptorLog.open(storage, { identity, fsync: true, segmentBytes: SEGMENT_BYTES }).log.close();
        else for (const _ of scanLog(storage));
      } catch (err) {
        if (!documented(err)) throw err;
        expect((err as Error).message.split('\n')).toHaveLength(1);
      }
    }
  };
}

describe('replay of damaged logs (fast-check)', () => {
  it('random truncations, bit flips and appended bytes give a log or a documented one-line error, nothing else', () => {
    fc.assert(
      fc.property(
        fc.array(damage, { minLength: 1, maxLength: 4 }),
        survives(() => sampleLog()),
      ),
      {
        numRuns: 300,
      },
    );
  });

  it('planted bug: a storage whose reads of the state file throw a RangeError is caught by the same property', () => {
    class Faulty extends MemoryStorage {
      override read(name: string, position: number, into: Uint8Array, length: number): number {
        if (name === 'state') throw new RangeError('planted');
        return super.read(name, position, into, length);
      }
    }
    const result = fc.check(
      fc.property(
        fc.array(damage, { maxLength: 1 }),
        survives(() => sampleLog(new Faulty('disk'))),
      ),
      {
        numRuns: 20,
      },
    );
    expect(result.failed).toBe(true);
  });
});

type Op =
  | { kind: 'promise' }
  | { kind: 'accept'; slots: number }
  | { kind: 'watermark'; ahead: number }
  | { kind: 'retired' }
  | { kind: 'commit' }
  | { kind: 'crash'; keep: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 1, arbitrary: fc.constant({ kind: 'promise' as const }) },
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('accept' as const), slots: fc.integer({ min: 1, max: 8 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('watermark' as const),
      ahead: fc.integer({ min: -20, max: 4 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'retired' as const }) },
  { weight: 3, arbitrary: fc.constant({ kind: 'commit' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('crash' as const), keep: fc.nat(400) }) },
);

function scanned(storage: MemoryStorage): LogRecord[] {
  const out: LogRecord[] = [];
  for (const item of scanLog(storage)) if (item.type === 'record') out.push(item.record);
  return out;
}

describe('crashes (fast-check over MemoryStorage)', () => {
  for (const fsync of [true, false]) {
    it(`with fsync ${fsync}: a crash at any point leaves ${fsync ? 'every committed record' : 'a prefix of the written records, every synced one included'}, and recovery agrees with a full replay`, () => {
      fc.assert(
        fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
          const storage = new MemoryStorage('disk');
          const open = () => AcceptorLog.open(storage, { identity, fsync, segmentBytes: SEGMENT_BYTES });
          let { log } = open();
          let pending: LogRecord[] = [];
          let written: LogRecord[] = [];
          let synced = 0;
          let round = 1;
          let slot = 0;
          for (const o of ops) {
            if (o.kind === 'promise') {
              round++;
              log.promised(b(round), config);
              pending.push({ kind: 'promise', ballot: b(round), config });
            } else if (o.kind === 'accept') {
              for (let i = 0; i < o.slots; i++, slot++) {
                const v = value(30 + (slot % 50), slot);
                log.accepted({ slot, ballot: b(round), value: v }, Math.max(0, slot - 12), config);
                pending.push({
                  kind: 'accept',
                  slot,
                  ballot: b(round),
                  value: v,
                  watermark: Math.max(0, slot - 12),
                  config,
                });
              }
            } else if (o.kind === 'watermark') {
              const w = Math.max(0, slot + o.ahead);
              log.watermarkRaised(b(round + 1), w, config);
              pending.push({ kind: 'watermark', ballot: b(round + 1), watermark: w, config });
            } else if (o.kind === 'retired') {
              log.retired(b(round));
              pending.push({
                kind: 'retired',
                ballot: b(round),
                groupId: identity.groupId,
                acceptorId: identity.acceptorId,
              });
            } else if (o.kind === 'commit') {
              const segment = log.segment;
              log.commit();
              written = [...written, ...pending];
              pending = [];
              // With fsync every commit is synced; without, rolling a segment syncs it.
              if (fsync || log.segment !== segment) synced = written.length;
            } else {
              storage.crash({ keepUnsynced: () => o.keep });
              pending = [];
              ({ log } = open());
              const after = scanned(storage);
              expect(after.length).toBeGreaterThanOrEqual(synced);
              expect(after).toEqual(written.slice(0, after.length));
              if (fsync) expect(after).toHaveLength(written.length);
              written = after;
              synced = written.length;
              const again = open();
              expect(again.state).toEqual(fullReplay(storage));
              again.log.close();
            }
          }
        }),
        { numRuns: 150 },
      );
    });
  }
});
