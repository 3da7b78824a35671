import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeCheckpoint } from '../src/format.ts';
import {
  AcceptorLog,
  type Checkpoint,
  LogCorruptError,
  LogExistsError,
  LogIdentityError,
  LogMissingError,
  type LogStorage,
  MemoryStorage,
  readState,
  STATE_FILE,
  segmentName,
} from '../src/index.ts';
import { b, config, fullReplay, identity, value, writeHistory } from './helpers.ts';

const open = (storage: LogStorage, segmentBytes = 4096, fsync = true) =>
  AcceptorLog.open(storage, { identity, fsync, segmentBytes });

describe('writing and recovering', () => {
  it('a reopened log gives back the promise, the pinned configuration, the watermark and the accepts above it', () => {
    const storage = new MemoryStorage();
    const first = open(storage);
    expect(first.recovery.created).toBe(true);
    first.log.promised(b(2), config);
    first.log.accepted({ slot: 3, ballot: b(2), value: value(10) }, 0, config);
    first.log.accepted({ slot: 5, ballot: b(2), value: { kind: 'noop' } }, 4, config);
    first.log.promised(b(3), config);
    first.log.close();
    const { state, recovery, log } = open(storage);
    log.close();
    expect(recovery).toMatchObject({
      created: false,
      records: 4,
      tornBytes: 0,
      segments: 1,
      segmentsRead: 1,
    });
    expect(state).toEqual({
      promised: b(3),
      watermark: 4,
      config,
      retired: false,
      accepted: [{ slot: 5, ballot: b(2), value: { kind: 'noop' } }],
    });
  });

  it('a watermark record raises the recovered watermark (its ballot is no promise) and a retired record sets retired', () => {
    const storage = new MemoryStorage();
    const first = open(storage);
    first.log.promised(b(2), config);
    for (let slot = 0; slot < 6; slot++)
      first.log.accepted({ slot, ballot: b(2), value: value(10, slot) }, 0, config);
    first.log.watermarkRaised(b(9, 1), 4, config);
    first.log.watermarkRaised(b(9, 1), 3, config); // never lowers it
    first.log.close();
    const second = open(storage);
    expect(second.state).toEqual({ ...fullReplay(storage), retired: false });
    expect(second.state).toMatchObject({ promised: b(2), watermark: 4, config, retired: false });
    expect([...second.state.accepted].map((e) => e.slot)).toEqual([4, 5]);
    second.log.retired(b(10, 1));
    second.log.close();
    const third = open(storage);
    third.log.close();
    expect(third.state).toMatchObject({ promised: b(2), watermark: 4, retired: true });
    expect(third.state).toEqual(fullReplay(storage));
  });

  it('the checkpoint carries the watermark and retired: a restart reading only later segments keeps both', () => {
    const storage = new MemoryStorage();
    const first = open(storage, 1024);
    writeHistory(first.log, { slots: 20, lag: 5 });
    first.log.watermarkRaised(b(1), 18, config);
    first.log.retired(b(3));
    first.log.commit();
    writeHistory(first.log, { from: 20, slots: 40, lag: 5 }); // rolls past the retired record
    first.log.close();
    const state = readState(storage);
    expect(state?.retired).toBe(true);
    expect(state?.through).toBeGreaterThan(0);
    const { state: recovered, recovery } = open(storage, 1024);
    expect(recovery.segmentsRead).toBeLessThan(recovery.segments);
    expect(recovered.retired).toBe(true);
    expect(recovered).toEqual(fullReplay(storage));
  });

  it('opens a log written before watermark and retired records existed (format version 1) as it did then', () => {
    const storage = new MemoryStorage();
    const fixture = new URL('./fixtures/v1-log/', import.meta.url).pathname;
    storage.create();
    for (const name of readdirSync(fixture)) {
      const bytes = readFileSync(path.join(fixture, name));
      storage.writeAtomic(name, bytes);
      expect(bytes.readUInt32LE(8)).toBe(1); // written by the version-1 writer
    }
    const expected = JSON.parse(
      readFileSync(new URL('./fixtures/v1-log.expected.json', import.meta.url), 'utf8'),
    ) as {
      state: { accepted: { slot: number; value: { kind: string; batch?: string } }[] };
      recovery: object;
    };
    const { state, recovery, log } = open(storage, 1024);
    expect(recovery).toEqual(expected.recovery);
    expect({
      ...state,
      accepted: [...state.accepted].map((e) => ({
        ...e,
        value:
          e.value.kind === 'noop'
            ? e.value
            : { kind: 'batch', batch: Buffer.from(e.value.batch).toString('hex') },
      })),
    }).toEqual({ ...expected.state, retired: false });
    expect(readState(storage)?.retired).toBe(false);
    expect(state).toEqual(fullReplay(storage));
    // New records go after the old ones, and the log reopens with them.
    log.watermarkRaised(b(5, 3), 75, config);
    log.retired(b(5, 3));
    log.close();
    const reopened = open(storage, 1024);
    expect(reopened.state).toMatchObject({ watermark: 75, retired: true, promised: b(4, 3) });
    expect(reopened.state).toEqual(fullReplay(storage));
  });

  it('reads a log whose records carry no configuration (no pin yet)', () => {
    const storage = new MemoryStorage();
    const { log } = open(storage);
    log.promised(b(4), null);
    log.close();
    const { state } = open(storage);
    expect(state.promised).toEqual(b(4));
    expect(state.config).toBeNull();
  });

  it('group commit: one append per commit, and one sync with fsync (none without)', () => {
    for (const fsync of [true, false]) {
      const storage = new MemoryStorage();
      const { log } = open(storage, 1 << 20, fsync);
      const before = { ...storage.stats };
      for (let slot = 0; slot < 5; slot++) log.accepted({ slot, ballot: b(1), value: value(30) }, 0, config);
      expect(log.uncommitted).toBe(5);
      expect(storage.stats.appends).toBe(before.appends);
      log.commit();
      log.commit(); // nothing buffered: nothing written
      expect(log.uncommitted).toBe(0);
      expect(storage.stats.appends - before.appends).toBe(1);
      expect(storage.stats.syncs - before.syncs).toBe(fsync ? 1 : 0);
      log.close();
    }
  });

  it('a failed commit stops the log: nothing more is written', () => {
    const storage = new MemoryStorage();
    const { log } = open(storage);
    storage.append = () => {
      throw new Error('ENOSPC: no space left on device, write');
    };
    log.promised(b(1), config);
    expect(() => log.commit()).toThrow(/ENOSPC/);
    log.promised(b(2), config);
    expect(() => log.commit()).toThrow(/the log failed earlier \(ENOSPC.*\); it writes nothing more/);
  });
});

