import {
  type Ballot,
  type ConfigSpec,
  type Effect,
  Matchmaker,
  type MatchmakerState,
  type Message,
  ZERO_BALLOT,
} from '@paxos/core';
import { describe, expect, it } from 'vitest';
import { encodeFileHeader } from '../src/format.ts';
import {
  durableMatchmaker,
  LogCorruptError,
  LogExistsError,
  LogIdentityError,
  LogMissingError,
  MATCHMAKER_FILE,
  MATCHMAKER_FORMAT_VERSION,
  MATCHMAKER_MAGIC,
  MatchmakerStore,
  MemoryStorage,
} from '../src/index.ts';

const identity = { cluster: 'test', matchmakerId: 1 };
const b = (round: number, proposerId = 1): Ballot => ({ round, proposerId });
const GENESIS: ConfigSpec = { f: 1, version: 1, groups: [{ groupId: 0, acceptorIds: [0, 1, 2] }] };
const REPLACED: ConfigSpec = { f: 1, version: 2, groups: [{ groupId: 0, acceptorIds: [0, 1, 3] }] };
const matchA = (ballot: Ballot, spec = REPLACED) => ({ type: 'MatchA', epoch: 0, ballot, spec }) as const;
const garbageA = (gcBallot: Ballot, startSlot: number) =>
  ({ type: 'GarbageA', epoch: 0, gcBallot, startSlot, spec: REPLACED }) as const;
const open = (storage: MemoryStorage, create?: 'if-missing' | 'never' | 'always') =>
  MatchmakerStore.open(storage, { identity, ...(create ? { create } : {}) });
const sent = (effects: Effect[]): Message[] => effects.flatMap((e) => (e.kind === 'send' ? [e.message] : []));

/** A matchmaker over `storage` as a process starts one: recovered state, else genesis. */
function boot(storage: MemoryStorage) {
  const { store, state } = open(storage);
  const matchmaker = new Matchmaker({
    address: 'mm-1',
    matchmakerId: 1,
    genesis: GENESIS,
    ...(state ? { recovered: state } : {}),
  });
  const released: Effect[][] = [];
  const commits: (() => void)[] = [];
  const durable = durableMatchmaker(matchmaker, store, {
    release: (effects) => released.push(effects),
    schedule: (commit) => commits.push(commit),
  });
  const deliver = (message: Message) => durable.step(0, { type: 'message', from: 'p', message });
  return { store, matchmaker, durable, released, commits, deliver };
}

