#!/usr/bin/env node
// Checks that every benchmark ran and wrote a JSON document of the documented shape
// ({ benchmark, date, short, machine, results }); asserts no speed. Prints one line per
// benchmark and a final "N passed, N failed" line.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const dir = process.argv[2] ?? 'bench-results';
/** Benchmark name → numeric fields every result must have. */
const EXPECTED = {
  'core-step': ['operations', 'seconds', 'perSecond'],
  'raw-zmq': ['operations', 'seconds', 'perSecond'],
  e2e: ['clients', 'commandsPerSecond', 'p50Ms', 'p99Ms', 'ratioToRawZmq'],
  components: [
    'messagesPerSecond',
    'messagesOutPerSecond',
    'commandsPerSecond',
    'cpuPercent',
    'cpuMicrosPerMessage',
    'cpuMicrosPerCommand',
    'ratioToRawZmq',
  ],
};

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
