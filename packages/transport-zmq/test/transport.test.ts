import { createHook } from 'node:async_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { Pull, Push } from 'zeromq';
import { encodeBundle } from '../src/bundle.ts';
import { parseEndpoint } from '../src/endpoint.ts';
import { waitUntilReleased } from '../src/port.ts';
import { measureRawZmq } from '../src/raw.ts';
import {
  type DecodeResult,
  type DropReason,
  type TransportLogger,
  type TransportOptions,
  ZmqTransport,
} from '../src/transport.ts';

// Every test binds ephemeral ports on 127.0.0.1 ('tcp://127.0.0.1:*', read back via lastEndpoint)
// and closes every socket it opens (afterEach), so tests can run next to a local cluster.

const LOCAL = 'tcp://127.0.0.1:*';
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** Text frames; anything starting with "bad" is rejected, "throw" makes the decoder throw. */
function decodeText(frame: Uint8Array): DecodeResult<string> {
  const text = decoder.decode(frame);
  if (text === 'throw') throw new Error('decoder exploded');
  if (text.startsWith('bad')) return { ok: false, reason: `rejected ${text}` };
  return { ok: true, value: text };
}

interface Received {
  text: string;
  socket: number;
}

async function open(options: Partial<TransportOptions<string>> = {}): Promise<{
  transport: ZmqTransport<string>;
  got: Received[];
  invalid: { reason: string; socket: number }[];
}> {
  const got: Received[] = [];
  const invalid: { reason: string; socket: number }[] = [];
  const transport = await ZmqTransport.open<string>({
    bind: [LOCAL],
    decode: decodeText,
    onMessage: (text, socket) => got.push({ text, socket }),
    onInvalid: (reason, socket) => invalid.push({ reason, socket }),
    ...options,
  });
  cleanups.push(() => transport.close({ lingerMs: 0 }));
  return { transport, got, invalid };
}

