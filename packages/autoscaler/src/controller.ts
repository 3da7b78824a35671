/**
 * The controller: every interval it reads what runs (a ScaleTarget over a Launcher) and how loaded
 * each instance is (a LoadSource), asks the policy, and acts. The policy stays pure; this file is
 * the IO around it, with the clock and both ends injected so tests can drive it.
 */
import { appendFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { Counter, Gauge, Registry } from 'prom-client';
import {
  type Decision,
  type InstanceObservation,
  type InstancePhase,
  type PolicyOutput,
  PROCESS_ROLES,
  RECONFIGURED_ROLES,
  type RoleObservation,
  type RoleRecommendation,
  SCALED_ROLES,
  type ScaledRole,
} from './types.ts';

/** A process of a scaled role as the launcher sees it. */
export interface ObservedInstance {
  readonly name: string;
  readonly role: ScaledRole;
  readonly phase: InstancePhase;
  /** Its `/metrics`, for a source that scrapes each process; null where it has none yet. */
  readonly metricsUrl: string | null;
  /**
   * An instance made of processes (an acceptor group): its load is its busiest member's, and
   * unreadable when any member's is (or it has none); its own `metricsUrl` is not read.
   */
  readonly members?: readonly { readonly name: string; readonly metricsUrl: string | null }[];
}

/** What the controller acts through: a Launcher plus the cluster's plan, local or on EC2. */
export interface ScaleTarget {
  /**
   * The roles it sizes; absent, the process roles (PROCESS_ROLES). Only a target that can
   * reconfigure the cluster names `acceptor-group`.
   */
  readonly roles?: readonly ScaledRole[];
  /** The instances of the scaled roles now, with their phase. */
  instances(): Promise<readonly ObservedInstance[]>;
  /** Starts `count` more instances of `role`; resolves once the launches are accepted. */
  scaleOut(role: ScaledRole, count: number): Promise<void>;
  /**
   * Scales `role` in by `count` (the highest-numbered first): each leaves the directory, drains
   * and exits. Resolves once they are told to (they show as draining from then on).
   */
  scaleIn(role: ScaledRole, count: number): Promise<void>;
  /** Stops an instance that never became ready and starts another in its place. */
  replace(instance: string): Promise<void>;
}

/** How loaded each instance is. */
export interface LoadSource {
  /** Messages per second each instance handled lately; null where that could not be read. */
  rates(instances: readonly ObservedInstance[]): Promise<ReadonlyMap<string, number | null>>;
}

export interface DecisionPolicy {
  decide(now: number, observations: readonly RoleObservation[]): PolicyOutput;
}

/** One line of the timeline file, and what `onEvent` hears. */
export type TimelineEntry =
  | ({ readonly at: string; readonly event: 'decision' } & Decision)
  | {
      readonly at: string;
      readonly event: 'action-failed';
      readonly role: ScaledRole;
      readonly action: string;
      readonly error: string;
      readonly retryInMs: number;
    };

/** What one period saw and did, for live displays. */
export interface TickReport {
  readonly now: number;
  readonly recommendations: readonly RoleRecommendation[];
  readonly decisions: readonly Decision[];
  readonly instances: readonly ObservedInstance[];
}

export interface ControllerOptions {
  readonly policy: DecisionPolicy;
  readonly target: ScaleTarget;
  readonly source: LoadSource;
  readonly intervalMs: number;
  readonly logger: Logger;
  /** Milliseconds on a monotonic clock; `performance.now` unless a test drives it. */
  readonly clock?: () => number;
  /** Wall-clock time for the timeline's `at`. */
  readonly wallClock?: () => Date;
  /** A JSON-lines file every decision and failed action is appended to. */
  readonly timelineFile?: string;
  readonly onTick?: (report: TickReport) => void;
  readonly onEvent?: (entry: TimelineEntry) => void;
  /** The longest wait before a role whose action failed is tried again (the wait doubles up to it). */
  readonly maxBackoffMs?: number;
}

/** The controller's own metrics, in a registry of its own (served by whatever hosts it). */
export class ControllerMetrics {
  readonly registry = new Registry();
  readonly decisions = new Counter({
    name: 'paxos_autoscaler_decisions_total',
    help: 'Scaling decisions taken, by role and direction (out, in, replace)',
    labelNames: ['role', 'direction'],
    registers: [this.registry],
  });
  readonly failures = new Counter({
    name: 'paxos_autoscaler_action_failures_total',
    help: 'Scaling actions the launcher refused or failed (retried with back-off)',
    labelNames: ['role'],
    registers: [this.registry],
  });
  readonly unreadable = new Counter({
    name: 'paxos_autoscaler_unreadable_instances_total',
    help: 'Instance load readings that failed (counted as idle for scale-out, as fully loaded for scale-in)',
    labelNames: ['role'],
    registers: [this.registry],
  });
  readonly desired = new Gauge({
    name: 'paxos_autoscaler_desired_instances',
    help: "The proportional rule's instance count per role (before step limits and stabilization)",
    labelNames: ['role'],
    registers: [this.registry],
  });
  readonly max = new Gauge({
    name: 'paxos_autoscaler_max_instances',
    help: "A role's upper bound (its max setting): the alert PaxosAutoscalerAtMaximum compares the desired count with it",
    labelNames: ['role'],
    registers: [this.registry],
  });
  readonly instances = new Gauge({
    name: 'paxos_autoscaler_instances',
    help: 'Instances per role and phase (starting, ready, draining)',
    labelNames: ['role', 'phase'],
    registers: [this.registry],
  });
  readonly load = new Gauge({
    name: 'paxos_autoscaler_load_messages_per_second',
    help: 'Messages per second the ready instances of a role handle, as the policy saw it',
    labelNames: ['role'],
    registers: [this.registry],
  });

  get contentType(): string {
    return this.registry.contentType;
  }

  metricsText(): Promise<string> {
    return this.registry.metrics();
  }
}

const PHASES: readonly InstancePhase[] = ['starting', 'ready', 'draining'];

export class Controller {
  readonly metrics = new ControllerMetrics();
  private readonly clock: () => number;
  private readonly wallClock: () => Date;
  /** When each instance entered the phase it is in. */
  private readonly since = new Map<string, { phase: InstancePhase; since: number }>();
  /** Per role: no action before this time, after a failure (and how long the last wait was). */
  private readonly backoff = new Map<ScaledRole, { until: number; waitMs: number }>();
  /** The action on a reconfigured role that has not returned yet (one per role at most). */
  private readonly inFlight = new Map<ScaledRole, Promise<void>>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly options: ControllerOptions) {
    this.clock = options.clock ?? (() => performance.now());
    this.wallClock = options.wallClock ?? (() => new Date());
  }

  /** Runs a period now and then every `intervalMs`, until `stop`. */
  start(): void {
    this.stopped = false;
    const loop = () => {
      if (this.stopped) return;
      this.running = this.tick()
        .then(() => {})
        .catch((err: unknown) => {
          // A period that failed as a whole (the launcher could not list) decides nothing; the next one tries again.
          this.options.logger.warn({ err: (err as Error).message }, 'autoscaler period failed');
        })
        .finally(() => {
          this.running = null;
          if (!this.stopped) this.timer = setTimeout(loop, this.options.intervalMs);
        });
    };
    loop();
  }

  /** Stops the periods; resolves once the last one and any reconfiguration it started are done. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    await this.running;
    await this.settled();
  }

  /** Resolves once no action on a reconfigured role is in flight. */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight.values());
  }

  /** One period: observe, decide, act. */
  async tick(): Promise<TickReport> {
    const roles = this.options.target.roles ?? PROCESS_ROLES;
    const instances = (await this.options.target.instances()).filter((i) => roles.includes(i.role));
    const rates = await this.rates(instances);
    const now = this.clock();
    const observations = this.observe(now, instances, rates);
    const output = this.options.policy.decide(now, observations);
    for (const r of output.recommendations) {
      this.metrics.desired.set({ role: r.role }, r.desired);
      if (r.max !== undefined) this.metrics.max.set({ role: r.role }, r.max);
      this.metrics.load.set({ role: r.role }, r.loadForScaleOut);
    }
    const acted: Decision[] = [];
    for (const decision of output.decisions) {
      const wait = this.backoff.get(decision.role);
      if (wait !== undefined && now < wait.until) continue;
      if (this.inFlight.has(decision.role)) continue;
      acted.push(decision);
      if (RECONFIGURED_ROLES.includes(decision.role)) {
        // A reconfiguration takes seconds: it runs beside the periods, and the role is busy meanwhile.
        const action = this.act(now, decision)
          .catch((err: unknown) => {
            this.options.logger.warn(
              { err: (err as Error).message },
              'autoscaler: recording an action failed',
            );
          })
          .finally(() => this.inFlight.delete(decision.role));
        this.inFlight.set(decision.role, action);
      } else await this.act(now, decision);
    }
    const report = { now, recommendations: output.recommendations, decisions: acted, instances };
    this.options.onTick?.(report);
    return report;
  }

  /** Each instance's rate; a group's is its busiest member's, null when any member's is. */
  private async rates(instances: readonly ObservedInstance[]): Promise<ReadonlyMap<string, number | null>> {
    const probes = instances.flatMap((i) =>
      i.members === undefined ? [i] : i.members.map((m) => ({ ...m, role: i.role, phase: i.phase })),
    );
    const read = await this.options.source.rates(probes);
    return new Map(
      instances.map((i) => {
        if (i.members === undefined) return [i.name, read.get(i.name) ?? null];
        const each = i.members.map((m) => read.get(m.name) ?? null);
        const readable = each.length > 0 && each.every((r) => r !== null);
        return [i.name, readable ? Math.max(...(each as number[])) : null];
      }),
    );
  }

  private observe(
    now: number,
    instances: readonly ObservedInstance[],
    rates: ReadonlyMap<string, number | null>,
  ): RoleObservation[] {
    const seen = new Set<string>();
    const roles = this.options.target.roles ?? PROCESS_ROLES;
    const byRole = new Map<ScaledRole, InstanceObservation[]>(roles.map((r) => [r, []]));
    for (const i of instances) {
      seen.add(i.name);
      let entry = this.since.get(i.name);
      if (entry === undefined || entry.phase !== i.phase) {
        entry = { phase: i.phase, since: now };
        this.since.set(i.name, entry);
      }
      const rate = rates.get(i.name) ?? null;
      if (rate === null && i.phase === 'ready') this.metrics.unreadable.inc({ role: i.role });
      byRole.get(i.role)?.push({
        name: i.name,
        phase: i.phase,
        since: entry.since,
        messagesPerSecond: rate,
      });
    }
    for (const name of [...this.since.keys()]) if (!seen.has(name)) this.since.delete(name);
    for (const [role, list] of byRole) {
      for (const phase of PHASES) {
        this.metrics.instances.set({ role, phase }, list.filter((i) => i.phase === phase).length);
      }
    }
    return [...byRole].map(([role, list]) => ({
      role,
      instances: list,
      ...(this.inFlight.has(role) ? { busy: true } : {}),
    }));
  }

  private async act(now: number, decision: Decision): Promise<void> {
    const { logger } = this.options;
    const direction = decision.kind === 'replace' ? 'replace' : decision.direction;
    this.metrics.decisions.inc({ role: decision.role, direction });
    logger.info({ ...decision }, `autoscaler: ${describeDecision(decision)}`);
    this.record({ at: this.wallClock().toISOString(), event: 'decision', ...decision });
    try {
      if (decision.kind === 'replace') await this.options.target.replace(decision.instance);
      else if (decision.direction === 'out')
        await this.options.target.scaleOut(decision.role, decision.to - decision.from);
      else await this.options.target.scaleIn(decision.role, decision.from - decision.to);
      this.backoff.delete(decision.role);
    } catch (err) {
      // Capacity or limit errors (EC2's InsufficientInstanceCapacity, a port in use) pass: back off and retry.
      const previous = this.backoff.get(decision.role)?.waitMs ?? this.options.intervalMs / 2;
      const waitMs = Math.min(this.options.maxBackoffMs ?? 60_000, previous * 2);
      this.backoff.set(decision.role, { until: now + waitMs, waitMs });
      this.metrics.failures.inc({ role: decision.role });
      const error = (err as Error).message;
      logger.error({ role: decision.role, error, retryInMs: waitMs }, 'autoscaler: action failed');
      this.record({
        at: this.wallClock().toISOString(),
        event: 'action-failed',
        role: decision.role,
        action: describeDecision(decision),
        error,
        retryInMs: waitMs,
      });
    }
  }

  private record(entry: TimelineEntry): void {
    if (this.options.timelineFile !== undefined) {
      appendFileSync(this.options.timelineFile, `${JSON.stringify(entry)}\n`);
    }
    this.options.onEvent?.(entry);
  }
}

