#!/usr/bin/env node
// `pnpm test`: lint, typecheck, then every package's tests through turbo; ends with one line
// "N passed, N failed" summed over all packages (CI reads it). Exit code 1 if anything failed.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const extraArgs = process.argv.slice(2);

function packagesWithTests() {
  const dirs = [];
  for (const parent of ['packages', 'apps']) {
    const base = path.join(root, parent);
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base)) {
      const manifest = path.join(base, name, 'package.json');
      if (!existsSync(manifest)) continue;
      const pkg = JSON.parse(readFileSync(manifest, 'utf8'));
      if (pkg.scripts?.test) dirs.push({ dir: path.join(base, name), name: pkg.name });
    }
  }
  return dirs;
}

function run(label, command, args, extraEnv = {}) {
  console.log(`\n=== ${label}: ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1', ...extraEnv },
  });
  return result.status === 0;
}

const packages = packagesWithTests();
for (const { dir } of packages) rmSync(path.join(dir, 'test-results.json'), { force: true });

let failed = 0;
let passed = 0;
if (!run('lint', 'pnpm', ['exec', 'biome', 'check', '.'])) failed++;
else passed++;
if (!run('typecheck', 'pnpm', ['exec', 'turbo', 'run', 'typecheck', '--output-logs=errors-only'])) failed++;
else passed++;
run('tests', 'pnpm', ['exec', 'turbo', 'run', 'test', '--continue', '--concurrency=1', ...extraArgs]);

// Every package's benchmarks in their short mode: they must run and emit JSON of the documented
// shape (scripts/check-bench.mjs); no speed is asserted. bench:e2e runs with two load-generator
// processes, so the merge of their summaries (and of their latency histograms) is checked too.
const benchDir = path.join(root, 'bench-results');
const BENCH_CLIENT_PROCS = '2';
rmSync(benchDir, { recursive: true, force: true });
// Its exit status is not counted: the check of the JSON documents below is.
run(
  'benchmarks (short mode)',
  'pnpm',
  ['exec', 'turbo', 'run', 'bench', '--concurrency=1', '--output-logs=errors-only'],
  {
    BENCH_SHORT: '1',
    BENCH_OUT_DIR: benchDir,
    BENCH_CLIENT_PROCS: BENCH_CLIENT_PROCS,
  },
);
const benchCheck = spawnSync('node', [path.join(root, 'scripts/check-bench.mjs'), benchDir], {
  cwd: root,
  encoding: 'utf8',
  env: { ...process.env, BENCH_CLIENT_PROCS },
});
process.stdout.write(benchCheck.stdout);
const benchCounts = /^(\d+) passed, (\d+) failed$/m.exec(benchCheck.stdout);

console.log('\n=== summary');
for (const { dir, name } of packages) {
  const file = path.join(dir, 'test-results.json');
  if (!existsSync(file)) {
    console.log(`${name}: no test results (the test run crashed or was not started)`);
    failed++;
    continue;
  }
  const report = JSON.parse(readFileSync(file, 'utf8'));
  const p = report.numPassedTests ?? 0;
  let f = report.numFailedTests ?? 0;
  // A file that fails to load has no failed tests, only a failed suite.
  if (report.success === false && f === 0) f = Math.max(1, report.numFailedTestSuites ?? 0);
  console.log(`${name}: ${p} passed, ${f} failed`);
  passed += p;
  failed += f;
}
if (benchCounts === null) {
  console.log('benchmarks: the check did not run');
  failed++;
} else {
  console.log(`benchmarks: ${benchCounts[1]} passed, ${benchCounts[2]} failed`);
  passed += Number(benchCounts[1]);
  failed += Number(benchCounts[2]);
}
console.log('(lint and typecheck count as one test each, and so does the JSON check of each benchmark)');
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
