import path from 'node:path';
import { LatencyHistogram } from '@paxos/latency';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientProgress, runClientProcs } from '../src/client-load.ts';
import { readAcks, startCluster } from './helpers.ts';

/** Exact nearest-rank q-quantile: what the merged histogram approximates to 0.1 %. */
function nearestRank(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] as number;
}

let env: Awaited<ReturnType<typeof startCluster>>;
beforeAll(async () => {
  env = await startCluster(28000, { metricsBasePort: 28300 });
});
afterAll(async () => {
  await env?.stop();
});

describe('several load generators at once', () => {
  it('closed loop: clients split across two processes; the merged latencies are those of every acknowledgement', async () => {
    const progress: ClientProgress[][] = [[], []];
    const { merged, summaries } = await runClientProcs(env.cluster, {
      clients: 9,
      procs: 2,
      durationS: 2,
      reportMs: 250,
      acksFile: (proc) => path.join(env.workDir, `acks-${proc}.csv`),
      onLine: (line, proc) => {
        if (line.type === 'progress') progress[proc]?.push(line);
      },
    });
    expect(summaries.map((s) => s.clients)).toEqual([5, 4]);
    expect(merged).toMatchObject({ procs: 2, clients: 9, mode: 'closed' });
    const sum = (f: (s: (typeof summaries)[number]) => number) => summaries.reduce((n, s) => n + f(s), 0);
    expect(merged.acknowledged).toBe(sum((s) => s.acknowledged));
    expect(merged.throughput).toBe(sum((s) => s.throughput));
    expect(merged.acknowledged).toBeGreaterThan(0);

    // Every acknowledgement is in the merged histogram, and its percentiles are the exact ones
    // of all the latencies the two processes wrote, to the histogram's 0.1 %.
    const latencies = [0, 1].flatMap((p) =>
      readAcks(path.join(env.workDir, `acks-${p}.csv`)).map((a) => a.latencyMs),
    );
    expect(latencies.length).toBe(merged.acknowledged);
    expect(LatencyHistogram.decode(merged.histogram).count).toBe(merged.acknowledged);
    for (const [q, got] of [
      [0.5, merged.p50Ms],
      [0.99, merged.p99Ms],
      [0.999, merged.p999Ms],
    ] as const) {
      const exact = nearestRank(latencies, q);
      expect(got).toBeGreaterThanOrEqual(exact - 0.001);
      expect(got).toBeLessThanOrEqual(exact * 1.001 + 0.001);
    }

    // Progress lines carry each interval's latencies: together, every acknowledgement up to the last line.
    for (const lines of progress) {
      expect(lines.length).toBeGreaterThan(2);
      const counted = LatencyHistogram.merge(lines.map((l) => l.histogram)).count;
      expect(counted).toBe(lines.at(-1)?.acknowledged);
    }
  });

  it('open loop: the target rate is split across the processes', async () => {
    const { merged, summaries } = await runClientProcs(env.cluster, {
      clients: 4,
      procs: 2,
      targetRate: 301,
      durationS: 2,
      drainS: 5,
    });
    expect(summaries.map((s) => s.profile)).toEqual(['0:151', '0:150']);
    expect(merged.mode).toBe('open');
    // Each generator sends exactly what its rate makes due in DURATION_S.
    expect(merged.offered).toBe(301 * 2);
    expect(merged.shed).toBe(0);
    expect(merged.acknowledged).toBe(merged.submitted);
  });
});
