import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CpuCgroups, formatCores, MIN_CPU_QUOTA } from './cpu-quota.ts';
import type { Instance, Launcher } from './launcher.ts';
import { type ProcessSpec, type RoleName, roleEntryPoint } from './topology.ts';

/** The exit code of a process that refused its configuration (it is not restarted). */
export const BAD_CONFIGURATION_EXIT = 2;

/**
 * How long a role process drains on SIGTERM, from its environment: DRAIN_TIMEOUT_MS, or for 0 or
 * unset four directory polls and at least 3 s. The runtime's rule (`resolveDrainTimeoutMs`; a
 * test checks they agree), repeated here because the launcher does not load the runtime.
 */
export function drainTimeoutOf(env: Readonly<Record<string, string | undefined>>): number {
  const drain = Number(env.DRAIN_TIMEOUT_MS ?? 0);
  const poll = Number(env.DIRECTORY_POLL_MS ?? 3000);
  return drain > 0 ? drain : Math.max(3000, 4 * (Number.isFinite(poll) ? poll : 3000));
}

/** After its drain a process closes its sockets (ZeroMQ lingers up to 500 ms) and the directory client. */
const STOP_MARGIN_MS = 2000;

/** What `LocalLauncher` reports about its processes (see `LocalLauncherOptions.onEvent`). */
export interface LauncherEvent {
  name: string;
  event: 'started' | 'exited' | 'restarting' | 'crash-loop' | 'killed-after-timeout';
  pid: number | null;
  code?: number | null;
  signal?: string | null;
  /** 'restarting': ms until the next start. */
  delayMs?: number;
  /** 'restarting': exits in a row, this one included, each within `QUICK_EXIT_MS` of its start. */
  quickExits?: number;
  /**
   * 'exited' with code 2 (not restarted): why it refused to start, the last line it wrote to its
   * log; 'crash-loop': the last line it wrote before its latest exit.
   */
  message?: string;
  /**
   * 'exited' and 'restarting' of a process whose crash loop was already reported ('crash-loop',
   * once per loop): a watcher that printed that need not print each of these (`isRepeat`).
   */
  repeat?: boolean;
}

/** Quick exits in a row that make a crash loop: reported once ('crash-loop'), then retried quietly. */
export const CRASH_LOOP_EXITS = 3;

/** Whether a watcher printing events one line each should skip `e`: a start, or a repeat of a reported crash loop. */
export function isQuietEvent(e: LauncherEvent): boolean {
  return e.event === 'started' || e.repeat === true;
}

/** A process that exits sooner than this after its start is restarted after a longer wait each time. */
export const QUICK_EXIT_MS = 10_000;
/** The longest wait between restarts of a process that keeps exiting. */
export const MAX_RESTART_DELAY_MS = 5000;

/** A supervised child process. */
export interface LocalInstance extends Instance {
  readonly spec: ProcessSpec;
  readonly pid: number | null;
  /** `stopping`: told to stop, draining its work before it exits. */
  readonly state: 'running' | 'restarting' | 'stopping' | 'stopped';
  readonly restarts: number;
  readonly logFile: string;
}

// This file runs from packages/launcher/src (tests) or is bundled into apps/*/dist: both are two levels below the root.
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Built entry point of a role, absolute. */
export function roleBinary(role: RoleName): string {
  return path.join(REPO_ROOT, roleEntryPoint(role));
}

export interface LocalLauncherOptions {
  readonly logDir: string;
  /** The address processes bind (default 127.0.0.1). */
  readonly host?: string;
  /**
   * Wait before restarting a process that died; doubles with each quick exit in a row (one within
   * `QUICK_EXIT_MS` of its start), up to `MAX_RESTART_DELAY_MS`.
   */
  readonly restartDelayMs?: number;
  /**
   * 'killed-after-timeout': `stop` gave up waiting for a graceful exit and sent SIGKILL (what it
   * had not drained is lost); its 'exited' follows. 'restarting' says when the next start is due
   * (`delayMs`) and how many quick exits in a row led to that wait (`quickExits`, 0 after a
   * process that had run for a while).
   */
  readonly onEvent?: (event: LauncherEvent) => void;
  /** Pipe a process's stdout to the caller instead of its log file. */
  readonly pipeStdout?: (name: string) => boolean;
  /**
   * A command every child runs under, e.g. `['ip', 'netns', 'exec', 'paxos-1']` to put the
   * cluster in a network namespace. It must exec its last arguments (not fork them), so that the
   * supervised pid is the role's own and signals (SIGKILL, SIGSTOP) reach the role.
   */
  readonly commandPrefix?: readonly string[];
  /**
   * When a capped process's quota begins: at spawn (default), or once this resolves (e.g. the
   * process answers /readyz). Node's start-up costs a few hundred ms of CPU, which at a small
   * quota would take seconds: an emulated small instance should serve less, not boot slower.
   */
  readonly capOnceReady?: (spec: ProcessSpec) => Promise<void>;
  /** The script a role runs (default: its built app, `roleBinary`); tests run stand-ins. */
  readonly roleBinary?: (role: RoleName) => string;
}

