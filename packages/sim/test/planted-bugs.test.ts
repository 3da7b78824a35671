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
  type Ballot,
  type ConfigEntry,
  type Configuration,
  decodeBatch,
  type EpochVote,
  encodeBatch,
  groupForSlot,
  type InFlightSlot,
  type MatchB,
  type Matchmaker,
  MatchmakerChange,
  type MatchmakerEpoch,
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

/** Phase 1 leaves out the oldest of the configurations the matchmakers listed, when they list two or more. */
class ProposerSkippingAPriorConfiguration extends Proposer {
  protected override priorConfigurations(replies: readonly MatchB[]): ConfigEntry[] {
    const priors = super.priorConfigurations(replies);
    return priors.length >= 2 ? priors.slice(1) : priors;
  }
}

/** Garbage collection goes ahead with slot k−1 not yet known chosen (nor durable as a watermark). */
class ProposerCollectingOneSlotEarly extends Proposer {
  protected override gcWatermark(k: number): number {
    return Math.max(0, k - 1);
  }
}

/** An election goes on with f MatchB replies instead of f+1. */
class ProposerMatchingWithF extends Proposer {
  protected override matchQuorum(): number {
    return super.matchQuorum() - 1;
  }
}

/** A matchmaker change proposes its own set even where a stopped matchmaker reports a vote for another. */
class ChangeIgnoringVotes extends MatchmakerChange {
  protected override choose(_vote: EpochVote | null, own: MatchmakerEpoch): MatchmakerEpoch {
    return own;
  }
}
class ProposerIgnoringMatchmakerVotes extends Proposer {
  protected override newMatchmakerChange(
    from: MatchmakerEpoch,
    f: number,
    ballot: Ballot,
    target: readonly Address[] | null,
  ): MatchmakerChange {
    return new ChangeIgnoringVotes(from, f, ballot, target);
  }
}

/** After a reconfiguration the new ballot starts one slot early, at a slot the old ballot proposed. */
class ProposerReusingTheOldBallotsLastSlot extends Proposer {
  protected override bypassStart(nextSlot: number): number {
    return Math.max(0, nextSlot - 1);
  }
}

/** The other proposer was started with its groups in another order (another slot → group mapping). */
const withGroupsReversed = (config: Configuration): Configuration => ({
  ...config,
  groups: [...config.groups].reverse(),
});

/**
 * Runs seeds 1..`seeds` with the bug planted until the first violation (with `expected`: the first
 * whose message matches it), and returns it with its seed; null if none. Stopping there keeps the
 * sweep short: a planted bug only has to be caught once.
 */
function firstViolation(
  planted: Partial<SimulationOptions>,
  seeds: number,
  expected?: RegExp,
  steps = 300,
): { seed: number; message: string } | null {
  for (let seed = 1; seed <= seeds; seed++) {
    const result = runSimulation({ seed, steps, ...planted });
    const message = result.violation?.message;
    if (message === undefined || (expected !== undefined && !expected.test(message))) continue;
    console.log(
      `caught at seed ${seed}: ${message}\n  replay (with the bug planted): ${replayCommand(seed, steps, 1, planted.proposers ?? 2, planted.fsync ?? true, planted.matchmakers ?? 0, planted.faults?.reconfigure)}`,
    );
    return { seed, message };
  }
  return null;
}

