import { describe, expect, it } from 'vitest';
import { replayCommand, sweep } from '../src/sweep.ts';

/** Prints each failing seed with the one line that replays it, then fails the test. */
function expectNoFailures(
  result: ReturnType<typeof sweep>,
  steps: number,
  f: number,
  proposers = 2,
  matchmakers = 0,
): void {
  const lines = result.failures.map(
    (r) =>
      `seed ${r.seed}: ${r.violation?.kind} violation at step ${r.violation?.step}: ${r.violation?.message}\n  replay: ${replayCommand(r.seed, steps, f, proposers, true, matchmakers)}`,
  );
  if (lines.length > 0) console.error(lines.join('\n'));
  expect(lines).toEqual([]);
}

describe('seeded sweep with faults (messages lost, duplicated, delayed and held back for seconds; crashes (acceptors restart from their logs, whole groups at once too), pauses, one-way and overlapping partitions, quorum losses, directory restarts, joins and leaves, stale views, client crashes, one fault for good)', () => {
  it('f=1 with 3 matchmakers (elections go through them; they crash, pause and restart from their state): 2,000 seeds x 1,000 steps keep every invariant and finish every command', () => {
    const result = sweep({ firstSeed: 1, seeds: 2000, steps: 1000, f: 1, matchmakers: 3 });
    console.log(
      `f=1 sweep (3 matchmakers): ${result.runs} seeds, ${result.totalSteps} steps in ${(result.elapsedMs / 1000).toFixed(1)} s`,
    );
    expect(result.totalSteps).toBeGreaterThanOrEqual(2000 * 1000);
    expectNoFailures(result, 1000, 1, 2, 3);
  });

  it('f=2: 500 seeds x 1,000 steps (groups of five acceptors, two of them may be down at once)', () => {
    const result = sweep({ firstSeed: 100_001, seeds: 500, steps: 1000, f: 2 });
    console.log(
      `f=2 sweep: ${result.runs} seeds, ${result.totalSteps} steps in ${(result.elapsedMs / 1000).toFixed(1)} s`,
    );
    expectNoFailures(result, 1000, 2);
  });

  it('three proposers and 3 matchmakers: 1,000 seeds x 1,000 steps (slots that see three or more leaders)', () => {
    const result = sweep({
      firstSeed: 400_001,
      seeds: 1000,
      steps: 1000,
      f: 1,
      proposers: 3,
      matchmakers: 3,
    });
    console.log(
      `3-proposer sweep (3 matchmakers): ${result.runs} seeds, ${result.totalSteps} steps in ${(result.elapsedMs / 1000).toFixed(1)} s`,
    );
    expectNoFailures(result, 1000, 1, 3, 3);
  });

  it('every message through the protobuf codec, reconfigurations included (3 matchmakers): 200 seeds x 1,000 steps', () => {
    const result = sweep({ firstSeed: 200_001, seeds: 200, steps: 1000, f: 1, wire: true, matchmakers: 3 });
    expectNoFailures(result, 1000, 1, 2, 3);
  });

  it('a bigger cluster: 3 proposers, 3 groups, 4 clients, batch size 10', () => {
    const result = sweep({
      firstSeed: 300_001,
      seeds: 200,
      steps: 1500,
      proposers: 3,
      groups: 3,
      clients: 4,
      batchSize: 10,
      clientWindow: 5,
    });
    expectNoFailures(result, 1500, 1, 3);
  });
});
