/**
 * Teeth: each test plants a known Paxos bug in a role (a subclass built here, never a flag in
 * production code) and asserts the simulator catches it within an ordinary sweep. A checker
 * that cannot fail is worthless.
 */
import type {
  AcceptorRecords,
  DurableAcceptor,
  DurableAcceptorIo,
  DurableMatchmaker,
  GroupCommitIo,
  MatchmakerStateStore,
} from '@paxos/acceptor-log';
import {
  type AcceptedEntry,
  Acceptor,
  type AcceptorGroup,
  type AcceptorOptions,
  type Address,
  type Configuration,
  decodeBatch,
  encodeBatch,
  groupForSlot,
  type InFlightSlot,
  type Matchmaker,
  NOOP,
  Proposer,
  ProxyLeader,
  type Value,
  ZERO_BALLOT,
} from '@paxos/core';
import { describe, expect, it } from 'vitest';
import { runSimulation, Simulation, type SimulationOptions } from '../src/simulation.ts';
import { replayCommand } from '../src/sweep.ts';

/** Counts phase-2b messages, not distinct acceptors: a duplicated vote counts twice. */
class ProxyLeaderCountingMessages extends ProxyLeader {
  private readonly messages = new WeakMap<InFlightSlot, number>();
  protected override countVote(entry: InFlightSlot, _acceptorId: number): number {
    const n = (this.messages.get(entry) ?? 0) + 1;
    this.messages.set(entry, n);
    return n;
  }
}

/** The original's bug: a hole's noop goes to another group than the slot's own. */
class ProposerSendingHolesElsewhere extends Proposer {
  protected override groupForProposal(slot: number, value: Value): AcceptorGroup {
    return groupForSlot(this.config, value.kind === 'noop' ? slot + 1 : slot);
  }
}

/** Phase 1 ignores what the slot's group reported and proposes a noop in its place. */
class ProposerIgnoringPhase1Values extends Proposer {
  protected override valueAfterPhase1(_slot: number, _reported: AcceptedEntry | undefined): Value {
    return NOOP;
  }
}

/** Phase 1 replaces a reported value with a command of its own (a fresh batch from the first client). */
class ProposerReplacingPhase1Values extends Proposer {
  protected override valueAfterPhase1(slot: number, reported: AcceptedEntry | undefined): Value {
    if (reported === undefined || reported.value.kind === 'noop')
      return super.valueAfterPhase1(slot, reported);
    const decoded = decodeBatch(reported.value.batch);
    const first = decoded.ok ? decoded.commands[0] : undefined;
    return first === undefined ? NOOP : { kind: 'batch', batch: encodeBatch([first]) };
  }
}

/** Phase 1 re-proposes a reported batch with its last byte cut off (bytes the unbatcher cannot decode). */
class ProposerTruncatingPhase1Values extends Proposer {
  protected override valueAfterPhase1(slot: number, reported: AcceptedEntry | undefined): Value {
    const value = super.valueAfterPhase1(slot, reported);
    if (value.kind === 'noop' || value.batch.length === 0) return value;
    return { kind: 'batch', batch: value.batch.subarray(0, value.batch.length - 1) };
  }
}

/** Keeps heartbeating as leader whatever it hears (or does not). */
class ProposerThatNeverStepsDown extends Proposer {
  protected override shouldStepDown(_now: number): boolean {
    return false;
  }
}

/** Re-proposes a slot through the proxy leader that already failed it, forever. */
class ProposerResendingThroughTheSameProxy extends Proposer {
  protected override pickProxy(now: number, failed: Address | null): Address | null {
    return failed ?? super.pickProxy(now, null);
  }
}

/** Recovery that loses the promise: the acceptor restarts with its votes but promising nothing. */
const acceptorForgettingItsPromise = (o: AcceptorOptions) =>
  new Acceptor(o.recovered ? { ...o, recovered: { ...o.recovered, promised: ZERO_BALLOT } } : o);

/** Recovery that reads the promise and watermark but drops the accepted entries it replayed. */
const acceptorIgnoringItsVotes = (o: AcceptorOptions) =>
  new Acceptor(o.recovered ? { ...o, recovered: { ...o.recovered, accepted: [] } } : o);

/**
 * Logs every record as the real group commit does, but lets the replies leave at once and
 * commits later: a crash in between loses a promise or vote already announced.
 */
