/**
 * A local cluster on a directory it did not start (`cluster up --directory`): a separately
 * running Anna-compatible server stands in for a real Anna cluster. Ports 30600-30799.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type LocalAnna, startLocalAnna } from '@paxos/anna-client';
import { DEFAULT_TOPOLOGY } from '@paxos/launcher';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../src/cluster.ts';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/main.js');

describe('a cluster on an external directory', () => {
  let anna: LocalAnna | null = null;
  let cluster: LocalCluster | null = null;
  const workDir = mkdtempSync(path.join(tmpdir(), 'paxos-extdir-'));
  afterAll(async () => {
    await cluster?.down();
    await anna?.close();
    rmSync(workDir, { recursive: true, force: true });
  });

  it('starts no directory of its own, registers every role in the given one, serves, and leaves it running', async () => {
    anna = await startLocalAnna({ routingPort: 30600, storagePort: 30601 });
    cluster = new LocalCluster(
      {
        ...DEFAULT_TOPOLOGY,
        basePort: 30610,
        metricsBasePort: 30700,
        batchers: 1,
        proxyLeaders: 1,
        unbatchers: 1,
        logLevel: 'warn',
        keyPrefix: `ext${Date.now().toString(36)}-`,
        directory: anna.routingEndpoint,
      },
      workDir,
    );
    expect(cluster.annaRouting).toBe('tcp://127.0.0.1:30600');
    await cluster.up({ leaderTimeoutMs: 60_000 });
    expect(cluster.instances().some((i) => i.role === 'directory')).toBe(false);
    const run = await cluster.runClient({ clients: 4, window: 2, commands: 200 });
    expect(run.acknowledged).toBe(200);
    // Every role registered (and the leases, configuration and matchmaker keys) in that directory.
    expect(anna.stats().keys).toBeGreaterThan(20);
    await cluster.down();
    cluster = null;
    // The directory is not the cluster's to stop.
    expect(
      (await startLocalAnna({ routingPort: 30600, storagePort: 30601 }).catch((e: Error) => e)) instanceof
        Error,
    ).toBe(true);
  }, 120_000);

  it('refuses a --directory that is not a routing endpoint: one line, exit 2', () => {
    const out = spawnSync(process.execPath, [CLI, 'up', '--directory', 'anna:6450', '--dir', workDir], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(out.status).toBe(2);
    expect(out.stderr.trim()).toMatch(
      /--directory must be an Anna routing endpoint such as tcp:\/\/10\.0\.0\.5:6450, got "anna:6450"$/,
    );
  });
});
