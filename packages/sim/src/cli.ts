import { createRequire } from 'node:module';
import { Command, InvalidArgumentError } from 'commander';
import { runSimulation } from './simulation.ts';
import { replayCommand, sweep } from './sweep.ts';

function integer(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min)
      throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got "${value}"`);
    return n;
  };
}

function probability(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1)
    throw new InvalidArgumentError(`--reconfigure-rate must be a probability in [0, 1], got "${value}"`);
  return n;
}

const program = new Command()
  .name('pnpm sim')
  .version(
    (createRequire(import.meta.url)('../package.json') as { version: string }).version,
    '-V, --version',
    'print the version and exit',
  )
  // A bad flag: its one line and exit code 2, as every CLI here.
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
  .description(
    'Run the deterministic cluster simulator: one seed with an optional trace, or a sweep of seeds.',
  )
  .option('--seed <n>', 'seed to run (replays exactly)', integer('--seed', 0), 1)
  .option('--steps <n>', 'steps with faults injected before recovery', integer('--steps', 1), 300)
  .option('--f <n>', 'failures tolerated per acceptor group', integer('--f', 1), 1)
  .option('--proposers <n>', 'proposers in the cluster', integer('--proposers', 1), 2)
  .option(
    '--matchmakers <n>',
    'matchmakers (0: none; otherwise an odd 2f+1) that every election goes through',
    integer('--matchmakers', 0),
    0,
  )
  .option(
    '--reconfigure-rate <p>',
    'chance per step that the operator changes the configuration or replaces a matchmaker (with --matchmakers)',
    probability,
  )
  .option('--seeds <n>', 'sweep this many consecutive seeds starting at --seed', integer('--seeds', 1))
  .option('--wire', 'encode and decode every message with the protobuf codec')
  .option('--no-fsync', 'acceptors do not sync their log: a crash loses what was not synced')
  .option('--trace', 'print every event of the run')
  .parse();

const opts = program.opts<{
  seed: number;
  steps: number;
  f: number;
  proposers: number;
  matchmakers: number;
  reconfigureRate?: number;
  seeds?: number;
  wire?: boolean;
  fsync: boolean;
  trace?: boolean;
}>();

if (opts.seeds !== undefined) {
  const result = sweep({
    firstSeed: opts.seed,
    seeds: opts.seeds,
    steps: opts.steps,
    f: opts.f,
    proposers: opts.proposers,
    matchmakers: opts.matchmakers,
    ...(opts.reconfigureRate === undefined ? {} : { faults: { reconfigure: opts.reconfigureRate } }),
    wire: opts.wire ?? false,
    fsync: opts.fsync,
  });
  for (const failure of result.failures) {
    console.log(
      `seed ${failure.seed} FAILED: ${failure.violation?.message}\n  replay: ${replayCommand(failure.seed, opts.steps, opts.f, opts.proposers, opts.fsync, opts.matchmakers, opts.reconfigureRate)}`,
    );
  }
  console.log(
    `${result.runs} seeds x ${opts.steps} steps (f=${opts.f}${opts.matchmakers > 0 ? `, ${opts.matchmakers} matchmakers` : ''}): ${result.runs - result.failures.length} ok, ${result.failures.length} failed, ${result.totalSteps} steps in ${(result.elapsedMs / 1000).toFixed(1)} s`,
  );
  process.exitCode = result.failures.length === 0 ? 0 : 1;
} else {
  const result = runSimulation({
    seed: opts.seed,
    steps: opts.steps,
    f: opts.f,
    proposers: opts.proposers,
    matchmakers: opts.matchmakers,
    ...(opts.reconfigureRate === undefined ? {} : { faults: { reconfigure: opts.reconfigureRate } }),
    wire: opts.wire ?? false,
    fsync: opts.fsync,
    ...(opts.trace ? { trace: (line: string) => console.log(line) } : {}),
  });
  const s = result.stats;
  console.log(
    `seed ${result.seed}: ${result.ok ? 'ok' : `VIOLATION (${result.violation?.kind}) at step ${result.violation?.step}: ${result.violation?.message}`}`,
  );
  console.log(
    `  ${result.steps} steps, ${result.virtualTimeMs} ms virtual; ${s.acknowledged}/${s.submitted} commands acknowledged, ${s.slotsChosen} slots chosen, ${s.elections} elections (${s.stepDowns} step-downs), ${s.crashes} crashes (${s.groupCrashes} of whole acceptor groups, ${s.acceptorRestarts} acceptor restarts from their logs, ${s.matchmakerRestarts} matchmaker restarts), ${s.pauses} pauses, ${s.partitions} partitions, ${s.oneWayFaults} one-way faults, ${s.quorumLosses} quorum losses, ${s.directoryRestarts} directory restarts (${s.reregistrations} re-registrations), ${s.joins} joins, ${s.leaves} leaves, ${s.staleViews} stale views, ${s.clientCrashes} client crashes, ${s.permanentFaults} faults for good, ${s.dropped} dropped, ${s.duplicated} duplicated, ${s.longDelays} held back; ${s.reconfigurations} reconfigurations (${s.bypasses} by a leader without phase 1, ${s.garbageCollections} garbage collections, ${s.retiredAcceptors} acceptors retired); ${s.matchmakerReplacements} matchmaker replacements (${s.matchmakerChanges} sets chosen)`,
  );
  if (!result.ok)
    console.log(
      `  replay: ${replayCommand(result.seed, opts.steps, opts.f, opts.proposers, opts.fsync, opts.matchmakers, opts.reconfigureRate)}`,
    );
  process.exitCode = result.ok ? 0 : 1;
}