describe('segments', () => {
  it('rolls to a new segment at the size, syncing the closed one and checkpointing it, fsync or not', () => {
    const storage = new MemoryStorage();
    const { log } = open(storage, 4096, false);
    writeHistory(log, { slots: 400, burst: 5 });
    const segments = storage
      .list()
      .filter((n) => n.endsWith('.seg'))
      .sort();
    expect(segments.length).toBeGreaterThan(5);
    for (const name of segments.slice(0, -1)) {
      expect(storage.size(name)).toBeGreaterThanOrEqual(4096);
      expect(storage.size(name)).toBeLessThan(4096 + 5 * 200); // closed at the first commit past the size
    }
    const state = readState(storage) as Checkpoint;
    expect(state.through).toBe(segments.length - 2);
    expect(state).toMatchObject({ ...identity, config });
    // Without fsync only the open segment's tail is at risk: a crash keeps every closed segment.
    const synced = fullReplay(storage);
    log.close();
    storage.crash();
    const { state: recovered } = open(storage);
    expect(recovered.watermark).toBeGreaterThanOrEqual(synced.watermark - 30);
    expect(fullReplay(storage).promised).toEqual(synced.promised);
  });

  it('recovers what a replay of every record gives, reading only the segments that still matter', () => {
    const storage = new MemoryStorage();
    const { log } = open(storage);
    // Slot 1000000 is accepted early (a leader far ahead): its segment must stay live for ever.
    log.accepted({ slot: 1_000_000, ballot: b(1), value: value(9) }, 0, config);
    writeHistory(log, { slots: 2000, promiseEvery: 300, lag: 40, burst: 7 });
    log.close();
    const { state, recovery } = open(storage);
    expect(state).toEqual(fullReplay(storage));
    expect([...state.accepted].at(-1)?.slot).toBe(1_000_000);
    expect(recovery.segmentsRead).toBeLessThanOrEqual(4);
    expect(recovery.segments).toBeGreaterThan(40);
  });

  it('planted bug: a checkpoint that forgets a live segment loses an accept, and the comparison with a full replay catches it', () => {
    const storage = new MemoryStorage();
    const { log } = open(storage);
    log.accepted({ slot: 1_000_000, ballot: b(1), value: value(9) }, 0, config);
    writeHistory(log, { slots: 1000, lag: 40 });
    log.close();
    const state = readState(storage) as Checkpoint;
    expect(state.live.map((l) => l.segment)).toContain(0);
    storage.writeAtomic(
      STATE_FILE,
      encodeCheckpoint({ ...state, live: state.live.filter((l) => l.segment !== 0) }),
    );
    const { state: recovered } = open(storage);
    expect(recovered).not.toEqual(fullReplay(storage));
    expect([...recovered.accepted].some((e) => e.slot === 1_000_000)).toBe(false);
  });

  it('restart reads about the same bytes after 1, 10 or 100 segments of history', () => {
    const read: number[] = [];
    for (const segments of [1, 10, 100]) {
      const storage = new MemoryStorage();
      const { log } = open(storage);
      let from = 0;
      while (log.segment < segments - 1) {
        writeHistory(log, { from, slots: 20, lag: 30 });
        from += 20;
      }
      writeHistory(log, { from, slots: 10, lag: 30 });
      log.close();
      const before = storage.stats.bytesRead;
      const { state, recovery } = open(storage);
      // Counted by the storage itself, not only by the log.
      expect(storage.stats.bytesRead - before).toBe(recovery.bytesRead);
      expect(recovery.segments).toBe(segments);
      expect(recovery.bytesRead).toBeLessThanOrEqual(3 * 4096 + 2048);
      expect(state).toEqual(fullReplay(storage));
      read.push(recovery.bytesRead);
    }
    expect(Math.max(...read.slice(1)) - Math.min(...read.slice(1))).toBeLessThan(4096);
  });

  it('a segment the checkpoint needs, or a gap after it, is refused naming the missing file', () => {
    const storage = new MemoryStorage('disk');
    const { log } = open(storage);
    writeHistory(log, { slots: 200 });
    log.close();
    const state = readState(storage) as Checkpoint;
    storage.writeAtomic(STATE_FILE, encodeCheckpoint({ ...state, through: state.through - 1 }));
    // Now the state file says segments from `through` on follow, and they do: one read more.
    expect(() => open(storage)).not.toThrow();
    storage.writeAtomic(STATE_FILE, encodeCheckpoint({ ...state, through: state.through + 5 }));
    expect(() => open(storage)).toThrow(LogCorruptError);
    expect(() => open(storage)).toThrow(
      new RegExp(
        `^disk/${segmentName(state.through + 6)} at byte 0: the file is missing \\(expected segment ${state.through + 6}, which follows segment ${state.through + 5}`,
      ),
    );
  });
});

