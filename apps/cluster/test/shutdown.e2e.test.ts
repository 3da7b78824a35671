import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AnnaClient, Membership } from '@paxos/anna-client';
import { DEFAULT_TOPOLOGY, LocalLauncher, type ProcessSpec, planCluster } from '@paxos/launcher';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from './helpers.ts';

const workDir = mkdtempSync(path.join(tmpdir(), 'paxos-shutdown-'));
const exits = new Map<string, { code: number | null; signal: string | null }>();
const launcher = new LocalLauncher({
  logDir: path.join(workDir, 'logs'),
  onEvent: (e) => {
    if (e.event === 'exited') exits.set(e.name, { code: e.code ?? null, signal: e.signal ?? null });
  },
});
afterAll(async () => {
  for (const i of launcher.processes().reverse()) await launcher.stop(i.name, 2000);
  rmSync(workDir, { recursive: true, force: true });
});

/** Waits, polling every 50 ms, until `check` holds. */
const until = (what: string, timeoutMs: number, check: () => boolean) =>
  waitFor(what, timeoutMs, () => check() || undefined, 50);
const log = (name: string) => readFileSync(path.join(workDir, 'logs', `${name}.log`), 'utf8');

describe('SIGTERM while a role is still starting', () => {
  it('a proposer stopped while it waits for acceptor groups registers, then leaves the directory, and exits 0', async () => {
    const keyPrefix = `stop${Date.now().toString(36)}-`;
    const plan = planCluster({
      ...DEFAULT_TOPOLOGY,
      basePort: 24800,
      groups: 1,
      proposers: 1,
      keyPrefix,
      logLevel: 'info',
      dataDir: path.join(workDir, 'data'),
      extraEnv: { DRAIN_TIMEOUT_MS: '20000' },
    });
    const once = (spec: ProcessSpec): ProcessSpec => ({ ...spec, restart: false });
    const proposer = once(plan.processes.find((p) => p.role === 'proposer') as ProcessSpec);
    await launcher.launch(plan.directory as ProcessSpec);
    // The proposer first: with no acceptors in the directory it stays in start-up.
    await launcher.launch(proposer);
    await until('the proposer to listen', 15_000, () => log(proposer.name).includes('"msg":"listening"'));
    launcher.kill(proposer.name, 'SIGTERM');
    await until('the stop to be noted', 5_000, () =>
      log(proposer.name).includes('stop requested while starting'),
    );
    expect(exits.has(proposer.name)).toBe(false);

    // Now the acceptor group and the matchmakers appear: start-up finishes, the proposer registers, then stops.
    for (const spec of plan.processes.filter((p) => p.role === 'acceptor' || p.role === 'matchmaker'))
      await launcher.launch(spec);
    await until('the proposer to exit', 20_000, () => exits.has(proposer.name));
    expect(exits.get(proposer.name)).toEqual({ code: 0, signal: null });

    const client = await AnnaClient.connect({ routing: plan.annaRouting });
    try {
      const membership = new Membership(client, { keyPrefix });
      const observed = (await client.getSet(membership.observedKey('Proposers'))) ?? new Set();
      const removed = (await client.getSet(membership.removedKey('Proposers'))) ?? new Set();
      expect(observed.size).toBe(1);
      expect([...removed]).toEqual([...observed]);
    } finally {
      await client.close();
    }
  });

  it('a role whose start-up cannot finish exits 0 after the drain timeout, having registered nothing', async () => {
    const acceptor: ProcessSpec = {
      name: 'lonely-acceptor',
      role: 'acceptor',
      env: {
        ANNA_ROUTING: 'tcp://127.0.0.1:1', // nothing listens: start-up never finishes
        ACCEPTOR_GROUP_ID: '0',
        ACCEPTOR_ID: '0',
        ACCEPTOR_PORT: '0',
        METRICS_PORT: '0',
        DATA_DIR: path.join(workDir, 'lonely'),
        DRAIN_TIMEOUT_MS: '1000',
      },
      ports: [],
      metricsPort: null,
      restart: false,
    };
    await launcher.launch(acceptor);
    await until('the acceptor to listen', 15_000, () => log(acceptor.name).includes('"msg":"listening"'));
    const signalled = performance.now();
    launcher.kill(acceptor.name, 'SIGTERM');
    await until('the acceptor to exit', 10_000, () => exits.has(acceptor.name));
    expect(exits.get(acceptor.name)).toEqual({ code: 0, signal: null });
    expect(performance.now() - signalled).toBeGreaterThanOrEqual(900);
    expect(log(acceptor.name)).toContain('start-up did not finish in time; exiting');
  });
});
