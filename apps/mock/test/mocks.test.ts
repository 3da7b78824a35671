import { type Effect, encodeBatch, type Message } from '@paxos/core';
import { describe, expect, it } from 'vitest';
import { createMock, EMPTY_MEMBERS, type MockOptions } from '../src/mocks.ts';

function options(extra: Partial<MockOptions> = {}) {
  const counts = { sent: 0, received: 0, latencies: [] as number[] };
  const o: MockOptions = {
    address: 'tcp://127.0.0.1:1',
    window: 3,
    batchSize: 2,
    payload: new Uint8Array([1]),
    counters: {
      sent: (n) => {
        counts.sent += n;
      },
      received: (n, latency) => {
        counts.received += n;
        if (latency !== undefined) counts.latencies.push(latency);
      },
    },
    ...extra,
  };
  return { o, counts };
}
const sends = (effects: Effect[]) =>
  effects.flatMap((e) => (e.kind === 'send' ? [{ to: e.to, message: e.message }] : []));
const ballot = { round: 1, proposerId: 1 };

describe('input mocks keep a bounded window in flight', () => {
  it('client: window commands to batchers; each reply frees one place and records its latency', () => {
    const { o, counts } = options();
    const mock = createMock('client', o);
    mock.setMembers({ ...EMPTY_MEMBERS, batchers: ['b0', 'b1'] });
    const first = sends(mock.step(0, { type: 'timer', name: 'pump' }));
    expect(first.map((s) => s.to)).toEqual(['b0', 'b1', 'b0']);
    expect(sends(mock.step(1, { type: 'timer', name: 'pump' }))).toEqual([]);
    const reply: Message = { type: 'ClientReply', clientId: o.address, requestId: 2, slot: 0 };
    const next = sends(mock.step(5, { type: 'message', from: 'u', message: reply }));
    expect(next).toHaveLength(1);
    expect(counts).toMatchObject({ sent: 4, received: 1, latencies: [5] });
    // A duplicate reply neither counts a latency nor opens a place.
    expect(sends(mock.step(6, { type: 'message', from: 'u', message: reply }))).toEqual([]);
  });

  it('proposer-to-proxy-leader: phase-2a to the slot group; the chosen-to-leader reply closes the slot', () => {
    const { o, counts } = options({ window: 1 });
    const mock = createMock('proposer-to-proxy-leader', o);
    mock.setMembers({
      ...EMPTY_MEMBERS,
      proxyLeaders: ['x'],
      acceptorGroups: new Map([[0, ['a0', 'a1', 'a2']]]),
    });
    const [p2a] = sends(mock.step(0, { type: 'timer', name: 'pump' }));
    expect(p2a?.message).toMatchObject({
      type: 'Phase2a',
      slot: 0,
      groupId: 0,
      acceptors: ['a0', 'a1', 'a2'],
    });
    const next = sends(
      mock.step(3, { type: 'message', from: 'x', message: { type: 'Chosen', slot: 0, ballot, value: null } }),
    );
    expect(next[0]?.message).toMatchObject({ type: 'Phase2a', slot: 1 });
    expect(counts).toMatchObject({ sent: 2, received: 1, latencies: [3] });
  });
  it('proxy-leader-to-acceptor: a slot closes with the last vote; lost slots expire and leave nothing behind', () => {
    const { o, counts } = options({ window: 2 });
    const mock = createMock('proxy-leader-to-acceptor', o);
    mock.setMembers({ ...EMPTY_MEMBERS, acceptorGroups: new Map([[0, ['a0', 'a1', 'a2']]]) });
    const first = sends(mock.step(0, { type: 'timer', name: 'pump' }));
    expect(first.map((s) => [s.to, (s.message as { slot: number }).slot])).toEqual([
      ['a0', 0],
      ['a1', 0],
      ['a2', 0],
      ['a0', 1],
      ['a1', 1],
      ['a2', 1],
    ]);
    const vote = (slot: number, at: number) =>
      sends(
        mock.step(at, {
          type: 'message',
          from: 'a',
          message: { type: 'Phase2b', slot, ballot, groupId: 0, acceptorId: 0 },
        }),
      );
    expect(vote(0, 1)).toEqual([]);
    expect(vote(0, 2)).toEqual([]);
    expect(counts.latencies).toEqual([]);
    // The third vote closes slot 0 and opens slot 2.
    expect(vote(0, 4).map((s) => (s.message as { slot: number }).slot)).toEqual([2, 2, 2]);
    expect(counts).toMatchObject({ received: 3, latencies: [4] });

    // Every later vote is lost: after hundreds of slots lost, at most the
    // window is remembered.
    for (let t = 10; t < 200_000; t += 500) mock.step(t, { type: 'timer', name: 'pump' });
    expect(mock.inFlight).toBeLessThanOrEqual(2);
    expect(counts.sent).toBeGreaterThan(3 * 130);
  });
});

describe('output mocks answer where the real neighbour would', () => {
  it('proxy-leader-to-proposer chooses at once: chosen to the leader, one reply per batch to the mock batcher', () => {
    const { o, counts } = options();
    const mock = createMock('proxy-leader-to-proposer', o);
    const value = {
      kind: 'batch' as const,
      batch: encodeBatch([{ clientId: 'c#1', requestId: 7, payload: new Uint8Array() }]),
    };
    const out = sends(
      mock.step(0, {
        type: 'message',
        from: 'leader',
        message: {
          type: 'Phase2a',
          slot: 4,
          ballot,
          value,
          watermark: 0,
          groupId: 0,
          acceptors: [],
          config: { id: 1, groups: [0], acceptorIds: [] },
        },
      }),
    );
    expect(out).toEqual([
      { to: 'leader', message: { type: 'Chosen', slot: 4, ballot, value: null } },
      { to: 'c#1', message: { type: 'ClientReply', clientId: 'c#1', requestId: 7, slot: 4 } },
    ]);
    expect(counts.received).toBe(1);
  });

  it('acceptor promises and votes with its group and id', () => {
    const { o } = options({ groupId: 2, acceptorId: 1 });
    const mock = createMock('acceptor', o);
    const [p1b] = sends(
      mock.step(0, {
        type: 'message',
        from: 'p',
        message: { type: 'Phase1a', ballot, fromSlot: 0, config: { id: 1, groups: [2], acceptorIds: [] } },
      }),
    );
    expect(p1b?.message).toEqual({
      type: 'Phase1b',
      ballot,
      groupId: 2,
      acceptorId: 1,
      watermark: 0,
      accepted: [],
      fromSlot: 0,
      nextSlot: 0,
      more: false,
      acceptedEnd: 0,
    });
  });
});
