import { describe, expect, it } from 'vitest';
import { Membership, type MembershipChange } from '../src/membership.ts';
import { eventually, freePort, useResources } from './helpers.ts';

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

  it('subscribe emits the initial set, then joins and leaves', async () => {
    const anna = await r.anna();
    const m = new Membership(await r.client({ routing: anna.routingEndpoint }), { keyPrefix: 'p' });
    const writer = new Membership(await r.client({ routing: anna.routingEndpoint }), { keyPrefix: 'p' });
    await writer.register('Proposers', 'p1');
    const changes: MembershipChange[] = [];
    const errors: Error[] = [];
    const sub = m.subscribe(
      ['Proposers', 'Unbatchers'],
      50,
      (c) => changes.push(c),
      (e) => errors.push(e),
    );
    r.defer(() => sub.stop());
    await sub.ready;
    expect(changes).toEqual(
      expect.arrayContaining([
        { kind: 'Proposers', members: ['p1'], joined: ['p1'], left: [] },
        { kind: 'Unbatchers', members: [], joined: [], left: [] },
      ]),
    );
    expect(changes).toHaveLength(2);

    await writer.register('Proposers', 'p2');
    await eventually(() => changes.length === 3, 2000, 'join');
    expect(changes[2]).toEqual({ kind: 'Proposers', members: ['p1', 'p2'], joined: ['p2'], left: [] });

    await writer.deregister('Proposers', 'p1');
    await writer.register('Unbatchers', 'u1');
    await eventually(() => changes.length === 5, 2000, 'leave and join');
    expect(changes.slice(3)).toEqual(
      expect.arrayContaining([
        { kind: 'Proposers', members: ['p2'], joined: [], left: ['p1'] },
        { kind: 'Unbatchers', members: ['u1'], joined: ['u1'], left: [] },
      ]),
    );
    // nothing changes: nothing is emitted
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(changes).toHaveLength(5);
    expect(errors).toEqual([]);

    sub.stop();
    await writer.register('Proposers', 'p3');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(changes).toHaveLength(5);
  });

  it('subscribe reports errors and keeps polling; ready waits for a successful poll', async () => {
    // No server yet: every poll times out; then a server appears on that port.
    const routingPort = await freePort();
    const storagePort = await freePort();
    const client = await r.client({
      routing: `tcp://127.0.0.1:${routingPort}`,
      timeoutMs: 60,
      retries: 0,
    });
    const m = new Membership(client, { keyPrefix: 'x' });
    const changes: MembershipChange[] = [];
    const errors: Error[] = [];
    const sub = m.subscribe(
      ['Batchers'],
      30,
      (c) => changes.push(c),
      (e) => errors.push(e),
    );
    r.defer(() => sub.stop());
    let ready = false;
    void sub.ready.then(() => {
      ready = true;
    });
    await eventually(() => errors.length >= 2, 2000, 'errors');
    expect(errors[0]?.message).toMatch(/TIMEOUT|did not answer/);
    expect(ready).toBe(false);

    await r.anna({ routingPort, storagePort });
    await sub.ready;
    expect(changes).toEqual([{ kind: 'Batchers', members: [], joined: [], left: [] }]);
  });

  it('stop before the first poll rejects ready without an unhandled rejection', async () => {
    const client = await r.client({
      routing: `tcp://127.0.0.1:${await freePort()}`,
      timeoutMs: 50,
      retries: 0,
    });
    const sub = new Membership(client, { keyPrefix: 'x' }).subscribe(['Batchers'], 20, () => {});
    sub.stop();
    await expect(sub.ready).rejects.toThrow(/stopped/);
    expect(() => new Membership(client, { keyPrefix: 'x' }).subscribe([], 0, () => {})).toThrow(RangeError);
  });

  it('stops polling by itself once the client is closed', async () => {
    const anna = await r.anna();
    const client = await r.client({ routing: anna.routingEndpoint });
    const errors: Error[] = [];
    const sub = new Membership(client, { keyPrefix: 'c' }).subscribe(
      ['Batchers'],
      20,
      () => {},
      (e) => errors.push(e),
    );
    r.defer(() => sub.stop());
    await sub.ready;
    await client.close();
    await eventually(() => errors.length > 0, 2000, 'CLOSED error');
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(errors.length).toBeLessThanOrEqual(1);
    expect(errors[0]).toMatchObject({ code: 'CLOSED' });
  });
});
