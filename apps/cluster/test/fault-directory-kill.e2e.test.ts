import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLeader } from '../src/cluster.ts';
import { expectRecovered, FAULT_LOAD, runWithFault } from './fault-run.ts';
import { startCluster, waitFor } from './helpers.ts';

let env: Awaited<ReturnType<typeof startCluster>>;
beforeAll(async () => {
  env = await startCluster(26100);
});
afterAll(async () => {
  await env?.stop();
});

describe('fault: the directory is killed', () => {
  it('kill -9 of the directory under load: it comes back empty, the cluster keeps choosing, one proposer leads', async () => {
    const r = await runWithFault(env, {
      fault: 'directory kill -9',
      ...FAULT_LOAD,
      // The fault lasts until the supervisor has restarted the directory and it answers again.
      inject: async () => {
        env.cluster.kill('directory', 'SIGKILL');
        await waitFor(
          'the directory restarted',
          10_000,
          () => {
            const d = env.cluster.instances().find((i) => i.spec.name === 'directory');
            return d !== undefined && d.restarts > 0 && d.state === 'running' ? true : undefined;
          },
          20,
        );
        await env.cluster.waitForDirectory();
      },
    });
    const leaders = [];
    for (const name of ['proposer-0', 'proposer-1'])
      if (isLeader(await env.cluster.scrape(name))) leaders.push(name);
    console.log(
      `directory kill -9: proposers reporting is_leader = 1 afterwards: ${leaders.join(', ') || 'none'}`,
    );

    await env.cluster.down();
    expectRecovered(env, r);
    expect(leaders).toHaveLength(1);
  }, 120_000);
});