describe('identity', () => {
  it("refuses another acceptor's log, naming both identities", () => {
    const storage = new MemoryStorage('disk');
    const { log } = open(storage);
    log.promised(b(1), config);
    log.close();
    const other = { ...identity, acceptorId: 0 };
    const attempt = () => AcceptorLog.open(storage, { identity: other, fsync: true });
    expect(attempt).toThrow(LogIdentityError);
    expect(attempt).toThrow(
      'disk/000000000000.seg belongs to cluster "test" group 1 acceptor 2, not to this acceptor (cluster "test" group 1 acceptor 0): refusing to start on another acceptor\'s log',
    );
    // With a state file, that is checked first.
    const { log: again } = open(storage, 1024);
    writeHistory(again, { slots: 100 });
    again.close();
    expect(() =>
      AcceptorLog.open(storage, { identity: { ...identity, cluster: 'prod' }, fsync: true }),
    ).toThrow(/^disk\/state belongs to cluster "test" .* \(cluster "prod" group 1 acceptor 2\)/);
  });

  it('refuses a directory holding files of no acceptor log', () => {
    const storage = new MemoryStorage('disk');
    storage.create();
    storage.writeAtomic('notes.txt', new Uint8Array([1]));
    expect(() => open(storage)).toThrow(/^disk is not an acceptor log directory: it holds "notes.txt"/);
  });
});

