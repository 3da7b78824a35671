import { expect } from 'vitest';
import { replayCommand, type sweep } from '../src/sweep.ts';

/** Prints each failing seed with the one line that replays it, then fails the test. */
export function expectNoFailures(
  result: ReturnType<typeof sweep>,
  steps: number,
  f: number,
  proposers = 2,
  matchmakers = 0,
  reconfigureRate?: number,
): void {
  const lines = result.failures.map(
    (r) =>
      `seed ${r.seed}: ${r.violation?.kind} violation at step ${r.violation?.step}: ${r.violation?.message}\n  replay: ${replayCommand(r.seed, steps, f, proposers, true, matchmakers, reconfigureRate)}`,
  );
  if (lines.length > 0) console.error(lines.join('\n'));
  expect(lines).toEqual([]);
}
