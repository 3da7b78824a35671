import { Acceptor, type AcceptorState, type Effect } from '@paxos/core';
import { describe, expect, it } from 'vitest';
import { AcceptorLog, durableAcceptor, MemoryStorage, segmentName } from '../src/index.ts';
import { b, config, identity, value } from './helpers.ts';

const open = (storage: MemoryStorage, fsync = true) => AcceptorLog.open(storage, { identity, fsync });
const phase1a = (round: number) => ({ type: 'Phase1a', ballot: b(round, 9), fromSlot: 0, config }) as const;
const phase2a = (slot: number, round: number, watermark: number) =>
  ({
    type: 'Phase2a',
    slot,
    ballot: b(round, 9),
    value: value(3),
    watermark,
    groupId: identity.groupId,
    acceptors: [],
    config,
  }) as const;
const acceptorAt = (state?: AcceptorState) =>
  new Acceptor({
    address: 'tcp://127.0.0.1:12000',
    groupId: identity.groupId,
    acceptorId: identity.acceptorId,
    ...(state ? { recovered: state } : {}),
  });

describe('group commit', () => {
  it('holds the replies of a burst until one write has put every record of it on disk', () => {
    const storage = new MemoryStorage();
    const { log } = open(storage);
    const empty = storage.size(segmentName(0));
    const released: Effect[][] = [];
    const commits: (() => void)[] = [];
    const durable = durableAcceptor(acceptorAt(), log, {
      release: (effects) => released.push(effects),
      schedule: (commit) => commits.push(commit),
    });
    expect(durable.step(0, { type: 'message', from: 'p', message: phase1a(2) })).toEqual([]);
    expect(durable.step(0, { type: 'message', from: 'x', message: phase2a(5, 2, 4) })).toEqual([]);
    expect(durable.step(0, { type: 'message', from: 'x', message: phase2a(9, 2, 4) })).toEqual([]);
    // A rejected phase-2a logs nothing, but waits behind the held replies so order is kept.
    expect(durable.step(0, { type: 'message', from: 'x', message: phase2a(7, 1, 4) })).toEqual([]);
    expect(commits).toHaveLength(1); // one commit per burst
    expect(storage.size(segmentName(0))).toBe(empty);
    expect(log.uncommitted).toBe(3);
    const { appends, syncs } = storage.stats;
    commits[0]?.();
    expect(log.uncommitted).toBe(0);
    expect(storage.stats.appends - appends).toBe(1);
    expect(storage.stats.syncs - syncs).toBe(1);
    // What was released survives a crash.
    storage.crash();
    expect(open(storage).recovery.records).toBe(3);
    const sent = (released[0] ?? []).flatMap((e) => (e.kind === 'send' ? [e.message] : []));
    expect(sent.map((m) => m.type)).toEqual(['Phase1b', 'Phase2b', 'Phase2b', 'Nack']);
    // With nothing held, a step that logs nothing answers at once.
    const nack = durable.step(0, { type: 'message', from: 'x', message: phase2a(11, 1, 4) });
    expect(nack.filter((e) => e.kind === 'send')).toHaveLength(1);
  });

  it('a crash before the commit loses the records and every reply held for them', () => {
    const storage = new MemoryStorage();
    const { log } = open(storage);
    const released: Effect[][] = [];
    const durable = durableAcceptor(acceptorAt(), log, {
      release: (effects) => released.push(effects),
      schedule: () => {},
    });
    durable.step(0, { type: 'message', from: 'p', message: phase1a(2) });
    durable.step(0, { type: 'message', from: 'x', message: phase2a(5, 2, 4) });
    storage.crash();
    const { state, recovery } = open(storage);
    expect(recovery.records).toBe(0);
    expect(state.accepted).toEqual([]);
    expect(released).toEqual([]);
  });

  it('releases nothing when the commit fails: the error stops the caller, no reply for an unwritten record', () => {
    const released: Effect[][] = [];
    let commit: () => void = () => {};
    const failing = {
      promised: () => {},
      accepted: () => {},
      watermarkRaised: () => {},
      retired: () => {},
      commit: () => {
        throw new Error('ENOSPC: no space left on device, write');
      },
    };
    const durable = durableAcceptor(acceptorAt(), failing, {
      release: (effects) => released.push(effects),
      schedule: (c) => {
        commit = c;
      },
    });
    expect(durable.step(0, { type: 'message', from: 'p', message: phase1a(2) })).toEqual([]);
    expect(durable.step(0, { type: 'message', from: 'x', message: phase2a(5, 2, 0) })).toEqual([]);
    expect(durable.heldMessages).toBe(2);
    expect(() => commit()).toThrow(/ENOSPC/);
    // Nor later: a step after the failure is held too, and the next commit fails as well.
    expect(durable.step(0, { type: 'message', from: 'x', message: phase2a(7, 1, 0) })).toEqual([]);
    expect(() => commit()).toThrow(/ENOSPC/);
    expect(released).toEqual([]);
    expect(durable.heldMessages).toBe(3);
  });

  describe('watermark and retire records', () => {
    const watermarkA = (watermark: number) =>
      ({ type: 'WatermarkA', ballot: b(2, 9), watermark, config }) as const;
    const retire = () =>
      ({
        type: 'Retire',
        ballot: b(3, 9),
        groupId: identity.groupId,
        acceptorId: identity.acceptorId,
      }) as const;
    const wired = (storage: MemoryStorage, state?: AcceptorState) => {
      const { log } = open(storage);
      const released: Effect[][] = [];
      const commits: (() => void)[] = [];
      const acceptor = acceptorAt(state);
      const durable = durableAcceptor(acceptor, log, {
        release: (effects) => released.push(effects),
        schedule: (commit) => commits.push(commit),
      });
      const sent = () => released.flat().flatMap((e) => (e.kind === 'send' ? [e.message] : []));
      return { log, acceptor, durable, commits, sent };
    };

    it('holds WatermarkB and RetireB until their records are committed, then a reopened log restores both', () => {
      const storage = new MemoryStorage();
      const { log, durable, commits, sent } = wired(storage);
      durable.step(0, { type: 'message', from: 'x', message: phase2a(5, 2, 0) });
      expect(durable.step(0, { type: 'message', from: 'p', message: watermarkA(5) })).toEqual([]);
      expect(durable.step(0, { type: 'message', from: 'p', message: retire() })).toEqual([]);
      expect(log.uncommitted).toBe(3);
      expect(durable.heldMessages).toBe(3);
      commits[0]?.();
      expect(sent().map((m) => m.type)).toEqual(['Phase2b', 'WatermarkB', 'RetireB']);
      expect(sent()[1]).toMatchObject({ watermark: 5 });
      storage.crash();
      const { state } = open(storage);
      expect(state).toMatchObject({ watermark: 5, retired: true, promised: b(2, 9) });
      expect(state.accepted).toEqual([5].map((slot) => expect.objectContaining({ slot })));
    });

    it('a crash before the commit loses the watermark and retired records with the replies held for them', () => {
      const storage = new MemoryStorage();
      const { durable, sent } = wired(storage);
      durable.step(0, { type: 'message', from: 'p', message: watermarkA(7) });
      durable.step(0, { type: 'message', from: 'p', message: retire() });
      storage.crash();
      const { state, recovery } = open(storage);
      expect(recovery.records).toBe(0);
      expect(state).toMatchObject({ watermark: 0, retired: false });
      expect(sent()).toEqual([]);
    });

    it('a repeat that changes nothing logs nothing but still waits for the commit', () => {
      const storage = new MemoryStorage();
      const { log, durable, commits } = wired(storage);
      durable.step(0, { type: 'message', from: 'p', message: watermarkA(7) });
      commits[0]?.();
      expect(durable.step(0, { type: 'message', from: 'p', message: watermarkA(3) })).toEqual([]);
      expect(log.uncommitted).toBe(0);
      expect(durable.heldMessages).toBe(1);
      expect(commits).toHaveLength(2);
      commits[1]?.();
      durable.step(0, { type: 'message', from: 'p', message: retire() });
      expect(log.uncommitted).toBe(1);
      commits[2]?.();
      expect(durable.step(0, { type: 'message', from: 'p', message: retire() })).toEqual([]);
      expect(log.uncommitted).toBe(0);
      expect(durable.heldMessages).toBe(1);
      expect(commits).toHaveLength(4);
    });

    it('a retired acceptor restored from its log refuses every phase message with Nack(retired)', () => {
      const storage = new MemoryStorage();
      const first = wired(storage);
      first.durable.step(0, { type: 'message', from: 'p', message: phase1a(2) });
      first.durable.step(0, { type: 'message', from: 'p', message: retire() });
      first.commits[0]?.();
      const { state } = open(storage);
      const { acceptor, durable, commits, sent } = wired(storage, state);
      expect(acceptor.retired).toBe(true);
      // Refusals change nothing durable: answered at once.
      const refused = [phase1a(5), phase2a(6, 5, 0), watermarkA(9)].map((message) =>
        durable
          .step(0, { type: 'message', from: 'p', message })
          .flatMap((e) => (e.kind === 'send' ? [e.message] : [])),
      );
      for (const [m] of refused) expect(m).toMatchObject({ type: 'Nack', retired: true, promised: b(2, 9) });
      expect(commits).toEqual([]);
      expect(sent()).toEqual([]);
      expect(acceptor.promised).toEqual(b(2, 9));
      expect(acceptor.accepted(6)).toBeUndefined();
      expect(acceptor.watermark).toBe(0);
    });
  });
});