function replyingBeforeTheRecordIsDurable(
  acceptor: Acceptor,
  log: AcceptorRecords,
  io: Required<DurableAcceptorIo>,
): DurableAcceptor {
  let scheduled = false;
  const commit = () => {
    scheduled = false;
    log.commit();
  };
  return {
    address: acceptor.address,
    start: () => acceptor.start(),
    commit,
    heldMessages: 0,
    step: (now, event) => {
      const before = acceptor.promised;
      const effects = acceptor.step(now, event);
      if (event.type !== 'message') return effects;
      const m = event.message;
      const entry = m.type === 'Phase2a' ? acceptor.accepted(m.slot) : undefined;
      if (entry !== undefined) log.accepted(entry, acceptor.watermark, acceptor.config);
      else if (acceptor.promised !== before) log.promised(acceptor.promised, acceptor.config);
      if (!scheduled) {
        scheduled = true;
        io.schedule(commit);
      }
      return effects;
    },
  };
}

/**
 * Saves the genesis state as the real wrapper does, then never again, and lets every reply leave
 * at once: a restarted matchmaker has forgotten the ballots it matched and the entries it returned.
 */
function matchmakerNeverSaving(
  matchmaker: Matchmaker,
  store: MatchmakerStateStore,
  _io: GroupCommitIo,
): DurableMatchmaker {
  if (matchmaker.state !== null && store.saved === null) store.save(matchmaker.state);
  return {
    address: matchmaker.address,
    start: () => matchmaker.start(),
    commit: () => {},
    heldMessages: 0,
    step: (now, event) => matchmaker.step(now, event),
  };
}

/** The other proposer was started with its groups in another order (another slot → group mapping). */
const withGroupsReversed = (config: Configuration): Configuration => ({
  ...config,
  groups: [...config.groups].reverse(),
});

function firstViolations(planted: Partial<SimulationOptions>, seeds: number, steps = 300) {
  const found: { seed: number; message: string }[] = [];
  for (let seed = 1; seed <= seeds; seed++) {
    const result = runSimulation({ seed, steps, ...planted });
    if (result.violation !== null) found.push({ seed, message: result.violation.message });
  }
  if (found[0] !== undefined) {
    console.log(
      `caught at ${found.length}/${seeds} seeds, first seed ${found[0].seed}: ${found[0].message}\n  replay (with the bug planted): ${replayCommand(found[0].seed, steps, 1, 2, planted.fsync ?? true, planted.matchmakers ?? 0)}`,
    );
  }
  return found;
}

