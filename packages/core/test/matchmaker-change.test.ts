/**
 * Matchmaker reconfiguration driven by proposers (docs/design/reconfiguration.md §7), with real matchmakers: a leader
 * replaces one matchmaker while it leads, a proposer that missed it follows, and a change whose
 * proposer vanished half way is finished by the next one. The simulator sweeps it under faults.
 */
import { describe, expect, it } from 'vitest';
import {
  type Address,
  type Configuration,
  configSpecOf,
  type Effect,
  Matchmaker,
  Proposer,
  type Role,
} from '../src/index.ts';
import { deliver, fire, promise, sends } from './helpers.ts';

const config: Configuration = { f: 1, groups: [{ groupId: 0, acceptors: ['a0', 'a1', 'a2'] }] };
const genesis = configSpecOf(config, 0);
const FIRST = ['m0', 'm1', 'm2'];

function cluster() {
  const roles = new Map<Address, Role>();
  const matchmakers = new Map<Address, Matchmaker>();
  FIRST.forEach((address, id) => {
    const m = new Matchmaker({ address, matchmakerId: id, genesis });
    matchmakers.set(address, m);
    roles.set(address, m);
  });
  const replacement = new Matchmaker({ address: 'm3', matchmakerId: 3 });
  matchmakers.set('m3', replacement);
  roles.set('m3', replacement);
  const proposer = (address: Address, proposerId: number) => {
    const p = new Proposer({
      address,
      proposerId,
      config,
      members: { proposers: ['p1', 'p2'], batchers: [], proxyLeaders: [] },
      random: () => 0.5,
      matchmakers: { addresses: FIRST, f: 1 },
    });
    roles.set(address, p);
    return p;
  };
  return { roles, matchmakers, proposer };
}

/** Delivers what `sender`'s step sent, and every reply, between proposers and matchmakers (acceptors answer nothing here). */
function stepAs(
  c: ReturnType<typeof cluster>,
  sender: Address,
  effects: Effect[],
  drop?: (to: Address, type: string) => boolean,
): void {
  const queue = sends(effects).map((s) => ({ ...s, from: sender }));
  for (let i = 0; i < queue.length && i < 10_000; i++) {
    const { to, message, from } = queue[i] as (typeof queue)[number];
    const role = c.roles.get(to);
    if (role === undefined || drop?.(to, message.type)) continue;
    for (const s of sends(role.step(0, { type: 'message', from, message }))) queue.push({ ...s, from: to });
  }
}

/** A proposer elected through the matchmakers (acceptors' promises given by hand). */
function elect(c: ReturnType<typeof cluster>, p: Proposer): void {
  stepAs(c, p.address, fire(p, 'election'));
  const b = p.currentBallot;
  config.groups[0]?.acceptors.forEach((a, acceptorId) => {
    deliver(p, a, promise(b, 0, acceptorId));
  });
  expect(p.status).toBe('leader');
}

describe('Proposer: replacing a matchmaker (stop, bootstrap, choose)', () => {
  it('a leader moves to the target set while it leads; the replacement serves from the old set state', () => {
    const c = cluster();
    const p1 = c.proposer('p1', 1);
    elect(c, p1);
    stepAs(c, 'p1', p1.step(0, { type: 'matchmakers', addresses: ['m0', 'm1', 'm3'] }));
    expect(p1.matchmakerSet).toEqual({ epoch: 1, addresses: ['m0', 'm1', 'm3'] });
    const m3 = c.matchmakers.get('m3')?.state;
    expect(m3?.epoch).toBe(1);
    // It holds the configuration recorded for p1's ballot by the old set.
    expect(m3?.entries.map((e) => e.ballot)).toContainEqual(p1.currentBallot);
    expect(c.matchmakers.get('m2')?.state).toMatchObject({ epoch: 0, stopped: true });
    // The next election goes through the new set.
    const p2 = c.proposer('p2', 2);
    stepAs(c, 'p2', p2.step(0, { type: 'matchmakers', addresses: ['m0', 'm1', 'm3'] }));
    elect(c, p2);
    expect(p2.matchmakerSet?.epoch).toBe(1);
    expect(c.matchmakers.get('m3')?.state?.maxBallot).toEqual(p2.currentBallot);
  });

  it('a proposer that never heard of the change learns the new set from a stopped matchmaker', () => {
    const c = cluster();
    const p1 = c.proposer('p1', 1);
    elect(c, p1);
    stepAs(c, 'p1', p1.step(0, { type: 'matchmakers', addresses: ['m0', 'm1', 'm3'] }));
    const p2 = c.proposer('p2', 2); // starts from epoch 0's set, as after a restart with a stale hint
    elect(c, p2);
    expect(p2.matchmakerSet).toEqual({ epoch: 1, addresses: ['m0', 'm1', 'm3'] });
  });

  it('a change whose proposer vanished after the vote is finished by the next candidate, with the same set', () => {
    const c = cluster();
    const p1 = c.proposer('p1', 1);
    elect(c, p1);
    // p1's EpochChosen and the replies to its votes are lost: it never learns the outcome.
    stepAs(
      c,
      'p1',
      p1.step(0, { type: 'matchmakers', addresses: ['m0', 'm1', 'm3'] }),
      (to, type) => type === 'EpochChosen' || (to === 'p1' && type === 'EpochAccepted'),
    );
    expect(p1.matchmakerSet?.epoch).toBe(0);
    const p2 = c.proposer('p2', 2);
    elect(c, p2);
    // p2's MatchA got Stopped with no successor known: it ran the change, found p1's vote, and
    // chose that set (not its own, which would keep m2).
    expect(p2.matchmakerSet).toEqual({ epoch: 1, addresses: ['m0', 'm1', 'm3'] });
  });
});
