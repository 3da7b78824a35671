import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../src/cluster.ts';
import { chosenFromLogs, readAcks, startCluster, unchosenAcks } from './helpers.ts';

let env: Awaited<ReturnType<typeof startCluster>>;
beforeAll(async () => {
  env = await startCluster(24100);
});
afterAll(async () => {
  await env?.stop();
});

describe('leader failover', () => {
  it('kill -9 of the leader under load: the other proposer takes over and every command is acknowledged', async () => {
    const acksFile = path.join(env.workDir, 'acks.csv');
    const progress: { at: number; acknowledged: number }[] = [];
    const run = env.cluster.runClient({
      clients: 16,
      window: 2,
      commands: 8000,
      acksFile,
      reportMs: 100,
      onLine: (line) => {
        if (line.type === 'progress')
          progress.push({ at: performance.now(), acknowledged: line.acknowledged });
      },
    });
    while ((progress.at(-1)?.acknowledged ?? 0) < 1500) await sleep(50);

    const oldLeader = await env.cluster.leader();
    expect(oldLeader).not.toBeNull();
    const killedAt = performance.now();
    const ackedAtKill = progress.at(-1)?.acknowledged ?? 0;
    env.cluster.kill(oldLeader as string, 'SIGKILL');

    // The supervisor restarts the killed proposer at once; its new incarnation may win the
    // election too. Either way the leader must be a process that was not killed.
    const restarted = () =>
      (env.cluster.instances().find((i) => i.spec.name === oldLeader)?.restarts ?? 0) > 0;
    let newLeader: string | null = null;
    let electedAt = 0;
    while (performance.now() - killedAt < 15_000) {
      newLeader = await env.cluster.leader();
      if (newLeader !== null && (newLeader !== oldLeader || restarted())) {
        electedAt = performance.now();
        break;
      }
      await sleep(25);
    }
    expect(newLeader).not.toBeNull();
    expect(newLeader !== oldLeader || restarted(), 'a leader other than the killed process').toBe(true);

    const summary = await run;
    // The longest stretch after the kill in which no command was acknowledged (samples every 100 ms).
    let lastGrowth = killedAt;
    let lastCount = ackedAtKill;
    let stallMs = 0;
    for (const p of progress.filter((x) => x.at > killedAt)) {
      if (p.acknowledged > lastCount) {
        lastCount = p.acknowledged;
        lastGrowth = p.at;
      } else {
        stallMs = Math.max(stallMs, p.at - lastGrowth);
      }
    }
    console.log(
      `failover: ${oldLeader} killed, ${newLeader === oldLeader ? `its restarted incarnation` : newLeader} leads after ${Math.round(electedAt - killedAt)} ms; longest time with no command acknowledged: ${Math.round(stallMs)} ms`,
    );
    expect(summary.acknowledged).toBe(8000);

    await env.cluster.down();
    const acks = readAcks(acksFile);
    expect(new Set(acks.map((a) => `${a.client}/${a.requestId}`)).size).toBe(8000);
    expect(unchosenAcks(acks, chosenFromLogs(env.workDir, 1))).toEqual([]);
  });
});
