import { runSimulation, type SimulationOptions, type SimulationResult } from './simulation.ts';

export interface SweepOptions extends Omit<SimulationOptions, 'seed' | 'trace'> {
  readonly firstSeed: number;
  readonly seeds: number;
}

export interface SweepResult {
  readonly runs: number;
  readonly failures: SimulationResult[];
  readonly totalSteps: number;
  readonly elapsedMs: number;
}

/** Runs consecutive seeds; failures carry everything needed to replay them. */
export function sweep(options: SweepOptions): SweepResult {
  const started = performance.now();
  const failures: SimulationResult[] = [];
  let totalSteps = 0;
  for (let seed = options.firstSeed; seed < options.firstSeed + options.seeds; seed++) {
    const result = runSimulation({ ...options, seed });
    totalSteps += result.steps;
    if (!result.ok) failures.push(result);
  }
  return { runs: options.seeds, failures, totalSteps, elapsedMs: performance.now() - started };
}

/** The one-line command that replays a seed with a readable trace. */
export function replayCommand(
  seed: number,
  steps: number,
  f: number,
  proposers = 2,
  fsync = true,
  matchmakers = 0,
  reconfigureRate?: number,
): string {
  return `pnpm sim --seed ${seed} --steps ${steps} --f ${f}${proposers === 2 ? '' : ` --proposers ${proposers}`}${matchmakers === 0 ? '' : ` --matchmakers ${matchmakers}`}${reconfigureRate === undefined ? '' : ` --reconfigure-rate ${reconfigureRate}`}${fsync ? '' : ' --no-fsync'} --trace`;
}
