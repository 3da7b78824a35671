import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { AnnaClient, Membership } from '@paxos/anna-client';
import { type ConfigSpec, type MatchmakerEpoch, validateConfigSpec } from '@paxos/core';
import {
  acceptorName,
  BAD_CONFIGURATION_EXIT,
  clientPorts,
  holdsDurableState,
  type LauncherEvent,
  type LocalInstance,
  LocalLauncher,
  lastLogLine,
  matchmakerName,
  type ProcessSpec,
  parseMatchmakerName,
  planAddedAcceptor,
  planAddedMatchmaker,
  planAddedProcess,
  planCluster,
  type RoleName,
  roleEnv,
  STATELESS_ROLES,
  type StatelessRole,
  specPorts,
  stateDirOf,
  type TopologyOptions,
} from '@paxos/launcher';
import { parseExposition } from '@paxos/metrics';
import {
  type MatchmakerTarget,
  writeMatchmakerEpoch,
  writeTargetConfiguration,
  writeTargetMatchmakers,
} from '@paxos/runtime';
import { PROMETHEUS_TARGETS_FILE, writeFileSdTargets } from './prometheus-targets.ts';

export interface ClusterState {
  readonly managerPid: number;
  readonly annaRouting: string;
  readonly ready: boolean;
  /** The manager's control endpoint (`cluster scale`), once it serves one. */
  readonly controlUrl: string | null;
  readonly processes: readonly {
    name: string;
    role: string;
    /** The supervisor's view: running, restarting, stopping (draining before it exits). */
    state: string;
    pid: number | null;
    ports: readonly number[];
    metricsPort: number | null;
    logFile: string;
    restarts: number;
    /** Its CPU-quota cgroup, when it has one. */
    cgroup: string | null;
  }[];
}

export interface ClientRunOptions {
  readonly clients: number;
  readonly durationS?: number;
  /** After durationS, wait up to this long for outstanding commands (DRAIN_S). */
  readonly drainS?: number;
  readonly commands?: number;
  readonly window?: number;
  /** Open loop at this many commands/s (TARGET_RATE); absent or 0 with no loadProfile: closed loop. */
  readonly targetRate?: number;
  /** Open loop following this profile (LOAD_PROFILE, e.g. `0:300,3:300,3.1:900`). */
  readonly loadProfile?: string;
  /** Open loop: commands one client may have outstanding before more are shed (MAX_OUTSTANDING). */
  readonly maxOutstanding?: number;
  readonly payloadBytes?: number;
  readonly reportMs?: number;
  readonly resendMs?: number;
  readonly acksFile?: string;
  readonly index?: number;
  readonly onLine?: (line: ClientLine) => void;
}

export type ClientLine =
  | {
      type: 'progress';
      elapsedS: number;
      acknowledged: number;
      rate: number;
      /** The interval's latency percentiles; null when nothing was acknowledged in it. */
      p50Ms: number | null;
      p99Ms: number | null;
      pending: number;
      submitted: number;
      /** Commands/s generated in the interval: the profile's rate in open loop, new sends in closed loop. */
      offered: number;
      /** Open loop: commands not sent so far because their client had maxOutstanding. */
      shed: number;
      /** The interval's latencies, an encoded `LatencyHistogram` (@paxos/latency). */
      histogram: string;
    }
  | {
      type: 'summary';
      reason: string;
      seconds: number;
      clients: number;
      submitted: number;
      acknowledged: number;
      throughput: number;
      /** Latency percentiles of the run (`LatencyHistogram`); null when nothing was acknowledged. */
      p50Ms: number | null;
      p99Ms: number | null;
      p999Ms: number | null;
      maxMs: number | null;
      mode: 'closed' | 'open';
      /** Commands generated: submitted + shed. */
      offered: number;
      shed: number;
      /** Open loop: the profile followed, in its canonical form. */
      profile?: string;
      /** Every latency of the run, an encoded `LatencyHistogram`: merge several generators' exactly. */
      histogram: string;
    };

/** Where a working directory keeps the configuration its cluster last moved to. */
const CONFIGURATION_FILE = 'configuration.json';

