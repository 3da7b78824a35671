import { describe, expect, it } from 'vitest';
import { type Ballot, encodeBatch, ProxyLeader, type Value } from '../src/index.ts';
import { deliver, fire, sends, sendsOf } from './helpers.ts';

const ballot: Ballot = { round: 2, proposerId: 1 };
const acceptors = ['g0/0', 'g0/1', 'g0/2'];
const value: Value = {
  kind: 'batch',
  batch: encodeBatch([{ clientId: 'c', requestId: 7, payload: new Uint8Array([1]) }]),
};
const phase2a = (slot: number, b: Ballot = ballot) =>
  ({
    type: 'Phase2a',
    slot,
    ballot: b,
    value,
    watermark: 5,
    groupId: 0,
    acceptors,
    config: { id: 3, groups: [0], acceptorIds: [] },
  }) as const;
const vote = (slot: number, acceptorId: number, b: Ballot = ballot) =>
  ({ type: 'Phase2b', slot, ballot: b, groupId: 0, acceptorId }) as const;

function proxy() {
  return new ProxyLeader({
    address: 'proxy',
    members: { unbatchers: ['u0', 'u1'] },
    timing: { thriftyTimeoutMs: 10 },
  });
}

describe('ProxyLeader', () => {
  it('is thrifty: phase-2a to f+1 acceptors of the slot group, the rest only after the timeout', () => {
    const p = proxy();
    const first = sendsOf(deliver(p, 'leader', phase2a(1), 0), 'Phase2a');
    expect(first.map((s) => s.to)).toEqual(['g0/1', 'g0/2']);
    expect(first[0]?.message).toMatchObject({ slot: 1, watermark: 5, acceptors: [] });
    const later = sendsOf(fire(p, 'thrifty', 10), 'Phase2a');
    expect(later.map((s) => s.to)).toEqual(['g0/0']);
  });

  it('passes over an acceptor that let a thrifty send time out, until it votes or its suspicion ends', () => {
    const p = new ProxyLeader({
      address: 'proxy',
      members: { unbatchers: ['u0'] },
      timing: { thriftyTimeoutMs: 10, suspectMs: 100 },
    });
    const to = (effects: ReturnType<typeof deliver>) => sendsOf(effects, 'Phase2a').map((s) => s.to);
    // Slot 1 goes to acceptors 1 and 2; 1 answers, 2 does not: 2 becomes suspect at the scan.
    expect(to(deliver(p, 'leader', phase2a(1), 0))).toEqual(['g0/1', 'g0/2']);
    deliver(p, 'g0/1', vote(1, 1), 5);
    expect(sendsOf(fire(p, 'thrifty', 10), 'Phase2a').map((s) => s.to)).toEqual(['g0/0']);
    // Slots that would rotate onto acceptor 2 go to the other two instead.
    expect(to(deliver(p, 'leader', phase2a(2), 20))).toEqual(['g0/0', 'g0/1']);
    expect(to(deliver(p, 'leader', phase2a(4), 20))).toEqual(['g0/1', 'g0/0']);
    // A vote from it (for the escalated slot) clears the suspicion at once.
    deliver(p, 'g0/2', vote(1, 2), 30);
    expect(to(deliver(p, 'leader', phase2a(5), 30))).toEqual(['g0/2', 'g0/0']);
  });

  it('suspicion ends after suspectMs, and with more than f suspected the send still reaches f+1', () => {
    const p = new ProxyLeader({
      address: 'proxy',
      members: { unbatchers: ['u0'] },
      timing: { thriftyTimeoutMs: 10, suspectMs: 100 },
    });
    const to = (effects: ReturnType<typeof deliver>) => sendsOf(effects, 'Phase2a').map((s) => s.to);
    deliver(p, 'leader', phase2a(0), 0); // to 0 and 1; neither answers
    fire(p, 'thrifty', 10); // both suspected until 110
    expect(to(deliver(p, 'leader', phase2a(3), 20))).toEqual(['g0/2', 'g0/0']);
    expect(to(deliver(p, 'leader', phase2a(6), 150))).toEqual(['g0/0', 'g0/1']);
  });

  it('counts distinct acceptors: a duplicated phase-2b does not make a quorum', () => {
    const p = proxy();
    deliver(p, 'leader', phase2a(1));
    expect(sends(deliver(p, 'g0/1', vote(1, 1)))).toEqual([]);
    expect(sends(deliver(p, 'g0/1', vote(1, 1)))).toEqual([]);
    const chosen = sendsOf(deliver(p, 'g0/2', vote(1, 2)), 'Chosen');
    expect(chosen).toEqual([
      { to: 'u0', message: { type: 'Chosen', slot: 1, ballot, value } },
      { to: 'leader', message: { type: 'Chosen', slot: 1, ballot, value: null } },
    ]);
    expect(p.inflightSlots).toBe(0);
  });

  it('ignores votes from the wrong ballot, the wrong group or an address that is not that acceptor', () => {
    const p = proxy();
    deliver(p, 'leader', phase2a(1));
    deliver(p, 'g0/0', vote(1, 0, { round: 1, proposerId: 1 }));
    deliver(p, 'g0/0', { type: 'Phase2b', slot: 1, ballot, groupId: 1, acceptorId: 0 });
    deliver(p, 'impostor', vote(1, 1));
    expect(sends(deliver(p, 'g0/0', vote(1, 0)))).toEqual([]);
    expect(sendsOf(deliver(p, 'g0/2', vote(1, 2)), 'Chosen')).toHaveLength(2);
  });

  it('with acceptor ids in the stamp (a replaced acceptor), counts votes by the id listed at each address', () => {
    const p = proxy();
    deliver(p, 'leader', { ...phase2a(1), config: { id: 3, groups: [0], acceptorIds: [0, 1, 5] } });
    // Acceptor 5 sits at g0/2 (index 2); id 2 is not in this configuration.
    expect(sends(deliver(p, 'g0/2', vote(1, 2)))).toEqual([]);
    expect(sends(deliver(p, 'g0/1', vote(1, 1)))).toEqual([]);
    expect(sendsOf(deliver(p, 'g0/2', vote(1, 5)), 'Chosen')).toHaveLength(2);
  });

  it('rotates the thrifty f+1 over the group’s own slots: with three groups of three, every acceptor gets its share', () => {
    const p = proxy();
    const chosenBy = new Set<string>();
    // Group 0 of three owns slots 0, 3, 6, …: rotating by the slot itself would pick the same two.
    for (const slot of [0, 3, 6]) {
      const out = deliver(p, 'leader', {
        ...phase2a(slot),
        config: { id: 3, groups: [0, 1, 2], acceptorIds: [] },
      });
      for (const s of sendsOf(out, 'Phase2a')) chosenBy.add(s.to);
    }
    expect([...chosenBy].sort()).toEqual(acceptors);
  });

  it('forwards a nack with the higher ballot to the leader and forgets the slot', () => {
    const p = proxy();
    deliver(p, 'leader', phase2a(3));
    const promised = { round: 9, proposerId: 2 };
    const out = sends(deliver(p, 'g0/0', { type: 'Nack', slot: 3, ballot, promised, retired: false }));
    expect(out).toEqual([
      { to: 'leader', message: { type: 'Nack', slot: 3, ballot, promised, retired: false } },
    ]);
    expect(p.inflightSlots).toBe(0);
  });

  it("forwards a retired acceptor's nack as it came, retired flag included", () => {
    const p = proxy();
    deliver(p, 'leader', phase2a(3));
    const promised = { round: 0, proposerId: 0 };
    const out = sends(deliver(p, 'g0/0', { type: 'Nack', slot: 3, ballot, promised, retired: true }));
    expect(out).toEqual([
      { to: 'leader', message: { type: 'Nack', slot: 3, ballot, promised, retired: true } },
    ]);
  });

  it('a resend from the leader goes to every acceptor; announcements rotate over unbatchers', () => {
    const p = proxy();
    deliver(p, 'leader', phase2a(1));
    expect(sendsOf(deliver(p, 'leader', phase2a(1)), 'Phase2a')).toHaveLength(3);
    deliver(p, 'g0/0', vote(1, 0));
    deliver(p, 'g0/1', vote(1, 1));
    deliver(p, 'leader', phase2a(2));
    deliver(p, 'g0/0', vote(2, 0));
    const out = sendsOf(deliver(p, 'g0/2', vote(2, 2)), 'Chosen');
    expect(out[0]?.to).toBe('u1');
  });
});
