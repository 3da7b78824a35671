import { describe, expect, it } from 'vitest';
import { Acceptor, type Ballot, NOOP, type Value } from '../src/index.ts';
import { deliver, sends, sendsOf } from './helpers.ts';

const b = (round: number, proposerId: number): Ballot => ({ round, proposerId });
const value: Value = {
  kind: 'batch',
  commands: [{ clientId: 'c', requestId: 1, payload: new Uint8Array([124]) }],
};
const phase2a = (slot: number, ballot: Ballot, v: Value = value, watermark = 0) =>
  ({ type: 'Phase2a', slot, ballot, value: v, watermark, groupId: 0, acceptors: [] }) as const;

describe('Acceptor', () => {
  it('promises a higher ballot in phase 1 and reports what it accepted at or above the asked slot', () => {
    const a = new Acceptor({ address: 'a', groupId: 0, acceptorId: 1 });
    deliver(a, 'proxy', phase2a(3, b(1, 1)));
    deliver(a, 'proxy', phase2a(7, b(1, 1), NOOP));
    const [reply] = sendsOf(deliver(a, 'p2', { type: 'Phase1a', ballot: b(2, 2), fromSlot: 4 }), 'Phase1b');
    expect(reply?.to).toBe('p2');
    expect(reply?.message).toMatchObject({ ballot: b(2, 2), groupId: 0, acceptorId: 1, watermark: 0 });
    expect(reply?.message.accepted.map((e) => e.slot)).toEqual([7]);
    expect(a.promised).toEqual(b(2, 2));
  });

  it('nacks phase 1 and phase 2 below its promise, naming the promised ballot', () => {
    const a = new Acceptor({ address: 'a', groupId: 0, acceptorId: 0 });
    deliver(a, 'p2', { type: 'Phase1a', ballot: b(5, 2), fromSlot: 0 });
    const [nack1] = sends(deliver(a, 'p1', { type: 'Phase1a', ballot: b(5, 1), fromSlot: 0 }));
    expect(nack1?.message).toEqual({ type: 'Nack', slot: -1, ballot: b(5, 1), promised: b(5, 2) });
    const [nack2] = sends(deliver(a, 'proxy', phase2a(9, b(4, 9))));
    expect(nack2?.message).toEqual({ type: 'Nack', slot: 9, ballot: b(4, 9), promised: b(5, 2) });
    expect(a.accepted(9)).toBeUndefined();
  });

  it('accepts at or above its promise, votes, overwrites with a higher ballot and is idempotent', () => {
    const a = new Acceptor({ address: 'a', groupId: 1, acceptorId: 2 });
    const [vote] = sends(deliver(a, 'proxy', phase2a(4, b(1, 1))));
    expect(vote?.message).toEqual({ type: 'Phase2b', slot: 4, ballot: b(1, 1), groupId: 1, acceptorId: 2 });
    expect(sends(deliver(a, 'proxy', phase2a(4, b(1, 1))))).toHaveLength(1);
    deliver(a, 'proxy', phase2a(4, b(3, 1), NOOP));
    expect(a.accepted(4)).toEqual({ slot: 4, ballot: b(3, 1), value: NOOP });
    expect(a.promised).toEqual(b(3, 1));
  });

  it('remembers the highest watermark and leaves chosen slots out of phase-1b', () => {
    const a = new Acceptor({ address: 'a', groupId: 0, acceptorId: 0 });
    deliver(a, 'proxy', phase2a(0, b(1, 1), value, 0));
    deliver(a, 'proxy', phase2a(2, b(1, 1), value, 2));
    deliver(a, 'proxy', phase2a(1, b(1, 1), value, 1));
    expect(a.watermark).toBe(2);
    const [reply] = sendsOf(deliver(a, 'p', { type: 'Phase1a', ballot: b(2, 1), fromSlot: 0 }), 'Phase1b');
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
});
