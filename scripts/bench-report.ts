import { mkdirSync, writeFileSync } from 'node:fs';
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
