import { describe, it } from 'vitest';
import { sweep } from '../src/sweep.ts';
import { expectNoFailures } from './expect-sweep.ts';

describe('seeded sweeps of other shapes, with faults (messages lost, duplicated, delayed and held back for seconds; crashes (acceptors restart from their logs, whole groups at once too), pauses, one-way and overlapping partitions, quorum losses, directory restarts, joins and leaves, stale views, client crashes, one fault for good)', () => {
  it('f=2: 250 seeds x 1,000 steps (groups of five acceptors, two of them may be down at once)', () => {
    const result = sweep({ firstSeed: 100_001, seeds: 250, steps: 1000, f: 2 });
    console.log(
      `f=2 sweep: ${result.runs} seeds, ${result.totalSteps} steps in ${(result.elapsedMs / 1000).toFixed(1)} s`,
    );
    expectNoFailures(result, 1000, 2);
  });

  it('three proposers and 3 matchmakers: 800 seeds x 1,000 steps (slots that see three or more leaders)', () => {
    const result = sweep({
      firstSeed: 400_001,
      seeds: 800,
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

  it('frequent operator changes, a quarter of them matchmaker replacements (3 proposers, 3 matchmakers): 300 seeds x 1,000 steps', () => {
    const result = sweep({
      firstSeed: 500_001,
      seeds: 300,
      steps: 1000,
      f: 1,
      proposers: 3,
      matchmakers: 3,
      faults: { reconfigure: 0.03 },
    });
    console.log(
      `operator sweep: ${result.runs} seeds, ${result.totalSteps} steps in ${(result.elapsedMs / 1000).toFixed(1)} s`,
    );
    expectNoFailures(result, 1000, 1, 3, 3, 0.03);
  });

  it('f=2 with 5 matchmakers and frequent operator changes: 150 seeds x 1,000 steps', () => {
    const result = sweep({
      firstSeed: 600_001,
      seeds: 150,
      steps: 1000,
      f: 2,
      matchmakers: 5,
      faults: { reconfigure: 0.03 },
    });
    expectNoFailures(result, 1000, 2, 2, 5, 0.03);
  });

  it('every message through the protobuf codec, reconfigurations included (3 matchmakers): 120 seeds x 1,000 steps', () => {
    const result = sweep({ firstSeed: 200_001, seeds: 120, steps: 1000, f: 1, wire: true, matchmakers: 3 });
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
