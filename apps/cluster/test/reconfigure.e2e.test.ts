import path from 'node:path';
import { parseAcceptorName } from '@paxos/launcher';
import { sumSamples } from '@paxos/metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../src/cluster.ts';
import { type ReconfigureResult, reconfigureLocal } from '../src/reconfigure.ts';
import {
  ackGaps,
  chosenFromVotes,
  type ProgressSample,
  readAcceptorLogs,
  readAcks,
  sleep,
  startCluster,
  startEnvOf,
  throughput,
  unchosenAcks,
  waitFor,
} from './helpers.ts';

// Ports 20000-20999: roles from 20000, metrics from 20500, added acceptors 50 above each.
const SHAPE = {
  groups: 2,
  proposers: 2,
  batchers: 1,
  proxyLeaders: 2,
  unbatchers: 1,
  metricsBasePort: 20500,
};
const REPORT_MS = 50;
/** Seconds of steady load on each side of a reconfiguration that its throughput is compared with. */
const AROUND_MS = 1500;

let env: Awaited<ReturnType<typeof startCluster>>;
beforeAll(async () => {
  env = await startCluster(20000, SHAPE, {}, undefined, { leaderTimeoutMs: 60_000 });
});
afterAll(async () => {
  await env?.stop();
});

interface Figures {
  readonly operation: string;
  readonly version: number;
  readonly serveMs: number;
  readonly retireMs: number;
  /** The longest time without an acknowledgement from the target's write to one second after it was served. */
  readonly longestGapMs: number;
  /** Commands/s from the target's write to one second after it was served … */
  readonly duringPerS: number;
  /** … against the steady seconds around it (before the request, and after that second). */
  readonly aroundPerS: number;
  readonly dipPercent: number;
}

