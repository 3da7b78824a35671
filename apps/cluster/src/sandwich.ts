/**
 * "How much to scale": one real role between mock neighbours (apps/mock), on this machine. The
 * input mock drives it with a bounded window; the output mock counts what comes out. The role
 * under test is the unchanged app, found by the mocks through the directory like in production.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { LatencyHistogram } from '@paxos/latency';
import { LocalLauncher, type ProcessSpec, type RoleName, roleEnv, specPorts } from '@paxos/launcher';
import { sumSamples } from '@paxos/metrics';
import { assertPortsFree, scrapeMetrics, sleep } from './cluster.ts';
import { cpuTicks, ticksToMicros } from './cpu.ts';

export type MeasuredRole = 'batcher' | 'proposer' | 'proxy-leader' | 'acceptor' | 'unbatcher';
export const MEASURED_ROLES: readonly MeasuredRole[] = [
  'batcher',
  'proposer',
  'proxy-leader',
  'acceptor',
  'unbatcher',
];

export interface SandwichOptions {
  readonly role: MeasuredRole;
  readonly batchSize: number;
  readonly warmupS: number;
  readonly measureS: number;
  readonly basePort: number;
  readonly window?: number;
  /** Cores the role under test may use (its mocks are never capped), as an instance of that size. */
  readonly cpuQuota?: number;
}

export interface SandwichResult {
  readonly role: MeasuredRole;
  readonly batchSize: number;
  /** Messages the role under test handled per second (its num_processed_messages). */
  readonly messagesPerSecond: number;
  /** Messages it sent per second (its num_outgoing_messages). */
  readonly messagesOutPerSecond: number;
  /** Client commands through the role per second. */
  readonly commandsPerSecond: number;
  /** CPU of the process under test, percent of one core. */
  readonly cpuPercent: number;
  /** Its CPU time per message it handled, and per command through it, in µs (null: none went through). */
  readonly cpuMicrosPerMessage: number | null;
  readonly cpuMicrosPerCommand: number | null;
  /**
   * Round trip of one unit of work through the role and the mocks, from the input mock: of every
   * latency recorded in the measured window (the mocks' interval histograms merged).
   */
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly seconds: number;
  /** The quota the role under test ran under, null when uncapped (none asked, or none possible here). */
  readonly cpuQuota: number | null;
  /** `LocalLauncher.cpuQuotaStatus`'s line for the quota asked for; null when none was. */
  readonly cpuQuotaInForce: string | null;
}

interface Layout {
  /** Processes in launch order: output mocks (and what the role needs, e.g. matchmakers) first, then the role, then the input mock. */
  readonly processes: { name: string; role: RoleName; env: Record<string, string> }[];
  /** The mock whose num_received_mock_messages counts output, and how many commands each is. */
  readonly output: { name: string; commandsPer: number };
}

/**
 * The mock client sends one message per command, so it saturates before a batcher does; a window
 * of this many batches keeps it near its own limit without queueing (measured: 64 batches halves
 * its rate).
 */
const CLIENT_WINDOW_BATCHES = 16;

