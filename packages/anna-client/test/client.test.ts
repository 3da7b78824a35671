import { describe, expect, it } from 'vitest';
import * as zmq from 'zeromq';
import { AnnaClient, AnnaError } from '../src/client.ts';
import { startLocalAnna } from '../src/server.ts';
import {
  AnnaErrorType,
  decodeKeyAddressResponse,
  decodeKeyResponse,
  encodeKeyAddressRequest,
  encodeKeyRequest,
  encodeSetValue,
  LatticeType,
  RequestType,
} from '../src/wire.ts';
import { bytes, freePort, portOf, text, useResources } from './helpers.ts';

const r = useResources();

async function rejection(p: Promise<unknown>): Promise<AnnaError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(AnnaError);
    return err as AnnaError;
  }
  throw new Error('expected the promise to reject');
}

describe('AnnaClient against the local server', () => {
  it('reads a missing key as null (KEY_DNE)', async () => {
    const anna = await r.anna();
    const client = await r.client({ routing: anna.routingEndpoint });
    expect(await client.getSet('nope')).toBeNull();
    expect(await client.getLww('nope')).toBeNull();
  });

  it('puts and gets a SET, merging by union', async () => {
    const anna = await r.anna();
    const client = await r.client({ routing: anna.routingEndpoint });
    await client.addToSet('s', ['a', 'b']);
    await client.addToSet('s', ['b', 'c']);
    expect(await client.getSet('s')).toEqual(new Set(['a', 'b', 'c']));
    // values are opaque strings: separators and unicode survive
    await client.addToSet('s2', ['x|y', 'tcp://127.0.0.1:1', 'ü']);
    expect(await client.getSet('s2')).toEqual(new Set(['x|y', 'tcp://127.0.0.1:1', 'ü']));
  });

  it('keeps the LWW write with the newest timestamp', async () => {
    const anna = await r.anna();
    const client = await r.client({ routing: anna.routingEndpoint });
    await client.putLww('k', bytes('two'), 2);
    await client.putLww('k', bytes('one'), 1);
    let read = await client.getLww('k');
    expect(read?.timestamp).toBe(2);
    expect(text(read?.value ?? new Uint8Array())).toBe('two');
    await client.putLww('k', bytes('three'), 3);
    read = await client.getLww('k');
    expect(read?.timestamp).toBe(3);
    expect(text(read?.value ?? new Uint8Array())).toBe('three');
    // on a tie the incoming write wins, as in Anna (LWWPairLattice::do_merge)
    await client.putLww('k', bytes('a'), 3);
    expect(text((await client.getLww('k'))?.value ?? new Uint8Array())).toBe('a');
    await client.putLww('k', bytes('zz'), 3);
    expect(text((await client.getLww('k'))?.value ?? new Uint8Array())).toBe('zz');
    await client.putLww('k', bytes('b'), 2);
    expect(text((await client.getLww('k'))?.value ?? new Uint8Array())).toBe('zz');
    await expect(client.putLww('k', bytes('x'), -1)).rejects.toThrow(RangeError);
    await expect(client.putLww('k', bytes('x'), 1.5)).rejects.toThrow(RangeError);
  });

  it('merges concurrent writers: two clients adding different members at once', async () => {
    const anna = await r.anna();
    const a = await r.client({ routing: anna.routingEndpoint });
    const b = await r.client({ routing: anna.routingEndpoint });
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 20; i++) {
      writes.push(a.addToSet('members', [`a${i}`]), b.addToSet('members', [`b${i}`]));
    }
    await Promise.all(writes);
    const members = await a.getSet('members');
    expect(members?.size).toBe(40);
    expect(members?.has('a0') && members.has('b19')).toBe(true);
    expect(await b.getSet('members')).toEqual(members);
  });

  it('retries NO_SERVERS until storage has joined', async () => {
    const anna = await r.anna({ faults: { noServersForMs: 300 } });
    const client = await r.client({
      routing: anna.routingEndpoint,
      retries: 8,
      backoffMs: 50,
      maxBackoffMs: 200,
    });
    const started = Date.now();
    await client.addToSet('s', ['a']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(anna.stats().addressRequests).toBeGreaterThan(1);
    expect(await client.getSet('s')).toEqual(new Set(['a']));
  });

  it('fails with NO_SERVERS when retries run out', async () => {
    const anna = await r.anna({ faults: { noServersForMs: 60_000 } });
    const client = await r.client({ routing: anna.routingEndpoint, retries: 2, backoffMs: 20 });
    const err = await rejection(client.getSet('s'));
    expect(err.code).toBe('NO_SERVERS');
    expect(err.message).toContain("'s'");
    expect(err.message).toContain(anna.routingEndpoint);
    expect(err.message).toMatch(/3 attempts/);
    expect(anna.stats().addressRequests).toBe(3);
  });

  it('recovers from WRONG_THREAD by asking routing again', async () => {
    const anna = await r.anna({ faults: { wrongThreadOnce: true } });
    const client = await r.client({ routing: anna.routingEndpoint });
    await client.addToSet('s', ['a']);
    expect(anna.stats().addressRequests).toBe(2);
    expect(anna.stats().keyRequests).toBe(2);
    expect(await client.getSet('s')).toEqual(new Set(['a']));
    // the address is cached again: no new routing request
    expect(anna.stats().addressRequests).toBe(2);
  });

  it('drops its cached address when a reply says invalidate, and asks routing again next time', async () => {
    // Routing lists the storage endpoint twice (a stale view): every request carries an address
    // cache size of 2, which the one storage thread does not match.
    const stale = await r.anna({ faults: { routingReplicas: 2 } });
    const client = await r.client({ routing: stale.routingEndpoint });
    await client.addToSet('s', ['a']);
    await client.addToSet('s', ['b']);
    expect(await client.getSet('s')).toEqual(new Set(['a', 'b']));
    expect(stale.stats().invalidations).toBe(3);
    expect(stale.stats().addressRequests).toBe(3); // one per request: the cache was dropped each time
    // Where the counts agree, nothing is invalidated and the address stays cached.
    const fresh = await r.anna();
    const other = await r.client({ routing: fresh.routingEndpoint });
    await other.addToSet('s', ['a']);
    await other.addToSet('s', ['b']);
    expect(await other.getSet('s')).toEqual(new Set(['a', 'b']));
    expect(fresh.stats()).toMatchObject({ invalidations: 0, addressRequests: 1 });
  });

  it('reports a lattice mismatch naming the key, expected and actual lattice', async () => {
    const anna = await r.anna();
    const client = await r.client({ routing: anna.routingEndpoint });
    await client.putLww('k', bytes('v'), 1);

    const onGet = await rejection(client.getSet('k'));
    expect(onGet.code).toBe('LATTICE');
    expect(onGet).toMatchObject({ key: 'k', expected: 'SET', actual: 'LWW' });
    expect(onGet.message).toMatch(/'k'.*SET.*LWW/);

    // Anna ignores the PUT silently; the client notices and says what the key holds.
    const onPut = await rejection(client.addToSet('k', ['x']));
    expect(onPut).toMatchObject({ code: 'LATTICE', key: 'k', expected: 'SET', actual: 'LWW' });
    expect(onPut.message).toMatch(/'k'.*SET.*LWW/);
    expect(text((await client.getLww('k'))?.value ?? new Uint8Array())).toBe('v');

    await client.addToSet('s', ['x']);
    const onLww = await rejection(client.putLww('s', bytes('v'), 1));
    expect(onLww).toMatchObject({ code: 'LATTICE', expected: 'LWW', actual: 'SET' });
    const onGetLww = await rejection(client.getLww('s'));
    expect(onGetLww).toMatchObject({ code: 'LATTICE', expected: 'LWW', actual: 'SET' });
  });

  it('keeps working across a server restart on the same ports', async () => {
    const first = await startLocalAnna({ routingPort: 0, storagePort: 0 });
    let current = first;
    r.defer(() => current.close());
    const client = await r.client({ routing: first.routingEndpoint, timeoutMs: 250, retries: 8 });
    await client.addToSet('members', ['one']);
    expect(await client.getSet('members')).toEqual(new Set(['one']));
    await first.close();

    current = await startLocalAnna({
      routingPort: portOf(first.routingEndpoint),
      storagePort: portOf(first.storageEndpoint),
    });
    expect(current.routingEndpoint).toBe(first.routingEndpoint);
    // the new server starts empty (Anna loses its memory tier too): register again
    expect(await client.getSet('members')).toBeNull();
    await client.addToSet('members', ['two']);
    expect(await client.getSet('members')).toEqual(new Set(['two']));
  });

  it('times out and retries when requests are dropped', async () => {
    const anna = await r.anna({ faults: { dropFirstRequests: 2 } });
    const client = await r.client({
      routing: anna.routingEndpoint,
      timeoutMs: 100,
      retries: 4,
      backoffMs: 10,
    });
    await client.addToSet('s', ['a']);
    expect(anna.stats().droppedRequests).toBe(2);
    expect(await client.getSet('s')).toEqual(new Set(['a']));
  });

  it('fails with TIMEOUT naming the key and routing endpoint when nobody answers', async () => {
    const routing = `tcp://127.0.0.1:${await freePort()}`;
    const client = await r.client({ routing, timeoutMs: 80, retries: 2, backoffMs: 10 });
    const started = Date.now();
    const err = await rejection(client.getSet('lost'));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(err.code).toBe('TIMEOUT');
    expect(err.message).toContain("'lost'");
    expect(err.message).toContain(routing);
    expect(err.message).toMatch(/3 attempts/);
  });

  it('uses one of several routing endpoints per request', async () => {
    const anna = await r.anna();
    const dead = `tcp://127.0.0.1:${await freePort()}`;
    const client = await r.client({
      routing: `${dead}, ${anna.routingEndpoint}`,
      timeoutMs: 100,
      retries: 3,
      backoffMs: 10,
    });
    await client.addToSet('s', ['a']);
    expect(await client.getSet('s')).toEqual(new Set(['a']));
  });

  it('rejects bad options clearly', async () => {
    await expect(AnnaClient.connect({ routing: ' , ' })).rejects.toMatchObject({ code: 'CONFIG' });
    await expect(AnnaClient.connect({ routing: 'tcp://127.0.0.1:1', timeoutMs: 0 })).rejects.toMatchObject({
      code: 'CONFIG',
    });
    await expect(
      AnnaClient.connect({ routing: 'tcp://127.0.0.1:1', responseHost: '0.0.0.0' }),
    ).rejects.toThrow(/advertiseHost/);
  });

  it('fails pending requests with CLOSED on close, without unhandled rejections', async () => {
    const routing = `tcp://127.0.0.1:${await freePort()}`;
    const client = await AnnaClient.connect({ routing, timeoutMs: 5000 });
    const pending = client.getSet('k');
    await new Promise((resolve) => setTimeout(resolve, 20));
    await client.close();
    await expect(pending).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(client.getSet('k')).rejects.toMatchObject({ code: 'CLOSED' });
    await client.close(); // idempotent
  });
});

