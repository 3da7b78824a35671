/**
 * `pnpm bench:e2e`: commands/s and p50/p99 latency of a local cluster at 1, 16 and 128
 * closed-loop clients, and in the same run raw ZeroMQ DEALER→ROUTER messages/s on this machine,
 * with the ratio. Prints a table and a JSON document; asserts nothing.
 * BENCH_SHORT=1: a few seconds in all, to check the benchmark runs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_TOPOLOGY } from '@paxos/launcher';
import { measureRawZmq } from '@paxos/transport-zmq';
import { benchMachine, saveBenchReport } from '../../../scripts/bench-report.ts';
import { LocalCluster } from './cluster.ts';

const SHORT = process.env.BENCH_SHORT === '1';
const seconds = Number(process.env.BENCH_SECONDS ?? (SHORT ? 2 : 10));
const levels = (process.env.BENCH_CLIENTS ?? (SHORT ? '1,16' : '1,16,128')).split(',').map(Number);
const batchSize = Number(process.env.BATCH_SIZE ?? 40);

const raw = await measureRawZmq({ pattern: 'dealer-router', messages: SHORT ? 20_000 : 200_000, size: 100 });
// Logs and acceptor data of this run only: removed when the benchmark ends.
const workDir = mkdtempSync(path.join(os.tmpdir(), 'paxos-bench-e2e-'));
const cluster = new LocalCluster(
  {
    ...DEFAULT_TOPOLOGY,
    batchSize,
    logLevel: 'warn',
    keyPrefix: `bench${Date.now().toString(36)}-`,
    basePort: Number(process.env.BASE_PORT ?? 23000),
  },
  workDir,
);
const results: {
  clients: number;
  commandsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  acknowledged: number;
  seconds: number;
  ratioToRawZmq: number;
}[] = [];
try {
  await cluster.up();
  for (const clients of levels) {
    const s = await cluster.runClient({ clients, durationS: seconds, reportMs: 1000 });
    results.push({
      clients,
      commandsPerSecond: s.throughput,
      p50Ms: s.p50Ms,
      p99Ms: s.p99Ms,
      acknowledged: s.acknowledged,
      seconds: s.seconds,
      ratioToRawZmq: Number((s.throughput / raw.messagesPerSecond).toFixed(3)),
    });
  }
} finally {
  await cluster.down();
  rmSync(workDir, { recursive: true, force: true });
}

const report = {
  benchmark: 'e2e',
  date: new Date().toISOString(),
  short: SHORT,
  machine: benchMachine(),
  batchSize,
  rawZmq: {
    pattern: 'dealer-router',
    messageBytes: 100,
    messagesPerSecond: Math.round(raw.messagesPerSecond),
  },
  results,
};
console.log(
  `\nLocal cluster (f=1, ${cluster.processes.length} role processes, BATCH_SIZE=${batchSize}) vs raw ZeroMQ\n`,
);
console.log(
  `${'clients'.padStart(7)} ${'commands/s'.padStart(11)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'x raw zmq'.padStart(10)}`,
);
for (const r of results) {
  console.log(
    `${String(r.clients).padStart(7)} ${r.commandsPerSecond.toLocaleString('en-US').padStart(11)} ${r.p50Ms.toFixed(2).padStart(8)} ${r.p99Ms.toFixed(2).padStart(8)} ${r.ratioToRawZmq.toFixed(3).padStart(10)}`,
  );
}
console.log(
  `raw ZeroMQ DEALER→ROUTER: ${report.rawZmq.messagesPerSecond.toLocaleString('en-US')} messages/s`,
);
console.log(`\n${JSON.stringify(report, null, 2)}`);

saveBenchReport(report);
