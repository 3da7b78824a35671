import { existsSync, rmSync } from 'node:fs';
import { acceptorLogDirOf } from '@paxos/launcher';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep, startCluster, startEnvOf, waitFor } from './helpers.ts';

// Ports 31500-31899: roles from 31500, metrics from 31700 (below Linux's ephemeral range).
const SHAPE = {
  proposers: 1,
  batchers: 1,
  proxyLeaders: 1,
  unbatchers: 1,
  groups: 1,
  metricsBasePort: 31700,
};
const VICTIM = 'acceptor-g0-a1';

let env: Awaited<ReturnType<typeof startCluster>>;
beforeAll(async () => {
  // A loaded machine (CI beside other work) may take longer than the default 20 s to elect.
  env = await startCluster(31500, SHAPE, {}, undefined, { leaderTimeoutMs: 60_000 });
});
afterAll(async () => {
  await env?.stop();
});

/** The ACCEPTOR_LOG_STATE a running process was started with. */
const logStateOf = (name: string) => startEnvOf(env.cluster, name, 'ACCEPTOR_LOG_STATE');

describe('an acceptor whose log is deleted while the cluster runs', () => {
  it('is refused when the supervisor restarts it (exit 2, the reason reported, no more restarts); the cluster serves on', async () => {
    expect(logStateOf(VICTIM)).toBe('new');
    const before = await env.cluster.runClient({ clients: 4, commands: 200 });
    expect(before.acknowledged).toBe(200);

    const dir = acceptorLogDirOf(env.cluster.spec(VICTIM).env) as string;
    expect(existsSync(dir)).toBe(true);
    rmSync(dir, { recursive: true, force: true });
    env.cluster.kill(VICTIM, 'SIGKILL');

    const refused = await waitFor('the restarted acceptor to exit', 30_000, () =>
      env.exits.find((e) => e.name === VICTIM && e.code !== null),
    );
    expect(refused.code).toBe(2);
    expect(refused.message).toBe(
      `paxos-acceptor: acceptor log ${dir} is missing, but ACCEPTOR_LOG_STATE (--log-state) is "existing": this acceptor (cluster "${env.cluster.topology.keyPrefix}" group 0 acceptor 1) has run before, and starting it without its log would forget its promises and votes, which can let two different values be chosen for one slot. Restore the log there; or, if it is lost for good, start this acceptor as a replacement with ACCEPTOR_LOG_STATE=replacement (--log-state replacement), which is safe only while at most f acceptors of group 0 are replaced`,
    );
    // Not restarted again, and no empty log made in its place.
    await sleep(1000);
    const victim = env.cluster.instances().find((i) => i.name === VICTIM);
    expect([victim?.state, victim?.restarts]).toEqual(['stopped', 1]);
    expect(env.exits.filter((e) => e.name === VICTIM).map((e) => e.code ?? e.signal)).toEqual(['SIGKILL', 2]);
    expect(existsSync(dir)).toBe(false);

    // The other two of the group are a quorum: commands are still chosen.
    const after = await env.cluster.runClient({ clients: 4, commands: 200 });
    expect(after.acknowledged).toBe(200);
    // An acceptor whose log is there is restarted as existing (and recovers from it: faults.e2e).
    env.cluster.kill('acceptor-g0-a0', 'SIGKILL');
    await waitFor('acceptor-g0-a0 back', 30_000, () =>
      env.cluster
        .instances()
        .find((i) => i.name === 'acceptor-g0-a0' && i.restarts === 1 && i.state === 'running')
        ? true
        : undefined,
    );
    expect(logStateOf('acceptor-g0-a0')).toBe('existing');
  });
});
