import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Prints a benchmark's JSON document; with BENCH_OUT_DIR set (as `pnpm test` does) also writes it
 * there as `<benchmark>.json`, for scripts/check-bench.mjs.
 */
export function publishBenchReport(report: { readonly benchmark: string }): void {
  console.log(`\n${JSON.stringify(report, null, 2)}`);
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
  const text = [header, ...rows].map((r) =>
    r.map((c) => (typeof c === 'number' ? c.toLocaleString('en-US') : (c ?? '-'))),
  );
  const widths = header.map((_, i) => Math.max(...text.map((r) => (r[i] ?? '').length)));
  for (const r of text) {
    console.log(
      r.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  '),
    );
  }
}