/** The configuration `workDir`'s cluster last moved to, or null (never reconfigured). */
export function readSavedConfiguration(workDir: string): ConfigSpec | null {
  const file = path.join(workDir, CONFIGURATION_FILE);
  if (!existsSync(file)) return null;
  const spec = JSON.parse(readFileSync(file, 'utf8')) as ConfigSpec;
  try {
    validateConfigSpec(spec);
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  return spec;
}

/** Keeps the configuration `workDir`'s cluster moved to, for its next `up` (written whole, then renamed). */
export function saveConfiguration(workDir: string, spec: ConfigSpec): void {
  const file = path.join(workDir, CONFIGURATION_FILE);
  writeFileSync(`${file}.tmp`, JSON.stringify(spec, null, 2));
  renameSync(`${file}.tmp`, file);
}

/** Where a working directory keeps the matchmaker set its cluster last moved to. */
const MATCHMAKERS_FILE = 'matchmakers.json';

/**
 * The matchmaker set a cluster moved to (`cluster replace matchmaker-N`), for its next `up`: the
 * operator's target, the set proposers use (with its epoch), and each member's ports, so that a
 * restarted member listens where the set says it is.
 */
export interface SavedMatchmakers {
  readonly target: MatchmakerTarget;
  readonly epoch: MatchmakerEpoch;
  readonly ports: readonly {
    readonly id: number;
    readonly port: number;
    readonly metricsPort: number | null;
  }[];
}

export function readSavedMatchmakers(workDir: string): SavedMatchmakers | null {
  const file = path.join(workDir, MATCHMAKERS_FILE);
  if (!existsSync(file)) return null;
  const saved = JSON.parse(readFileSync(file, 'utf8')) as SavedMatchmakers;
  if (
    !Array.isArray(saved.target?.ids) ||
    !Array.isArray(saved.epoch?.addresses) ||
    !Array.isArray(saved.ports) ||
    saved.target.ids.some((id) => !saved.ports.some((p) => p.id === id))
  )
    throw new Error(
      `${file}: expected { target: { version, ids }, epoch: { epoch, addresses }, ports: [{ id, port, metricsPort }] } with ports for every target id`,
    );
  return saved;
}

export function saveMatchmakers(workDir: string, saved: SavedMatchmakers): void {
  const file = path.join(workDir, MATCHMAKERS_FILE);
  writeFileSync(`${file}.tmp`, JSON.stringify(saved, null, 2));
  renameSync(`${file}.tmp`, file);
}

/**
 * The specs `up` starts, as first starts in this cluster's data directory. Where an acceptor log
 * or a matchmaker state of this cluster (same key prefix) is already there, the cluster was
 * brought up on this directory before and every one of its acceptors and matchmakers has run:
 * each starts as a restart would (`restartEnv`: ACCEPTOR_LOG_STATE or MATCHMAKER_STATE=existing),
 * so one whose state went missing meanwhile is refused rather than started empty (or from
 * genesis). Otherwise every one starts as planned (`new`).
 */
export function firstStarts(specs: readonly ProcessSpec[]): ProcessSpec[] {
  const ranBefore = specs.some((spec) => {
    const dir = stateDirOf(spec.env);
    return dir !== null && holdsDurableState(dir);
  });
  return specs.map((spec) =>
    ranBefore && spec.restartEnv !== undefined && stateDirOf(spec.env) !== null
      ? { ...spec, env: { ...spec.env, ...spec.restartEnv } }
      : spec,
  );
}

export interface LocalClusterOptions {
  /**
   * A command every process runs under (see `LocalLauncherOptions.commandPrefix`), e.g.
   * `['ip', 'netns', 'exec', ns]` with `topology.host` an address inside that namespace. The
   * free-port check runs under it too, since the ports that matter are the namespace's.
   */
  readonly commandPrefix?: readonly string[];
  /**
   * This process's address as the cluster's processes reach it, where the directory sends its
   * answers to this process's reads. Default 127.0.0.1, which is right unless the cluster runs in
   * another network namespace (then: this side's end of the veth pair).
   */
  readonly localAddress?: string;
  /**
   * Cores each role process may use (a cgroup each; see `LocalLauncher`), so that one machine
   * stands in for many small instances. The directory and load generators are never capped.
   */
  readonly cpuQuota?: number;
  /** The roles `cpuQuota` applies to (default: every role process), e.g. only the scaled ones. */
  readonly cpuQuotaRoles?: readonly RoleName[];
}

/**
 * A local cluster: the directory and every role as its own supervised process on loopback.
 * Used by `pnpm start`, the `cluster` CLI, the end-to-end tests and `pnpm bench:e2e`.
 */
export class LocalCluster {
  readonly launcher: LocalLauncher;
  /** The built-in directory this cluster starts, or null when it uses an external one. */
  readonly directory: ProcessSpec | null;
  readonly annaRouting: string;
  /** The processes `up` starts; load generators' ports come after theirs. */
  private readonly initial: readonly ProcessSpec[];
  /** Every role process this cluster has had, those added by `scale` included. */
  private readonly specs: ProcessSpec[];
  private readonly stateFile: string;
  private ready = false;
  /** A process that refused its configuration (exit 2) while the cluster started: why `up` fails. */
  private refused: RefusedConfigurationError | null = null;
  private clientCount = 0;
  private controlUrl: string | null = null;
  private autoscalerScraped = false;
  /** Where added processes' ports and metrics ports start: past the load generators' (see clientPorts). */
  private nextAddedPort: number;
  private nextAddedMetricsPort: number;
  /** A queue, so that concurrent `scale` calls (a person and the autoscaler) see each other's result. */
  private scaling: Promise<unknown> = Promise.resolve();
  /** The acceptor groups this directory's cluster last moved to (`cluster reconfigure`), or null. */
  private readonly saved: ConfigSpec | null;
  private readonly savedMatchmakers: SavedMatchmakers | null;
  /** Processes (by pid) whose /readyz has answered 200 once. */
  private readonly readyPids = new Set<number>();

  constructor(
    readonly topology: TopologyOptions,
    readonly workDir: string,
    onEvent?: (event: LauncherEvent) => void,
    readonly options: LocalClusterOptions = {},
  ) {
    mkdirSync(workDir, { recursive: true });
    const plan = planCluster({ ...topology, dataDir: path.join(workDir, 'data') });
    this.directory = plan.directory;
    this.nextAddedPort =
      Math.max(...(plan.directory?.ports ?? []), ...plan.processes.flatMap((p) => p.ports)) + 50;
    this.nextAddedMetricsPort = Math.max(...plan.processes.map((p) => p.metricsPort ?? 0)) + 50;
    this.annaRouting = plan.annaRouting;
    this.saved = readSavedConfiguration(workDir);
    this.savedMatchmakers = readSavedMatchmakers(workDir);
    const capped = this.withSavedMatchmakers(this.withSavedAcceptors(plan.processes)).map((p) =>
      this.withQuota(p),
    );
    this.initial = capped;
    this.specs = [...capped];
    this.stateFile = path.join(workDir, 'state.json');
    this.launcher = new LocalLauncher({
      logDir: path.join(workDir, 'logs'),
      host: topology.host,
      ...(options.commandPrefix === undefined ? {} : { commandPrefix: options.commandPrefix }),
      onEvent: (e) => {
        if (!this.ready && e.event === 'exited' && e.code === BAD_CONFIGURATION_EXIT)
          this.refused ??= new RefusedConfigurationError(e.name, e.message ?? 'no message in its log');
        onEvent?.(e);
        this.writeState();
      },
      pipeStdout: (name) => name.startsWith('client-'),
      // A capped process gets its quota once it serves: it stands for a small instance, not a slow boot.
      capOnceReady: (spec) => this.readyOrGone(spec),
    });
  }

  /**
   * Starts everything in the seed's launch order and waits until a leader is elected. If that
   * fails, whatever it started is stopped again before the error is thrown.
   */
  async up(options: { leaderTimeoutMs?: number } = {}): Promise<void> {
    await assertPortsFree(
      this.topology.host,
      [...(this.directory === null ? [] : [this.directory]), ...this.processes].flatMap(specPorts),
      this.options.commandPrefix,
    );
    try {
      // An external directory (`--directory`) is only checked: it must answer before anything starts.
      if (this.directory !== null) await this.launcher.launch(this.directory);
      await this.waitForDirectory();
      // Brought up again after a reconfiguration: proposers start from that configuration.
      if (this.saved !== null) await this.writeTarget(this.saved);
      if (this.savedMatchmakers !== null) await this.writeMatchmakers(this.savedMatchmakers);
      for (const spec of firstStarts(this.initial)) await this.launcher.launch(spec);
      await this.waitForLeader(options.leaderTimeoutMs ?? 20_000);
      this.throwIfRefused();
    } catch (err) {
      await this.down();
      throw err;
    }
    this.ready = true;
    this.writeState();
  }

  /**
   * The planned processes with the acceptors of the saved configuration instead of the ones the
   * cluster formed with (those it dropped are retired): acceptors it added get the next added
   * ports, in launch order right after the planned ones.
   */
  private withSavedAcceptors(planned: readonly ProcessSpec[]): ProcessSpec[] {
    const saved = this.saved;
    if (saved === null) return [...planned];
    const names = saved.groups.flatMap((g) => g.acceptorIds.map((a) => acceptorName(g.groupId, a)));
    const kept = planned.filter((p) => p.role !== 'acceptor' || names.includes(p.name));
    const added = saved.groups.flatMap((g) =>
      g.acceptorIds
        .filter((a) => !planned.some((p) => p.name === acceptorName(g.groupId, a)))
        .map((a) =>
          planAddedAcceptor(
            { ...this.topology, dataDir: path.join(this.workDir, 'data') },
            this.annaRouting,
            g.groupId,
            a,
            () => this.nextAddedPort++,
            () => this.nextAddedMetricsPort++,
          ),
        ),
    );
    const afterAcceptors = kept.filter((p) => p.role === 'acceptor').length;
    return [...kept.slice(0, afterAcceptors), ...added, ...kept.slice(afterAcceptors)];
  }

  /**
   * The planned processes with the matchmakers of the saved set instead of the first 2f+1 (a
   * replaced one stays stopped; its state is kept), each on the ports it had.
   */
  private withSavedMatchmakers(planned: readonly ProcessSpec[]): ProcessSpec[] {
    const saved = this.savedMatchmakers;
    if (saved === null) return [...planned];
    const kept = planned.filter((p) => {
      const id = parseMatchmakerName(p.name);
      return id === null || saved.target.ids.includes(id);
    });
    const added = saved.target.ids
      .filter((id) => !planned.some((p) => p.name === matchmakerName(id)))
      .map((id) => {
        const ports = saved.ports.find((p) => p.id === id);
        return planAddedMatchmaker(
          { ...this.topology, dataDir: path.join(this.workDir, 'data') },
          this.annaRouting,
          id,
          () => ports?.port ?? this.nextAddedPort++,
          () => ports?.metricsPort ?? this.nextAddedMetricsPort++,
        );
      });
    const at = kept.filter((p) => p.role === 'acceptor' || p.role === 'matchmaker').length;
    return [...kept.slice(0, at), ...added, ...kept.slice(at)];
  }

  /** Writes the saved matchmaker set to this cluster's (new) directory: the target and the set in use. */
  private async writeMatchmakers(saved: SavedMatchmakers): Promise<void> {
    const client = await this.directoryClient(500, 10);
    try {
      const membership = new Membership(client, { keyPrefix: this.topology.keyPrefix });
      await writeTargetMatchmakers(membership, saved.target);
      await writeMatchmakerEpoch(membership, saved.epoch);
    } finally {
      await client.close();
    }
  }

  /** Writes the target configuration to this cluster's directory. */
  async writeTarget(spec: ConfigSpec): Promise<void> {
    const client = await this.directoryClient(500, 10);
    try {
      await writeTargetConfiguration(new Membership(client, { keyPrefix: this.topology.keyPrefix }), spec);
    } finally {
      await client.close();
    }
  }

  /** Resolves once `spec`'s process answers /readyz, or has stopped, or after a minute. */
  private async readyOrGone(spec: ProcessSpec): Promise<void> {
    const deadline = performance.now() + 60_000;
    while (performance.now() < deadline && this.launcher.child(spec.name)?.exitCode === null) {
      if (spec.metricsPort === null || (await probeReady(this.topology.host, spec.metricsPort, 200))) return;
      await sleep(50);
    }
  }

  /** `spec` with the cluster's CPU quota, where its role gets one. */
  private withQuota(spec: ProcessSpec): ProcessSpec {
    const { cpuQuota, cpuQuotaRoles } = this.options;
    if (cpuQuota === undefined || (cpuQuotaRoles !== undefined && !cpuQuotaRoles.includes(spec.role)))
      return spec;
    return { ...spec, cpuQuota };
  }

  /** What `options.cpuQuota` amounts to here (one line), or null when none was asked for. */
  cpuQuotaInForce(): string | null {
    const cores = this.options.cpuQuota;
    return cores === undefined ? null : this.launcher.cpuQuotaStatus(cores).description;
  }

  async down(): Promise<void> {
    const names = this.launcher
      .processes()
      .map((i) => i.spec.name)
      .reverse();
    // Load generators and batchers first, the directory last.
    await Promise.all(names.filter((n) => n !== 'directory').map((n) => this.launcher.stop(n)));
    await this.launcher.stop('directory');
    rmSync(this.stateFile, { force: true });
  }

  /** Every role process this cluster has started (added ones included, stopped ones too). */
  get processes(): readonly ProcessSpec[] {
    return this.specs;
  }

  /** Where `cluster scale` and the status page reach the manager; written to the state file. */
  setControlUrl(url: string): void {
    this.controlUrl = url;
    this.writeState();
  }

  /**
   * The autoscaler runs beside the cluster and its metrics are at the control server's
   * /metrics: Prometheus' targets list it (role `autoscaler`), so its alerts can fire.
   */
  scrapeAutoscaler(): void {
    this.autoscalerScraped = true;
    this.writeState();
  }

  /** The running instances of `role` that count: neither stopping nor stopped. */
  members(role: StatelessRole): LocalInstance[] {
    return this.launcher
      .processes()
      .filter((i) => i.role === role && (i.state === 'running' || i.state === 'restarting'));
  }

  /**
   * Resizes a stateless role to `count` instances while the cluster serves: new ones register in
   * the directory and peers pick them up; the highest-numbered ones go first when scaling in, each
   * leaving the directory and draining before it exits. Resolves once new processes are spawned
   * and removed ones are told to stop; `exited` once those have exited.
   */
  scale(role: StatelessRole, count: number): Promise<ScaleResult> {
    if (!STATELESS_ROLES.includes(role)) {
      return Promise.reject(
        new Error(
          `cannot scale ${role}: expected one of ${STATELESS_ROLES.join(', ')} (proposers stay at 2; acceptor groups change with 'cluster reconfigure --groups N')`,
        ),
      );
    }
    if (!Number.isInteger(count) || count < 1) {
      return Promise.reject(new Error(`cannot scale ${role} to ${count}: expected an integer >= 1`));
    }
    return this.exclusive(() => this.resize(role, count));
  }

  private async resize(role: StatelessRole, count: number): Promise<ScaleResult> {
    const members = this.members(role).sort((a, b) => instanceIndex(a.name) - instanceIndex(b.name));
    const added: string[] = [];
    for (let n = members.length; n < count; n++) added.push((await this.addProcess(role)).name);
    const removed = members.slice(count).map((i) => i.name);
    // Each one is `stopping` from here on, so the next resize already counts it out.
    // The state file lists what the launcher runs: written again once they are gone from it.
    const exited = Promise.all(removed.map((name) => this.launcher.stop(name))).then(() => this.writeState());
    return { added, removed, exited };
  }

  private async addProcess(role: StatelessRole): Promise<ProcessSpec> {
    const used = new Set(this.specs.filter((p) => p.role === role).map((p) => instanceIndex(p.name)));
    let index = 0;
    while (used.has(index)) index++;
    return this.launchAdded((topology, nextPort, nextMetricsPort) =>
      planAddedProcess(topology, this.annaRouting, role, index, nextPort, nextMetricsPort),
    );
  }

  /**
   * Starts acceptor `acceptorId` of group `groupId` with a new empty log (a new group's, or the
   * replacement of another acceptor under a new id) while the cluster serves.
   */
  addAcceptor(groupId: number, acceptorId: number): Promise<ProcessSpec> {
    return this.launchAdded((topology, nextPort, nextMetricsPort) =>
      planAddedAcceptor(topology, this.annaRouting, groupId, acceptorId, nextPort, nextMetricsPort),
    );
  }

  /** Starts matchmaker `matchmakerId` with no state, to replace another while the cluster serves. */
  addMatchmaker(matchmakerId: number): Promise<ProcessSpec> {
    return this.launchAdded((topology, nextPort, nextMetricsPort) =>
      planAddedMatchmaker(topology, this.annaRouting, matchmakerId, nextPort, nextMetricsPort),
    );
  }

  /** Plans a process on the next free added ports and launches it. */
  private async launchAdded(
    plan: (topology: TopologyOptions, nextPort: () => number, nextMetricsPort: () => number) => ProcessSpec,
  ): Promise<ProcessSpec> {
    const ports: number[] = [];
    const spec = plan(
      { ...this.topology, dataDir: path.join(this.workDir, 'data') },
      () => {
        const port = this.nextAddedPort++;
        ports.push(port);
        return port;
      },
      () => {
        const port = this.nextAddedMetricsPort++;
        ports.push(port);
        return port;
      },
    );
    // A port something else took since (a load generator, another program) is skipped for good.
    const inUse = await firstPortInUse(this.topology.host, ports, this.options.commandPrefix);
    if (inUse !== null) return this.launchAdded(plan);
    const capped = this.withQuota(spec);
    this.specs.push(capped);
    await this.launcher.launch(capped);
    return capped;
  }

  /**
   * Runs `operation` after every scale or reconfiguration asked before it has finished, so that
   * concurrent requests (a person and the autoscaler) see each other's result.
   */
  exclusive<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.scaling.then(operation);
    this.scaling = run.catch(() => {});
    return run;
  }

  /** Stops a process for good (it is not restarted): SIGTERM, then SIGKILL after the grace time. */
  async stop(name: string): Promise<void> {
    await this.launcher.stop(name);
    this.writeState();
  }

  /**
   * Each process with its phase: `starting` until its /readyz answers 200, `ready`, `draining`
   * once told to stop, `restarting` while the supervisor brings it back.
   */
  async phases(): Promise<InstancePhaseView[]> {
    return Promise.all(
      this.launcher.processes().map(async (i) => ({
        name: i.name,
        role: i.role,
        pid: i.pid,
        restarts: i.restarts,
        phase:
          i.state === 'stopping' ? 'draining' : i.state !== 'running' ? i.state : await this.readiness(i),
      })),
    );
  }

  /**
   * Ready once its /readyz said so, for as long as that process lives: a busy process (one at
   * its CPU quota) may answer a probe late, which does not make it start again.
   */
  private async readiness(i: LocalInstance): Promise<'starting' | 'ready'> {
    if (i.spec.metricsPort === null || (i.pid !== null && this.readyPids.has(i.pid))) return 'ready';
    if (!(await probeReady(this.topology.host, i.spec.metricsPort))) return 'starting';
    if (i.pid !== null) this.readyPids.add(i.pid);
    return 'ready';
  }

  /** SIGKILL by default: the supervisor brings the process back (acceptors recover from their log). */
  kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): void {
    this.launcher.kill(name, signal);
  }

  instances(): LocalInstance[] {
    return this.launcher.processes();
  }

  spec(name: string): ProcessSpec {
    const spec = this.specs.find((p) => p.name === name);
    if (spec === undefined) throw new Error(`no process named ${name}`);
    return spec;
  }

  /** Name of the proposer whose `is_leader` gauge reads 1, or null. */
  async leader(): Promise<string | null> {
    for (const spec of this.specs.filter((p) => p.role === 'proposer')) {
      const metrics = await this.scrape(spec.name).catch(() => null);
      if (metrics !== null && isLeader(metrics)) return spec.name;
    }
    return null;
  }

  async waitForLeader(timeoutMs: number): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      this.throwIfRefused();
      const leader = await this.leader();
      if (leader !== null) return leader;
      await sleep(100);
    }
    throw new Error(
      `no leader elected within ${timeoutMs} ms; see the logs in ${path.join(this.workDir, 'logs')}`,
    );
  }

  /** While starting: a process refused its configuration, so the cluster cannot form; fail now, with its reason. */
  private throwIfRefused(): void {
    if (this.refused !== null) throw this.refused;
  }

  async scrape(name: string): Promise<Metrics> {
    return scrapeMetrics(this.topology.host, this.spec(name).metricsPort as number, 1000);
  }

  /** Runs a load generator process against the cluster and resolves with its summary line. */
  async runClient(options: ClientRunOptions): Promise<Extract<ClientLine, { type: 'summary' }>> {
    const index = options.index ?? this.clientCount++;
    const ports = clientPorts(this.initial, index);
    const name = `client-${index}`;
    const spec: ProcessSpec = {
      name,
      role: 'client',
      env: {
        ...roleEnv({
          annaRouting: this.annaRouting,
          keyPrefix: this.topology.keyPrefix,
          host: this.topology.host,
          metricsPort: ports.metricsPort,
          directoryPollMs: this.topology.directoryPollMs,
          logLevel: this.topology.logLevel,
          instance: name,
        }),
        CLIENT_PORT: String(ports.port),
        NUM_CLIENTS: String(options.clients),
        DURATION_S: String(options.durationS ?? 0),
        DRAIN_S: String(options.drainS ?? 0),
        COMMANDS: String(options.commands ?? 0),
        WINDOW: String(options.window ?? 1),
        TARGET_RATE: String(options.targetRate ?? 0),
        LOAD_PROFILE: options.loadProfile ?? '',
        MAX_OUTSTANDING: String(options.maxOutstanding ?? 1000),
        PAYLOAD_BYTES: String(options.payloadBytes ?? 16),
        REPORT_INTERVAL_MS: String(options.reportMs ?? 1000),
        CLIENT_RESEND_MS: String(options.resendMs ?? 1000),
        ACKS_FILE: options.acksFile ?? '',
      },
      ports: [ports.port],
      metricsPort: ports.metricsPort,
      restart: false,
    };
    await this.launcher.launch(spec);
    const child = this.launcher.child(name);
    if (child?.stdout == null) throw new Error('load generator has no stdout');
    let summary: Extract<ClientLine, { type: 'summary' }> | null = null;
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (text) => {
      let line: ClientLine;
      try {
        line = JSON.parse(text) as ClientLine;
      } catch {
        return;
      }
      if (line.type === 'summary') summary = line;
      options.onLine?.(line);
    });
    await new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await this.launcher.stop(name);
    if (summary === null) {
      const log = path.join(this.workDir, 'logs', `${name}.log`);
      const last = lastLogLine(log);
      throw new Error(
        `load generator exited without a summary; see ${log}${last === null ? '' : ` (last line: ${last})`}`,
      );
    }
    return summary;
  }

  /** Stops a running load generator early (it prints its summary). */
  stopClient(index: number): void {
    this.launcher.kill(`client-${index}`, 'SIGINT');
  }

  static readState(workDir: string): ClusterState | null {
    const file = path.join(workDir, 'state.json');
    if (!existsSync(file)) return null;
    return JSON.parse(readFileSync(file, 'utf8')) as ClusterState;
  }

  private writeState(): void {
    const state: ClusterState = {
      managerPid: process.pid,
      annaRouting: this.annaRouting,
      ready: this.ready,
      controlUrl: this.controlUrl,
      processes: this.launcher.processes().map((i) => ({
        name: i.spec.name,
        role: i.spec.role,
        state: i.state,
        pid: i.pid,
        ports: i.spec.ports,
        metricsPort: i.spec.metricsPort,
        logFile: i.logFile,
        restarts: i.restarts,
        cgroup: this.launcher.cgroupOf(i.spec.name),
      })),
    };
    // Written whole then renamed, so a reader never sees half a file.
    writeFileSync(`${this.stateFile}.tmp`, JSON.stringify(state, null, 2));
    renameSync(`${this.stateFile}.tmp`, this.stateFile);
    // Prometheus file_sd: the processes running now (load generators too) that serve metrics.
    const control = this.controlUrl === null ? null : new URL(this.controlUrl);
    writeFileSdTargets(
      path.join(this.workDir, PROMETHEUS_TARGETS_FILE),
      [
        ...this.launcher
          .processes()
          .filter((i) => i.state === 'running')
          .map((i) => i.spec),
        ...(this.autoscalerScraped && control !== null
          ? [{ name: 'autoscaler', role: 'autoscaler', metricsPort: Number(control.port) }]
          : []),
      ],
      this.topology.host,
    );
  }

  /** A client of this cluster's directory (close it when done). */
  directoryClient(timeoutMs: number, retries: number): Promise<AnnaClient> {
    return AnnaClient.connect({
      routing: this.annaRouting,
      timeoutMs,
      retries,
      ...(this.options.localAddress === undefined ? {} : { responseHost: this.options.localAddress }),
    });
  }

  /** Resolves once the directory answers a read (it retries for about 9 s before it fails). */
  async waitForDirectory(): Promise<void> {
    const client = await this.directoryClient(300, 30);
    try {
      await client.getSet(`${this.topology.keyPrefix}probe`);
    } catch (err) {
      if (this.directory !== null) throw err;
      throw new Error(
        `the directory at ${this.annaRouting} (--directory) did not answer: ${(err as Error).message}; expected a running Anna (or Anna-compatible) routing endpoint reachable from this host`,
      );
    } finally {
      await client.close();
    }
  }
}

