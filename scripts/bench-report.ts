import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatTable, jsonMode, packageVersion } from '../packages/launcher/src/output.ts';

/**
 * Prints a benchmark's JSON document (`-o json`: the only thing on stdout); with BENCH_OUT_DIR set (as `pnpm test` does) also writes it
 * there as `<benchmark>.json`, for scripts/check-bench.mjs.
 */
export function publishBenchReport(report: { readonly benchmark: string }): void {
  // On stdout even in a `-o json` run, where console.log goes to stderr (`jsonMode`).
  process.stdout.write(`\n${JSON.stringify(report, null, 2)}\n`);
  const dir = process.env.BENCH_OUT_DIR;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `${report.benchmark}.json`), JSON.stringify(report, null, 2));
}

/** The `machine` of every benchmark's JSON document: what the figures were measured on. */
export function benchMachine(): { cpus: number; cpuModel: string; node: string; platform: string } {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    node: process.version,
    platform: `${os.platform()}-${os.arch()}`,
  };
}

/** Whether the benchmarks run in their short mode (BENCH_SHORT=1, as `pnpm test` sets): only to check they work. */
export const BENCH_SHORT = process.env.BENCH_SHORT === '1';

/** The fields every benchmark's JSON document starts with, then the benchmark's own (which may set its date). */
export function benchReport<T extends object>(benchmark: string, fields: T) {
  return {
    benchmark,
    date: new Date().toISOString(),
    short: BENCH_SHORT,
    machine: benchMachine(),
    ...fields,
  };
}

/**
 * A benchmark's integer setting from the environment, or `fallback` when unset; anything but an
 * integer >= `min` stops the benchmark with a line naming the variable.
 */
export function benchSetting(name: string, fallback: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  return parseIntegers(name, raw, min, 'an integer', [raw])[0] as number;
}

/** A comma-separated list of integers >= `min` from the environment (`fallback` when unset). */
export function benchList(name: string, fallback: readonly number[], min = 1): number[] {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return [...fallback];
  return parseIntegers(name, raw, min, 'a comma-separated list of integers', raw.split(','));
}

function parseIntegers(name: string, raw: string, min: number, what: string, parts: string[]): number[] {
  const values = parts.map((v) => v.trim());
  if (values.some((v) => !/^\d+$/.test(v) || Number(v) < min)) {
    console.error(`${name}: expected ${what} >= ${min}, got "${raw}"`);
    process.exit(2);
  }
  return values.map(Number);
}

type Cell = string | number | null;

/** Prints a table: the first column left-aligned, the others right-aligned, each as wide as its widest cell; null as "-". */
export function printTable(header: readonly string[], rows: readonly (readonly Cell[])[]): void {
  const text = rows.map((r) => r.map((c) => (typeof c === 'number' ? c.toLocaleString('en-US') : c)));
  for (const line of formatTable(header, text, { right: 'all-but-first' })) console.log(line);
}

/**
 * The flags of a benchmark script that takes no others: `-o json` (or `--json`: only the JSON
 * document on stdout, everything else on stderr), `--version`, `--help`. Anything else stops it
 * with one line, exit 2.
 */
export function benchFlags(moduleUrl: string, argv: readonly string[] = process.argv.slice(2)): void {
  const usage = 'usage: [-o text|json] [--json] [--version]';
  let output: 'text' | 'json' = 'text';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--json') output = 'json';
    else if (arg === '--version' || arg === '-V') {
      console.log(packageVersion(moduleUrl));
      process.exit(0);
    } else if (arg === '--help' || arg === '-h') {
      console.log(usage);
      process.exit(0);
    } else if (arg === '-o' || arg === '--output' || arg.startsWith('--output=')) {
      const value = arg.startsWith('--output=') ? arg.slice('--output='.length) : argv[++i];
      if (value !== 'text' && value !== 'json') {
        console.error(`-o/--output must be text or json, got "${value ?? ''}"`);
        process.exit(2);
      }
      output = value;
    } else {
      console.error(`unknown flag "${arg}"; ${usage}`);
      process.exit(2);
    }
  }
  jsonMode({ output });
}