describe('the simulator catches planted bugs', () => {
  it('counting duplicate phase-2b messages as distinct votes', () => {
    expect(
      firstViolation({ makeProxyLeader: (o) => new ProxyLeaderCountingMessages(o) }, 300)?.message,
    ).toMatch(/announced chosen but no f\+1 acceptors/);
  });

  it('sending a hole to a different group than its slot’s group', () => {
    // Acceptors refuse a slot their group does not own, so the misrouted noop never gets chosen
    // and the hole stays (without that check: a slot announced chosen that no quorum accepted).
    expect(
      firstViolation({ makeProposer: (o) => new ProposerSendingHolesElsewhere(o) }, 300)?.message,
    ).toMatch(/announced chosen but no f\+1 acceptors of its group|still a hole/);
  });

  it('a phase 1 that ignores a reported value and proposes a noop instead', () => {
    expect(
      firstViolation({ makeProposer: (o) => new ProposerIgnoringPhase1Values(o) }, 300)?.message,
    ).toMatch(/proposed in .* but .* is chosen|two values chosen/);
  });

  it('a phase 1 that replaces a reported value with a new command', () => {
    expect(
      firstViolation({ makeProposer: (o) => new ProposerReplacingPhase1Values(o) }, 300)?.message,
    ).toMatch(/proposed in .* but .* is chosen|two values chosen|acknowledged at slot/);
  });

  it('a phase 1 that re-proposes a batch it damaged (the checker decodes every chosen batch)', () => {
    expect(
      firstViolation(
        { makeProposer: (o) => new ProposerTruncatingPhase1Values(o) },
        100,
        /chosen batch does not decode/,
      ),
    ).not.toBeNull();
  });

  it('an acceptor that forgets its promise when it restarts', () => {
    expect(firstViolation({ makeAcceptor: acceptorForgettingItsPromise }, 300)?.message).toMatch(
      /restarted promising .* below the .* it announced/,
    );
  });

  it('an acceptor that ignores the accepted entries it recovered', () => {
    expect(firstViolation({ makeAcceptor: acceptorIgnoringItsVotes }, 300)?.message).toMatch(
      /restarted without its vote for slot/,
    );
  });

  it('an acceptor that replies before its record is durable', () => {
    expect(firstViolation({ makeDurableAcceptor: replyingBeforeTheRecordIsDurable }, 300)?.message).toMatch(
      /restarted (promising|without its vote)/,
    );
  });

  it('acceptors whose log is not synced (DATA_FSYNC=false) lose what a crash catches unsynced', () => {
    expect(firstViolation({ fsync: false }, 300)?.message).toMatch(/restarted (promising|without its vote)/);
  });

  it('… and without the restart checks, consensus itself breaks: two values chosen for a slot', () => {
    expect(firstViolation({ fsync: false, restartChecks: false }, 300, /two values chosen/)).not.toBeNull();
  });

  it('the same roles unmutated pass the same seeds', () => {
    expect(firstViolation({}, 300)).toBeNull();
  });

  it('a leader that keeps heartbeating while it hears nothing', () => {
    expect(firstViolation({ makeProposer: (o) => new ProposerThatNeverStepsDown(o) }, 300)?.message).toMatch(
      /still heartbeats as leader .* after it stopped hearing/,
    );
  });

  it('re-proposals sent to the same proxy leader forever (liveness)', () => {
    expect(
      firstViolation({ makeProposer: (o) => new ProposerResendingThroughTheSameProxy(o) }, 300)?.message,
    ).toMatch(/no leader knows the \d+ slots chosen/);
  });

  it('a proposer with a different configuration (safety)', () => {
    expect(
      firstViolation(
        {
          makeProposer: (o) =>
            new Proposer(o.address === 'proposer/1' ? { ...o, config: withGroupsReversed(o.config) } : o),
        },
        300,
      )?.message,
    ).toMatch(/announced chosen but no f\+1 acceptors|two values chosen|acknowledged at slot/);
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
    expect(
      firstViolation({ matchmakers: 3, makeDurableMatchmaker: matchmakerNeverSaving }, 300)?.message,
    ).toMatch(/matchmaker\/\d restarted (with maxBallot|without its entry)/);
  });

  it('the same roles with matchmakers pass the same seeds', () => {
    expect(firstViolation({ matchmakers: 3 }, 300)).toBeNull();
  });

  it('with matchmakers, a proposer with a different configuration leads safely: phase 1 covers every configuration earlier ballots used', () => {
    // Without matchmakers the same proposer breaks safety (above). Here its ballots' configuration
    // is recorded before it uses them, and every later leader's phase 1 covers it.
    const unsafe: string[] = [];
    let led = 0;
    for (let seed = 1; seed <= 100; seed++) {
      const result = runSimulation({
        seed,
        steps: 300,
        matchmakers: 3,
        makeProposer: (o) => {
          const misconfigured = o.address === 'proposer/1';
          const p = new Proposer(misconfigured ? { ...o, config: withGroupsReversed(o.config) } : o);
          if (!misconfigured) return p;
          const step = p.step.bind(p);
          p.step = (now, event) => {
            const effects = step(now, event);
            for (const e of effects)
              if (e.kind === 'metric' && e.name === 'is_leader' && e.value === 1) led++;
            return effects;
          };
          return p;
        },
      });
      if (result.violation?.kind === 'safety') unsafe.push(`seed ${seed}: ${result.violation.message}`);
    }
    expect(led).toBeGreaterThan(25);
    expect(unsafe).toEqual([]);
  });

  describe('reconfiguration (Matchmaker MultiPaxos): every run also changes the configuration once', () => {
    const withMatchmakers = { matchmakers: 3 };

    it('phase 1 skips one earlier configuration', () => {
      expect(
        firstViolation(
          { ...withMatchmakers, makeProposer: (o) => new ProposerSkippingAPriorConfiguration(o) },
          300,
        )?.message,
      ).toMatch(/proposed in .* but .* is chosen|two values chosen|acknowledged at slot/);
    });

    it('garbage collection one slot early', () => {
      expect(
        firstViolation(
          { ...withMatchmakers, makeProposer: (o) => new ProposerCollectingOneSlotEarly(o) },
          300,
        )?.message,
      ).toMatch(/garbage collection dropped ballots below/);
    });

    it('matchmakers answer with f instead of f+1', () => {
      expect(
        firstViolation({ ...withMatchmakers, makeProposer: (o) => new ProposerMatchingWithF(o) }, 300)
          ?.message,
      ).toMatch(/proposed in .* but .* is chosen|two values chosen|acknowledged at slot/);
    });

    it('a new configuration used for a slot proposed under the old one', () => {
      expect(
        firstViolation(
          { ...withMatchmakers, makeProposer: (o) => new ProposerReusingTheOldBallotsLastSlot(o) },
          300,
        )?.message,
      ).toMatch(/proposed in .* but .* is chosen|two values chosen|acknowledged at slot/);
    });

    it('a matchmaker change that ignores the votes its stop phase found (single-decree Paxos broken)', () => {
      // Matchmaker replacements are a quarter of the operator's changes; more changes, and three
      // proposers to race for them, here.
      expect(
        firstViolation(
          {
            ...withMatchmakers,
            proposers: 3,
            faults: { reconfigure: 0.05 },
            makeProposer: (o) => new ProposerIgnoringMatchmakerVotes(o),
          },
          300,
        )?.message,
      ).toMatch(/two matchmaker sets chosen for epoch/);
    });
  });
});