describe('reconfiguring acceptor groups under load (Matchmaker MultiPaxos)', () => {
  it('adds a group, removes one, replaces a lost acceptor and a lost matchmaker while serving, then comes up again in that configuration; every acknowledgement is chosen in the logs, the retired ones included', async () => {
    const acksFile = path.join(env.workDir, 'acks.csv');
    const progress: ProgressSample[] = [];
    let done = false;
    const run = env.cluster
      .runClient({
        clients: 16,
        window: 2,
        // Stopped (SIGINT) once the last change has been measured.
        durationS: 120,
        drainS: 10,
        index: 0,
        acksFile,
        reportMs: REPORT_MS,
        onLine: (line) => {
          if (line.type === 'progress')
            progress.push({ at: performance.now(), acknowledged: line.acknowledged });
        },
      })
      .finally(() => {
        done = true;
      });
    await waitFor('steady load', 30_000, () =>
      (progress.at(-1)?.acknowledged ?? 0) >= 2000 ? true : undefined,
    );
    await sleep(AROUND_MS);

    const figures: Figures[] = [];
    const measure = async (operation: string, apply: () => Promise<ReconfigureResult>) => {
      const start = performance.now();
      const result = await apply();
      // The new acceptors' start-up (new processes on a small machine) comes before the write.
      const written = start + result.prepareMs;
      const settled = written + result.serveMs + 1000;
      await sleep(Math.max(0, settled + AROUND_MS - performance.now()) + REPORT_MS);
      const aroundPerS = Math.round(
        (throughput(progress, start - AROUND_MS, start) +
          throughput(progress, settled, settled + AROUND_MS)) /
          2,
      );
      const duringPerS = throughput(progress, written, settled);
      figures.push({
        operation,
        version: result.target.version,
        serveMs: Math.round(result.serveMs),
        retireMs: Math.round(result.retireMs),
        longestGapMs: Math.round(ackGaps(progress, written, settled).duringFaultMs),
        duringPerS,
        aroundPerS,
        dipPercent: aroundPerS === 0 ? 0 : Math.max(0, Math.round((1 - duringPerS / aroundPerS) * 100)),
      });
      return result;
    };

    // Grow: group 2 starts with three empty logs; the leader moves to version 1 without phase 1.
    const grown = await measure('add group 2', () => reconfigureLocal(env.cluster, { groups: 3 }));
    expect(grown.target.groups.map((g) => g.groupId)).toEqual([0, 1, 2]);
    expect(grown.started).toEqual(['acceptor-g2-a0', 'acceptor-g2-a1', 'acceptor-g2-a2']);

    // Shrink: the last group leaves again; its three acceptors retire and are stopped, logs kept.
    const shrunk = await measure('remove group 2', () => reconfigureLocal(env.cluster, { groups: 2 }));
    expect(shrunk.target.groups.map((g) => g.groupId)).toEqual([0, 1]);
    expect(shrunk.retired).toEqual(['acceptor-g2-a0', 'acceptor-g2-a1', 'acceptor-g2-a2']);

    // A lost host: acceptor-g1-a2 is killed and not restarted; a new acceptor-g1-a3 takes its place.
    env.cluster.kill('acceptor-g1-a2', 'SIGKILL');
    await env.cluster.stop('acceptor-g1-a2');
    const replaced = await measure('replace acceptor-g1-a2 (killed)', () =>
      reconfigureLocal(env.cluster, { replace: 'acceptor-g1-a2' }),
    );
    expect(replaced.started).toEqual(['acceptor-g1-a3']);
    expect(replaced.target.groups.find((g) => g.groupId === 1)?.acceptorIds).toEqual([0, 1, 3]);
    expect(replaced.target.version).toBe(3);

    // A lost matchmaker: matchmaker-2 is killed and not restarted; matchmaker-3 (no state) takes
    // its place: the leader stops epoch 0, bootstraps the new set and has epoch 0 choose it.
    env.cluster.kill('matchmaker-2', 'SIGKILL');
    await env.cluster.stop('matchmaker-2');
    const newMatchmaker = await measure('replace matchmaker-2 (killed)', () =>
      reconfigureLocal(env.cluster, { replace: 'matchmaker-2' }),
    );
    expect(newMatchmaker.started).toEqual(['matchmaker-3']);
    expect(newMatchmaker.matchmakers).toEqual([0, 1, 3]);
    expect(newMatchmaker.target.version).toBe(3);

    env.cluster.stopClient(0);
    const summary = await run;
    expect(done).toBe(true);
    console.log(
      `reconfiguration under load (16 clients, window 2):\n${JSON.stringify(figures, null, 2)}\n${figures
        .map(
          (f) =>
            `  ${f.operation.padEnd(34)} v${f.version}  served ${String(f.serveMs).padStart(5)} ms  retired ${String(f.retireMs).padStart(5)} ms  longest gap ${String(f.longestGapMs).padStart(4)} ms  ${f.aroundPerS} → ${f.duringPerS} cmd/s (dip ${f.dipPercent} %)`,
        )
        .join('\n')}`,
    );
    // Never a stall: acknowledgements kept coming through every change (figures above for the goals).
    for (const f of figures) expect(f.longestGapMs, f.operation).toBeLessThan(5000);
    // Stopped with SIGINT: what its 16 clients had outstanding (2 each) is abandoned, nothing more.
    expect(summary.submitted - summary.acknowledged).toBeLessThanOrEqual(32);
    expect(env.exits.filter((e) => e.code === 2)).toEqual([]);
    // The retired acceptors were stopped by the operation, not restarted.
    for (const name of [...shrunk.retired, 'acceptor-g1-a2', 'matchmaker-2'])
      expect(
        env.cluster.instances().some((i) => i.name === name && i.state !== 'stopped'),
        name,
      ).toBe(false);

    await env.cluster.down();

    // Brought up again on the same directory: the acceptors of version 3 start (existing), the
    // retired ones do not, and the leader serves version 3 from the first election.
    const again = new LocalCluster(env.cluster.topology, env.workDir);
    const againAcks = path.join(env.workDir, 'acks-again.csv');
    try {
      await again.up({ leaderTimeoutMs: 60_000 });
      const acceptors = again
        .instances()
        .filter((i) => i.role === 'acceptor')
        .map((i) => i.name);
      expect(acceptors.sort()).toEqual([
        'acceptor-g0-a0',
        'acceptor-g0-a1',
        'acceptor-g0-a2',
        'acceptor-g1-a0',
        'acceptor-g1-a1',
        'acceptor-g1-a3',
      ]);
      expect(startEnvOf(again, 'acceptor-g1-a3', 'ACCEPTOR_LOG_STATE')).toBe('existing');
      // The matchmakers of epoch 1 start (matchmaker-3 from the state it was bootstrapped with).
      const matchmakers = again
        .instances()
        .filter((i) => i.role === 'matchmaker')
        .map((i) => i.name);
      expect(matchmakers.sort()).toEqual(['matchmaker-0', 'matchmaker-1', 'matchmaker-3']);
      expect(startEnvOf(again, 'matchmaker-3', 'MATCHMAKER_STATE')).toBe('existing');
      const rerun = await again.runClient({ clients: 4, window: 2, commands: 400, acksFile: againAcks });
      expect(rerun.acknowledged).toBe(400);
      const leader = await again.waitForLeader(10_000);
      const leaderMetrics = await again.scrape(leader);
      expect(sumSamples(leaderMetrics, 'paxos_configuration_version')).toBe(3);
      expect(sumSamples(leaderMetrics, 'paxos_matchmaker_epoch')).toBe(1);
    } finally {
      await again.down();
    }

    const acks = [...readAcks(acksFile), ...readAcks(againAcks)];
    expect(acks.length).toBe(summary.acknowledged + 400);
    const logs = readAcceptorLogs(env.workDir);
    // The new acceptors voted: group 2 while it served, and g1/a3 after it replaced g1/a2.
    for (const key of ['2/0', '2/1', '2/2', '1/3']) expect(logs.get(key)?.size ?? 0, key).toBeGreaterThan(0);
    expect(unchosenAcks(acks, chosenFromVotes(logs, 1))).toEqual([]);
    expect(parseAcceptorName('acceptor-g1-a3')).toEqual({ groupId: 1, acceptorId: 3 });
  });
});
