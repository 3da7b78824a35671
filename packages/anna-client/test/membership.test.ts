import { describe, expect, it } from 'vitest';
import { Membership } from '../src/membership.ts';
import { useResources } from './helpers.ts';

const r = useResources();

describe('Membership', () => {
  it("uses the original's key scheme", async () => {
    const anna = await r.anna();
    const m = new Membership(await r.client({ routing: anna.routingEndpoint }), { keyPrefix: '1' });
    expect(m.observedKey('Proposers')).toBe('1observedProposers');
    expect(m.removedKey('AcceptorGroups')).toBe('1removedAcceptorGroups');
    expect(m.observedKey('3')).toBe('1observed3');
  });

  it('registers, deregisters and lists live members (two-phase set)', async () => {
    const anna = await r.anna();
    const client = await r.client({ routing: anna.routingEndpoint });
    const m = new Membership(client, { keyPrefix: 'run1/' });
    expect(await m.live('Batchers')).toEqual([]);
    await m.register('Batchers', 'tcp://127.0.0.1:13001');
    await m.register('Batchers', 'tcp://127.0.0.1:13000');
    expect(await m.live('Batchers')).toEqual(['tcp://127.0.0.1:13000', 'tcp://127.0.0.1:13001']);
    await m.deregister('Batchers', 'tcp://127.0.0.1:13000');
    expect(await m.live('Batchers')).toEqual(['tcp://127.0.0.1:13001']);
    // removed stays removed: registering again does not bring it back
    await m.register('Batchers', 'tcp://127.0.0.1:13000');
    expect(await m.live('Batchers')).toEqual(['tcp://127.0.0.1:13001']);
    expect(await client.getSet('run1/observedBatchers')).toEqual(
      new Set(['tcp://127.0.0.1:13000', 'tcp://127.0.0.1:13001']),
    );
    // kinds and prefixes do not mix
    expect(await m.live('Proposers')).toEqual([]);
    expect(await new Membership(client, { keyPrefix: 'run2/' }).live('Batchers')).toEqual([]);
    // a group id names that group's member key
    await m.register('7', 'a7=tcp://127.0.0.1:12000');
    expect(await m.live('7')).toEqual(['a7=tcp://127.0.0.1:12000']);
  });

  it('reads both sets of a kind, null where a key does not exist', async () => {
    const anna = await r.anna();
    const m = new Membership(await r.client({ routing: anna.routingEndpoint }), { keyPrefix: 'k/' });
    expect(await m.read('Proposers')).toEqual({ observed: null, removed: null });
    await m.register('Proposers', 'p2@b');
    await m.register('Proposers', 'p1@a');
    await m.deregister('Proposers', 'p2@b');
    expect(await m.read('Proposers')).toEqual({ observed: ['p1@a', 'p2@b'], removed: ['p2@b'] });
  });

  it('keeps a lease per member that only rises (LWW by timestamp)', async () => {
    const anna = await r.anna();
    const client = await r.client({ routing: anna.routingEndpoint });
    const m = new Membership(client, { keyPrefix: 'k/' });
    expect(m.leaseKey('p1@a')).toBe('k/leasep1@a');
    expect(await m.lease('p1@a')).toBeNull();
    await m.renewLease('p1@a', 1_700_000_000_100);
    expect(await m.lease('p1@a')).toBe(1_700_000_000_100);
    // A late, lower write (a retry that arrives after a newer one) does not move it back.
    await m.renewLease('p1@a', 1_700_000_000_050);
    expect(await m.lease('p1@a')).toBe(1_700_000_000_100);
    await m.renewLease('p1@a', 1_700_000_000_400);
    expect(await m.lease('p1@a')).toBe(1_700_000_000_400);
    expect(await m.lease('p2@b')).toBeNull();
  });

  it('keeps named values under the prefix', async () => {
    const anna = await r.anna();
    const client = await r.client({ routing: anna.routingEndpoint });
    const m = new Membership(client, { keyPrefix: 'k/' });
    expect(await m.getValue('configuration')).toBeNull();
    await m.putValue('configuration', new TextEncoder().encode('f=1'), 1);
    expect(new TextDecoder().decode((await m.getValue('configuration')) ?? undefined)).toBe('f=1');
    expect(await client.getLww('k/configuration')).not.toBeNull();
  });
});
