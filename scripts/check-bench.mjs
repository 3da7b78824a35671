#!/usr/bin/env node
// Checks that every benchmark ran and wrote a JSON document of the documented shape
// ({ benchmark, date, short, machine, results }); asserts no speed. Prints one line per
// benchmark and a final "N passed, N failed" line. With BENCH_CLIENT_PROCS set (as `pnpm test`
// sets it), also that bench:e2e split its clients across that many load generators. For
// bench:durability, that every system ran every level and its figures were taken; where an etcd
// binary is installed here (ETCD_BIN, else `etcd` on PATH), that the etcd rows are there too.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const dir = process.argv[2] ?? 'bench-results';
/** Benchmark name → numeric fields every result must have. */
const EXPECTED = {
  'core-step': ['operations', 'seconds', 'perSecond'],
  'raw-zmq': ['operations', 'seconds', 'perSecond'],
  e2e: ['clients', 'procs', 'commandsPerSecond', 'p50Ms', 'p99Ms', 'ratioToRawZmq'],
  components: [
    'messagesPerSecond',
    'messagesOutPerSecond',
    'commandsPerSecond',
    'cpuPercent',
    'cpuMicrosPerMessage',
    'cpuMicrosPerCommand',
    'ratioToRawZmq',
  ],
  scale: ['instances', 'commandsPerSecond', 'p50Ms', 'p99Ms', 'bottleneckCpuPercent', 'hostCpuPercent'],
  durability: ['clients', 'procs', 'opsPerSecond', 'p50Ms', 'p99Ms'],
};
/** Benchmark name → string fields every result must have, and the values each may take (null: any). */
const STRINGS = {
  e2e: { mode: ['closed', 'open'] },
  scale: { role: ['proxy-leaders', 'unbatchers', 'batchers', 'groups'], bottleneck: null },
  durability: { system: ['paxos-fsync-off', 'paxos-fsync-on', 'etcd'] },
};
const clientProcs = process.env.BENCH_CLIENT_PROCS ? Number(process.env.BENCH_CLIENT_PROCS) : null;
const etcdInstalled = spawnSync(process.env.ETCD_BIN || 'etcd', ['--version']).status === 0;

/** bench:durability: each system at every level, and the figures taken from them. */
function durabilityProblems(doc) {
  const problems = [];
  const levels = doc.levels;
  if (!Array.isArray(levels) || levels.length === 0) return ['levels is not a list of client levels'];
  if (doc.etcd?.skipped !== null && etcdInstalled)
    problems.push(`etcd is installed here but its rows were skipped: ${JSON.stringify(doc.etcd?.skipped)}`);
  const withEtcd = doc.etcd?.skipped === null;
  const systems = ['paxos-fsync-off', 'paxos-fsync-on', ...(withEtcd ? ['etcd'] : [])];
  for (const system of systems) {
    for (const clients of levels) {
      if (!(doc.results ?? []).some((r) => r.system === system && r.clients === clients))
        problems.push(`no ${system} row at ${clients} clients`);
    }
  }
  const figures = ['fsyncOnToOff', 'addedP50Ms', ...(withEtcd ? ['fsyncOnToEtcd'] : [])];
  for (const f of figures) {
    const value = doc.figures?.[f]?.value;
    if (typeof value !== 'number' || !Number.isFinite(value))
      problems.push(`figures.${f}.value is ${JSON.stringify(value)}, expected a number`);
  }
  return problems;
}

let passed = 0;
let failed = 0;
for (const [name, fields] of Object.entries(EXPECTED)) {
  const file = path.join(dir, `${name}.json`);
  const problems = [];
  if (!existsSync(file)) problems.push(`${file} was not written`);
  else {
    let doc;
    try {
      doc = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      problems.push(`not JSON: ${err.message}`);
    }
    if (doc !== undefined) {
      if (doc.benchmark !== name)
        problems.push(`benchmark is ${JSON.stringify(doc.benchmark)}, expected "${name}"`);
      if (Number.isNaN(Date.parse(doc.date))) problems.push('date is not an ISO date');
      if (typeof doc.short !== 'boolean') problems.push('short is not a boolean');
      if (typeof doc.machine?.cpus !== 'number' || typeof doc.machine?.node !== 'string')
        problems.push('machine lacks cpus/node');
      if (!Array.isArray(doc.results) || doc.results.length === 0) problems.push('results is empty');
      for (const [i, r] of (doc.results ?? []).entries()) {
        for (const f of fields) {
          if (typeof r[f] !== 'number' || !Number.isFinite(r[f]))
            problems.push(`results[${i}].${f} is ${JSON.stringify(r[f])}, expected a number`);
        }
        for (const [f, allowed] of Object.entries(STRINGS[name] ?? {})) {
          if (typeof r[f] !== 'string' || (allowed !== null && !allowed.includes(r[f])))
            problems.push(
              `results[${i}].${f} is ${JSON.stringify(r[f])}, expected ${allowed === null ? 'a string' : `one of ${allowed.join(', ')}`}`,
            );
        }
      }
      if (name === 'durability') problems.push(...durabilityProblems(doc));
      if (name === 'e2e' && clientProcs !== null && Array.isArray(doc.results)) {
        if (doc.clientProcs !== clientProcs)
          problems.push(`clientProcs is ${JSON.stringify(doc.clientProcs)}, expected ${clientProcs}`);
        // Each level runs min(procs, clients) generators, their summaries merged.
        for (const [i, r] of doc.results.entries()) {
          if (r.procs !== Math.min(clientProcs, r.clients))
            problems.push(`results[${i}].procs is ${r.procs}, expected ${Math.min(clientProcs, r.clients)}`);
        }
      }
    }
  }
  if (problems.length === 0) {
    passed++;
    console.log(`bench ${name}: ok`);
  } else {
    failed++;
    console.log(`bench ${name}: FAILED\n  ${problems.join('\n  ')}`);
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
