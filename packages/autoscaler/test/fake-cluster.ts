/**
 * A fake cluster for the policy's tests: one role whose instances start, become ready after a
 * warm-up, take an even share of the offered load (up to their capacity, as a real process
 * would), and drain before they leave. It applies the policy's decisions the way the controller
 * will, on a fake clock advanced one period at a time.
 */
import { ScalingPolicy } from '../src/policy.ts';
import type {
  Decision,
  InstanceObservation,
  InstancePhase,
  PolicyOutput,
  PolicySettings,
  RoleBounds,
  RoleObservation,
  ScaledRole,
} from '../src/types.ts';
import { SCALED_ROLES } from '../src/types.ts';

/** capacity 5,000 msg/s at target 0.7: 3,500 msg/s per instance is the target. */
export const CAPACITY = 5000;
export const PER_INSTANCE = 3500;
export const WINDOW_MS = 60_000;
export const READY_TIMEOUT_MS = 30_000;

export function policySettingsFor(
  overrides: Partial<Omit<PolicySettings, 'bounds'>> & { bounds?: RoleBounds } = {},
): PolicySettings {
  const { bounds = { min: 1, max: 64 }, ...rest } = overrides;
  const perRole = <T>(value: T) =>
    Object.fromEntries(SCALED_ROLES.map((role) => [role, value])) as Record<ScaledRole, T>;
  return {
    targetUtilization: 0.7,
    tolerance: 0.1,
    stabilizationWindowMs: WINDOW_MS,
    readyTimeoutMs: READY_TIMEOUT_MS,
    capacity: perRole({ messagesPerSecond: CAPACITY }),
    bounds: perRole(bounds),
    ...rest,
  };
}

export function instance(
  name: string,
  phase: InstancePhase,
  messagesPerSecond: number | null,
  since = 0,
): InstanceObservation {
  return { name, phase, since, messagesPerSecond };
}

/** Observations of the batchers only (the other roles left out). */
export function batchers(...instances: InstanceObservation[]): RoleObservation[] {
  return [{ role: 'batcher', instances }];
}

/** `n` ready batchers sharing `load` evenly. */
export function readyBatchers(n: number, load: number): RoleObservation[] {
  return batchers(...Array.from({ length: n }, (_, i) => instance(`b${i}`, 'ready', load / n)));
}

export function scales(output: PolicyOutput) {
  return output.decisions.filter((d): d is Extract<Decision, { kind: 'scale' }> => d.kind === 'scale');
}

interface FakeInstance {
  name: string;
  phase: InstancePhase;
  since: number;
}

export interface Period {
  readonly now: number;
  readonly load: number;
  /** Starting + ready after the period's decisions were applied. */
  readonly current: number;
  readonly output: PolicyOutput;
}

export interface FakeClusterOptions {
  readonly settings?: PolicySettings;
  readonly intervalMs?: number;
  readonly warmupMs?: number;
  readonly drainMs?: number;
  readonly initialReady: number;
  /** Instances (by name) that never become ready. */
  readonly neverReady?: readonly string[];
  /** A scrape's result for an instance; return null for an unreadable one. Default: its rate. */
  readonly scrape?: (name: string, rate: number, now: number) => number | null;
}

export class FakeCluster {
  readonly policy: ScalingPolicy;
  readonly intervalMs: number;
  readonly periods: Period[] = [];
  now = 0;
  private readonly warmupMs: number;
  private readonly drainMs: number;
  private readonly neverReady: ReadonlySet<string>;
  private readonly scrape: NonNullable<FakeClusterOptions['scrape']>;
  private instances: FakeInstance[] = [];
  private nextId = 0;

  constructor(options: FakeClusterOptions) {
    this.policy = new ScalingPolicy(options.settings ?? policySettingsFor());
    this.intervalMs = options.intervalMs ?? 2000;
    this.warmupMs = options.warmupMs ?? 6000;
    this.drainMs = options.drainMs ?? 2000;
    this.neverReady = new Set(options.neverReady ?? []);
    this.scrape = options.scrape ?? ((_, rate) => rate);
    for (let i = 0; i < options.initialReady; i++) this.add('ready');
  }

  get current(): number {
    return this.instances.filter((i) => i.phase !== 'draining').length;
  }

  /** One period at `load` msg/s offered: observe, decide, apply, then let time pass. */
  step(load: number): Period {
    const ready = this.instances.filter((i) => i.phase === 'ready');
    const share = ready.length > 0 ? Math.min(CAPACITY, load / ready.length) : 0;
    const observation: RoleObservation = {
      role: 'batcher',
      instances: this.instances.map((i) => ({
        name: i.name,
        phase: i.phase,
        since: i.since,
        messagesPerSecond: i.phase === 'ready' ? this.scrape(i.name, share, this.now) : 0,
      })),
    };
    const output = this.policy.decide(this.now, [observation]);
    for (const decision of output.decisions) this.apply(decision);
    const period = { now: this.now, load, current: this.current, output };
    this.periods.push(period);
    this.now += this.intervalMs;
    this.advance();
    return period;
  }

  run(periods: number, load: (period: number, now: number) => number): Period[] {
    return Array.from({ length: periods }, (_, p) => this.step(load(p, this.now)));
  }

  scaleDecisions(): Extract<Decision, { kind: 'scale' }>[] {
    return this.periods.flatMap((p) => scales(p.output));
  }

  private add(phase: InstancePhase, name = `batcher-${this.nextId++}`): void {
    this.instances.push({ name, phase, since: this.now });
  }

  private apply(decision: Decision): void {
    if (decision.kind === 'replace') {
      this.instances = this.instances.filter((i) => i.name !== decision.instance);
      this.add('starting');
      return;
    }
    if (decision.direction === 'out') {
      for (let n = decision.from; n < decision.to; n++) this.add('starting');
      return;
    }
    // The newest ready ones leave first, as a controller with no other preference would pick.
    const leaving = this.instances.filter((i) => i.phase === 'ready').slice(-(decision.from - decision.to));
    for (const i of leaving) Object.assign(i, { phase: 'draining', since: this.now });
  }

  private advance(): void {
    this.instances = this.instances.filter(
      (i) => i.phase !== 'draining' || this.now - i.since < this.drainMs,
    );
    for (const i of this.instances) {
      if (i.phase === 'starting' && !this.neverReady.has(i.name) && this.now - i.since >= this.warmupMs) {
        Object.assign(i, { phase: 'ready', since: this.now });
      }
    }
  }
}

/** How often a sequence of scale directions turns around (out then in, or in then out). */
export function directionChanges(decisions: readonly { direction: 'out' | 'in' }[]): number {
  let changes = 0;
  for (let i = 1; i < decisions.length; i++) {
    if (decisions[i]?.direction !== decisions[i - 1]?.direction) changes++;
  }
  return changes;
}
