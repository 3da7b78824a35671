/**
 * A three-member etcd cluster on loopback for `pnpm bench:durability`: the members' flags
 * (`planEtcdCluster`, pure), finding the `etcd` binary, and `EtcdCluster`, which starts the
 * members with data directories of their own, waits until the cluster is healthy, and stops
 * them again. etcd runs with its defaults (its write-ahead log fsynced before a put is
 * acknowledged, which etcd cannot turn off in 3.4) except for its addresses and its logging.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { assertPortsFree, sleep } from './cluster.ts';

/** The only address the benchmark's etcd listens on, for clients and for its peers alike. */
export const ETCD_HOST = '127.0.0.1';

export interface EtcdPlanOptions {
  /** Member i serves clients on `clientBasePort + i`. */
  readonly clientBasePort: number;
  /** Member i talks to its peers on `peerBasePort + i`. */
  readonly peerBasePort: number;
  /** Member i keeps its data in `<dataDir>/m<i>`. */
  readonly dataDir: string;
  /** `--initial-cluster-token`: tells this cluster's members from any other's. */
  readonly token: string;
  readonly members?: number;
  /** etcd's `--log-level` (default `warn`: the benchmark's output is its table). */
  readonly logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

export interface EtcdMemberPlan {
  readonly name: string;
  readonly dataDir: string;
  readonly clientPort: number;
  readonly peerPort: number;
  /** `host:port` for a gRPC client. */
  readonly clientEndpoint: string;
  /** etcd's arguments for this member. */
  readonly args: readonly string[];
}

/** Each member of a fresh etcd cluster with its flags: every URL on 127.0.0.1. */
export function planEtcdCluster(o: EtcdPlanOptions): EtcdMemberPlan[] {
  const count = o.members ?? 3;
  if (!Number.isInteger(count) || count < 1)
    throw new RangeError(`etcd members: expected >= 1, got ${count}`);
  const url = (port: number) => `http://${ETCD_HOST}:${port}`;
  const members = Array.from({ length: count }, (_, i) => ({
    name: `m${i}`,
    clientPort: o.clientBasePort + i,
    peerPort: o.peerBasePort + i,
  }));
  const initialCluster = members.map((m) => `${m.name}=${url(m.peerPort)}`).join(',');
  return members.map((m) => {
    const dataDir = path.join(o.dataDir, m.name);
    return {
      ...m,
      dataDir,
      clientEndpoint: `${ETCD_HOST}:${m.clientPort}`,
      args: [
        '--name',
        m.name,
        '--data-dir',
        dataDir,
        '--listen-client-urls',
        url(m.clientPort),
        '--advertise-client-urls',
        url(m.clientPort),
        '--listen-peer-urls',
        url(m.peerPort),
        '--initial-advertise-peer-urls',
        url(m.peerPort),
        '--initial-cluster',
        initialCluster,
        '--initial-cluster-state',
        'new',
        '--initial-cluster-token',
        o.token,
        '--logger',
        'zap',
        '--log-outputs',
        'stderr',
        '--log-level',
        o.logLevel ?? 'warn',
      ],
    };
  });
}

/** Go's name for a Node architecture, where etcd 3.4 wants ETCD_UNSUPPORTED_ARCH to run on it. */
const UNSUPPORTED_ARCH: Readonly<Record<string, string>> = { arm64: 'arm64', arm: 'arm', s390x: 's390x' };

/**
 * The environment etcd starts with: this process's, less every `ETCD_*` variable (etcd reads
 * them as flags, so one left in a shell would change the cluster under test), plus
 * ETCD_UNSUPPORTED_ARCH where etcd 3.4 refuses the architecture without it.
 */
export function etcdEnv(env: NodeJS.ProcessEnv, arch: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (!k.startsWith('ETCD_') && v !== undefined) out[k] = v;
  const unsupported = UNSUPPORTED_ARCH[arch];
  if (unsupported !== undefined) out.ETCD_UNSUPPORTED_ARCH = unsupported;
  return out;
}

/** The server version in `etcd --version`'s output (`etcd Version: 3.4.23`), or null. */
export function parseEtcdVersion(output: string): string | null {
  return /^etcd Version:\s*(\S+)/m.exec(output)?.[1] ?? null;
}

/** The etcd binary to run (ETCD_BIN, else `etcd` on PATH) and its version, or why there is none. */
export function findEtcd(
  bin = process.env.ETCD_BIN || 'etcd',
): { bin: string; version: string } | { missing: string } {
  const run = spawnSync(bin, ['--version'], {
    encoding: 'utf8',
    timeout: 10_000,
    env: etcdEnv(process.env, process.arch),
  });
  if (run.error !== undefined) {
    const enoent = (run.error as NodeJS.ErrnoException).code === 'ENOENT';
    return {
      missing: enoent
        ? `${bin.includes('/') ? `${bin} not found` : `no ${bin} on PATH`} (Debian: apt-get install etcd-server, as scripts/setup-system.sh does; or set ETCD_BIN)`
        : `${bin} --version failed: ${run.error.message}`,
    };
  }
  const version = parseEtcdVersion(run.stdout);
  if (run.status !== 0 || version === null)
    return { missing: `${bin} --version did not name a version (exit ${run.status})` };
  return { bin, version };
}

/** The members of a running etcd cluster; `stop` ends them. */
export class EtcdCluster {
  private readonly children: ChildProcess[] = [];
  private readonly killOnExit = () => {
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };

  private constructor(
    readonly members: readonly EtcdMemberPlan[],
    private readonly logDir: string,
  ) {}

  /** The members' process ids (null for one that did not start). */
  get pids(): (number | null)[] {
    return this.children.map((c) => c.pid ?? null);
  }

  /** `host:port` of every member, for gRPC clients. */
  get endpoints(): string[] {
    return this.members.map((m) => m.clientEndpoint);
  }

  /**
   * Starts every member (each logging to `<logDir>/<name>.log`) and resolves once each answers
   * `/health` with a leader elected; if that fails, stops what it started and throws with the
   * log's last lines. The members are killed if this process exits first.
   */
  static async start(
    bin: string,
    members: readonly EtcdMemberPlan[],
    logDir: string,
    timeoutMs = 30_000,
  ): Promise<EtcdCluster> {
    await assertPortsFree(
      ETCD_HOST,
      members.flatMap((m) => [m.clientPort, m.peerPort]),
    );
    mkdirSync(logDir, { recursive: true });
    const cluster = new EtcdCluster(members, logDir);
    process.on('exit', cluster.killOnExit);
    try {
      for (const m of members) {
        mkdirSync(m.dataDir, { recursive: true, mode: 0o700 });
        const log = openSync(cluster.logFile(m), 'a');
        const child = spawn(bin, m.args, {
          env: etcdEnv(process.env, process.arch),
          stdio: ['ignore', log, log],
        });
        closeSync(log);
        child.on('error', () => {});
        cluster.children.push(child);
      }
      await cluster.waitHealthy(timeoutMs);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  private logFile(m: EtcdMemberPlan): string {
    return path.join(this.logDir, `${m.name}.log`);
  }

  private async waitHealthy(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    const healthy = new Set<string>();
    while (healthy.size < this.members.length) {
      for (const [i, m] of this.members.entries()) {
        const child = this.children[i] as ChildProcess;
        if (child.exitCode !== null || child.signalCode !== null)
          throw new Error(
            `etcd member ${m.name} exited (${child.exitCode ?? child.signalCode}): ${this.tail(m)}`,
          );
        if (!healthy.has(m.name) && (await health(m.clientPort))) healthy.add(m.name);
      }
      if (healthy.size === this.members.length) return;
      if (performance.now() > deadline)
        throw new Error(
          `etcd not healthy within ${timeoutMs} ms (${[...healthy].join(', ') || 'no member'} healthy); see ${this.logDir}`,
        );
      await sleep(100);
    }
  }

  /** The last lines of a member's log, for an error message. */
  private tail(m: EtcdMemberPlan): string {
    try {
      return readFileSync(this.logFile(m), 'utf8').trim().split('\n').slice(-3).join(' | ');
    } catch {
      return '(no log)';
    }
  }

  /**
   * SIGTERM to every member, SIGKILL to any still running after `graceMs`. A member whose peers
   * stopped first hangs in its graceful stop (it keeps calling elections), and the benchmark
   * throws the data away: so the grace is short.
   */
  async stop(graceMs = 1000): Promise<void> {
    process.off('exit', this.killOnExit);
    await Promise.all(
      this.children.map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}

/** Whether a member's `/health` says it is healthy (it has a leader and answers). */
async function health(clientPort: number): Promise<boolean> {
  try {
    const response = await fetch(`http://${ETCD_HOST}:${clientPort}/health`, {
      signal: AbortSignal.timeout(1000),
    });
    const body = (await response.json()) as { health?: string };
    return response.ok && body.health === 'true';
  } catch {
    return false;
  }
}