interface Tracked {
  spec: ProcessSpec;
  child: ChildProcess | null;
  state: LocalInstance['state'];
  restarts: number;
  logFile: string;
  startedAt: number;
  delayMs: number;
  /** Exits in a row within QUICK_EXIT_MS of the start. */
  quickExits: number;
  /** This crash loop ('crash-loop' at CRASH_LOOP_EXITS quick exits) was reported. */
  loopReported: boolean;
  timer: NodeJS.Timeout | null;
  exited: Promise<void>;
  /** The cgroup holding the running child, while it has one. */
  cgroup: string | null;
}

/**
 * Child processes on this machine, each supervised: a process that dies unexpectedly comes back,
 * unless it exited with code 2 (a bad configuration), which would only fail again: its 'exited'
 * event carries the line it wrote last, its reason. A restarted process gets the spec's
 * `restartEnv` over its `env`.
 *
 * A spec with a `cpuQuota` runs in a cgroup of its own (`<own cgroup>/paxos-<pid>-<n>/<name>`),
 * which lives as long as the process: a restarted process gets it again, and the last exit
 * removes the parent too. Where no cgroup can be made (not root, no cpu controller) such
 * processes run uncapped and `cpuQuotaStatus` says why.
 */
export class LocalLauncher implements Launcher {
  private readonly tracked = new Map<string, Tracked>();
  private readonly baseDelayMs: number;
  /** Opened when first needed: most launchers never cap anything. */
  private cgroups: CpuCgroups | { reason: string } | null = null;
  private cpuQuotaFailure: string | null = null;

  constructor(private readonly options: LocalLauncherOptions) {
    mkdirSync(options.logDir, { recursive: true });
    this.baseDelayMs = options.restartDelayMs ?? 200;
  }

  async launch(spec: ProcessSpec): Promise<LocalInstance> {
    const binary = this.binaryOf(spec.role);
    if (!existsSync(binary)) {
      throw new Error(`${binary} does not exist: build the apps first (pnpm build)`);
    }
    if (this.tracked.has(spec.name)) throw new Error(`a process named ${spec.name} is already running`);
    if (spec.cpuQuota !== undefined && !(spec.cpuQuota >= MIN_CPU_QUOTA)) {
      throw new Error(`cpuQuota of ${spec.name} must be >= ${MIN_CPU_QUOTA} cores, got ${spec.cpuQuota}`);
    }
    const t: Tracked = {
      spec,
      child: null,
      state: 'running',
      restarts: 0,
      logFile: path.join(this.options.logDir, `${spec.name}.log`),
      startedAt: 0,
      delayMs: this.baseDelayMs / 2,
      quickExits: 0,
      loopReported: false,
      timer: null,
      exited: Promise.resolve(),
      cgroup: null,
    };
    this.tracked.set(spec.name, t);
    this.spawn(t);
    return this.view(t);
  }

  child(name: string): ChildProcess | null {
    return this.tracked.get(name)?.child ?? null;
  }

  /** Sends a signal; a process that dies this way is restarted if its spec says so. */
  kill(name: string, signal: NodeJS.Signals): void {
    const t = this.tracked.get(name);
    if (t === undefined) throw new Error(`no process named ${name}`);
    t.child?.kill(signal);
  }

  /**
   * SIGTERM, then SIGKILL after `graceMs`; the process is not restarted. The default grace is the
   * process's own drain timeout (from its environment) and time to close its sockets, so a
   * graceful stop is never cut short.
   */
  async stop(name: string, graceMs?: number): Promise<void> {
    const t = this.tracked.get(name);
    if (t === undefined) return;
    const grace = graceMs ?? drainTimeoutOf({ ...process.env, ...t.spec.env }) + STOP_MARGIN_MS;
    t.state = 'stopping';
    if (t.timer !== null) clearTimeout(t.timer);
    const child = t.child;
    if (child !== null && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      // A process paused by a fault test (SIGSTOP) acts on the SIGTERM only once it runs again.
      child.kill('SIGCONT');
      const killer = setTimeout(() => {
        this.options.onEvent?.({
          name,
          event: 'killed-after-timeout',
          pid: child.pid ?? null,
          signal: 'SIGKILL',
        });
        child.kill('SIGKILL');
      }, grace);
      await t.exited;
      clearTimeout(killer);
    }
    t.state = 'stopped';
    this.tracked.delete(name);
  }