function layout(role: MeasuredRole, batchSize: number, window: number): Layout {
  const mock = (name: string, mode: string, env: Record<string, string> = {}) => ({
    name,
    role: 'mock' as const,
    env: { MOCK_MODE: mode, MOCK_WINDOW: String(window), BATCH_SIZE: String(batchSize), ...env },
  });
  const acceptors = [0, 1, 2].map((a) =>
    mock(`mock-acceptor-${a}`, 'acceptor', { ACCEPTOR_GROUP_ID: '0', ACCEPTOR_ID: String(a) }),
  );
  switch (role) {
    case 'batcher':
      return {
        processes: [
          mock('mock-proposer', 'proposer'),
          { name: 'batcher', role: 'batcher', env: { BATCH_SIZE: String(batchSize) } },
          mock('mock-client', 'client', { MOCK_WINDOW: String(CLIENT_WINDOW_BATCHES * batchSize) }),
        ],
        output: { name: 'mock-proposer', commandsPer: 1 },
      };
    case 'proposer':
      return {
        processes: [
          ...acceptors,
          // Real matchmakers: the proposer elects through them (once, before the measurement).
          ...[0, 1, 2].map((m) => ({
            name: `matchmaker-${m}`,
            role: 'matchmaker' as const,
            env: { MATCHMAKER_ID: String(m), F: '1', ACCEPTOR_GROUPS: '1', DATA_FSYNC: 'false' },
          })),
          mock('mock-proxy-leader', 'proxy-leader-to-proposer'),
          { name: 'proposer', role: 'proposer', env: { ACCEPTOR_GROUPS: '1', F: '1' } },
          mock('mock-batcher', 'batcher'),
        ],
        output: { name: 'mock-proxy-leader', commandsPer: batchSize },
      };
    case 'proxy-leader':
      return {
        processes: [
          ...acceptors,
          mock('mock-unbatcher', 'unbatcher'),
          { name: 'proxy-leader', role: 'proxy-leader', env: {} },
          mock('mock-proposer', 'proposer-to-proxy-leader'),
        ],
        output: { name: 'mock-unbatcher', commandsPer: batchSize },
      };
    case 'acceptor':
      return {
        processes: [
          { name: 'acceptor', role: 'acceptor', env: { ACCEPTOR_GROUP_ID: '0', ACCEPTOR_ID: '0' } },
          mock('mock-proxy-leader', 'proxy-leader-to-acceptor'),
        ],
        output: { name: 'mock-proxy-leader', commandsPer: batchSize },
      };
    case 'unbatcher':
      return {
        processes: [
          { name: 'unbatcher', role: 'unbatcher', env: {} },
          mock('mock-proxy-leader', 'proxy-leader-to-unbatcher'),
        ],
        output: { name: 'mock-proxy-leader', commandsPer: 1 },
      };
  }
}