describe('the simulator catches planted bugs', () => {
  it('counting duplicate phase-2b messages as distinct votes', () => {
    const found = firstViolations({ makeProxyLeader: (o) => new ProxyLeaderCountingMessages(o) }, 300);
    expect(found.length).toBeGreaterThan(0);
    expect(found[0]?.message).toMatch(/announced chosen but no f\+1 acceptors/);
  });

  it('sending a hole to a different group than its slot’s group', () => {
    // Acceptors refuse a slot their group does not own, so the misrouted noop never gets chosen
    // and the hole stays (without that check: a slot announced chosen that no quorum accepted).
    const found = firstViolations({ makeProposer: (o) => new ProposerSendingHolesElsewhere(o) }, 300);
    expect(found.length).toBeGreaterThan(0);
    expect(found[0]?.message).toMatch(/announced chosen but no f\+1 acceptors of its group|still a hole/);
  });

  it('a phase 1 that ignores a reported value and proposes a noop instead', () => {
    const found = firstViolations({ makeProposer: (o) => new ProposerIgnoringPhase1Values(o) }, 300);
    expect(found.length).toBeGreaterThan(0);
    expect(found[0]?.message).toMatch(/two values chosen/);
  });

  it('a phase 1 that replaces a reported value with a new command', () => {
    const found = firstViolations({ makeProposer: (o) => new ProposerReplacingPhase1Values(o) }, 300);
    expect(found.length).toBeGreaterThan(0);
    expect(found[0]?.message).toMatch(/two values chosen|acknowledged at slot/);
  });

  it('a phase 1 that re-proposes a batch it damaged (the checker decodes every chosen batch)', () => {
    const found = firstViolations({ makeProposer: (o) => new ProposerTruncatingPhase1Values(o) }, 100);
    expect(found.some((v) => /chosen batch does not decode/.test(v.message))).toBe(true);
  });

  it('an acceptor that forgets its promise when it restarts', () => {
    const found = firstViolations({ makeAcceptor: acceptorForgettingItsPromise }, 300);
    expect(found.length).toBeGreaterThan(0);
    expect(found[0]?.message).toMatch(/restarted promising .* below the .* it announced/);
  });

  it('an acceptor that ignores the accepted entries it recovered', () => {
    const found = firstViolations({ makeAcceptor: acceptorIgnoringItsVotes }, 300);
    expect(found.length).toBeGreaterThan(0);
    expect(found[0]?.message).toMatch(/restarted without its vote for slot/);
  });

  it('an acceptor that replies before its record is durable', () => {
    const found = firstViolations({ makeDurableAcceptor: replyingBeforeTheRecordIsDurable }, 300);
    expect(found.length).toBeGreaterThan(0);
    expect(found[0]?.message).toMatch(/restarted (promising|without its vote)/);
  });

  it('acceptors whose log is not synced (DATA_FSYNC=false) lose what a crash catches unsynced', () => {
    const found = firstViolations({ fsync: false }, 300);
    expect(found.length).toBeGreaterThan(0);
    expect(found[0]?.message).toMatch(/restarted (promising|without its vote)/);
  });

  it('… and without the restart checks, consensus itself breaks: two values chosen for a slot', () => {
    const found = firstViolations({ fsync: false, restartChecks: false }, 300);
    expect(found.some((v) => /two values chosen/.test(v.message))).toBe(true);
  });

  it('the same roles unmutated pass the same seeds', () => {
    expect(firstViolations({}, 300)).toEqual([]);
  });

  it('a leader that keeps heartbeating while it hears nothing', () => {
    const found = firstViolations({ makeProposer: (o) => new ProposerThatNeverStepsDown(o) }, 300);
    expect(found.length).toBeGreaterThan(0);
    expect(found[0]?.message).toMatch(/still heartbeats as leader .* after it stopped hearing/);
  });

  it('re-proposals sent to the same proxy leader forever (liveness)', () => {
    const found = firstViolations({ makeProposer: (o) => new ProposerResendingThroughTheSameProxy(o) }, 300);
    expect(found.length).toBeGreaterThan(0);
    expect(found[0]?.message).toMatch(/no leader knows the \d+ slots chosen/);
  });

  it('a proposer with a different configuration (safety)', () => {
    const found = firstViolations(
      {
        makeProposer: (o) =>
          new Proposer(o.address === 'proposer/1' ? { ...o, config: withGroupsReversed(o.config) } : o),
      },
      300,
    );
    expect(found.length).toBeGreaterThan(0);
    expect(found[0]?.message).toMatch(
      /announced chosen but no f\+1 acceptors|two values chosen|acknowledged at slot/,
    );
  });

  it('a proposer restarted with a different configuration after the cluster formed is refused by the acceptors', () => {
    // Acceptors pinned the configuration the first leader stamped: a misconfigured incarnation never
    // gets a promise or a vote, so nothing unsafe happens (it may cost liveness while it campaigns).
    const unsafe: string[] = [];
    let misconfigured = 0;
    for (let seed = 1; seed <= 300; seed++) {
      let formed = () => false;
      const sim = new Simulation({
        seed,
        steps: 300,
        makeProposer: (o) => {
          if (!formed()) return new Proposer(o);
          misconfigured++;
          return new Proposer({ ...o, config: withGroupsReversed(o.config) });
        },
      });
      formed = () => sim.checker.chosen.size > 0;
      const result = sim.run();
      if (result.violation?.kind === 'safety') unsafe.push(`seed ${seed}: ${result.violation.message}`);
    }
    expect(misconfigured).toBeGreaterThan(50);
    expect(unsafe).toEqual([]);
  });

  it('a matchmaker that forgets what it matched when it restarts (it never saves after genesis)', () => {
    const found = firstViolations({ matchmakers: 3, makeDurableMatchmaker: matchmakerNeverSaving }, 300);
    expect(found.length).toBeGreaterThan(0);
    expect(found[0]?.message).toMatch(/matchmaker\/\d restarted (with maxBallot|without its entry)/);
  });

  it('the same roles with matchmakers pass the same seeds', () => {
    expect(firstViolations({ matchmakers: 3 }, 300)).toEqual([]);
  });

  it('with matchmakers, a proposer with a different configuration sees the other configuration in the MatchB replies and never leads', () => {
    // Without matchmakers the same proposer breaks safety (above). Here its spec differs from the
    // genesis every reply lists, so it refuses to lead; the others refuse once its ballot is
    // recorded (phase 1 over two configurations comes with reconfiguration), which may cost
    // liveness but never safety.
    const unsafe: string[] = [];
    let refusals = 0;
    for (let seed = 1; seed <= 100; seed++) {
      const result = runSimulation({
        seed,
        steps: 300,
        matchmakers: 3,
        makeProposer: (o) => {
          const p = new Proposer(
            o.address === 'proposer/1' ? { ...o, config: withGroupsReversed(o.config) } : o,
          );
          const step = p.step.bind(p);
          p.step = (now, event) => {
            const effects = step(now, event);
            for (const e of effects)
              if (e.kind === 'metric' && e.name === 'foreign_configurations') refusals++;
            return effects;
          };
          return p;
        },
      });
      if (result.violation?.kind === 'safety') unsafe.push(`seed ${seed}: ${result.violation.message}`);
    }
    expect(refusals).toBeGreaterThan(25);
    expect(unsafe).toEqual([]);
  });
});
