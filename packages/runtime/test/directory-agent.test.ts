import { Membership } from '@paxos/anna-client';
import type { MemberChange } from '@paxos/core';
import { Metrics, parseExposition, sumSamples } from '@paxos/metrics';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
// The directory and client helpers of the directory's own tests: started per test, closed after it.
import { freePort, useResources } from '../../anna-client/test/helpers.ts';
import { DirectoryAgent } from '../src/directory-agent.ts';

const r = useResources();
const directory = (routingPort: number, storagePort: number) => r.anna({ routingPort, storagePort });

async function agent(routing: string, name: string) {
  const client = await r.client({ routing, timeoutMs: 200, retries: 2 });
  const metrics = new Metrics({ role: 'batcher', instance: name, collectDefaultMetrics: false });
  const membership = new Membership(client, { keyPrefix: 't/' });
  const a = new DirectoryAgent({
    membership,
    pollMs: 50,
    leaseTimeoutMs: 300,
    logger: pino({ level: 'silent' }),
    metrics,
  });
  const changes: MemberChange[] = [];
  a.onChange((c) => changes.push(c));
  r.defer(() => a.stop());
  return { agent: a, membership, metrics, changes };
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function counter(metrics: Metrics, name: string): Promise<number> {
  return sumSamples(parseExposition(await metrics.metricsText()), name);
}

describe('DirectoryAgent against a real local directory', () => {
  it('sees peers join, drops one whose lease stops rising, and takes it back when it rises again', async () => {
    const anna = await directory(0, 0);
    const a = await agent(anna.routingEndpoint, 'a');
    const b = await agent(anna.routingEndpoint, 'b');
    await a.agent.register('Batchers', 'a@1');
    await b.agent.register('Batchers', 'b@1');
    await a.agent.watch(['Batchers']);
    await until('a to see both', () => a.agent.view.live('Batchers').length === 2);

    // b pauses (its agent stops raising its lease, as under SIGSTOP)…
    b.agent.stop();
    await until('b to expire', () => !a.agent.view.live('Batchers').includes('b@1'));
    expect(a.changes.at(-1)?.expired).toEqual(['b@1']);
    expect(await counter(a.metrics, 'paxos_member_leases_expired_total')).toBe(1);
    // …and resumes.
    await b.membership.renewLease('b@1', Date.now());
    await until('b to be back', () => a.agent.view.live('Batchers').includes('b@1'));
  });

  it('registers again after a directory restart, keeping its view meanwhile', async () => {
    const [routingPort, storagePort] = [await freePort(), await freePort()];
    let anna = await directory(routingPort, storagePort);
    const a = await agent(anna.routingEndpoint, 'a');
    const b = await agent(anna.routingEndpoint, 'b');
    await a.agent.register('Proposers', 'a@1');
    await b.agent.register('Proposers', 'b@1');
    await a.agent.publish('configuration', new TextEncoder().encode('f=1'));
    await a.agent.watch(['Proposers']);
    await until('a to see both', () => a.agent.view.live('Proposers').length === 2);

    await anna.close();
    await new Promise((r) => setTimeout(r, 400));
    // While the directory is away, nobody leaves.
    expect(a.agent.view.live('Proposers')).toEqual(['a@1', 'b@1']);
    anna = await directory(routingPort, storagePort);
    const reader = new Membership(await r.client({ routing: anna.routingEndpoint }), { keyPrefix: 't/' });
    await until('both to register again', async () => {
      const sets = await reader.read('Proposers');
      return (sets.observed ?? []).length === 2;
    });
    await until(
      'the configuration to be written again',
      async () => (await reader.getValue('configuration')) !== null,
    );
    expect(await counter(a.metrics, 'paxos_directory_reregistrations_total')).toBeGreaterThanOrEqual(1);
    expect(await counter(b.metrics, 'paxos_directory_reregistrations_total')).toBeGreaterThanOrEqual(1);
    expect(a.changes.every((c) => c.left.length === 0)).toBe(true);
    expect(a.agent.view.live('Proposers')).toEqual(['a@1', 'b@1']);
  });

  it('a graceful leave is seen at once and the entry is not registered again', async () => {
    const anna = await directory(0, 0);
    const a = await agent(anna.routingEndpoint, 'a');
    const b = await agent(anna.routingEndpoint, 'b');
    await b.agent.register('Unbatchers', 'b@1');
    await a.agent.watch(['Unbatchers']);
    await until('a to see b', () => a.agent.view.live('Unbatchers').includes('b@1'));
    await b.agent.deregister();
    await until('b to leave', () => a.agent.view.live('Unbatchers').length === 0);
    expect(a.changes.at(-1)?.expired).toEqual([]);
    await new Promise((r) => setTimeout(r, 300));
    expect(a.agent.view.live('Unbatchers')).toEqual([]);
  });
});