/** Runs one sandwich for warm-up plus measurement, stops everything, returns the figures. */
export async function runSandwich(o: SandwichOptions): Promise<SandwichResult> {
  const workDir = mkdtempSync(path.join(tmpdir(), `paxos-sandwich-${o.role}-`));
  const launcher = new LocalLauncher({
    logDir: path.join(workDir, 'logs'),
    pipeStdout: (name) => name.startsWith('mock-'),
  });
  const host = '127.0.0.1';
  let nextPort = o.basePort;
  const routing = nextPort++;
  const storage = nextPort++;
  const plan = layout(o.role, o.batchSize, o.window ?? 64);
  const specs: ProcessSpec[] = plan.processes.map((p) => {
    const port = nextPort++;
    const port2 = nextPort++;
    const port3 = nextPort++;
    const metricsPort = nextPort++;
    const ports: Record<string, string> = {
      MOCK_PORT: String(port),
      ACCEPTOR_PORT: String(port),
      BATCHER_PORT: String(port),
      UNBATCHER_PORT: String(port),
      MATCHMAKER_PORT: String(port),
      PROXY_LEADER_PORT: String(port),
      PROXY_LEADER_ACCEPTOR_PORT: String(port2),
      PROPOSER_PORT: String(port),
      PROPOSER_REPLY_PORT: String(port2),
      PROPOSER_ELECTION_PORT: String(port3),
    };
    return {
      name: p.name,
      role: p.role,
      env: {
        ...roleEnv({
          annaRouting: `tcp://${host}:${routing}`,
          keyPrefix: `sandwich-${o.role}-`,
          host,
          metricsPort,
          directoryPollMs: 200,
          logLevel: 'warn',
          instance: p.name,
        }),
        DATA_DIR: path.join(workDir, 'data'),
        REPORT_INTERVAL_MS: '500',
        ...ports,
        ...p.env,
      },
      ports: [port, port2, port3],
      metricsPort,
      restart: false,
      ...(p.role === o.role && o.cpuQuota !== undefined ? { cpuQuota: o.cpuQuota } : {}),
    };
  });
  const directory: ProcessSpec = {
    name: 'directory',
    role: 'directory',
    env: {},
    args: ['--host', host, '--port', String(routing), '--storage-port', String(storage)],
    ports: [routing, storage],
    metricsPort: null,
    restart: false,
  };
  await assertPortsFree(host, [directory, ...specs].flatMap(specPorts));
  // The input mock's interval histograms that arrive while measuring, merged.
  const latencies = new LatencyHistogram();
  let measuring = false;
  try {
    await launcher.launch(directory);
    await sleep(500);
    for (const spec of specs) {
      await launcher.launch(spec);
      const child = launcher.child(spec.name);
      if (child?.stdout != null) {
        createInterface({ input: child.stdout }).on('line', (text) => {
          try {
            const line = JSON.parse(text) as { histogram?: string };
            if (measuring && typeof line.histogram === 'string') latencies.add(line.histogram);
          } catch {
            // not a progress line (or not a histogram in it)
          }
        });
      }
      // A role under a small CPU quota takes seconds to start: wait until it serves metrics
      // (it registers in the directory right after), then let it register before the next looks it up.
      await waitUntilServing(host, spec.metricsPort as number, 30_000);
      await sleep(spec.role === o.role ? 1500 : 400);
    }
    await sleep(o.warmupS * 1000);
    const metricsOf = async (name: string) => {
      const spec = specs.find((s) => s.name === name) as ProcessSpec;
      const m = await scrapeMetrics(host, spec.metricsPort as number, 10_000);
      const sum = (metric: string) => sumSamples(m, metric);
      return {
        received: sum('num_received_mock_messages'),
        processed: sum('num_processed_messages'),
        outgoing: sum('num_outgoing_messages'),
      };
    };
    const underTest = specs.find((s) => s.role === o.role) as ProcessSpec;
    const pid = launcher.child(underTest.name)?.pid as number;
    const cpu0 = cpuTicks(pid);
    const out0 = await metricsOf(plan.output.name);
    const role0 = await metricsOf(underTest.name);
    const t0 = performance.now();
    measuring = true;
    await sleep(o.measureS * 1000);
    measuring = false;
    const seconds = (performance.now() - t0) / 1000;
    const out1 = await metricsOf(plan.output.name);
    const role1 = await metricsOf(underTest.name);
    const cpu1 = cpuTicks(pid);
    const quota = o.cpuQuota === undefined ? null : launcher.cpuQuotaStatus(o.cpuQuota);
    const cpuMicros = ticksToMicros(cpu1 - cpu0);
    const commands = (out1.received - out0.received) * plan.output.commandsPer;
    const perUnit = (n: number) => (n > 0 ? Math.round((cpuMicros / n) * 10) / 10 : null);
    return {
      role: o.role,
      batchSize: o.batchSize,
      cpuMicrosPerMessage: perUnit(role1.processed - role0.processed),
      cpuMicrosPerCommand: perUnit(commands),
      messagesPerSecond: Math.round((role1.processed - role0.processed) / seconds),
      messagesOutPerSecond: Math.round((role1.outgoing - role0.outgoing) / seconds),
      commandsPerSecond: Math.round(((out1.received - out0.received) * plan.output.commandsPer) / seconds),
      cpuPercent: Math.round((cpuMicros / 10_000 / seconds) * 10) / 10,
      p50Ms: latencies.percentileMs(0.5),
      p99Ms: latencies.percentileMs(0.99),
      seconds: Math.round(seconds * 100) / 100,
      cpuQuota: quota?.inForce === true ? (o.cpuQuota as number) : null,
      cpuQuotaInForce: quota?.description ?? null,
    };
  } finally {
    for (const i of launcher.processes().reverse()) await launcher.stop(i.spec.name, 3000);
    rmSync(workDir, { recursive: true, force: true });
  }
}

async function waitUntilServing(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      await scrapeMetrics(host, port, 1000);
      return;
    } catch (err) {
      if (performance.now() > deadline) throw new Error(`nothing serves metrics on ${host}:${port}: ${err}`);
      await sleep(100);
    }
  }
}