type Metrics = ReturnType<typeof parseExposition>;

/** `up` failed because a process exited with code 2 (a bad configuration; it is not restarted). */
export class RefusedConfigurationError extends Error {
  constructor(
    readonly process: string,
    readonly reason: string,
  ) {
    super(`${process} exited with code 2 (bad configuration) and is not restarted: ${reason}`);
  }
}

/** The number in a process name such as `batcher-3`. */
function instanceIndex(name: string): number {
  return Number(name.slice(name.lastIndexOf('-') + 1));
}

/** A process's `/metrics`, parsed. */
export async function scrapeMetrics(host: string, port: number, timeoutMs: number): Promise<Metrics> {
  const response = await fetch(`http://${host}:${port}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
  return parseExposition(await response.text());
}

export interface ScaleResult {
  readonly added: string[];
  readonly removed: string[];
  /** Resolves once every removed process has drained and exited (or was killed after the grace). */
  readonly exited: Promise<void>;
}

export interface InstancePhaseView {
  readonly name: string;
  readonly role: string;
  readonly pid: number | null;
  readonly restarts: number;
  readonly phase: 'starting' | 'ready' | 'draining' | 'restarting' | 'stopped';
}

/** Whether the process's /readyz answers 200 (registered and serving). */
export async function probeReady(host: string, metricsPort: number, timeoutMs = 500): Promise<boolean> {
  try {
    const response = await fetch(`http://${host}:${metricsPort}/readyz`, {
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

/** Whether a proposer's metrics say it leads (`is_leader` reads 1). */
export function isLeader(metrics: Metrics): boolean {
  return metrics.get('is_leader')?.some((s) => s.value === 1) ?? false;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Fails with one line naming the first port in use, before anything is started. With a
 * `commandPrefix` the check runs in a child under it, which sees the ports where the cluster
 * will bind them (in a network namespace, `host` may not even exist out here).
 */
export async function assertPortsFree(
  host: string,
  ports: readonly number[],
  commandPrefix: readonly string[] = [],
): Promise<void> {
  const inUse = await firstPortInUse(host, ports, commandPrefix);
  if (inUse !== null) {
    throw new Error(`port ${host}:${inUse} is in use (is another cluster running? try --base-port)`);
  }
}

/** The first of `ports` something listens on, checked where the cluster binds (under `commandPrefix`). */
async function firstPortInUse(
  host: string,
  ports: readonly number[],
  commandPrefix: readonly string[] = [],
): Promise<number | null> {
  if (commandPrefix.length > 0) return firstPortInUseUnder(commandPrefix, host, ports);
  for (const port of ports) {
    const free = await new Promise<boolean>((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(false));
      server.listen(port, host, () => server.close(() => resolve(true)));
    });
    if (!free) return port;
  }
  return null;
}

/** Exit status of the check under a prefix when it found a port in use (the port is its stdout). */
const PORT_IN_USE_STATUS = 3;

// firstPortInUse again, as a script for a child under the prefix: it cannot import this module.
const PORT_CHECK_SCRIPT = `
const net = require('node:net');
const [host, ...ports] = process.argv.slice(1);
(async () => {
  for (const port of ports) {
    const free = await new Promise((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(false));
      server.listen(Number(port), host, () => server.close(() => resolve(true)));
    });
    if (!free) {
      process.stdout.write(port);
      process.exit(${PORT_IN_USE_STATUS});
    }
  }
})();
`;

async function firstPortInUseUnder(
  commandPrefix: readonly string[],
  host: string,
  ports: readonly number[],
): Promise<number | null> {
  const [command = '', ...prefixArgs] = commandPrefix;
  const args = [...prefixArgs, process.execPath, '-e', PORT_CHECK_SCRIPT, host, ...ports.map(String)];
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err === null) resolve(null);
      else if (err.code === PORT_IN_USE_STATUS) resolve(Number(stdout));
      else
        reject(
          new Error(
            `could not check the ports under ${commandPrefix.join(' ')}: ${stderr.trim().split('\n')[0] || err.message}`,
          ),
        );
    });
  });
}
