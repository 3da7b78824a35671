import { randomBytes } from 'node:crypto';
import { encodeEnvelope, UNSTAMPED } from '@paxos/core';
import { sumSamples } from '@paxos/metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Push } from 'zeromq';
import { sleep } from '../src/cluster.ts';
import { startCluster } from './helpers.ts';

let env: Awaited<ReturnType<typeof startCluster>>;
beforeAll(async () => {
  env = await startCluster(24300);
});
afterAll(async () => {
  await env?.stop();
});

function invalidCount(metrics: Awaited<ReturnType<typeof env.cluster.scrape>>): number {
  return sumSamples(metrics, 'num_invalid_messages');
}

describe('bad frames', () => {
  it('garbage, truncated, multipart and oversized frames on every port are counted and dropped; the cluster keeps serving', async () => {
    const valid = encodeEnvelope({
      from: 'tcp://127.0.0.1:1',
      message: { type: 'Phase1a', ballot: { round: 1, proposerId: 1 }, fromSlot: 0, config: UNSTAMPED },
    });
    const frames: (Uint8Array | Uint8Array[])[] = [
      randomBytes(64),
      Buffer.from('not|a|protobuf|frame'),
      valid.subarray(0, valid.length - 3),
      new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]),
      // Each part of a multipart message is read as a frame of its own.
      [randomBytes(16), Buffer.from('also|not|protobuf')],
      Buffer.alloc(16 * 1024 * 1024 + 1, 7),
    ];
    const targets = env.cluster.processes.filter((p) => p.role !== 'directory');
    const pidsBefore = new Map(env.cluster.instances().map((i) => [i.spec.name, i.pid]));
    for (const spec of targets) {
      for (const port of spec.ports) {
        const socket = new Push({ linger: 2000, sendHighWaterMark: 100 });
        socket.connect(`tcp://127.0.0.1:${port}`);
        for (const frame of frames) await socket.send(frame);
        socket.close();
      }
    }
    await sleep(1500);
    for (const spec of targets) {
      const invalid = invalidCount(await env.cluster.scrape(spec.name));
      // Every frame above is invalid (the multipart message carries two); each port got all of them.
      expect(invalid, spec.name).toBeGreaterThanOrEqual(spec.ports.length * (frames.length + 1));
    }
    // Nobody crashed or restarted, and commands still go through.
    for (const i of env.cluster.instances()) expect(i.pid, i.spec.name).toBe(pidsBefore.get(i.spec.name));
    const summary = await env.cluster.runClient({ clients: 4, commands: 500 });
    expect(summary.acknowledged).toBe(500);
  });
});

describe('graceful stop', () => {
  it('SIGTERM: the process leaves the directory (removed set), drains and exits 0', async () => {
    const { AnnaClient, Membership } = await import('@paxos/anna-client');
    env.cluster.kill('batcher-1', 'SIGTERM');
    const deadline = performance.now() + 15_000;
    while (performance.now() < deadline && !env.exits.some((e) => e.name === 'batcher-1')) await sleep(50);
    expect(env.exits.find((e) => e.name === 'batcher-1')).toEqual({
      name: 'batcher-1',
      code: 0,
      signal: null,
    });
    const client = await AnnaClient.connect({ routing: env.cluster.annaRouting });
    try {
      const membership = new Membership(client, { keyPrefix: env.cluster.topology.keyPrefix });
      const removed = (await client.getSet(membership.removedKey('Batchers'))) ?? new Set();
      const address = `tcp://127.0.0.1:${env.cluster.spec('batcher-1').ports[0]}`;
      expect([...removed].some((m) => m.startsWith(`${address}@`))).toBe(true);
    } finally {
      await client.close();
    }
  });
});