describe('create', () => {
  it("'never' refuses a missing or empty directory and writes nothing; it opens a log that is there", () => {
    const storage = new MemoryStorage('disk');
    const never = () => AcceptorLog.open(storage, { identity, fsync: true, create: 'never' });
    expect(never).toThrow(LogMissingError);
    expect(never).toThrow('disk holds no acceptor log (expected one: this acceptor has run before)');
    expect(storage.list()).toEqual([]);
    storage.create();
    storage.writeAtomic('000000000000.seg.tmp', new Uint8Array([1])); // a crash's leftover is no log
    expect(never).toThrow(LogMissingError);
    const { log } = open(storage);
    log.promised(b(4), config);
    log.close();
    const reopened = never();
    reopened.log.close();
    expect(reopened.recovery.created).toBe(false);
    expect(reopened.state.promised).toEqual(b(4));
  });

  it("'always' creates a log where there is none and refuses, untouched, one that is there", () => {
    const storage = new MemoryStorage('disk');
    const always = () => AcceptorLog.open(storage, { identity, fsync: true, create: 'always' });
    const first = always();
    expect(first.recovery.created).toBe(true);
    first.log.promised(b(4), config);
    first.log.close();
    const before = storage.contents(segmentName(0));
    expect(always).toThrow(LogExistsError);
    expect(always).toThrow(
      'disk already holds an acceptor log (1 segment): a new log is not written over it',
    );
    expect(storage.contents(segmentName(0))).toEqual(before);
    expect(open(storage).state.promised).toEqual(b(4));
  });
});

describe('MemoryStorage', () => {
  it('a crash loses every byte not synced, and files whose directory entry was not synced', () => {
    const s = new MemoryStorage();
    s.create();
    s.writeAtomic('a', new Uint8Array([1, 2]));
    s.append('a', new Uint8Array([3, 4]), 2);
    s.sync('a');
    s.append('a', new Uint8Array([5, 6, 7]), 3);
    s.append('b', new Uint8Array([9]), 1); // created by an append: no directory sync
    s.sync('b');
    expect(s.contents('a')).toEqual(new Uint8Array([1, 2, 3, 4, 5, 6, 7]));
    s.crash();
    expect(s.contents('a')).toEqual(new Uint8Array([1, 2, 3, 4]));
    expect(s.list()).toEqual(['a']);
  });

  it('an unsynced truncate is undone by a crash; a torn write keeps part of what was unsynced', () => {
    const s = new MemoryStorage();
    s.create();
    s.writeAtomic('a', new Uint8Array([1, 2, 3, 4]));
    s.truncate('a', 1);
    s.append('a', new Uint8Array([8, 8]), 2);
    s.crash();
    expect(s.contents('a')).toEqual(new Uint8Array([1, 2, 3, 4]));
    s.append('a', new Uint8Array([5, 6, 7]), 3);
    s.crash({ keepUnsynced: (name, unsynced) => (name === 'a' ? unsynced - 1 : 0) });
    expect(s.contents('a')).toEqual(new Uint8Array([1, 2, 3, 4, 5, 6]));
  });

  it('an acceptor log on it keeps every committed record with fsync, and loses the unsynced ones without', () => {
    for (const fsync of [true, false]) {
      const storage = new MemoryStorage();
      const { log } = open(storage, 1 << 20, fsync);
      log.promised(b(5), config);
      log.commit();
      log.accepted({ slot: 1, ballot: b(5), value: value(3) }, 0, config); // never committed
      storage.crash();
      const { state } = open(storage);
      expect(state.promised).toEqual(fsync ? b(5) : { round: 0, proposerId: 0 });
      expect([...state.accepted]).toEqual([]);
    }
  });
});