describe('local server wire behaviour (as real Anna)', () => {
  async function rawPeer() {
    const pull = new zmq.Pull({ linger: 0 });
    await pull.bind('tcp://127.0.0.1:*');
    const push = new zmq.Push({ linger: 0 });
    r.defer(() => {
      pull.close();
      push.close();
    });
    return { pull, push, address: pull.lastEndpoint as string };
  }

  it('answers address requests with full storage endpoints and NO_SERVERS during the join window', async () => {
    const anna = await r.anna({ faults: { noServersForMs: 150 } });
    const peer = await rawPeer();
    peer.push.connect(anna.routingEndpoint);
    await peer.push.send(
      encodeKeyAddressRequest({ responseAddress: peer.address, keys: ['a', 'b'], requestId: '1' }),
    );
    const [early] = await peer.pull.receive();
    expect(decodeKeyAddressResponse(early as Buffer)).toEqual({
      addresses: [
        { key: 'a', ips: [] },
        { key: 'b', ips: [] },
      ],
      error: AnnaErrorType.NO_SERVERS,
      responseId: '1',
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    await peer.push.send(
      encodeKeyAddressRequest({ responseAddress: peer.address, keys: ['a'], requestId: '2' }),
    );
    const [late] = await peer.pull.receive();
    expect(decodeKeyAddressResponse(late as Buffer)).toEqual({
      addresses: [{ key: 'a', ips: [anna.storageEndpoint] }],
      error: 0,
      responseId: '2',
    });
  });

  it('ignores a PUT of the wrong lattice type, answering NO_ERROR with lattice NONE', async () => {
    const anna = await r.anna();
    const peer = await rawPeer();
    peer.push.connect(anna.storageEndpoint);
    const put = (id: string, latticeType: number) =>
      encodeKeyRequest({
        type: RequestType.PUT,
        tuples: [{ key: 'k', latticeType, payload: encodeSetValue([bytes('m')]) }],
        responseAddress: peer.address,
        requestId: id,
      });
    await peer.push.send(put('1', LatticeType.SET));
    const [ok] = await peer.pull.receive();
    expect(decodeKeyResponse(ok as Buffer)?.tuples[0]).toMatchObject({
      key: 'k',
      latticeType: LatticeType.SET,
      error: 0,
    });
    await peer.push.send(put('2', LatticeType.ORDERED_SET));
    const [ignored] = await peer.pull.receive();
    expect(decodeKeyResponse(ignored as Buffer)).toMatchObject({
      type: RequestType.PUT,
      responseId: '2',
      tuples: [{ key: 'k', latticeType: LatticeType.NONE, error: AnnaErrorType.NO_ERROR }],
    });
    // a GET naming another lattice type gets the stored tuple anyway
    await peer.push.send(
      encodeKeyRequest({
        type: RequestType.GET,
        tuples: [{ key: 'k', latticeType: LatticeType.LWW }],
        responseAddress: peer.address,
        requestId: '3',
      }),
    );
    const [got] = await peer.pull.receive();
    expect(decodeKeyResponse(got as Buffer)?.tuples[0]).toMatchObject({
      latticeType: LatticeType.SET,
      error: 0,
    });
  });

  it('drops undecodable frames and keeps serving', async () => {
    const anna = await r.anna();
    const client = await r.client({ routing: anna.routingEndpoint });
    const push = new zmq.Push({ linger: 0 });
    r.defer(() => push.close());
    push.connect(anna.storageEndpoint);
    await push.send(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]));
    await client.addToSet('s', ['a']);
    expect(await client.getSet('s')).toEqual(new Set(['a']));
    expect(anna.stats().invalidFrames).toBe(1);
  });

  it('names the endpoint when a port is in use', async () => {
    const anna = await r.anna();
    await expect(
      startLocalAnna({ routingPort: portOf(anna.routingEndpoint), storagePort: 0 }),
    ).rejects.toMatchObject({
      code: 'ADDRESS_IN_USE',
      message: expect.stringContaining(anna.routingEndpoint),
    });
    await expect(
      startLocalAnna({ routingPort: 0, storagePort: portOf(anna.storageEndpoint) }),
    ).rejects.toMatchObject({
      code: 'ADDRESS_IN_USE',
      message: expect.stringContaining(anna.storageEndpoint),
    });
  });
});
