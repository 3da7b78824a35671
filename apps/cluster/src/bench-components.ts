/**
 * `pnpm bench:components`: each role's capacity on this machine, measured in its sandwich of
 * mocks, against raw ZeroMQ measured in the same run. Writes capacity.json for the autoscaler
 * and prints a table and a JSON document. Asserts nothing.
 *
 *   BENCH_SHORT=1           a few seconds per role, to check the benchmark runs
 *   BENCH_SWEEP=1,10,40,100 also run every role at each BATCH_SIZE (throughput/latency trade-off)
 *   CAPACITY_FILE=path      where to write capacity.json (default bench-results/capacity.json)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { measureRawZmq } from '@paxos/transport-zmq';
import { benchMachine, saveBenchReport } from '../../../scripts/bench-report.ts';
import { MEASURED_ROLES, runSandwich, type SandwichResult } from './sandwich.ts';

const SHORT = process.env.BENCH_SHORT === '1';
const warmupS = SHORT ? 1 : 3;
const measureS = SHORT ? 2 : 8;
const batchSize = Number(process.env.BATCH_SIZE ?? 40);
const sweep = (process.env.BENCH_SWEEP ?? '')
  .split(',')
  .filter((x) => x.length > 0)
  .map(Number);
const roles = (process.env.BENCH_ROLES ?? MEASURED_ROLES.join(',')).split(
  ',',
) as (typeof MEASURED_ROLES)[number][];
const capacityFile = path.resolve(process.env.CAPACITY_FILE ?? 'bench-results/capacity.json');
const basePort = Number(process.env.BASE_PORT ?? 25000);

const raw = await measureRawZmq({ pattern: 'dealer-router', messages: SHORT ? 20_000 : 200_000, size: 100 });
const machine = benchMachine();

const results: (SandwichResult & { ratioToRawZmq: number })[] = [];
for (const role of roles) {
  const r = await runSandwich({ role, batchSize, warmupS, measureS, basePort });
  results.push({ ...r, ratioToRawZmq: Number((r.messagesPerSecond / raw.messagesPerSecond).toFixed(3)) });
}
const sweepResults: SandwichResult[] = [];
for (const size of sweep) {
  for (const role of roles)
    sweepResults.push(await runSandwich({ role, batchSize: size, warmupS, measureS, basePort }));
}

const capacity = {
  date: new Date().toISOString(),
  batchSize,
  machine,
  rawZmqMessagesPerSecond: Math.round(raw.messagesPerSecond),
  roles: Object.fromEntries(
    results.map((r) => [
      r.role,
      { commandsPerSecond: r.commandsPerSecond, messagesPerSecond: r.messagesPerSecond },
    ]),
  ),
};
mkdirSync(path.dirname(capacityFile), { recursive: true });
writeFileSync(capacityFile, `${JSON.stringify(capacity, null, 2)}\n`);

const report = {
  benchmark: 'components',
  date: capacity.date,
  short: SHORT,
  machine,
  batchSize,
  rawZmq: {
    pattern: 'dealer-router',
    messageBytes: 100,
    messagesPerSecond: capacity.rawZmqMessagesPerSecond,
  },
  results,
  sweep: sweepResults,
  capacityFile,
};

const row = (cells: (string | number | null)[], widths: number[]) =>
  cells.map((c, i) => String(c ?? '-').padStart(widths[i] as number)).join(' ');
const widths = [13, 10, 11, 12, 10, 7, 8, 8, 8];
console.log(
  `\nPer-role capacity, one instance between mocks (BATCH_SIZE=${batchSize}); raw ZeroMQ DEALER→ROUTER ${capacity.rawZmqMessagesPerSecond.toLocaleString('en-US')} msg/s\n`,
);
console.log(
  row(
    ['role', 'msgs in/s', 'msgs out/s', 'commands/s', 'x raw zmq', 'CPU %', 'p50 ms', 'p99 ms', 'seconds'],
    widths,
  ),
);
for (const r of results) {
  console.log(
    row(
      [
        r.role,
        r.messagesPerSecond,
        r.messagesOutPerSecond,
        r.commandsPerSecond,
        r.ratioToRawZmq,
        r.cpuPercent,
        r.p50Ms?.toFixed(2) ?? null,
        r.p99Ms?.toFixed(2) ?? null,
        r.seconds,
      ],
      widths,
    ),
  );
}
if (sweepResults.length > 0) {
  console.log('\nBATCH_SIZE sweep');
  console.log(row(['role', 'batch', 'commands/s', 'msgs/s', 'p50 ms', 'p99 ms'], [13, 6, 12, 10, 8, 8]));
  for (const r of sweepResults)
    console.log(
      row(
        [
          r.role,
          r.batchSize,
          r.commandsPerSecond,
          r.messagesPerSecond,
          r.p50Ms?.toFixed(2) ?? null,
          r.p99Ms?.toFixed(2) ?? null,
        ],
        [13, 6, 12, 10, 8, 8],
      ),
    );
}
console.log(`\ncapacity written to ${capacityFile}\n\n${JSON.stringify(report, null, 2)}`);

saveBenchReport(report);
