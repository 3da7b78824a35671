import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Ack, chosenFromLogs, readAcks, startCluster, unchosenAcks } from './helpers.ts';

let env: Awaited<ReturnType<typeof startCluster>>;
beforeAll(async () => {
  env = await startCluster(26000);
});
afterAll(async () => {
  await env?.stop();
});

describe('load generator', () => {
  it('exits 0 when DURATION_S is reached while replies are still arriving, with every counted ack in its file', async () => {
    // 32 commands are outstanding when the time is up, so replies keep arriving while the acks
    // file closes. Whether one lands in that window is a race, which several runs make likely.
    const runs = 6;
    const acks: Ack[] = [];
    for (let i = 0; i < runs; i++) {
      const acksFile = path.join(env.workDir, `acks-${i}.csv`);
      const summary = await env.cluster.runClient({ clients: 16, window: 2, durationS: 1, acksFile });
      expect(summary.reason).toBe('duration reached');
      expect(summary.acknowledged).toBeGreaterThan(0);
      const written = readAcks(acksFile);
      expect(written.length).toBe(summary.acknowledged);
      acks.push(...written);
    }
    expect(env.exits.filter((e) => e.name.startsWith('client-'))).toEqual(
      Array.from({ length: runs }, (_, i) => ({ name: `client-${i}`, code: 0, signal: null })),
    );

    await env.cluster.down();
    expect(new Set(acks.map((a) => `${a.client}/${a.requestId}`)).size).toBe(acks.length);
    expect(unchosenAcks(acks, chosenFromLogs(env.workDir, 1))).toEqual([]);
  });
});
