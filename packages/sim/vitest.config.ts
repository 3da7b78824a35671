import { defineConfig } from 'vitest/config';

// The sweeps are CPU-bound and share nothing: two files at a time keep both cores busy (the
// package's tests run alone, never beside a cluster's).
export default defineConfig({ test: { testTimeout: 300_000, maxWorkers: 2 } });
