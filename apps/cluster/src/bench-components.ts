/**
 * `pnpm bench:components`: each role's capacity on this machine, measured in its sandwich of
 * mocks, against raw ZeroMQ measured in the same run. Writes capacity.json for the autoscaler
 * and prints a table and a JSON document. Asserts nothing.
 *
 *   BENCH_SHORT=1           a few seconds per role, to check the benchmark runs
 *   BENCH_SWEEP=1,10,40,100 also run every role at each BATCH_SIZE (throughput/latency trade-off)
 *   CAPACITY_FILE=path      where to write capacity.json (default bench-results/capacity.json)
 *   BENCH_CPU_QUOTA=0.25    cap the role under test (not its mocks) at this many cores, like the
 *                           instances an autoscaler starts; capacity.json records it
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cpuQuotaExpectation, parseCpuQuota } from '@paxos/launcher';
import {
  BENCH_SHORT,
  benchFlags,
  benchList,
  benchMachine,
  benchReport,
  benchSetting,
  printTable,
  publishBenchReport,
} from '../../../scripts/bench-report.ts';
import { measureRawZmqBaseline, ratioToRaw } from './bench-baseline.ts';
import { MEASURED_ROLES, runSandwich, type SandwichResult } from './sandwich.ts';

// -o json: only the JSON document on stdout; --version.
benchFlags(import.meta.url);
const warmupS = BENCH_SHORT ? 1 : 3;
const measureS = BENCH_SHORT ? 2 : 8;
const batchSize = benchSetting('BATCH_SIZE', 40);
const sweep = benchList('BENCH_SWEEP', []);
const roles = (process.env.BENCH_ROLES ?? MEASURED_ROLES.join(',')).split(
  ',',
) as (typeof MEASURED_ROLES)[number][];
for (const role of roles) {
  if (!MEASURED_ROLES.includes(role)) {
    console.error(
      `BENCH_ROLES: expected a comma-separated list of ${MEASURED_ROLES.join(', ')}, got "${role}"`,
    );
    process.exit(2);
  }
}
const capacityFile = path.resolve(process.env.CAPACITY_FILE ?? 'bench-results/capacity.json');
const basePort = benchSetting('BASE_PORT', 25000, 1024);
const quotaSetting = process.env.BENCH_CPU_QUOTA ?? '';
const cpuQuota = quotaSetting === '' ? undefined : parseCpuQuota(quotaSetting);
if (cpuQuota === null) {
  console.error(`BENCH_CPU_QUOTA: expected ${cpuQuotaExpectation()}, got "${quotaSetting}"`);
  process.exit(2);
}
const quotaOption = cpuQuota === undefined ? {} : { cpuQuota };

/**
 * What one instance handles. Uncapped: what was measured. Under a quota of q cores: what q cores
 * handle at the CPU cost per message measured, which is what was measured when the role used
 * its whole quota. At a small quota a sandwich is bound by its mocks' window over the quota's
 * 100 ms throttling period, not by the role's CPU: the role then used less than q, and the figure
 * that counts for a cluster, whose clients keep the role busy, is the CPU-bound one.
 */
function capacityOf(r: SandwichResult, quota: number | undefined) {
  const cpu = r.cpuPercent / 100;
  const scale = quota === undefined || cpu <= 0 ? 1 : Math.max(1, quota / cpu);
  return {
    commandsPerSecond: Math.round(r.commandsPerSecond * scale),
    messagesPerSecond: Math.round(r.messagesPerSecond * scale),
    measuredCommandsPerSecond: r.commandsPerSecond,
    measuredMessagesPerSecond: r.messagesPerSecond,
    cpuPercent: r.cpuPercent,
    cpuMicrosPerMessage: r.cpuMicrosPerMessage,
    cpuMicrosPerCommand: r.cpuMicrosPerCommand,
  };
}

const raw = await measureRawZmqBaseline();

const results: (SandwichResult & { ratioToRawZmq: number })[] = [];
for (const role of roles) {
  const r = await runSandwich({ role, batchSize, warmupS, measureS, basePort, ...quotaOption });
  results.push({ ...r, ratioToRawZmq: ratioToRaw(r.messagesPerSecond, raw) });
}
const sweepResults: SandwichResult[] = [];
for (const size of sweep) {
  for (const role of roles)
    sweepResults.push(
      await runSandwich({ role, batchSize: size, warmupS, measureS, basePort, ...quotaOption }),
    );
}

// The figures are those of an instance of this size only if every sandwich ran under the quota.
const uncapped = results.find((r) => r.cpuQuota === null);
const capacity = {
  date: new Date().toISOString(),
  batchSize,
  machine: benchMachine(),
  cpuQuota: uncapped === undefined ? (cpuQuota ?? null) : null,
  cpuQuotaInForce: (uncapped ?? results[0])?.cpuQuotaInForce ?? null,
  rawZmqMessagesPerSecond: raw.messagesPerSecond,
  roles: Object.fromEntries(results.map((r) => [r.role, capacityOf(r, cpuQuota)])),
};
mkdirSync(path.dirname(capacityFile), { recursive: true });
writeFileSync(capacityFile, `${JSON.stringify(capacity, null, 2)}\n`);

const report = benchReport('components', {
  date: capacity.date,
  batchSize,
  cpuQuota: capacity.cpuQuota,
  cpuQuotaInForce: capacity.cpuQuotaInForce,
  rawZmq: raw,
  results,
  sweep: sweepResults,
  capacityFile,
});

if (capacity.cpuQuotaInForce !== null) console.log(`\n${capacity.cpuQuotaInForce}`);
console.log(
  `\nPer-role capacity, one instance between mocks (BATCH_SIZE=${batchSize}); raw ZeroMQ DEALER→ROUTER ${raw.messagesPerSecond.toLocaleString('en-US')} msg/s\n`,
);
printTable(
  [
    'role',
    'msgs in/s',
    'msgs out/s',
    'commands/s',
    'x raw zmq',
    'CPU %',
    'CPU µs/msg',
    'CPU µs/cmd',
    'p50 ms',
    'p99 ms',
    'seconds',
  ],
  results.map((r) => [
    r.role,
    r.messagesPerSecond,
    r.messagesOutPerSecond,
    r.commandsPerSecond,
    r.ratioToRawZmq,
    r.cpuPercent,
    r.cpuMicrosPerMessage,
    r.cpuMicrosPerCommand,
    r.p50Ms?.toFixed(2) ?? null,
    r.p99Ms?.toFixed(2) ?? null,
    r.seconds,
  ]),
);
if (sweepResults.length > 0) {
  console.log('\nBATCH_SIZE sweep');
  printTable(
    ['role', 'batch', 'commands/s', 'msgs/s', 'p50 ms', 'p99 ms'],
    sweepResults.map((r) => [
      r.role,
      r.batchSize,
      r.commandsPerSecond,
      r.messagesPerSecond,
      r.p50Ms?.toFixed(2) ?? null,
      r.p99Ms?.toFixed(2) ?? null,
    ]),
  );
}
console.log(`\ncapacity written to ${capacityFile}`);
publishBenchReport(report);
