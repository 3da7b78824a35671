import { Acceptor, type Ballot, Proposer, type RoleEvent } from '@paxos/core';
import { describe, expect, it } from 'vitest';
import { NO_FAULTS, runSimulation } from '../src/simulation.ts';

function traceOf(seed: number, steps: number): string[] {
  const lines: string[] = [];
  runSimulation({ seed, steps, trace: (line) => lines.push(line) });
  return lines;
}

describe('simulation', () => {
  it('replays a seed exactly: same seed, same trace', () => {
    const a = traceOf(42, 500);
    const b = traceOf(42, 500);
    expect(a.length).toBeGreaterThan(500);
    expect(b).toEqual(a);
    expect(traceOf(43, 500)).not.toEqual(a);
  });

  it('without faults every command is acknowledged and slots fill in order', () => {
    const result = runSimulation({ seed: 1, steps: 2000, faults: NO_FAULTS });
    expect(result.ok).toBe(true);
    expect(result.stats.submitted).toBeGreaterThan(50);
    expect(result.stats.acknowledged).toBe(result.stats.submitted);
    expect(result.stats.crashes + result.stats.partitions + result.stats.dropped).toBe(0);
  });

  it('injects every kind of fault across a sweep (matchmakers in every other run)', () => {
    const totals: Record<string, number> = {};
    for (let seed = 1; seed <= 50; seed++) {
      const { stats } = runSimulation({ seed, steps: 1000, matchmakers: seed % 2 === 0 ? 3 : 0 });
      for (const [key, value] of Object.entries(stats)) totals[key] = (totals[key] ?? 0) + value;
    }
    for (const [key, value] of Object.entries(totals)) expect({ [key]: value }).not.toEqual({ [key]: 0 });
    // Leaders crash and are replaced, not just elected once per run.
    expect(totals.elections).toBeGreaterThan(100);
    // Processes find their entries gone after directory restarts and register again.
    expect(totals.reregistrations).toBeGreaterThan(totals.directoryRestarts ?? 0);
  });

  it('the promise check fails an acceptor whose promise goes down', () => {
    class Forgetful extends Acceptor {
      private steps = 0;
      override step(now: number, event: RoleEvent) {
        // Every 50th message, forget the promise (as a restart without a log would).
        if (++this.steps % 50 === 0)
          return new Acceptor({
            address: this.address,
            groupId: this.groupId,
            acceptorId: this.acceptorId,
          }).step(now, event);
        return super.step(now, event);
      }
      override get promised(): Ballot {
        return this.steps > 0 && this.steps % 50 === 0 ? { round: 0, proposerId: 0 } : super.promised;
      }
    }
    const found = [1, 2, 3, 4, 5].map((seed) =>
      runSimulation({ seed, steps: 1000, makeAcceptor: (o) => new Forgetful(o) }),
    );
    expect(found.some((r) => /promise went down/.test(r.violation?.message ?? ''))).toBe(true);
  });

  it('the liveness check fails a leader that never re-proposes a lost slot (the log keeps a hole)', () => {
    let liveness = 0;
    for (let seed = 1; seed <= 50; seed++) {
      const result = runSimulation({
        seed,
        steps: 1000,
        makeProposer: (o) => new Proposer({ ...o, timing: { ...o.timing, resendTimeoutMs: 1e12 } }),
      });
      if (result.violation?.kind === 'liveness') liveness++;
    }
    expect(liveness).toBeGreaterThan(0);
  });
});