  /**
   * Whether processes with a quota of `cores` are capped here, and a line saying so:
   * `CPU quota 0.25 core per role process (cgroup v1 cpu)`, or `no CPU quota: <why>`.
   */
  cpuQuotaStatus(cores: number, capped = 'role process'): { inForce: boolean; description: string } {
    const cgroups = this.cpuCgroups();
    const failure = 'reason' in cgroups ? cgroups.reason : this.cpuQuotaFailure;
    if (failure !== null) return { inForce: false, description: `no CPU quota: ${failure}` };
    return {
      inForce: true,
      description: `CPU quota ${formatCores(cores)} per ${capped} (${(cgroups as CpuCgroups).mechanism})`,
    };
  }

  /** The cgroup directory of the running process `name`, or null when it has none. */
  cgroupOf(name: string): string | null {
    return this.tracked.get(name)?.cgroup ?? null;
  }

  async list(): Promise<LocalInstance[]> {
    return this.processes();
  }

  /** What `list` resolves to, synchronously. */
  processes(): LocalInstance[] {
    return [...this.tracked.values()].map((t) => this.view(t));
  }

  private view(t: Tracked): LocalInstance {
    return {
      name: t.spec.name,
      role: t.spec.role,
      id: t.child?.pid === undefined ? null : String(t.child.pid),
      address: this.options.host ?? '127.0.0.1',
      spec: t.spec,
      pid: t.child?.pid ?? null,
      state: t.state,
      restarts: t.restarts,
      logFile: t.logFile,
    };
  }

  private spawn(t: Tracked): void {
    const log = openSync(t.logFile, 'a');
    const pipe = this.options.pipeStdout?.(t.spec.name) ?? false;
    // PAXOS_NODE_ARGS passes flags to every role's node, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    const nodeArgs = (process.env.PAXOS_NODE_ARGS ?? '').split(' ').filter((a) => a.length > 0);
    const [command = process.execPath, ...prefixArgs] = [
      ...(this.options.commandPrefix ?? []),
      process.execPath,
    ];
    const args = [...prefixArgs, ...nodeArgs, this.binaryOf(t.spec.role), ...(t.spec.args ?? [])];
    const child = spawn(command, args, {
      // A restart may differ: an acceptor comes back with ACCEPTOR_LOG_STATE=existing.
      env: { ...process.env, ...t.spec.env, ...(t.restarts > 0 ? t.spec.restartEnv : {}) },
      // The IPC channel lets a child notice when this supervisor dies, so nothing is left behind.
      stdio: ['ignore', pipe ? 'pipe' : log, log, 'ipc'],
    });
    closeSync(log);
    t.child = child;
    t.startedAt = performance.now();
    // Right after spawn, so the process is capped before it does any real work (node is still
    // starting) — or placed uncapped, and capped once it is ready.
    const { cpuQuota } = t.spec;
    if (cpuQuota !== undefined && child.pid !== undefined) {
      const ready = this.options.capOnceReady?.(t.spec);
      this.cap(t, child.pid, ready === undefined ? cpuQuota : null);
      ready
        ?.then(() => {
          if (t.child === child && child.exitCode === null && t.cgroup !== null) this.limit(t, cpuQuota);
        })
        .catch(() => {});
    }
    this.options.onEvent?.({ name: t.spec.name, event: 'started', pid: child.pid ?? null });
    t.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.uncap(t);
        // The state says what comes next before anyone hears of the exit.
        // Exit code 2 means a bad configuration: running it again would only fail again.
        const restart = t.state === 'running' && t.spec.restart && code !== BAD_CONFIGURATION_EXIT;
        if (t.state === 'running') t.state = restart ? 'restarting' : 'stopped';
        const message = code === BAD_CONFIGURATION_EXIT ? lastLogLine(t.logFile) : null;
        // Once a crash loop was reported, its exits are repeats (until the process stays up).
        const repeat = restart && t.loopReported && performance.now() - t.startedAt <= QUICK_EXIT_MS;
        this.options.onEvent?.({
          name: t.spec.name,
          event: 'exited',
          pid: child.pid ?? null,
          code,
          signal,
          ...(message === null ? {} : { message }),
          ...(repeat ? { repeat } : {}),
        });
        if (restart) this.scheduleRestart(t);
        resolve();
      });
    });
    child.on('error', () => {});
  }

  private binaryOf(role: RoleName): string {
    return this.options.roleBinary?.(role) ?? roleBinary(role);
  }

  private cpuCgroups(): CpuCgroups | { reason: string } {
    this.cgroups ??= CpuCgroups.open();
    return this.cgroups;
  }

  private limit(t: Tracked, cores: number): void {
    try {
      (this.cgroups as CpuCgroups).limit(t.spec.name, cores);
    } catch (err) {
      this.cpuQuotaFailure ??= (err as Error).message;
    }
  }

  private cap(t: Tracked, pid: number, cores: number | null): void {
    const cgroups = this.cpuCgroups();
    if ('reason' in cgroups) return;
    try {
      t.cgroup = cgroups.place(t.spec.name, pid, cores);
    } catch (err) {
      this.cpuQuotaFailure ??= (err as Error).message;
      this.uncap(t);
    }
  }

  private uncap(t: Tracked): void {
    if (t.spec.cpuQuota === undefined || !(this.cgroups instanceof CpuCgroups)) return;
    this.cgroups.remove(t.spec.name);
    t.cgroup = null;
  }

  /**
   * Restarts after a wait that doubles with each quick exit in a row (a process that cannot run,
   * e.g. an acceptor whose disk is full, is retried every few seconds rather than spinning), and
   * says so in the 'restarting' event.
   */
  private scheduleRestart(t: Tracked): void {
    const livedMs = performance.now() - t.startedAt;
    const quick = livedMs <= QUICK_EXIT_MS;
    t.quickExits = quick ? t.quickExits + 1 : 0;
    t.delayMs = quick ? Math.min(MAX_RESTART_DELAY_MS, t.delayMs * 2) : this.baseDelayMs;
    t.state = 'restarting';
    if (!quick) t.loopReported = false;
    const repeat = t.loopReported;
    this.options.onEvent?.({
      name: t.spec.name,
      event: 'restarting',
      pid: null,
      delayMs: t.delayMs,
      quickExits: t.quickExits,
      ...(repeat ? { repeat } : {}),
    });
    if (t.quickExits >= CRASH_LOOP_EXITS && !t.loopReported) {
      t.loopReported = true;
      const message = lastLogLine(t.logFile);
      this.options.onEvent?.({
        name: t.spec.name,
        event: 'crash-loop',
        pid: null,
        delayMs: t.delayMs,
        quickExits: t.quickExits,
        ...(message === null ? {} : { message }),
      });
    }
    t.timer = setTimeout(() => {
      t.timer = null;
      if (t.state !== 'restarting') return;
      t.state = 'running';
      t.restarts++;
      this.spawn(t);
    }, t.delayMs);
  }
}

