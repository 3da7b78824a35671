import { describe, expect, it } from 'vitest';
import { sweep } from '../src/sweep.ts';
import { expectNoFailures } from './expect-sweep.ts';

// The other sweeps are in sweep-variants.test.ts, a file of their own so the two run side by side.
describe('seeded sweep with faults (messages lost, duplicated, delayed and held back for seconds; crashes (acceptors restart from their logs, whole groups at once too), pauses, one-way and overlapping partitions, quorum losses, directory restarts, joins and leaves, stale views, client crashes, one fault for good)', () => {
  it('f=1 with 3 matchmakers (elections go through them; they crash, pause and restart from their state): 1,000 seeds x 1,000 steps keep every invariant and finish every command', () => {
    const result = sweep({ firstSeed: 1, seeds: 1000, steps: 1000, f: 1, matchmakers: 3 });
    console.log(
      `f=1 sweep (3 matchmakers): ${result.runs} seeds, ${result.totalSteps} steps in ${(result.elapsedMs / 1000).toFixed(1)} s`,
    );
    expect(result.totalSteps).toBeGreaterThanOrEqual(1000 * 1000);
    expectNoFailures(result, 1000, 1, 2, 3);
  });
});