describe('MatchmakerStore', () => {
  it('finds nothing in a new directory, then reads back exactly what was saved', () => {
    const storage = new MemoryStorage();
    const { store, state } = open(storage);
    expect(state).toBeNull();
    expect(store.saved).toBeNull();
    expect(storage.list()).toEqual([]);
    const saved: MatchmakerState = {
      epoch: 0,
      gcBallot: b(2),
      maxBallot: b(3, 2),
      entries: [
        { ballot: b(2), spec: GENESIS, startSlot: 812 },
        { ballot: b(3, 2), spec: REPLACED, startSlot: -1 },
      ],
      stopped: true,
      decisions: [
        {
          epoch: 0,
          promised: b(4, 1),
          vote: { ballot: b(4, 1), next: { epoch: 1, addresses: ['m0', 'm1', 'm3'] } },
        },
      ],
      chosen: { epoch: 0, addresses: ['m0', 'm1', 'm2'] },
    };
    store.save(saved);
    expect(store.saved).toBe(saved);
    storage.crash();
    expect(open(storage).state).toEqual(saved);
  });

  it('reads a version-1 state (before matchmaker reconfiguration) as not stopped, with no decisions', () => {
    const storage = new MemoryStorage('disk');
    storage.create();
    const entries = [{ ballot: b(2), spec: GENESIS, startSlot: 5 }];
    storage.writeAtomic(
      MATCHMAKER_FILE,
      encodeFileHeader(
        MATCHMAKER_MAGIC,
        { ...identity, epoch: 0, gcBallot: b(2), maxBallot: b(2), entries },
        1,
      ),
    );
    expect(open(storage).state).toEqual({
      epoch: 0,
      gcBallot: b(2),
      maxBallot: b(2),
      entries,
      stopped: false,
      decisions: [],
      chosen: null,
    });
  });

  it('refuses a decision that is not one, naming the field', () => {
    const storage = new MemoryStorage('disk');
    storage.create();
    const body = { ...identity, epoch: 0, gcBallot: b(0, 0), maxBallot: b(0, 0), entries: [] };
    storage.writeAtomic(
      MATCHMAKER_FILE,
      encodeFileHeader(MATCHMAKER_MAGIC, { ...body, decisions: [{ epoch: 0, promised: 3, vote: null }] }, 2),
    );
    expect(() => open(storage)).toThrow(/expected decisions \(a list of/);
  });

  it('honours create: never without a state, always with one', () => {
    expect(() => open(new MemoryStorage('disk'), 'never')).toThrow(LogMissingError);
    expect(() => open(new MemoryStorage('disk'), 'never')).toThrow(
      'disk holds no matchmaker state (expected one: this matchmaker has run before)',
    );
    const storage = new MemoryStorage('disk');
    boot(storage);
    expect(() => open(storage, 'always')).toThrow(LogExistsError);
    expect(() => open(storage, 'always')).toThrow('disk already holds a matchmaker state');
    expect(open(storage, 'never').state?.entries).toHaveLength(1);
  });

  it("refuses another matchmaker's state, and a directory holding other files", () => {
    const storage = new MemoryStorage('disk');
    boot(storage);
    const other = () => MatchmakerStore.open(storage, { identity: { cluster: 'test', matchmakerId: 2 } });
    expect(other).toThrow(LogIdentityError);
    expect(other).toThrow(
      'disk/matchmaker belongs to cluster "test" matchmaker 1, not to this matchmaker (cluster "test" matchmaker 2)',
    );
    expect(() => MatchmakerStore.open(storage, { identity: { cluster: 'prod', matchmakerId: 1 } })).toThrow(
      LogIdentityError,
    );
    const acceptorDir = new MemoryStorage('acc');
    acceptorDir.create();
    acceptorDir.writeAtomic('000000000000.seg', new Uint8Array(4));
    expect(() => open(acceptorDir)).toThrow(
      /acc is not a matchmaker's directory: it holds "000000000000.seg"/,
    );
  });

  it('detects a flipped bit anywhere in the file, naming the file and the offset', () => {
    const pristine = new MemoryStorage('disk');
    boot(pristine).store.save({
      epoch: 0,
      gcBallot: ZERO_BALLOT,
      maxBallot: b(4),
      entries: [
        { ballot: ZERO_BALLOT, spec: GENESIS, startSlot: 0 },
        { ballot: b(4), spec: REPLACED, startSlot: -1 },
      ],
      stopped: false,
      decisions: [],
      chosen: null,
    });
    const size = pristine.size(MATCHMAKER_FILE);
    for (let offset = 0; offset < size; offset++) {
      const storage = new MemoryStorage('disk');
      storage.create();
      const bytes = new Uint8Array(size);
      pristine.read(MATCHMAKER_FILE, 0, bytes, size);
      storage.writeAtomic(MATCHMAKER_FILE, bytes);
      storage.flipBit(MATCHMAKER_FILE, offset, offset % 8);
      let error: unknown = null;
      try {
        open(storage);
      } catch (e) {
        error = e;
      }
      expect(error, `bit flipped at byte ${offset}`).toBeInstanceOf(LogCorruptError);
      expect((error as LogCorruptError).file).toBe('disk/matchmaker');
      expect((error as LogCorruptError).offset).toBeLessThanOrEqual(Math.max(offset, 20));
    }
  });

  it('refuses trailing bytes after the state, and a body that is not a matchmaker state', () => {
    const storage = new MemoryStorage('disk');
    boot(storage);
    storage.append(MATCHMAKER_FILE, Uint8Array.of(0), 1);
    expect(() => open(storage)).toThrow(/disk\/matchmaker at byte \d+: 1 bytes after the state/);
    // A sound header whose body breaks the state's rules: an entry below gcBallot.
    const bad = new MemoryStorage('disk');
    bad.create();
    const entries = [{ ballot: b(1), spec: GENESIS, startSlot: -1 }];
    bad.writeAtomic(
      MATCHMAKER_FILE,
      encodeFileHeader(
        MATCHMAKER_MAGIC,
        { ...identity, epoch: 0, gcBallot: b(2), maxBallot: b(2), entries },
        MATCHMAKER_FORMAT_VERSION,
      ),
    );
    expect(() => open(bad)).toThrow(
      /disk\/matchmaker at byte 20: a header body without its fields \(expected entries/,
    );
  });
});

describe('durableMatchmaker', () => {
  it('saves the genesis state before anything is answered', () => {
    const storage = new MemoryStorage();
    boot(storage);
    storage.crash();
    expect(open(storage).state?.entries).toEqual([{ ballot: ZERO_BALLOT, spec: GENESIS, startSlot: 0 }]);
  });

  it('holds the replies of a burst until one save; a restart answers as its old self', () => {
    const storage = new MemoryStorage();
    const mm = boot(storage);
    const writes = storage.stats.atomicWrites;
    expect(mm.deliver(matchA(b(3)))).toEqual([]);
    expect(mm.deliver(matchA(b(2)))).toEqual([]); // a nack changes nothing but waits behind the held reply
    expect(mm.deliver(garbageA(b(3), 50))).toEqual([]);
    expect(mm.commits).toHaveLength(1);
    expect(mm.durable.heldMessages).toBe(3);
    mm.commits[0]?.();
    expect(storage.stats.atomicWrites - writes).toBe(1);
    expect((mm.released[0] ?? []).flatMap((e) => (e.kind === 'send' ? [e.message.type] : []))).toEqual([
      'MatchB',
      'MatchNack',
      'GarbageB',
    ]);
    // With nothing held, a step that changes nothing answers at once.
    expect(sent(mm.deliver(matchA(b(1)))).map((m) => m.type)).toEqual(['MatchNack']);

    storage.crash();
    const again = boot(storage);
    expect(again.matchmaker.state).toEqual(mm.matchmaker.state);
    expect(sent(again.deliver(matchA(b(3))))).toEqual([
      { type: 'MatchB', epoch: 0, ballot: b(3), matchmakerId: 1, gcBallot: b(3), entries: [] },
    ]);
    expect(sent(again.deliver(matchA(b(2))))).toEqual([
      { type: 'MatchNack', epoch: 0, ballot: b(2), higher: b(3), newer: null },
    ]);
  });

  it('a crash before the save loses the change and the reply held for it', () => {
    const storage = new MemoryStorage();
    const mm = boot(storage);
    mm.deliver(matchA(b(3)));
    storage.crash();
    expect(mm.released).toEqual([]);
    const again = boot(storage);
    // Nothing was announced, so the restarted matchmaker may record another configuration at (3,1).
    expect(again.matchmaker.state?.maxBallot).toEqual(ZERO_BALLOT);
    expect(sent(again.deliver(matchA(b(3), GENESIS)))).toEqual([]);
    again.commits[0]?.();
    expect(again.released.flat().flatMap((e) => (e.kind === 'send' ? [e.message.type] : []))).toEqual([
      'MatchB',
    ]);
  });

  it('releases nothing when the save fails: the error stops the caller', () => {
    const matchmaker = new Matchmaker({ address: 'mm-1', matchmakerId: 1, genesis: GENESIS });
    let fail = false;
    const store = {
      saved: null as MatchmakerState | null,
      save(state: MatchmakerState) {
        if (fail) throw new Error('ENOSPC: no space left on device, write');
        store.saved = state;
      },
    };
    const released: Effect[][] = [];
    let commit: () => void = () => {};
    const durable = durableMatchmaker(matchmaker, store, {
      release: (effects) => released.push(effects),
      schedule: (c) => {
        commit = c;
      },
    });
    fail = true;
    durable.step(0, { type: 'message', from: 'p', message: matchA(b(3)) });
    expect(() => commit()).toThrow(/ENOSPC/);
    expect(released).toEqual([]);
    expect(durable.heldMessages).toBe(1);
  });
});
