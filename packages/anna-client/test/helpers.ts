import net from 'node:net';
import { afterEach } from 'vitest';
import { AnnaClient, type AnnaClientOptions } from '../src/client.ts';
import { type LocalAnna, type LocalAnnaOptions, startLocalAnna } from '../src/server.ts';
import { endpointPort } from '../src/sockets.ts';

/**
 * Per-test resources: everything started through the returned helpers is closed after the
 * test (clients first, then servers), whether it passed or not.
 */
export function useResources() {
  let closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    const list = closers.reverse();
    closers = [];
    for (const close of list) await close();
  });
  return {
    async anna(options: LocalAnnaOptions = {}): Promise<LocalAnna> {
      const anna = await startLocalAnna({ routingPort: 0, storagePort: 0, ...options });
      closers.push(() => anna.close());
      return anna;
    },
    async client(options: AnnaClientOptions): Promise<AnnaClient> {
      const client = await AnnaClient.connect({ timeoutMs: 300, retries: 4, ...options });
      closers.push(() => client.close());
      return client;
    },
    defer(close: () => Promise<void> | void): void {
      closers.push(async () => close());
    },
  };
}

/** A TCP port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export function portOf(endpoint: string): number {
  return endpointPort(endpoint) as number;
}

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function eventually(check: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array): string => new TextDecoder().decode(b);
