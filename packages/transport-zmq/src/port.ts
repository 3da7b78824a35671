/**
 * ZeroMQ closes a bound socket's listening fd asynchronously, on its I/O thread, after
 * `socket.close()` returns: binding the same port right away fails with EADDRINUSE more often
 * than not (measured: 172 of 300 immediate rebinds). A transport that says it is closed must have
 * released its ports, so a role restarted in the same process (tests, local clusters) can bind
 * them again: this waits until a plain listen on the port succeeds.
 */
import { createServer } from 'node:net';

const ENDPOINT = /^tcp:\/\/(\[[^\]]+\]|[^:]+):(\d+)$/;
const RETRY_MS = 2;

/** Resolves true once `endpoint`'s port can be listened on again, false if still taken after `timeoutMs`. */
export async function waitUntilReleased(endpoint: string, timeoutMs: number): Promise<boolean> {
  const match = ENDPOINT.exec(endpoint);
  if (!match) return true; // not a resolved tcp endpoint: nothing we can check
  const rawHost = match[1] as string;
  const host = rawHost.startsWith('[') ? rawHost.slice(1, -1) : rawHost;
  const port = Number(match[2]);
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const result = await tryListen(host, port);
    if (result !== 'in-use') return true;
    if (performance.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
}

function tryListen(host: string, port: number): Promise<'free' | 'in-use' | 'unknown'> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', (err: NodeJS.ErrnoException) => {
      resolve(err.code === 'EADDRINUSE' ? 'in-use' : 'unknown');
    });
    server.listen({ host, port, exclusive: true }, () => {
      server.close(() => resolve('free'));
    });
  });
}
