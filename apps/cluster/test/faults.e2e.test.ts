import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../src/cluster.ts';
import { chosenFromLogs, readAcks, startCluster, unchosenAcks } from './helpers.ts';

let env: Awaited<ReturnType<typeof startCluster>>;
beforeAll(async () => {
  env = await startCluster(24200);
});
afterAll(async () => {
  await env?.stop();
});

describe('crashes of every kind of role under load', () => {
  it('kill -9 a proxy leader, a batcher, an unbatcher and one acceptor per group: nothing acknowledged is lost, throughput recovers', async () => {
    const acksFile = path.join(env.workDir, 'acks.csv');
    const progress: { at: number; acknowledged: number; rate: number }[] = [];
    const run = env.cluster.runClient({
      clients: 16,
      window: 2,
      commands: 10_000,
      acksFile,
      reportMs: 250,
      onLine: (line) => {
        if (line.type === 'progress')
          progress.push({ at: performance.now(), acknowledged: line.acknowledged, rate: line.rate });
      },
    });
    while ((progress.at(-1)?.acknowledged ?? 0) < 2000) await sleep(50);
    const killedAt = performance.now();
    const victims = ['proxy-leader-0', 'batcher-0', 'unbatcher-1', 'acceptor-g0-a0', 'acceptor-g1-a2'];
    for (const name of victims) env.cluster.kill(name, 'SIGKILL');

    const summary = await run;
    expect(summary.acknowledged).toBe(10_000);
    const before = progress.filter((p) => p.at < killedAt).slice(-4);
    const after = progress.filter((p) => p.at > killedAt + 3000);
    const mean = (xs: { rate: number }[]) =>
      Math.round(xs.reduce((s, x) => s + x.rate, 0) / Math.max(1, xs.length));
    console.log(
      `killed ${victims.join(', ')}: ${mean(before)} commands/s before, ${mean(after)} commands/s from 3 s after (${after.length} samples); restarts: ${env.cluster
        .instances()
        .filter((i) => i.restarts > 0)
        .map((i) => i.spec.name)
        .join(', ')}`,
    );
    // Every victim was restarted by the supervisor and the load went on after the kills.
    for (const name of victims)
      expect(env.cluster.instances().find((i) => i.spec.name === name)?.restarts).toBeGreaterThan(0);
    expect(progress.some((p) => p.at > killedAt && p.acknowledged > 2000 + 1000)).toBe(true);

    await env.cluster.down();
    const acks = readAcks(acksFile);
    expect(new Set(acks.map((a) => `${a.client}/${a.requestId}`)).size).toBe(10_000);
    expect(unchosenAcks(acks, chosenFromLogs(env.workDir, 1))).toEqual([]);
  });
});
