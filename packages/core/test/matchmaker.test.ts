import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Ballot,
  type ConfigSpec,
  compareBallots,
  configSpecId,
  type Effect,
  Matchmaker,
  type MatchmakerState,
  type Message,
  ZERO_BALLOT,
} from '../src/index.ts';
import { deliver, sends } from './helpers.ts';

const b = (round: number, proposerId = 1): Ballot => ({ round, proposerId });
const spec = (version: number, ...acceptorIds: number[][]): ConfigSpec => ({
  f: 1,
  version,
  groups: acceptorIds.map((ids, groupId) => ({ groupId, acceptorIds: ids })),
});
const GENESIS = spec(1, [0, 1, 2]);
const TWO_GROUPS = spec(2, [0, 1, 2], [0, 1, 2]);
const REPLACED = spec(3, [0, 1, 3], [0, 1, 2]);

const matchA = (ballot: Ballot, s: ConfigSpec = TWO_GROUPS, epoch = 0) =>
  ({ type: 'MatchA', epoch, ballot, spec: s }) as const;
const garbageA = (gcBallot: Ballot, startSlot: number, epoch = 0, spec = GENESIS) =>
  ({ type: 'GarbageA', epoch, gcBallot, startSlot, spec }) as const;

const fresh = () => new Matchmaker({ address: 'mm-1', matchmakerId: 1, genesis: GENESIS });
/** The one message a step sent (to the proposer `p`). */
function reply(effects: Effect[]): Message {
  const out = sends(effects);
  expect(out).toHaveLength(1);
  expect(out[0]?.to).toBe('p');
  return out[0]?.message as Message;
}

