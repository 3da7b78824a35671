import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DEFAULT_TOPOLOGY, type LauncherEvent, type TopologyOptions } from '@paxos/launcher';
import { LocalCluster, type LocalClusterOptions, sleep } from '../src/cluster.ts';

export {
  type Ack,
  chosenFromLogs,
  chosenFromVotes,
  readAcceptorLogs,
  readAcks,
  tracedVotes,
  unchosenAcks,
  unloggedVotes,
} from '../src/ack-check.ts';
export { sleep };

/**
 * A cluster in a fresh temporary directory; `stop` takes it down and removes the directory.
 * `beforeUp` runs once the cluster is planned and before any process starts (e.g. to mount a
 * file system where an acceptor's log will be). `events` is everything the supervisor reported,
 * with when (performance.now()).
 */
export async function startCluster(
  basePort: number,
  overrides: Partial<TopologyOptions> = {},
  options: LocalClusterOptions = {},
  beforeUp?: (cluster: LocalCluster) => void,
  upOptions: { leaderTimeoutMs?: number } = {},
) {
  const workDir = mkdtempSync(path.join(tmpdir(), 'paxos-e2e-'));
  const exits: { name: string; code: number | null; signal: string | null; message?: string }[] = [];
  const events: (LauncherEvent & { at: number })[] = [];
  const cluster = new LocalCluster(
    {
      ...DEFAULT_TOPOLOGY,
      basePort,
      logLevel: 'warn',
      keyPrefix: `e2e${basePort}-${Date.now().toString(36)}-`,
      ...overrides,
    },
    workDir,
    (e) => {
      events.push({ ...e, at: performance.now() });
      if (e.event === 'exited')
        exits.push({
          name: e.name,
          code: e.code ?? null,
          signal: e.signal ?? null,
          ...(e.message === undefined ? {} : { message: e.message }),
        });
    },
    options,
  );
  beforeUp?.(cluster);
  await cluster.up(upOptions);
  return {
    cluster,
    workDir,
    exits,
    events,
    async stop() {
      await cluster.down();
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}

/** The value of `key` in the environment a running process of `cluster` was started with. */
export function startEnvOf(cluster: LocalCluster, name: string, key: string): string | undefined {
  const pid = cluster.instances().find((i) => i.name === name)?.pid;
  return readFileSync(`/proc/${pid}/environ`, 'utf8')
    .split('\0')
    .find((kv) => kv.startsWith(`${key}=`))
    ?.slice(key.length + 1);
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address !== null
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

/**
 * Polls `check` every `intervalMs` until it returns a value other than undefined, or fails
 * naming `what` and the last error `check` threw.
 */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  check: () => T | undefined | Promise<T | undefined>,
  intervalMs = 250,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (performance.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`,
      );
    }
    await sleep(intervalMs);
  }
}

/** A load generator's progress line as the test saw it: when it arrived, and the count so far. */
export interface ProgressSample {
  readonly at: number;
  readonly acknowledged: number;
}

export interface AckGaps {
  /** Longest stretch inside [faultStart, faultEnd] in which no command was acknowledged. */
  readonly duringFaultMs: number;
  /** From faultEnd to the first acknowledgement after it; null if none came. */
  readonly resumeMs: number | null;
  /** Longest stretch without an acknowledgement from the first one to the last sample. */
  readonly longestMs: number;
}

/**
 * Stalls in a run, from its progress samples (performance.now() times). An acknowledgement is
 * dated by the first sample whose count grew, so every figure is good to one report period.
 * The wait for the very first acknowledgement (start-up) is not a stall overall; a run that
 * stops acknowledging is stalled until its last sample.
 */
export function ackGaps(progress: readonly ProgressSample[], faultStart: number, faultEnd: number): AckGaps {
  const acked: number[] = [];
  let count = 0;
  for (const p of progress) {
    if (p.acknowledged > count) acked.push(p.at);
    count = Math.max(count, p.acknowledged);
  }
  const last = progress.at(-1)?.at ?? 0;
  const quiet: [number, number][] = acked.map((at, i) => [at, acked[i + 1] ?? Math.max(at, last)]);
  // Before the first acknowledgement counts as quiet for the fault, though not as a stall overall.
  let duringFaultMs = Math.max(0, Math.min(acked[0] ?? last, faultEnd) - faultStart);
  let longestMs = 0;
  for (const [from, to] of quiet) {
    longestMs = Math.max(longestMs, to - from);
    duringFaultMs = Math.max(duringFaultMs, Math.min(to, faultEnd) - Math.max(from, faultStart));
  }
  const resumed = acked.find((at) => at > faultEnd);
  return { duringFaultMs, resumeMs: resumed === undefined ? null : resumed - faultEnd, longestMs };
}

/** Commands acknowledged per second between two times, from the samples nearest inside them. */
export function throughput(progress: readonly ProgressSample[], from: number, to: number): number {
  const inside = progress.filter((p) => p.at >= from && p.at <= to);
  const first = inside[0];
  const last = inside.at(-1);
  if (first === undefined || last === undefined || last.at <= first.at) return 0;
  return Math.round(((last.acknowledged - first.acknowledged) * 1000) / (last.at - first.at));
}
