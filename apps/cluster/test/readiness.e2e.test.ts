/**
 * Readiness as a supervisor sees it: a proposer that has registered but knows no leader answers
 * /readyz 503 `no leader known` (alive on /healthz all along), and 200 once it leads. Its acceptors
 * are stopped (SIGSTOP) so no election can finish, then continued. Ports 30800-30999.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DEFAULT_TOPOLOGY, LocalLauncher, type ProcessSpec, planCluster } from '@paxos/launcher';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from './helpers.ts';

const workDir = mkdtempSync(path.join(tmpdir(), 'paxos-readiness-'));
const launcher = new LocalLauncher({ logDir: path.join(workDir, 'logs') });
afterAll(async () => {
  for (const i of launcher.processes()) if (i.pid !== null) launcher.kill(i.name, 'SIGCONT');
  for (const i of launcher.processes().reverse()) await launcher.stop(i.name, 2000);
  rmSync(workDir, { recursive: true, force: true });
});

async function probe(port: number, pathname: string): Promise<{ status: number; body: string } | null> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}${pathname}`, {
      signal: AbortSignal.timeout(1000),
    });
    return { status: response.status, body: (await response.text()).trim() };
  } catch {
    return null;
  }
}

describe('/readyz of a proposer', () => {
  it('is 503 "no leader known" while no election can finish, 200 once it leads; /healthz is 200 throughout', async () => {
    const plan = planCluster({
      ...DEFAULT_TOPOLOGY,
      basePort: 30800,
      metricsBasePort: 30900,
      groups: 1,
      proposers: 1,
      keyPrefix: `ready${Date.now().toString(36)}-`,
      logLevel: 'warn',
      dataDir: path.join(workDir, 'data'),
    });
    const once = (spec: ProcessSpec): ProcessSpec => ({ ...spec, restart: false });
    await launcher.launch(once(plan.directory as ProcessSpec));
    const acceptors = plan.processes.filter((p) => p.role === 'acceptor').map(once);
    for (const spec of [...acceptors, ...plan.processes.filter((p) => p.role === 'matchmaker').map(once)])
      await launcher.launch(spec);
    for (const a of acceptors)
      await waitFor(`${a.name} ready`, 30_000, async () =>
        (await probe(a.metricsPort as number, '/readyz'))?.status === 200 ? true : undefined,
      );
    for (const a of acceptors) launcher.kill(a.name, 'SIGSTOP');

    const proposer = once(plan.processes.find((p) => p.role === 'proposer') as ProcessSpec);
    await launcher.launch(proposer);
    const port = proposer.metricsPort as number;
    const waiting = await waitFor('the proposer registered without a leader', 30_000, async () => {
      const r = await probe(port, '/readyz');
      return r?.body === 'no leader known' ? r : undefined;
    });
    expect(waiting.status).toBe(503);
    expect(await probe(port, '/healthz')).toMatchObject({ status: 200 });

    for (const a of acceptors) launcher.kill(a.name, 'SIGCONT');
    const ready = await waitFor('the proposer to lead', 30_000, async () => {
      const r = await probe(port, '/readyz');
      return r?.status === 200 ? r : undefined;
    });
    expect(ready.body).toBe('ready');
    expect(await probe(port, '/healthz')).toMatchObject({ status: 200 });
  }, 120_000);
});