describe('Matchmaker', () => {
  it('starts from genesis with the initial configuration at ballot (0,0), start slot 0', () => {
    expect(fresh().state).toEqual({
      epoch: 0,
      gcBallot: ZERO_BALLOT,
      maxBallot: ZERO_BALLOT,
      entries: [{ ballot: ZERO_BALLOT, spec: GENESIS, startSlot: 0 }],
      stopped: false,
      decisions: [],
      chosen: null,
    });
  });

  it('records a MatchA above every recorded ballot and answers with the earlier entries', () => {
    const mm = fresh();
    expect(reply(deliver(mm, 'p', matchA(b(1))))).toEqual({
      type: 'MatchB',
      epoch: 0,
      ballot: b(1),
      matchmakerId: 1,
      gcBallot: ZERO_BALLOT,
      entries: [{ ballot: ZERO_BALLOT, spec: GENESIS, startSlot: 0 }],
    });
    const second = reply(deliver(mm, 'p', matchA(b(2, 0), REPLACED)));
    expect(second.type === 'MatchB' && second.entries.map((e) => e.ballot)).toEqual([ZERO_BALLOT, b(1)]);
    expect(mm.state?.maxBallot).toEqual(b(2, 0));
    expect(mm.state?.entries.map((e) => [e.ballot, e.startSlot])).toEqual([
      [ZERO_BALLOT, 0],
      [b(1), -1],
      [b(2, 0), -1],
    ]);
  });

  it('nacks a MatchA not above the highest recorded ballot, naming that ballot', () => {
    const mm = fresh();
    deliver(mm, 'p', matchA(b(5, 2)));
    const changes = mm.changes;
    for (const ballot of [b(4, 9), b(5, 1)]) {
      expect(reply(deliver(mm, 'p', matchA(ballot)))).toEqual({
        type: 'MatchNack',
        epoch: 0,
        ballot,
        higher: b(5, 2),
        newer: null,
      });
    }
    expect(mm.changes).toBe(changes);
  });

  it('nacks the same ballot with another configuration: one configuration per ballot', () => {
    const mm = fresh();
    deliver(mm, 'p', matchA(b(3)));
    expect(reply(deliver(mm, 'p', matchA(b(3), REPLACED)))).toMatchObject({
      type: 'MatchNack',
      higher: b(3),
    });
    expect(mm.state?.entries.filter((e) => compareBallots(e.ballot, b(3)) === 0)).toEqual([
      { ballot: b(3), spec: TWO_GROUPS, startSlot: -1 },
    ]);
  });

  it('answers a resent MatchA (same ballot, same configuration) with the same MatchB, changing nothing', () => {
    const mm = fresh();
    const first = reply(deliver(mm, 'p', matchA(b(3))));
    const changes = mm.changes;
    // Another version of the same members is the same configuration (the id excludes the version).
    expect(reply(deliver(mm, 'p', matchA(b(3), { ...TWO_GROUPS, version: 7 })))).toEqual(first);
    expect(mm.changes).toBe(changes);
  });

  it('nacks a MatchA below gcBallot, with a ballot at or above gcBallot to retry from', () => {
    const mm = fresh();
    deliver(mm, 'p', matchA(b(2)));
    // A leader of (6,0) collected here although this matchmaker never saw its MatchA: the
    // entry is kept from the GarbageA, and its ballot counts as recorded.
    deliver(mm, 'p', garbageA(b(6, 0), 40, 0, TWO_GROUPS));
    expect(mm.state?.entries).toEqual([{ ballot: b(6, 0), spec: TWO_GROUPS, startSlot: 40 }]);
    expect(mm.state?.maxBallot).toEqual(b(6, 0));
    expect(reply(deliver(mm, 'p', matchA(b(5))))).toEqual({
      type: 'MatchNack',
      epoch: 0,
      ballot: b(5),
      higher: b(6, 0),
      newer: null,
    });
    // Above gcBallot it may be recorded, and the kept entry is reported.
    expect(reply(deliver(mm, 'p', matchA(b(7, 0))))).toMatchObject({
      type: 'MatchB',
      entries: [{ ballot: b(6, 0), spec: TWO_GROUPS, startSlot: 40 }],
    });
  });

  it('nacks a MatchA whose configuration is older than a recorded one, naming the newer', () => {
    const mm = fresh();
    deliver(mm, 'p', matchA(b(2), REPLACED));
    const changes = mm.changes;
    // Version 2 after version 3, though the ballot is higher: versions never go back.
    expect(reply(deliver(mm, 'p', matchA(b(9), TWO_GROUPS)))).toEqual({
      type: 'MatchNack',
      epoch: 0,
      ballot: b(9),
      higher: b(2),
      newer: REPLACED,
    });
    expect(mm.changes).toBe(changes);
    // The same version (or a newer one) is recorded as usual.
    expect(reply(deliver(mm, 'p', matchA(b(9), REPLACED)))).toMatchObject({ type: 'MatchB' });
  });

  it('answers MatchB with only the entries at or above gcBallot once garbage is collected', () => {
    const mm = fresh();
    deliver(mm, 'p', matchA(b(1)));
    deliver(mm, 'p', matchA(b(2), REPLACED));
    deliver(mm, 'p', garbageA(b(2), 812, 0, REPLACED));
    expect(reply(deliver(mm, 'p', matchA(b(3), REPLACED)))).toEqual({
      type: 'MatchB',
      epoch: 0,
      ballot: b(3),
      matchmakerId: 1,
      gcBallot: b(2),
      entries: [{ ballot: b(2), spec: REPLACED, startSlot: 812 }],
    });
  });

  it('GarbageA raises gcBallot to the max, drops entries below it and records the start slot', () => {
    const mm = fresh();
    deliver(mm, 'p', matchA(b(1)));
    deliver(mm, 'p', matchA(b(2), REPLACED));
    expect(reply(deliver(mm, 'p', garbageA(b(1), 100)))).toEqual({
      type: 'GarbageB',
      epoch: 0,
      matchmakerId: 1,
      gcBallot: b(1),
    });
    expect(mm.state?.entries.map((e) => [e.ballot, e.startSlot])).toEqual([
      [b(1), 100],
      [b(2), -1],
    ]);
    deliver(mm, 'p', garbageA(b(2), 250));
    expect(mm.state).toEqual({
      epoch: 0,
      gcBallot: b(2),
      maxBallot: b(2),
      entries: [{ ballot: b(2), spec: REPLACED, startSlot: 250 }],
      stopped: false,
      decisions: [],
      chosen: null,
    });
  });

  it('answers a stale GarbageA with its own, higher gcBallot and changes nothing', () => {
    const mm = fresh();
    deliver(mm, 'p', matchA(b(4)));
    deliver(mm, 'p', garbageA(b(4), 10));
    const before = mm.state;
    const changes = mm.changes;
    expect(reply(deliver(mm, 'p', garbageA(b(2), 3)))).toEqual({
      type: 'GarbageB',
      epoch: 0,
      matchmakerId: 1,
      gcBallot: b(4),
    });
    // The same request again is answered too, and is no change either.
    expect(reply(deliver(mm, 'p', garbageA(b(4), 10)))).toMatchObject({ type: 'GarbageB', gcBallot: b(4) });
    expect(mm.state).toBe(before);
    expect(mm.changes).toBe(changes);
  });

  it('answers nothing while it has no state: an empty matchmaker never acts as a fresh one', () => {
    const mm = new Matchmaker({ address: 'mm-1', matchmakerId: 1 });
    expect(mm.state).toBeNull();
    expect(sends(deliver(mm, 'p', matchA(b(1))))).toEqual([]);
    expect(sends(deliver(mm, 'p', garbageA(b(1), 0)))).toEqual([]);
    expect(mm.state).toBeNull();
    expect(mm.changes).toBe(0);
  });

  it('answers nothing in another epoch, and ignores a configuration that cannot work', () => {
    const mm = fresh();
    expect(sends(deliver(mm, 'p', matchA(b(1), TWO_GROUPS, 1)))).toEqual([]);
    expect(sends(deliver(mm, 'p', garbageA(b(1), 0, 1)))).toEqual([]);
    expect(sends(deliver(mm, 'p', matchA(b(1), spec(1, [0, 1]))))).toEqual([]);
    expect(mm.changes).toBe(0);
  });

  it('prefers recovered state over genesis: a restarted matchmaker answers as its old self', () => {
    const mm = fresh();
    deliver(mm, 'p', matchA(b(3)));
    const restarted = new Matchmaker({
      address: 'mm-1',
      matchmakerId: 1,
      genesis: GENESIS,
      recovered: mm.state as MatchmakerState,
    });
    expect(reply(deliver(restarted, 'p', matchA(b(2))))).toMatchObject({ type: 'MatchNack', higher: b(3) });
    expect(reply(deliver(restarted, 'p', matchA(b(3))))).toEqual(reply(deliver(mm, 'p', matchA(b(3)))));
  });

  it('keeps one configuration per ballot and only entries at or above gcBallot, whatever it is sent (fast-check)', () => {
    const specs = [GENESIS, TWO_GROUPS, REPLACED];
    const ballotArb = fc.record({ round: fc.nat({ max: 6 }), proposerId: fc.nat({ max: 2 }) });
    const requestArb = fc.oneof(
      fc.record({ kind: fc.constant('match' as const), ballot: ballotArb, spec: fc.constantFrom(...specs) }),
      fc.record({ kind: fc.constant('gc' as const), ballot: ballotArb, startSlot: fc.nat({ max: 1000 }) }),
    );
    fc.assert(
      fc.property(fc.array(requestArb, { maxLength: 40 }), (requests) => {
        const mm = fresh();
        /** Every configuration it ever answered or recorded for a ballot, by the ballot. */
        const seen = new Map<string, number>([['0,0', configSpecId(GENESIS)]]);
        const note = (ballot: Ballot, s: ConfigSpec) => {
          const key = `${ballot.round},${ballot.proposerId}`;
          const id = configSpecId(s);
          expect(seen.get(key) ?? id).toBe(id);
          seen.set(key, id);
        };
        let gcSeen = ZERO_BALLOT;
        for (const r of requests) {
          const out = sends(
            deliver(mm, 'p', r.kind === 'match' ? matchA(r.ballot, r.spec) : garbageA(r.ballot, r.startSlot)),
          );
          expect(out).toHaveLength(1);
          const m = out[0]?.message as Message;
          const state = mm.state as MatchmakerState;
          if (m.type === 'MatchB') {
            note(r.ballot, (r as { spec: ConfigSpec }).spec);
            for (const e of m.entries) {
              note(e.ballot, e.spec);
              expect(compareBallots(e.ballot, m.gcBallot)).toBeGreaterThanOrEqual(0);
              expect(compareBallots(e.ballot, m.ballot)).toBeLessThan(0);
            }
          }
          if (m.type === 'GarbageB') expect(compareBallots(m.gcBallot, r.ballot)).toBeGreaterThanOrEqual(0);
          // gcBallot never goes down; entries strictly ascending (one per ballot), all ≥ gcBallot.
          expect(compareBallots(state.gcBallot, gcSeen)).toBeGreaterThanOrEqual(0);
          gcSeen = state.gcBallot;
          for (const [i, e] of state.entries.entries()) {
            note(e.ballot, e.spec);
            expect(compareBallots(e.ballot, state.gcBallot)).toBeGreaterThanOrEqual(0);
            expect(compareBallots(e.ballot, state.maxBallot)).toBeLessThanOrEqual(0);
            const prev = state.entries[i - 1];
            if (prev !== undefined) expect(compareBallots(prev.ballot, e.ballot)).toBeLessThan(0);
          }
        }
      }),
      { numRuns: 500, seed: 42 },
    );
  });

  describe('reconfiguration of the matchmakers (stop, bootstrap, choose)', () => {
    const SET0 = { epoch: 0, addresses: ['mm-0', 'mm-1', 'mm-2'] };
    const SET1 = { epoch: 1, addresses: ['mm-0', 'mm-1', 'mm-3'] };
    const OTHER1 = { epoch: 1, addresses: ['mm-0', 'mm-1', 'mm-4'] };
    const stopA = (ballot: Ballot, epoch = 0, current = SET0) =>
      ({ type: 'StopA', epoch, ballot, current }) as const;
    const accept = (ballot: Ballot, next = SET1, epoch = 0) =>
      ({ type: 'EpochAccept', epoch, ballot, next }) as const;

    it('stops on StopA: hands over its state, and answers MatchA and GarbageA with Stopped', () => {
      const mm = fresh();
      deliver(mm, 'p', matchA(b(2)));
      expect(reply(deliver(mm, 'p', stopA(b(1, 7))))).toEqual({
        type: 'StopB',
        epoch: 0,
        ballot: b(1, 7),
        matchmakerId: 1,
        state: {
          gcBallot: ZERO_BALLOT,
          maxBallot: b(2),
          entries: [
            { ballot: ZERO_BALLOT, spec: GENESIS, startSlot: 0 },
            { ballot: b(2), spec: TWO_GROUPS, startSlot: -1 },
          ],
        },
        vote: null,
      });
      expect(mm.state?.stopped).toBe(true);
      expect(reply(deliver(mm, 'p', matchA(b(3))))).toEqual({ type: 'Stopped', epoch: 0, next: null });
      expect(reply(deliver(mm, 'p', garbageA(b(2), 5)))).toEqual({ type: 'Stopped', epoch: 0, next: null });
      expect(mm.state?.maxBallot).toEqual(b(2)); // nothing recorded after the stop
    });

    it('is an acceptor of single-decree Paxos for the next set: nacks lower ballots, reports its vote', () => {
      const mm = fresh();
      deliver(mm, 'p', stopA(b(2, 1)));
      expect(reply(deliver(mm, 'p', stopA(b(1, 9))))).toEqual({
        type: 'EpochNack',
        epoch: 0,
        ballot: b(1, 9),
        higher: b(2, 1),
      });
      expect(reply(deliver(mm, 'p', accept(b(1, 9), OTHER1)))).toMatchObject({
        type: 'EpochNack',
        higher: b(2, 1),
      });
      expect(reply(deliver(mm, 'p', accept(b(2, 1))))).toEqual({
        type: 'EpochAccepted',
        epoch: 0,
        ballot: b(2, 1),
        matchmakerId: 1,
      });
      // A later proposer's phase 1 learns the vote, so it can only propose the same set.
      expect(reply(deliver(mm, 'p', stopA(b(3, 2))))).toMatchObject({
        type: 'StopB',
        vote: { ballot: b(2, 1), next: SET1 },
      });
      // An accept for a set that does not follow its epoch is refused.
      expect(sends(deliver(mm, 'p', accept(b(4, 2), { epoch: 2, addresses: ['x'] })))).toEqual([]);
    });

    it('an empty matchmaker serves once bootstrapped, from the state it is handed', () => {
      const mm = new Matchmaker({ address: 'mm-3', matchmakerId: 3 });
      expect(sends(deliver(mm, 'p', matchA(b(5), TWO_GROUPS, 1)))).toEqual([]);
      const state = {
        gcBallot: b(2),
        maxBallot: b(4),
        entries: [{ ballot: b(2), spec: TWO_GROUPS, startSlot: 9 }],
      };
      expect(reply(deliver(mm, 'p', { type: 'BootstrapA', next: SET1, state }))).toEqual({
        type: 'BootstrapB',
        epoch: 1,
        matchmakerId: 3,
      });
      expect(reply(deliver(mm, 'p', matchA(b(4), TWO_GROUPS, 1)))).toMatchObject({
        type: 'MatchNack',
        higher: b(4),
      });
      expect(reply(deliver(mm, 'p', matchA(b(5), TWO_GROUPS, 1)))).toEqual({
        type: 'MatchB',
        epoch: 1,
        ballot: b(5),
        matchmakerId: 3,
        gcBallot: b(2),
        entries: state.entries,
      });
      // Epoch 0's messages are not answered as epoch 0 any more.
      expect(reply(deliver(mm, 'p', matchA(b(6), TWO_GROUPS, 0)))).toEqual({
        type: 'Stopped',
        epoch: 0,
        next: null,
      });
    });

    it('a member of both sets keeps its vote on the old choice after moving, until it learns the outcome', () => {
      const mm = fresh();
      deliver(mm, 'p', stopA(b(1, 1)));
      deliver(mm, 'p', accept(b(1, 1)));
      const snapshot = { gcBallot: ZERO_BALLOT, maxBallot: ZERO_BALLOT, entries: [] };
      deliver(mm, 'p', { type: 'BootstrapA', next: SET1, state: snapshot });
      expect(mm.state).toMatchObject({ epoch: 1, stopped: false });
      // Its genesis entry survives the merge with the (smaller) snapshot.
      expect(mm.state?.entries).toEqual([{ ballot: ZERO_BALLOT, spec: GENESIS, startSlot: 0 }]);
      expect(reply(deliver(mm, 'p', stopA(b(2, 2))))).toMatchObject({ type: 'StopB', vote: { next: SET1 } });
      deliver(mm, 'p', { type: 'EpochChosen', next: SET1 });
      expect(mm.state?.decisions).toEqual([]);
      expect(reply(deliver(mm, 'p', stopA(b(3, 2))))).toEqual({ type: 'Stopped', epoch: 0, next: SET1 });
      expect(reply(deliver(mm, 'p', matchA(b(3), TWO_GROUPS, 0)))).toEqual({
        type: 'Stopped',
        epoch: 0,
        next: SET1,
      });
      // Epoch 1 serves.
      expect(reply(deliver(mm, 'p', matchA(b(3), TWO_GROUPS, 1)))).toMatchObject({
        type: 'MatchB',
        epoch: 1,
      });
    });

    it("merges a second bootstrap of its epoch (another proposer's union) and never goes back an epoch", () => {
      const mm = new Matchmaker({ address: 'mm-3', matchmakerId: 3 });
      const a = { gcBallot: b(1), maxBallot: b(3), entries: [{ ballot: b(1), spec: GENESIS, startSlot: 0 }] };
      const c = {
        gcBallot: b(2),
        maxBallot: b(2),
        entries: [{ ballot: b(2), spec: TWO_GROUPS, startSlot: 4 }],
      };
      deliver(mm, 'p', { type: 'BootstrapA', next: SET1, state: a });
      deliver(mm, 'p', { type: 'BootstrapA', next: OTHER1, state: c });
      expect(mm.state).toMatchObject({ epoch: 1, gcBallot: b(2), maxBallot: b(3), entries: c.entries });
      deliver(mm, 'p', { type: 'BootstrapA', next: { epoch: 2, addresses: ['mm-3'] }, state: c });
      expect(sends(deliver(mm, 'p', { type: 'BootstrapA', next: SET1, state: a }))).toEqual([]);
      expect(mm.state?.epoch).toBe(2);
    });
  });
});