/** "batcher 2 → 4 (…reason)" or "replace batcher-3 (…)". */
export function describeDecision(d: Decision): string {
  return d.kind === 'replace'
    ? `replace ${d.instance}: ${d.reason}`
    : `${d.role} ${d.from} → ${d.to}: ${d.reason}`;
}

/** "batcher 2 → 4 (…)" or "replace …" or "batcher: scale-out failed (…), retry in 4 s". */
export function describeTimelineEntry(entry: TimelineEntry): string {
  return entry.event === 'decision'
    ? describeDecision(entry)
    : `${entry.role}: ${entry.action} failed (${entry.error}); retrying in ${Math.round(entry.retryInMs / 1000)} s`;
}

/** "batcher 2 (+1 starting), proxy-leader 3, unbatcher 1 (1 draining)"; acceptor groups where listed. */
export function describeInstances(instances: readonly ObservedInstance[]): string {
  const roles = SCALED_ROLES.filter(
    (role) => PROCESS_ROLES.includes(role as never) || instances.some((i) => i.role === role),
  );
  return roles
    .map((role) => {
      const of = instances.filter((i) => i.role === role);
      const count = (phase: ObservedInstance['phase']) => of.filter((i) => i.phase === phase).length;
      const extra = [
        count('starting') > 0 ? `+${count('starting')} starting` : '',
        count('draining') > 0 ? `${count('draining')} draining` : '',
      ].filter((x) => x !== '');
      return `${role} ${count('ready')}${extra.length > 0 ? ` (${extra.join(', ')})` : ''}`;
    })
    .join(', ');
}
