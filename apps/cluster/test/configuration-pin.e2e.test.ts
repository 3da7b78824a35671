import { spawnSync } from 'node:child_process';
import { roleBinary } from '@paxos/launcher';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, sleep, startCluster, waitFor } from './helpers.ts';

let env: Awaited<ReturnType<typeof startCluster>>;
beforeAll(async () => {
  env = await startCluster(26600);
});
afterAll(async () => {
  await env?.stop();
});

/** A proposer started by hand against the running cluster with the given settings; its exit. */
async function extraProposer(settings: Record<string, string>) {
  const result = spawnSync(process.execPath, [roleBinary('proposer')], {
    env: {
      PATH: process.env.PATH ?? '',
      ...env.cluster.spec('proposer-0').env,
      PROPOSER_PORT: String(await freePort()),
      PROPOSER_REPLY_PORT: String(await freePort()),
      PROPOSER_ELECTION_PORT: String(await freePort()),
      METRICS_PORT: '0',
      INSTANCE: 'proposer-extra',
      ...settings,
    },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { code: result.status, stderr: result.stderr.trim().split('\n') };
}

describe('the configuration is pinned in the directory', () => {
  it('a proposer with other ACCEPTOR_GROUPS or F refuses to start: one line, exit 2', async () => {
    const groups = await extraProposer({ ACCEPTOR_GROUPS: '3' });
    expect(groups.code).toBe(2);
    expect(groups.stderr).toHaveLength(1);
    expect(groups.stderr[0]).toMatch(
      /^paxos-proposer: this proposer's configuration \(f=1, groups \[0, 1, 2\] .*\) is not the one the cluster formed with \(f=1, groups \[0, 1\] .*\): start it with F=1 ACCEPTOR_GROUPS=2/,
    );
    const f = await extraProposer({ F: '2' });
    expect(f.code).toBe(2);
    expect(f.stderr[0]).toMatch(/f=2, groups \[0, 1\].* is not the one the cluster formed with \(f=1/);
  });

  it('still refuses after a directory restart: the proposers write the pin again', async () => {
    const before = env.cluster.instances().find((i) => i.spec.name === 'directory')?.restarts ?? 0;
    env.cluster.kill('directory', 'SIGKILL');
    await waitFor('the directory to be back', 15_000, () =>
      (env.cluster.instances().find((i) => i.spec.name === 'directory')?.restarts ?? 0) > before
        ? true
        : undefined,
    );
    await env.cluster.waitForDirectory();
    // The proposers write the pin again at their next directory poll (300 ms here).
    await sleep(1000);
    const refused = await waitFor('a proposer with other groups to be refused', 15_000, async () => {
      const run = await extraProposer({ ACCEPTOR_GROUPS: '3', LOG_LEVEL: 'silent' });
      return run.code === 2 ? run : undefined;
    });
    expect(refused.stderr[0]).toMatch(/is not the one the cluster formed with/);
    // The cluster itself carries on with one leader.
    expect(await env.cluster.waitForLeader(10_000)).toMatch(/^proposer-\d$/);
  });
});
