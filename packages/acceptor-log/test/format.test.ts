import { encodeEnvelope } from '@paxos/core';
import { describe, expect, it } from 'vitest';
import { putRecord } from '../src/format.ts';
import {
  AcceptorLog,
  LogCorruptError,
  MemoryStorage,
  type ScanItem,
  scanLog,
  segmentName,
} from '../src/index.ts';
import { b, config, identity, value } from './helpers.ts';

/** A one-segment log holding `n` records (a promise, then accepts of slots 0..n-2), committed and synced. */
function logOf(n: number): { storage: MemoryStorage; records: Extract<ScanItem, { type: 'record' }>[] } {
  const storage = new MemoryStorage('disk');
  const { log } = AcceptorLog.open(storage, { identity, fsync: true });
  log.promised(b(2), config);
  for (let slot = 0; slot < n - 1; slot++)
    log.accepted({ slot, ballot: b(2), value: value(40, slot) }, 0, config);
  log.close();
  return { storage, records: records(storage) };
}

function records(storage: MemoryStorage) {
  return [...scanLog(storage)].filter((i): i is Extract<ScanItem, { type: 'record' }> => i.type === 'record');
}

const SEG0 = segmentName(0);

describe('record format', () => {
  it('every flipped bit of a record in the middle is caught, and start-up stops naming the file and offset', () => {
    const { records: before } = logOf(12);
    const victim = before[5];
    if (victim === undefined) throw new Error('no record 5');
    // Each byte of the record, header and payload, with one bit flipped: the length, either CRC
    // or the payload; every one is refused at the record's offset.
    for (let at = victim.offset; at < victim.offset + victim.bytes; at++) {
      const { storage } = logOf(12);
      storage.flipBit(SEG0, at, at % 8);
      let error: unknown;
      try {
        AcceptorLog.open(storage, { identity, fsync: true });
      } catch (err) {
        error = err;
      }
      expect(error, `bit flipped at byte ${at}`).toBeInstanceOf(LogCorruptError);
      const e = error as LogCorruptError;
      expect(e.file).toBe(`disk/${SEG0}`);
      expect(e.offset).toBe(victim.offset);
      expect(e.message).toMatch(
        new RegExp(
          `^disk/${SEG0} at byte ${victim.offset}: record (header )?CRC32C 0x[0-9a-f]{8} \\(expected 0x[0-9a-f]{8}; non-zero bytes follow it, so it is not a torn tail\\)$`,
        ),
      );
      expect(e.message.split('\n')).toHaveLength(1);
    }
  });

  it('a torn tail is cut off: part of a record, a bad-CRC last record, or zeros a crash left', () => {
    const cases: [string, (s: MemoryStorage, last: { offset: number; bytes: number }) => void][] = [
      ['a header cut short', (s) => s.append(SEG0, new Uint8Array([200, 0, 0, 0, 1, 2]), 6)],
      [
        'a payload cut short',
        (s) => {
          const full = Buffer.alloc(200);
          const n = putRecord(
            full,
            0,
            encodeEnvelope({ from: 'wal', message: { type: 'Phase1a', ballot: b(9), fromSlot: 0, config } }),
          );
          s.append(SEG0, full, n - 3);
        },
      ],
      ['zeros (the file grew, the data never came)', (s) => s.append(SEG0, new Uint8Array(100), 100)],
      ['a bad CRC in the last record', (s, last) => s.flipBit(SEG0, last.offset + last.bytes - 1)],
      [
        'a bad last record followed by zeros',
        (s, last) => {
          s.flipBit(SEG0, last.offset + 20);
          s.append(SEG0, new Uint8Array(4096), 4096);
        },
      ],
    ];
    for (const [name, damage] of cases) {
      const { storage, records: before } = logOf(10);
      const last = before[before.length - 1] as (typeof before)[number];
      const intact = last.offset + last.bytes;
      damage(storage, last);
      const size = storage.size(SEG0);
      const { log, recovery, state } = AcceptorLog.open(storage, { identity, fsync: true });
      const lostLast = size < intact || name.includes('last record');
      const end = lostLast ? last.offset : intact;
      expect(recovery.tornBytes, name).toBe(size - end);
      expect(storage.size(SEG0), name).toBe(end);
      expect(recovery.records, name).toBe(lostLast ? 9 : 10);
      // The cut is durable, and the log appends after it.
      log.accepted({ slot: 50, ballot: b(2), value: value(5) }, 0, config);
      log.close();
      storage.crash();
      const again = AcceptorLog.open(storage, { identity, fsync: true });
      expect(again.recovery.tornBytes, name).toBe(0);
      expect([...again.state.accepted].map((e) => e.slot).slice(-2), name).toEqual([lostLast ? 7 : 8, 50]);
      expect(state.promised).toEqual(b(2));
    }
  });

  it('non-zero garbage after the last record is refused, not taken for a torn write', () => {
    const { storage, records: before } = logOf(4);
    const end = (before[3]?.offset ?? 0) + (before[3]?.bytes ?? 0);
    storage.append(SEG0, new Uint8Array(30).fill(0x5a), 30);
    expect(() => AcceptorLog.open(storage, { identity, fsync: true })).toThrow(
      new RegExp(`^disk/${SEG0} at byte ${end}: record header CRC32C`),
    );
  });

  it('a record with good CRCs that is no promise or accept is refused, even at the tail', () => {
    const { storage, records: before } = logOf(3);
    const end = (before[2]?.offset ?? 0) + (before[2]?.bytes ?? 0);
    const bytes = Buffer.alloc(200);
    const n = putRecord(
      bytes,
      0,
      encodeEnvelope({
        from: 'x',
        message: { type: 'Heartbeat', ballot: b(1), watermark: 0, progress: 0, pending: 0 },
      }),
    );
    storage.append(SEG0, bytes, n);
    expect(() => AcceptorLog.open(storage, { identity, fsync: true })).toThrow(
      new RegExp(
        `at byte ${end}: payload is a Heartbeat message \\(expected a promise \\(Phase1a\\), an accept \\(Phase2a\\), a watermark \\(WatermarkA\\) or a retirement \\(Retire\\)\\)`,
      ),
    );
  });

  it('a damaged segment or state header is refused at its offset', () => {
    const { storage } = logOf(3);
    storage.flipBit(SEG0, 0);
    expect(() => AcceptorLog.open(storage, { identity, fsync: true })).toThrow(
      /^disk\/000000000000\.seg at byte 0: magic "QXACCSEG" \(expected "PXACCSEG"\)$/,
    );
    const other = logOf(3).storage;
    other.flipBit(SEG0, 25);
    expect(() => AcceptorLog.open(other, { identity, fsync: true })).toThrow(
      /at byte 20: header CRC32C 0x[0-9a-f]+ \(expected 0x/,
    );
  });
});
