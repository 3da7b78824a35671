import { describe, expect, it } from 'vitest';
import {
  Acceptor,
  type Ballot,
  type ConfigStamp,
  encodeBatch,
  NOOP,
  type Phase1b,
  UNSTAMPED,
  type Value,
} from '../src/index.ts';
import { deliver, sends, sendsOf } from './helpers.ts';

const b = (round: number, proposerId: number): Ballot => ({ round, proposerId });
const value: Value = {
  kind: 'batch',
  batch: encodeBatch([{ clientId: 'c', requestId: 1, payload: new Uint8Array([124]) }]),
};
/** One group owns every slot, so any slot is the acceptor's to accept. */
const solo: ConfigStamp = { id: 7, groups: [0], acceptorIds: [] };
const solo1: ConfigStamp = { id: 8, groups: [1], acceptorIds: [] };
const phase2a = (slot: number, ballot: Ballot, v: Value = value, watermark = 0, config = solo) =>
  ({ type: 'Phase2a', slot, ballot, value: v, watermark, groupId: 0, acceptors: [], config }) as const;
const phase1a = (ballot: Ballot, fromSlot: number, config = solo) =>
  ({ type: 'Phase1a', ballot, fromSlot, config }) as const;

describe('Acceptor', () => {
  it('promises a higher ballot in phase 1 and reports what it accepted at or above the asked slot', () => {
    const a = new Acceptor({ address: 'a', groupId: 0, acceptorId: 1 });
    deliver(a, 'proxy', phase2a(3, b(1, 1)));
    deliver(a, 'proxy', phase2a(7, b(1, 1), NOOP));
    const [reply] = sendsOf(deliver(a, 'p2', phase1a(b(2, 2), 4)), 'Phase1b');
    expect(reply?.to).toBe('p2');
    expect(reply?.message).toMatchObject({ ballot: b(2, 2), groupId: 0, acceptorId: 1, watermark: 0 });
    expect(reply?.message.accepted.map((e) => e.slot)).toEqual([7]);
    expect(a.promised).toEqual(b(2, 2));
  });

  it('nacks phase 1 and phase 2 below its promise, naming the promised ballot', () => {
    const a = new Acceptor({ address: 'a', groupId: 0, acceptorId: 0 });
    deliver(a, 'p2', phase1a(b(5, 2), 0));
    const [nack1] = sends(deliver(a, 'p1', phase1a(b(5, 1), 0)));
    expect(nack1?.message).toEqual({
      type: 'Nack',
      slot: -1,
      ballot: b(5, 1),
      promised: b(5, 2),
      retired: false,
    });
    const [nack2] = sends(deliver(a, 'proxy', phase2a(9, b(4, 9))));
    expect(nack2?.message).toEqual({
      type: 'Nack',
      slot: 9,
      ballot: b(4, 9),
      promised: b(5, 2),
      retired: false,
    });
    expect(a.accepted(9)).toBeUndefined();
  });

  it('accepts at or above its promise, votes, overwrites with a higher ballot and is idempotent', () => {
    const a = new Acceptor({ address: 'a', groupId: 1, acceptorId: 2 });
    const [vote] = sends(deliver(a, 'proxy', phase2a(4, b(1, 1), value, 0, solo1)));
    expect(vote?.message).toEqual({ type: 'Phase2b', slot: 4, ballot: b(1, 1), groupId: 1, acceptorId: 2 });
    expect(sends(deliver(a, 'proxy', phase2a(4, b(1, 1), value, 0, solo1)))).toHaveLength(1);
    deliver(a, 'proxy', phase2a(4, b(3, 1), NOOP, 0, solo1));
    expect(a.accepted(4)).toEqual({ slot: 4, ballot: b(3, 1), value: NOOP });
    expect(a.promised).toEqual(b(3, 1));
  });

  it('remembers the highest watermark and leaves chosen slots out of phase-1b', () => {
    const a = new Acceptor({ address: 'a', groupId: 0, acceptorId: 0 });
    deliver(a, 'proxy', phase2a(0, b(1, 1), value, 0));
    deliver(a, 'proxy', phase2a(2, b(1, 1), value, 2));
    deliver(a, 'proxy', phase2a(1, b(1, 1), value, 1));
    expect(a.watermark).toBe(2);
    const [reply] = sendsOf(deliver(a, 'p', phase1a(b(2, 1), 0)), 'Phase1b');
    expect(reply?.message.watermark).toBe(2);
    expect(reply?.message.accepted.map((e) => e.slot)).toEqual([2]);
  });

  it('keeps in memory only slots at or above the watermark (the durable log keeps the rest)', () => {
    const a = new Acceptor({ address: 'a', groupId: 0, acceptorId: 0 });
    for (let slot = 0; slot < 100; slot++)
      deliver(a, 'proxy', phase2a(slot, b(1, 1), value, Math.max(0, slot - 5)));
    expect(a.acceptedInMemory).toBeLessThanOrEqual(6);
    expect(a.accepted(99)).toBeDefined();
    expect(a.accepted(10)).toBeUndefined();
    // A late phase-2a below the watermark is still answered (its value is the chosen one).
    expect(sendsOf(deliver(a, 'proxy', phase2a(3, b(1, 1))), 'Phase2b')).toHaveLength(1);
  });

  it('pages phase 1: slot order, at most a page of entries, the next page from nextSlot', () => {
    const a = new Acceptor({ address: 'a', groupId: 0, acceptorId: 0, phase1PageEntries: 2 });
    for (const slot of [9, 3, 5, 7, 1]) deliver(a, 'proxy', phase2a(slot, b(1, 1)));
    const page = (from: number): Phase1b => {
      const [reply] = sendsOf(deliver(a, 'p', phase1a(b(2, 1), from)), 'Phase1b');
      if (reply === undefined) throw new Error('no phase-1b');
      return reply.message;
    };
    const first = page(0);
    expect(first.accepted.map((e) => e.slot)).toEqual([1, 3]);
    expect(first).toMatchObject({ fromSlot: 0, more: true, nextSlot: 5, acceptedEnd: 10 });
    const second = page(first.nextSlot);
    expect(second.accepted.map((e) => e.slot)).toEqual([5, 7]);
    expect(second).toMatchObject({ fromSlot: 5, more: true, nextSlot: 9 });
    const last = page(second.nextSlot);
    expect(last.accepted.map((e) => e.slot)).toEqual([9]);
    expect(last.more).toBe(false);
  });

  it('keeps a page far below the frame limit however large the accepted values are', () => {
    const big: Value = {
      kind: 'batch',
      batch: encodeBatch([{ clientId: 'c', requestId: 1, payload: new Uint8Array(300_000) }]),
    };
    const a = new Acceptor({ address: 'a', groupId: 0, acceptorId: 0 });
    for (let slot = 0; slot < 100; slot++) deliver(a, 'proxy', phase2a(slot, b(1, 1), big));
    const [reply] = sendsOf(deliver(a, 'p', phase1a(b(2, 1), 0)), 'Phase1b');
    expect(reply?.message.more).toBe(true);
    expect(reply?.message.accepted.length).toBeLessThanOrEqual(4);
    expect(reply?.message.accepted.length).toBeGreaterThan(0);
  });

  it('pins the first configuration it serves and refuses another (no promise, no vote)', () => {
    const a = new Acceptor({ address: 'a', groupId: 0, acceptorId: 0 });
    deliver(a, 'p1', phase1a(b(1, 1), 0));
    expect(a.config).toEqual(solo);
    const other: ConfigStamp = { id: 99, groups: [0], acceptorIds: [] };
    const refused = deliver(a, 'p2', phase1a(b(5, 2), 0, other));
    expect(sends(refused)).toEqual([]);
    expect(refused).toContainEqual({ kind: 'metric', name: 'rejected_messages', op: 'inc', value: 1 });
    expect(a.promised).toEqual(b(1, 1));
    expect(sends(deliver(a, 'proxy', phase2a(3, b(5, 2), value, 0, other)))).toEqual([]);
    expect(a.accepted(3)).toBeUndefined();
    // An unstamped message (a peer from before configurations were stamped) is refused too.
    expect(sends(deliver(a, 'p2', phase1a(b(6, 2), 0, UNSTAMPED)))).toEqual([]);
  });

  it('refuses a slot its group does not own, whoever sends it', () => {
    const two: ConfigStamp = { id: 5, groups: [0, 1], acceptorIds: [] };
    const a = new Acceptor({ address: 'a', groupId: 1, acceptorId: 0 });
    expect(sendsOf(deliver(a, 'proxy', phase2a(3, b(1, 1), value, 0, two)), 'Phase2b')).toHaveLength(1);
    const refused = deliver(a, 'proxy', phase2a(4, b(1, 1), value, 0, two));
    expect(sends(refused)).toEqual([]);
    expect(a.accepted(4)).toBeUndefined();
  });

  it('under matchmakers, serves each ballot in its own configuration: no pin, but refuses one that does not list it', () => {
    const a = new Acceptor({ address: 'a', groupId: 0, acceptorId: 3 });
    const withMe: ConfigStamp = { id: 11, groups: [0], acceptorIds: [0, 1, 3] };
    const grown: ConfigStamp = { id: 12, groups: [0, 1], acceptorIds: [0, 1, 3] };
    expect(sendsOf(deliver(a, 'p1', phase1a(b(1, 1), 0, withMe)), 'Phase1b')).toHaveLength(1);
    // Another configuration in a later ballot is served too (matchmakers recorded it first).
    expect(sendsOf(deliver(a, 'proxy', phase2a(2, b(2, 1), value, 0, grown)), 'Phase2b')).toHaveLength(1);
    expect(a.config).toBeNull();
    // A configuration whose group 0 is [0, 1, 2] (before this acceptor replaced acceptor 2) gets nothing.
    const without: ConfigStamp = { id: 13, groups: [0], acceptorIds: [0, 1, 2] };
    const refused = deliver(a, 'p2', phase1a(b(5, 2), 0, without));
    expect(sends(refused)).toEqual([]);
    expect(refused).toContainEqual({ kind: 'metric', name: 'rejected_messages', op: 'inc', value: 1 });
    expect(sends(deliver(a, 'proxy', phase2a(4, b(5, 2), value, 0, without)))).toEqual([]);
    expect(a.promised).toEqual(b(2, 1));
  });

  it('recovers its pinned configuration with its state', () => {
    const a = new Acceptor({
      address: 'a',
      groupId: 0,
      acceptorId: 0,
      recovered: { promised: b(3, 1), watermark: 0, accepted: [], config: solo },
    });
    expect(sends(deliver(a, 'p', phase1a(b(4, 1), 0, { id: 1234, groups: [0], acceptorIds: [] })))).toEqual(
      [],
    );
    expect(sendsOf(deliver(a, 'p', phase1a(b(4, 1), 0)), 'Phase1b')).toHaveLength(1);
  });

  describe('durable watermark (WatermarkA → WatermarkB)', () => {
    const watermarkA = (watermark: number, ballot = b(1, 1), config = solo) =>
      ({ type: 'WatermarkA', ballot, watermark, config }) as const;

    it('raises the watermark, prunes below it as a phase-2a does, and answers with it', () => {
      const a = new Acceptor({ address: 'a', groupId: 0, acceptorId: 2 });
      for (let slot = 0; slot < 10; slot++) deliver(a, 'proxy', phase2a(slot, b(1, 1)));
      const out = sends(deliver(a, 'p', watermarkA(6)));
      expect(out).toEqual([
        { to: 'p', message: { type: 'WatermarkB', groupId: 0, acceptorId: 2, watermark: 6 } },
      ]);
      expect(a.watermark).toBe(6);
      expect(a.accepted(5)).toBeUndefined();
      expect(a.accepted(6)).toBeDefined();
      const [page] = sendsOf(deliver(a, 'p', phase1a(b(2, 1), 0)), 'Phase1b');
      expect(page?.message.watermark).toBe(6);
      expect(page?.message.accepted.map((e) => e.slot)).toEqual([6, 7, 8, 9]);
    });

    it('never lowers it: a lower one is answered with the watermark it holds', () => {
      const a = new Acceptor({ address: 'a', groupId: 0, acceptorId: 0 });
      deliver(a, 'p', watermarkA(8));
      const [reply] = sendsOf(deliver(a, 'p', watermarkA(3)), 'WatermarkB');
      expect(reply?.message.watermark).toBe(8);
      expect(a.watermark).toBe(8);
    });

    it('leaves the promise alone and needs no ballot at or above it (what is chosen is chosen)', () => {
      const a = new Acceptor({ address: 'a', groupId: 0, acceptorId: 0 });
      deliver(a, 'p', phase1a(b(5, 1), 0));
      const [reply] = sendsOf(deliver(a, 'p', watermarkA(4, b(2, 2))), 'WatermarkB');
      expect(reply?.message.watermark).toBe(4);
      expect(a.promised).toEqual(b(5, 1));
    });

    it('is admitted as a phase-1a is: pins the first stamp, refuses another configuration or group', () => {
      const a = new Acceptor({ address: 'a', groupId: 0, acceptorId: 0 });
      deliver(a, 'p', watermarkA(1));
      expect(a.config).toEqual(solo);
      const refused = deliver(a, 'p', watermarkA(9, b(1, 1), { id: 99, groups: [0], acceptorIds: [] }));
      expect(sends(refused)).toEqual([]);
      expect(refused).toContainEqual({ kind: 'metric', name: 'rejected_messages', op: 'inc', value: 1 });
      expect(a.watermark).toBe(1);
      const b1 = new Acceptor({ address: 'a', groupId: 0, acceptorId: 0 });
      expect(sends(deliver(b1, 'p', watermarkA(9, b(1, 1), solo1)))).toEqual([]);
      expect(b1.watermark).toBe(0);
      expect(b1.config).toBeNull();
    });
  });

  describe('retirement (Retire → RetireB)', () => {
    const retire = (groupId = 0, acceptorId = 1) =>
      ({ type: 'Retire', ballot: b(7, 1), groupId, acceptorId }) as const;
    const nack = (slot: number, ballot: Ballot, promised: Ballot) =>
      ({ type: 'Nack', slot, ballot, promised, retired: true }) as const;

    it('retires when addressed to its own identity and answers RetireB, again for a second Retire', () => {
      const a = new Acceptor({ address: 'a', groupId: 0, acceptorId: 1 });
      expect(a.retired).toBe(false);
      expect(sends(deliver(a, 'p', retire()))).toEqual([
        { to: 'p', message: { type: 'RetireB', groupId: 0, acceptorId: 1 } },
      ]);
      expect(a.retired).toBe(true);
      expect(sendsOf(deliver(a, 'q', retire()), 'RetireB')).toHaveLength(1);
    });

    it('refuses a Retire for another identity (its replacement, another group)', () => {
      const a = new Acceptor({ address: 'a', groupId: 0, acceptorId: 1 });
      for (const m of [retire(0, 3), retire(1, 1)]) {
        const refused = deliver(a, 'p', m);
        expect(sends(refused)).toEqual([]);
        expect(refused).toContainEqual({ kind: 'metric', name: 'rejected_messages', op: 'inc', value: 1 });
      }
      expect(a.retired).toBe(false);
    });

    it('then answers every phase-1a, phase-2a and watermark with Nack(retired), never promising or voting', () => {
      const a = new Acceptor({ address: 'a', groupId: 0, acceptorId: 1 });
      deliver(a, 'p', phase1a(b(2, 1), 0));
      deliver(a, 'proxy', phase2a(0, b(2, 1)));
      deliver(a, 'p', retire());
      expect(sends(deliver(a, 'p', phase1a(b(9, 2), 0)))).toEqual([
        { to: 'p', message: nack(-1, b(9, 2), b(2, 1)) },
      ]);
      expect(sends(deliver(a, 'proxy', phase2a(1, b(9, 2))))).toEqual([
        { to: 'proxy', message: nack(1, b(9, 2), b(2, 1)) },
      ]);
      expect(
        sends(deliver(a, 'p', { type: 'WatermarkA', ballot: b(9, 2), watermark: 1, config: solo })),
      ).toEqual([{ to: 'p', message: nack(-1, b(9, 2), b(2, 1)) }]);
      // Even a message of another configuration gets the retired answer: it is checked first.
      expect(
        sendsOf(deliver(a, 'p', phase1a(b(9, 2), 0, { id: 99, groups: [0], acceptorIds: [] })), 'Nack'),
      ).toHaveLength(1);
      expect(a.promised).toEqual(b(2, 1));
      expect(a.accepted(1)).toBeUndefined();
      expect(a.watermark).toBe(0);
    });

    it('stays retired when restored from its recovered state', () => {
      const a = new Acceptor({
        address: 'a',
        groupId: 0,
        acceptorId: 1,
        recovered: { promised: b(3, 1), watermark: 4, accepted: [], config: solo, retired: true },
      });
      expect(a.retired).toBe(true);
      expect(sends(deliver(a, 'p', phase1a(b(4, 1), 0)))).toEqual([
        { to: 'p', message: nack(-1, b(4, 1), b(3, 1)) },
      ]);
      expect(a.promised).toEqual(b(3, 1));
    });
  });
});
