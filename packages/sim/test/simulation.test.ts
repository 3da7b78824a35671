import { Proposer } from '@paxos/core';
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

  it('injects every kind of fault across a sweep', () => {
    const totals = { crashes: 0, restarts: 0, partitions: 0, dropped: 0, duplicated: 0, elections: 0 };
    for (let seed = 1; seed <= 50; seed++) {
      const { stats } = runSimulation({ seed, steps: 1000 });
      for (const key of Object.keys(totals) as (keyof typeof totals)[]) totals[key] += stats[key];
    }
    for (const value of Object.values(totals)) expect(value).toBeGreaterThan(0);
    // Leaders crash and are replaced, not just elected once per run.
    expect(totals.elections).toBeGreaterThan(100);
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
