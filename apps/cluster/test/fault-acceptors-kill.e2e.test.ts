import { afterAll, beforeAll, describe, it } from 'vitest';
import { expectRecovered, FAULT_LOAD, runWithFault } from './fault-run.ts';
import { startCluster, waitFor } from './helpers.ts';

let env: Awaited<ReturnType<typeof startCluster>>;
beforeAll(async () => {
  env = await startCluster(26500);
});
afterAll(async () => {
  await env?.stop();
});

describe('fault: an acceptor group loses its quorum', () => {
  it('kill -9 of two of group 0’s three acceptors under load: they recover from their logs and the group goes on', async () => {
    const victims = ['acceptor-g0-a0', 'acceptor-g0-a1'];
    const r = await runWithFault(env, {
      fault: `kill -9 ${victims.join(' and ')}`,
      ...FAULT_LOAD,
      // The fault lasts until the supervisor has restarted both and each serves its metrics again.
      inject: async () => {
        for (const name of victims) env.cluster.kill(name, 'SIGKILL');
        for (const name of victims) {
          await waitFor(
            `${name} restarted`,
            15_000,
            async () => {
              const i = env.cluster.instances().find((x) => x.spec.name === name);
              if (i === undefined || i.restarts === 0 || i.state !== 'running') return undefined;
              await env.cluster.scrape(name);
              return true;
            },
            20,
          );
        }
      },
    });

    await env.cluster.down();
    expectRecovered(env, r);
  }, 120_000);
});
