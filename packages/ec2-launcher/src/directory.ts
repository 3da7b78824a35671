/**
 * How `pnpm aws` reaches a cluster's directory (the Anna-compatible server `up` launched, or the
 * Anna cluster it was given): at the endpoint the `paxos:settings` tag records (the directory
 * instance's private address, port 6450), unless `--anna-routing` / ANNA_ROUTING names another.
 * Anna answers each request at an address the client gives, so the CLI must run where the
 * directory can reach it back: inside the cluster's VPC, like `pnpm aws autoscale` beside its
 * Prometheus.
 */
import { networkInterfaces } from 'node:os';
import { AnnaClient, AnnaError, Membership } from '@paxos/anna-client';

export interface DirectoryAccess {
  /** The routing endpoint, e.g. tcp://10.0.1.5:6450. */
  readonly annaRouting: string;
  /** The cluster's ANNA_KEY_PREFIX. */
  readonly keyPrefix: string;
  /** The address of this machine the directory answers at; default `localAddressFor(annaRouting)`. */
  readonly localAddress?: string;
  /** Per attempt (default 1000 ms); a request is tried 6 times. */
  readonly timeoutMs?: number;
}

/** The directory did not answer, or answered what cannot be read: one line, what to check. */
export class DirectoryUnreachableError extends Error {
  override readonly name = 'DirectoryUnreachableError';
}

/**
 * The address the directory should answer at: loopback for a directory on loopback (tests, a
 * tunnel-free local run), else this machine's first non-internal IPv4 address (its private
 * address in a VPC).
 */
export function localAddressFor(
  annaRouting: string,
  interfaces: ReturnType<typeof networkInterfaces> = networkInterfaces(),
): string {
  const host = /^(?:tcp:\/\/)?([^:,/]+)/.exec(annaRouting)?.[1] ?? '';
  if (host === 'localhost' || host.startsWith('127.')) return '127.0.0.1';
  for (const addresses of Object.values(interfaces)) {
    const found = addresses?.find((a) => a.family === 'IPv4' && !a.internal);
    if (found !== undefined) return found.address;
  }
  throw new DirectoryUnreachableError(
    `this machine has no network address the directory at ${annaRouting} could answer at: pass --local-address <this machine's private IP>`,
  );
}

/**
 * Runs `use` with the cluster's directory. A directory error (no answer, a refused request)
 * becomes a DirectoryUnreachableError naming the endpoint and what to do; `use`'s other errors
 * pass as they are.
 */
export async function withDirectory<T>(
  access: DirectoryAccess,
  use: (membership: Membership) => Promise<T>,
): Promise<T> {
  const localAddress = access.localAddress ?? localAddressFor(access.annaRouting);
  const unreachable = (err: unknown) =>
    new DirectoryUnreachableError(
      `the directory at ${access.annaRouting} did not answer (${(err as Error).message}; answers go to ${localAddress}): run \`pnpm aws\` where it can reach the directory instance's private address and be reached back (inside the cluster's VPC), or pass --anna-routing <endpoint> / --local-address <ip>`,
    );
  let client: AnnaClient;
  try {
    client = await AnnaClient.connect({
      routing: access.annaRouting,
      responseHost: localAddress,
      timeoutMs: access.timeoutMs ?? 1000,
      retries: 5,
    });
  } catch (err) {
    throw unreachable(err);
  }
  try {
    return await use(new Membership(client, { keyPrefix: access.keyPrefix }));
  } catch (err) {
    throw err instanceof AnnaError ? unreachable(err) : err;
  } finally {
    await client.close();
  }
}