function rawPush(endpoint: string, options: ConstructorParameters<typeof Push>[0] = {}): Push {
  const push = new Push({ linger: 0, ...options });
  push.connect(endpoint);
  cleanups.push(() => push.close());
  return push;
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A tcp endpoint on 127.0.0.1 that nobody listens on (bound once, then released). */
async function deadEndpoint(): Promise<string> {
  const pull = new Pull({ linger: 0 });
  await pull.bind(LOCAL);
  const endpoint = pull.lastEndpoint as string;
  pull.close();
  expect(await waitUntilReleased(endpoint, 1000)).toBe(true); // ZeroMQ releases ports asynchronously
  return endpoint;
}

const text = (s: string) => encoder.encode(s);

describe('endpoints', () => {
  it('resolves ephemeral ports and reports the bound endpoints', async () => {
    const { transport } = await open({ bind: [LOCAL, 'tcp://127.0.0.1:0'] });
    expect(transport.endpoints).toHaveLength(2);
    for (const endpoint of transport.endpoints) expect(endpoint).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    expect(transport.endpoints[0]).not.toBe(transport.endpoints[1]);
  });

  it('rejects a malformed bind endpoint with a clear error naming it and the expected form', async () => {
    for (const bad of [
      '127.0.0.1:11000',
      'tcp://127.0.0.1',
      'tcp://127.0.0.1:70000',
      'udp://127.0.0.1:1',
      '',
    ]) {
      await expect(open({ bind: [bad] })).rejects.toThrow(
        new RegExp(
          `invalid bind endpoint ${JSON.stringify(bad).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}.*tcp://host:port`,
        ),
      );
    }
    expect(parseEndpoint('tcp://10.0.0.1:12000', 'connect').ok).toBe(true);
    expect(parseEndpoint('tcp://[::1]:12000', 'connect').ok).toBe(true);
    expect(parseEndpoint('tcp://*:12000', 'bind').ok).toBe(true);
    expect(parseEndpoint('tcp://*:12000', 'connect').ok).toBe(false);
    expect(parseEndpoint('tcp://127.0.0.1:*', 'connect').ok).toBe(false);
  });

  it('reports a port in use by naming the endpoint, and releases sockets it already bound', async () => {
    const { transport: first } = await open();
    const taken = first.endpoints[0] as string;
    const free = await deadEndpoint();
    await expect(open({ bind: [free, taken] })).rejects.toThrow(`${taken} is already in use`);
    // The failed open closed its first socket: that port can be bound again.
    const { transport: again } = await open({ bind: [free] });
    expect(again.endpoints).toEqual([free]);
  });

  it('validates options before opening any socket', async () => {
    await expect(open({ maxQueuedPerPeer: 0 })).rejects.toThrow(
      'maxQueuedPerPeer must be a positive integer, got 0',
    );
    await expect(open({ maxReadsPerSocketPerPoll: 1.5 })).rejects.toThrow('maxReadsPerSocketPerPoll');
    await expect(open({ maxFrameBytes: 100, zmqMaxMessageSize: 50 })).rejects.toThrow('zmqMaxMessageSize');
  });

  it('drops (never throws) a send to a malformed endpoint', async () => {
    const drops: [string, DropReason][] = [];
    const { transport } = await open({ onDrop: (endpoint, reason) => drops.push([endpoint, reason]) });
    expect(transport.send('127.0.0.1:1', text('x'))).toBe(false);
    expect(drops).toEqual([['127.0.0.1:1', 'send-error']]);
    expect(transport.stats.dropped).toBe(1);
  });
});

describe('delivery', () => {
  it('round-trips many frames between two transports, in order', async () => {
    const n = 5000;
    const a = await open();
    const bEcho: { transport?: ZmqTransport<string> } = {};
    const b = await open({
      onMessage: (message) =>
        bEcho.transport?.send(a.transport.endpoints[0] as string, text(`echo:${message}`)),
    });
    bEcho.transport = b.transport;
    const target = b.transport.endpoints[0] as string;
    for (let i = 0; i < n; i++) expect(a.transport.send(target, text(`m${i}`))).toBe(true);
    await waitFor('echoes', () => a.got.length === n, 10_000);
    expect(a.got.map((r) => r.text)).toEqual(Array.from({ length: n }, (_, i) => `echo:m${i}`));
    expect(b.transport.stats).toMatchObject({ received: n, sent: n, dropped: 0, invalid: 0, peers: 1 });
    expect(a.transport.stats).toMatchObject({ received: n, sent: n, dropped: 0, queued: 0 });
  });

  it('counts invalid and oversized frames and messages that are not bundles, reads every frame of a bundle and each part of a multipart message, and keeps delivering valid ones', async () => {
    const { transport, got, invalid } = await open({ maxFrameBytes: 1024 });
    const push = rawPush(transport.endpoints[0] as string);
    await push.send(encodeBundle([text('ok-1')]));
    await push.send(encodeBundle([text('bad-1')]));
    await push.send([encodeBundle([text('ok-a')]), encodeBundle([text('bad-b')])]);
    // > maxFrameBytes, < zmq's limit (2 × 1024): skipped, and the frame after it still read.
    await push.send(encodeBundle([new Uint8Array(2000).fill(0x61), text('ok-b')]));
    await push.send(encodeBundle([text('throw')]));
    await push.send(text('no-header')); // a frame sent without its length: not a bundle
    await push.send(Buffer.concat([encodeBundle([text('ok-c')]), Buffer.from([1, 0])]));
    await push.send(encodeBundle([text('ok-2'), text('ok-3')]));
    await waitFor('ok-3', () => got.length === 6);
    expect(got.map((r) => r.text)).toEqual(['ok-1', 'ok-a', 'ok-b', 'ok-c', 'ok-2', 'ok-3']);
    expect(invalid.map((i) => i.reason)).toEqual([
      'rejected bad-1',
      'rejected bad-b',
      'frame of 2000 bytes exceeds maxFrameBytes 1024',
      'decoder threw: decoder exploded',
      expect.stringMatching(/^frame length \d+ at offset 0 runs past the end of the 9-byte message$/),
      'message cut short: 2 bytes at offset 8 where a 4-byte frame length was expected',
    ]);
    expect(transport.stats).toMatchObject({ received: 6, invalid: 6 });
  });

  it('survives an onMessage that throws', async () => {
    const seen: string[] = [];
    const warnings: string[] = [];
    const { transport } = await open({
      onMessage: (message) => {
        seen.push(message);
        if (message === 'boom') throw new Error('handler bug');
      },
      logger: { warn: (_obj, msg) => warnings.push(msg) },
    });
    const push = rawPush(transport.endpoints[0] as string);
    await push.send(encodeBundle([text('boom')]));
    await push.send(encodeBundle([text('after')]));
    await waitFor('after', () => seen.length === 2);
    expect(warnings).toContain('onMessage threw; message lost');
  });
});

describe('read fairness', () => {
  /**
   * Queues a flood on socket 0 and a few frames on socket 1 while the receiver's thread is blocked,
   * so both sockets are full when it next reads; returns the order in which the frames came out.
   */
  async function floodThenRead(
    maxReads: number | undefined,
    flood: number,
    few: number,
  ): Promise<Received[]> {
    const { transport, got } = await open({
      bind: [LOCAL, LOCAL],
      ...(maxReads === undefined ? {} : { maxReadsPerSocketPerPoll: maxReads }),
    });
    // sendTimeout 0: zeromq.js completes each send synchronously, so the whole flood is queued in
    // ZeroMQ before this thread yields (and before the receiver's loop can read anything).
    const opts = { sendHighWaterMark: 100_000, sendTimeout: 0 };
    const p0 = rawPush(transport.endpoints[0] as string, opts);
    const p1 = rawPush(transport.endpoints[1] as string, opts);
    await p0.send(encodeBundle([text('warm-0')]));
    await p1.send(encodeBundle([text('warm-1')]));
    await waitFor('warm-up', () => got.length === 2);
    got.length = 0;
    const failures: unknown[] = [];
    for (let i = 0; i < flood; i++)
      p0.send(encodeBundle([text(`s0-${i}`)])).catch((e: unknown) => failures.push(e));
    for (let i = 0; i < few; i++)
      p1.send(encodeBundle([text(`s1-${i}`)])).catch((e: unknown) => failures.push(e));
    // Block this thread while ZeroMQ's I/O threads move everything into the receiver's queues.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
    await waitFor('all frames', () => got.length === flood + few, 10_000);
    expect(failures).toEqual([]);
    return got;
  }

  it('delivers the few socket-1 frames long before socket 0 is drained (default N = 100)', async () => {
    const n = 100;
    const got = await floodThenRead(undefined, 5000, 5);
    const positions = got.flatMap((r, i) => (r.socket === 1 ? [i] : []));
    expect(positions).toHaveLength(5);
    expect(Math.max(...positions)).toBeLessThan(2 * n + 5);
    // Per-socket order is preserved.
    expect(got.filter((r) => r.socket === 0).map((r) => r.text)).toEqual(
      Array.from({ length: 5000 }, (_, i) => `s0-${i}`),
    );
  });

  it('never reads more than N in a row from one socket while another has frames (N = 10)', async () => {
    const n = 10;
    const few = 50;
    const got = await floodThenRead(n, 3000, few);
    const lastS1 = got.map((r) => r.socket).lastIndexOf(1);
    let run = 0;
    let longest = 0;
    for (const r of got.slice(0, lastS1 + 1)) {
      run = r.socket === 0 ? run + 1 : 0;
      longest = Math.max(longest, run);
    }
    expect(longest).toBeLessThanOrEqual(n);
    expect(lastS1).toBeLessThan(2 * few + n);
  });
});

describe('end of a receive burst', () => {
  it('calls onReadBurstEnd once a round has delivered everything it read', async () => {
    const bursts: number[] = [];
    const b = await open({ onReadBurstEnd: () => bursts.push(b.got.length) });
    const a = await open();
    // One turn's frames to one peer leave as one multipart message: one round reads all five.
    for (let i = 0; i < 5; i++) a.transport.send(b.transport.endpoints[0] as string, text(`m${i}`));
    await waitFor('five frames', () => b.got.length === 5);
    expect(bursts[0]).toBe(5);
  });

  it('hands what a burst sent (onReadBurstEnd included) to ZeroMQ as the burst ends, not a turn later', async () => {
    const peer = await open();
    const queuedAfterBurst: number[] = [];
    const box: { transport?: ZmqTransport<string> } = {};
    const b = await open({
      onMessage: (message) =>
        box.transport?.send(peer.transport.endpoints[0] as string, text(`re:${message}`)),
      onReadBurstEnd: () => {
        box.transport?.send(peer.transport.endpoints[0] as string, text('flush'));
        // Runs before any other macrotask: by then the writer has taken both frames.
        queueMicrotask(() => queuedAfterBurst.push(box.transport?.stats.queued ?? -1));
      },
    });
    box.transport = b.transport;
    const a = await open();
    a.transport.send(b.transport.endpoints[0] as string, text('x'));
    await waitFor('reply and flush', () => peer.got.length === 2);
    expect(peer.got.map((r) => r.text)).toEqual(['re:x', 'flush']);
    expect(queuedAfterBurst).toEqual([0]);
  });
});

describe('idle', () => {
  it('blocks when idle: the event loop is not kept busy', async () => {
    const { transport } = await open({ bind: [LOCAL, LOCAL, LOCAL] });
    const other = await open();
    transport.send(other.transport.endpoints[0] as string, text('hello'));
    await waitFor('hello', () => other.got.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Count the async work created while idle: a polling loop (setImmediate, a 1 ms timer, a
    // receive with a timeout) would create hundreds of Immediates/Timeouts/promises in 400 ms.
    const created = new Map<string, number>();
    const hook = createHook({
      init: (_id, type) => created.set(type, (created.get(type) ?? 0) + 1),
    }).enable();
    const before = performance.eventLoopUtilization();
    await new Promise((resolve) => setTimeout(resolve, 400));
    const { utilization } = performance.eventLoopUtilization(before);
    hook.disable();
    expect(utilization).toBeLessThan(0.1);
    expect(created.get('Immediate') ?? 0).toBeLessThanOrEqual(2);
    expect(created.get('Timeout') ?? 0).toBeLessThanOrEqual(2);
    expect(created.get('PROMISE') ?? 0).toBeLessThanOrEqual(100); // vitest's own bookkeeping: ~20
  });
});

describe('peers', () => {
  it('reaches a peer again after it restarts on the same endpoint', async () => {
    const sender = await open();
    const first = await open();
    const endpoint = first.transport.endpoints[0] as string;
    for (let i = 0; i < 10; i++) sender.transport.send(endpoint, text(`before-${i}`));
    await waitFor('first delivery', () => first.got.length === 10);
    await first.transport.close();

    const second = await open({ bind: [endpoint] });
    // PUSH is at-most-once across a connection loss: frames written before the sender's ZeroMQ
    // notices the old connection died are lost (a real restart takes far longer than that window).
    // So probe until the reconnect is visible, then every later frame must arrive, in order.
    let probes = 0;
    while (second.got.length === 0) {
      expect(probes++, 'no probe reached the restarted peer').toBeLessThan(250);
      sender.transport.send(endpoint, text(`probe-${probes}`));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    for (let i = 0; i < 100; i++) sender.transport.send(endpoint, text(`after-${i}`));
    const after = () => second.got.filter((r) => r.text.startsWith('after-')).map((r) => r.text);
    await waitFor('delivery after restart', () => after().length === 100);
    expect(after()).toEqual(Array.from({ length: 100 }, (_, i) => `after-${i}`));
    expect(sender.transport.stats.peers).toBe(1); // the same PUSH socket reconnected by itself
  });

  it('bounds the queue to a peer nobody listens on: drops, counts, logs rate-limited', async () => {
    const endpoint = await deadEndpoint();
    const warnings: { obj: object; msg: string }[] = [];
    const logger: TransportLogger = { warn: (obj, msg) => warnings.push({ obj, msg }) };
    const drops = new Map<DropReason, number>();
    const { transport } = await open({
      maxQueuedPerPeer: 100,
      sendHighWaterMark: 10,
      sendTimeoutMs: 50,
      logger,
      onDrop: (_endpoint, reason) => drops.set(reason, (drops.get(reason) ?? 0) + 1),
    });
    let accepted = 0;
    for (let i = 0; i < 10_000; i++) if (transport.send(endpoint, new Uint8Array(100))) accepted++;
    // One frame went straight to ZeroMQ, at most maxQueuedPerPeer wait in our queue.
    expect(accepted).toBeLessThanOrEqual(101);
    expect(transport.stats.queued).toBeLessThanOrEqual(100);
    expect(transport.stats.dropped).toBe(10_000 - accepted);
    expect(drops.get('queue-full')).toBe(10_000 - accepted);
    expect(warnings.filter((w) => w.msg.includes('queue full'))).toHaveLength(1); // rate-limited
    expect(warnings[0]?.obj).toMatchObject({ endpoint, reason: 'queue-full' });

    // ZeroMQ takes sendHighWaterMark messages (each carrying the frames one turn queued); after
    // that each send times out → 'send-error'. Queue more, one frame per turn, to get there.
    for (let i = 0; i < 40; i++) {
      transport.send(endpoint, new Uint8Array(100));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await waitFor('send timeouts', () => (drops.get('send-error') ?? 0) >= 2, 3000);
    expect(transport.stats.queued).toBeLessThanOrEqual(100);
    for (let i = 0; i < 50; i++) transport.send(endpoint, new Uint8Array(100));
    await transport.close({ lingerMs: 0 });
    const stats = transport.stats;
    expect(stats.queued).toBe(0);
    expect(stats.peers).toBe(0);
    expect(stats.sent + stats.dropped).toBe(10_090);
    expect(drops.get('closed') ?? 0).toBeGreaterThan(0);
  });

  it('close() flushes frames still queued to a live peer', async () => {
    const receiver = await open();
    const sender = await open();
    const n = 5000;
    for (let i = 0; i < n; i++)
      sender.transport.send(receiver.transport.endpoints[0] as string, text(`f${i}`));
    expect(sender.transport.stats.queued).toBeGreaterThan(0);
    await sender.transport.close();
    expect(sender.transport.stats).toMatchObject({ sent: n, dropped: 0, queued: 0, peers: 0 });
    await waitFor('flushed frames', () => receiver.got.length === n);
    expect(receiver.got.at(-1)?.text).toBe(`f${n - 1}`);
  });

  it('close() is idempotent; send after close is dropped as closed', async () => {
    const drops: DropReason[] = [];
    const { transport } = await open({ onDrop: (_e, reason) => drops.push(reason) });
    const closing = transport.close();
    expect(transport.close()).toBe(closing);
    await closing;
    expect(transport.send('tcp://127.0.0.1:1', text('late'))).toBe(false);
    expect(drops).toEqual(['closed']);
    // Its port is free again.
    const { transport: again } = await open({ bind: [transport.endpoints[0] as string] });
    expect(again.endpoints).toEqual(transport.endpoints);
  });

  it('closes idle peer sockets and reopens them on the next send', async () => {
    const receiver = await open();
    const { transport } = await open({ peerIdleMs: 100 });
    const endpoint = receiver.transport.endpoints[0] as string;
    transport.send(endpoint, text('one'));
    expect(transport.stats.peers).toBe(1);
    await waitFor('idle close', () => transport.stats.peers === 0, 3000);
    transport.send(endpoint, text('two'));
    await waitFor('second frame', () => receiver.got.length === 2);
    expect(receiver.got.map((r) => r.text)).toEqual(['one', 'two']);
  });
});

describe('measureRawZmq', () => {
  it('measures both patterns', async () => {
    for (const pattern of ['push-pull', 'dealer-router'] as const) {
      const result = await measureRawZmq({ pattern, messages: 500, size: 100 });
      expect(result.messages).toBe(500);
      expect(result.messagesPerSecond).toBeGreaterThan(0);
      expect(result.seconds).toBeGreaterThan(0);
    }
  });
});
