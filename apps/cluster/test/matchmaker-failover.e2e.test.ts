import path from 'node:path';
import { sumSamples } from '@paxos/metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chosenFromLogs,
  type ProgressSample,
  readAcks,
  startCluster,
  startEnvOf,
  unchosenAcks,
  waitFor,
} from './helpers.ts';

// Ports 32200-32399: roles from 32200, metrics from 32300 (below Linux's ephemeral range, 32768 up).
const SHAPE = {
  proposers: 2,
  batchers: 1,
  proxyLeaders: 1,
  unbatchers: 1,
  groups: 1,
  metricsBasePort: 32300,
};
const COMMANDS = 6000;
const MATCHMAKER = 'matchmaker-1';

let env: Awaited<ReturnType<typeof startCluster>>;
beforeAll(async () => {
  // A loaded machine (CI beside other work) may take longer than the default 20 s to elect.
  env = await startCluster(32200, SHAPE, {}, undefined, { leaderTimeoutMs: 60_000 });
});
afterAll(async () => {
  await env?.stop();
});

/** Requests (MatchA, GarbageA) each matchmaker received, by name (null: not scraped). */
async function matchRequests(): Promise<Map<string, number | null>> {
  const counts = new Map<string, number | null>();
  for (const name of ['matchmaker-0', 'matchmaker-1', 'matchmaker-2']) {
    const metrics = await env.cluster.scrape(name).catch(() => null);
    counts.set(name, metrics === null ? null : sumSamples(metrics, 'paxos_matchmaker_requests_total'));
  }
  return counts;
}

describe('matchmakers in a local cluster', () => {
  it('kill -9 of a matchmaker and then of the leader under load: a new leader is elected through the others, acknowledgements resume, the matchmaker comes back existing', async () => {
    // Every matchmaker started new (genesis), and the first election went through them.
    for (const m of ['matchmaker-0', 'matchmaker-1', 'matchmaker-2'])
      expect(startEnvOf(env.cluster, m, 'MATCHMAKER_STATE'), m).toBe('new');
    const atStart = await matchRequests();
    expect([...atStart.values()].filter((n) => (n ?? 0) > 0).length).toBeGreaterThanOrEqual(2);

    const acksFile = path.join(env.workDir, 'acks.csv');
    const progress: ProgressSample[] = [];
    const run = env.cluster.runClient({
      clients: 16,
      window: 2,
      commands: COMMANDS,
      acksFile,
      reportMs: 100,
      onLine: (line) => {
        if (line.type === 'progress')
          progress.push({ at: performance.now(), acknowledged: line.acknowledged });
      },
    });
    await waitFor('1000 acknowledgements', 30_000, () =>
      (progress.at(-1)?.acknowledged ?? 0) >= 1000 ? true : undefined,
    );

    const oldLeader = await env.cluster.leader();
    expect(oldLeader).not.toBeNull();
    const before = await matchRequests();
    env.cluster.kill(MATCHMAKER, 'SIGKILL');
    env.cluster.kill(oldLeader as string, 'SIGKILL');
    const killedAt = performance.now();
    const ackedAtKill = progress.at(-1)?.acknowledged ?? 0;

    // The supervisor restarts the killed proposer too; its new incarnation may win. Either way
    // the leader is a process that was not killed, elected through MatchA/MatchB.
    const restarts = (name: string) => env.cluster.instances().find((i) => i.name === name)?.restarts ?? 0;
    const newLeader = await waitFor('a new leader', 30_000, async () => {
      const leader = await env.cluster.leader();
      return leader !== null && (leader !== oldLeader || restarts(leader) > 0) ? leader : undefined;
    });
    const electedAt = performance.now();
    const ackedAtElection = progress.at(-1)?.acknowledged ?? 0;
    // The election asked the matchmakers that stayed up: their MatchA counts rose.
    const after = await matchRequests();
    const rose = ['matchmaker-0', 'matchmaker-2'].filter((m) => (after.get(m) ?? 0) > (before.get(m) ?? 0));
    expect(rose, 'matchmakers that saw the new election').toEqual(['matchmaker-0', 'matchmaker-2']);

    // Acknowledgements resume under the new leader: far more than the 32 commands in flight at the kill.
    await waitFor('acknowledgements after the kill', 30_000, () =>
      (progress.at(-1)?.acknowledged ?? 0) > ackedAtKill + 500 ? true : undefined,
    );
    const resumedAt =
      progress.find((p) => p.at > electedAt && p.acknowledged > ackedAtElection)?.at ?? electedAt;

    // The killed matchmaker came back as `existing` and recovered its state (one configuration
    // at least: a pending matchmaker would hold none).
    await waitFor(`${MATCHMAKER} back`, 30_000, () =>
      env.cluster.instances().find((i) => i.name === MATCHMAKER && i.restarts === 1 && i.state === 'running')
        ? true
        : undefined,
    );
    expect(startEnvOf(env.cluster, MATCHMAKER, 'MATCHMAKER_STATE')).toBe('existing');
    const live = await waitFor(`${MATCHMAKER} serving its recovered state`, 30_000, async () => {
      const metrics = await env.cluster.scrape(MATCHMAKER).catch(() => null);
      const n = metrics === null ? 0 : sumSamples(metrics, 'paxos_live_configurations');
      return n > 0 ? n : undefined;
    });
    expect(live).toBeGreaterThanOrEqual(1);
    expect(env.exits.filter((e) => e.code === 2)).toEqual([]);

    const summary = await run;
    console.log(
      `matchmaker failover: ${MATCHMAKER} and ${oldLeader} killed; ${newLeader === oldLeader ? 'its restarted incarnation' : newLeader} leads after ${Math.round(electedAt - killedAt)} ms; acknowledgements resumed ${Math.round(resumedAt - electedAt)} ms after it was seen leading`,
    );
    expect(summary.acknowledged).toBe(COMMANDS);
    await env.cluster.down();
    const acks = readAcks(acksFile);
    expect(new Set(acks.map((a) => `${a.client}/${a.requestId}`)).size).toBe(COMMANDS);
    expect(unchosenAcks(acks, chosenFromLogs(env.workDir, 1))).toEqual([]);
  });
});
