import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectRecovered, FAULT_LOAD, runWithFault } from './fault-run.ts';
import { sleep, startCluster } from './helpers.ts';

let env: Awaited<ReturnType<typeof startCluster>>;
beforeAll(async () => {
  env = await startCluster(26400);
});
afterAll(async () => {
  await env?.stop();
});

describe('fault: the leader pauses', () => {
  it('SIGSTOP of the leader for 8 s under load, then SIGCONT: the other proposer takes over', async () => {
    const pauseMs = 8000;
    let leader: string | null = null;
    const r = await runWithFault(env, {
      fault: `leader SIGSTOP ${pauseMs} ms`,
      ...FAULT_LOAD,
      inject: async (begins) => {
        leader = await env.cluster.leader();
        if (leader === null) throw new Error('no proposer leads before the fault');
        begins();
        env.cluster.kill(leader, 'SIGSTOP');
        try {
          await sleep(pauseMs);
        } finally {
          env.cluster.kill(leader, 'SIGCONT');
        }
      },
    });
    const leaderAfter = await env.cluster.leader();
    console.log(`leader SIGSTOP: ${leader} paused; ${leaderAfter ?? 'no proposer'} leads afterwards`);

    await env.cluster.down();
    expectRecovered(env, r);
    expect(leaderAfter).not.toBeNull();
  }, 120_000);
});
