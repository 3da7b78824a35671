/**
 * Teeth: each test plants a known Paxos bug in a role (a subclass built here, never a flag in
 * production code) and asserts the simulator catches it within an ordinary sweep. A checker
 * that cannot fail is worthless.
 */
import {
  type AcceptedEntry,
  type AcceptorGroup,
  groupForSlot,
  type InFlightSlot,
  NOOP,
  Proposer,
  ProxyLeader,
  type Value,
} from '@paxos/core';
import { describe, expect, it } from 'vitest';
import { runSimulation, type SimulationOptions } from '../src/simulation.ts';
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
    const [first] = reported.value.commands;
    return first === undefined ? NOOP : { kind: 'batch', commands: [first] };
  }
}

function firstViolations(planted: Partial<SimulationOptions>, seeds: number, steps = 300) {
  const found: { seed: number; message: string }[] = [];
  for (let seed = 1; seed <= seeds; seed++) {
    const result = runSimulation({ seed, steps, ...planted });
    if (result.violation !== null) found.push({ seed, message: result.violation.message });
  }
  if (found[0] !== undefined) {
    console.log(
      `caught at ${found.length}/${seeds} seeds, first seed ${found[0].seed}: ${found[0].message}\n  replay (with the bug planted): ${replayCommand(found[0].seed, steps, 1)}`,
    );
  }
  return found;
}

describe('the simulator catches planted bugs', () => {
  it('counting duplicate phase-2b messages as distinct votes', () => {
    const found = firstViolations({ makeProxyLeader: (o) => new ProxyLeaderCountingMessages(o) }, 1000);
    expect(found.length).toBeGreaterThan(0);
    expect(found[0]?.message).toMatch(/announced chosen but no f\+1 acceptors/);
  });

  it('sending a hole to a different group than its slot’s group', () => {
    const found = firstViolations({ makeProposer: (o) => new ProposerSendingHolesElsewhere(o) }, 1000);
    expect(found.length).toBeGreaterThan(0);
    expect(found[0]?.message).toMatch(/announced chosen but no f\+1 acceptors of its group/);
  });

  it('a phase 1 that ignores a reported value and proposes a noop instead', () => {
    const found = firstViolations({ makeProposer: (o) => new ProposerIgnoringPhase1Values(o) }, 1000);
    expect(found.length).toBeGreaterThan(0);
    expect(found[0]?.message).toMatch(/two values chosen/);
  });

  it('a phase 1 that replaces a reported value with a new command', () => {
    const found = firstViolations({ makeProposer: (o) => new ProposerReplacingPhase1Values(o) }, 1000);
    expect(found.length).toBeGreaterThan(0);
    expect(found[0]?.message).toMatch(/two values chosen|acknowledged at slot/);
  });

  it('the same roles unmutated pass the same seeds', () => {
    expect(firstViolations({}, 1000)).toEqual([]);
  });
});
