import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chosenFromLogs, readAcks, startCluster, unchosenAcks } from './helpers.ts';

let env: Awaited<ReturnType<typeof startCluster>>;
beforeAll(async () => {
  env = await startCluster(24000);
});
afterAll(async () => {
  await env?.stop();
});

describe('a local cluster (2 proposers, 2 batchers, 2 proxy leaders, 2 groups x 3 acceptors, 2 unbatchers)', () => {
  it('acknowledges 10,000 commands from 8 clients, each once, each in the chosen log at its slot', async () => {
    const acksFile = path.join(env.workDir, 'acks.csv');
    const summary = await env.cluster.runClient({ clients: 8, window: 4, commands: 10_000, acksFile });
    console.log(
      `10,000 commands: ${summary.throughput} commands/s, p50 ${summary.p50Ms} ms, p99 ${summary.p99Ms} ms`,
    );
    expect(summary.acknowledged).toBe(10_000);

    const acks = readAcks(acksFile);
    expect(acks).toHaveLength(10_000);
    const ids = new Set(acks.map((a) => `${a.client}/${a.requestId}`));
    expect(ids.size).toBe(10_000);
    expect(new Set(acks.map((a) => a.client)).size).toBe(8);
    // Each client's request ids are 1..n with none missing.
    const perClient = new Map<string, number[]>();
    for (const a of acks) perClient.set(a.client, [...(perClient.get(a.client) ?? []), a.requestId]);
    for (const list of perClient.values()) {
      const sorted = [...list].sort((x, y) => x - y);
      expect(sorted).toEqual(sorted.map((_, i) => i + 1));
    }

    await env.cluster.down();
    const chosen = chosenFromLogs(env.workDir, 1);
    expect(unchosenAcks(acks, chosen)).toEqual([]);
    // No command was chosen in two different slots with both acknowledged, and no slot holds more than a batch.
    for (const commands of chosen.values()) expect(commands.length).toBeLessThanOrEqual(40);
  });
});
