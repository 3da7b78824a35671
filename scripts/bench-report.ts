import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Every benchmark prints its JSON document; with BENCH_OUT_DIR set (as `pnpm test` does) it is
 * also written there as `<benchmark>.json`, for scripts/check-bench.mjs.
 */
export function saveBenchReport(report: { readonly benchmark: string }): void {
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