/**
 * The last non-empty line of a log file (read from its last 8 KiB), or null: what a process that
 * refused its configuration wrote last, its one-line reason.
 */
export function lastLogLine(file: string): string | null {
  try {
    const fd = openSync(file, 'r');
    try {
      const size = fstatSync(fd).size;
      const length = Math.min(size, 8192);
      const buffer = Buffer.alloc(length);
      readSync(fd, buffer, 0, length, size - length);
      const lines = buffer
        .toString('utf8')
        .split('\n')
        .filter((l) => l.trim().length > 0);
      return lines[lines.length - 1]?.trim() ?? null;
    } finally {
      closeSync(fd);
    }
  } catch {
    return null;
  }
}

/**
 * One line for a person watching the cluster: `acceptor-g0-a0: exited (code 1)`,
 * `acceptor-g0-a1: exited (code 2), not restarted: paxos-acceptor: acceptor log … is missing, …`,
 * `acceptor-g0-a0: restarting in 800 ms (3rd quick exit in a row: it does not stay up, see
 * <logFile>)`. A process that keeps exiting is retried with a longer wait each time, and says so.
 */
export function describeLauncherEvent(e: LauncherEvent, logFile?: string): string {
  if (e.event === 'crash-loop') {
    const last = e.message === undefined ? '' : `; last log line: ${e.message}`;
    return `${e.name}: crash loop: ${e.quickExits} exits in a row within ${QUICK_EXIT_MS / 1000} s of its start; retrying with back-off up to ${MAX_RESTART_DELAY_MS / 1000} s, reported once${logFile === undefined ? '' : ` (see ${logFile})`}${last}`;
  }
  if (e.event === 'restarting') {
    const wait = e.delayMs === undefined ? '' : ` in ${e.delayMs} ms`;
    const quick = e.quickExits ?? 0;
    const why =
      quick >= 2
        ? ` (${ordinal(quick)} exit in a row within ${QUICK_EXIT_MS / 1000} s of its start: it does not stay up${logFile === undefined ? '' : `, see ${logFile}`})`
        : '';
    return `${e.name}: restarting${wait}${why}`;
  }
  const cause = e.signal ? ` (${e.signal})` : e.code != null ? ` (code ${e.code})` : '';
  const refused = e.message === undefined ? '' : `, not restarted: ${e.message}`;
  return `${e.name}: ${e.event}${cause}${refused}`;
}

function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th');
  return `${n}${suffix}`;
}
