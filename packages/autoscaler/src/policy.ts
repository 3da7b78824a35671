import {
  type Decision,
  type InstanceObservation,
  type PolicyOutput,
  type PolicySettings,
  PROCESS_ROLES,
  RECONFIGURED_ROLES,
  type RoleObservation,
  type RoleRecommendation,
  SCALED_ROLES,
  type ScaledRole,
} from './types.ts';

/**
 * The scaling policy: pure, with time a parameter. Each call to `decide` is one period; the
 * policy keeps only what the rule needs across periods (recent recommendations per role, and the
 * stuck instances it has already reported).
 *
 * Per role, with `perInstance = capacity × targetUtilization`:
 * - the proportional rule wants `ceil(load / perInstance)` instances, or the current count while
 *   `load / (current × perInstance)` is within 1 ± tolerance, bounded by [min, max];
 * - scale-out is immediate, at most max(current, 4) more per period, and reads unreadable
 *   instances as idle; starting instances count, so a scale-out in flight is not repeated;
 * - scale-in reads unreadable instances as fully loaded, waits until every recommendation of the
 *   last `stabilizationWindowMs` (observed without a break) was below the current count and no
 *   instance of the role is starting, then goes one instance a period;
 * - an instance starting for longer than `readyTimeoutMs` is reported once for replacement;
 * - a count outside [min, max] is brought back at once.
 *
 * Nothing here is specific to a role: a role is a unit of capacity, so an acceptor group (2f+1
 * processes) fits the same rule. A reconfigured role (RECONFIGURED_ROLES) differs only in that
 * nothing is decided for it while an action on it is in flight (`busy`), its scale-in waits for
 * its own window (`roleStabilizationWindowMs`), and its instances are never replaced. A role
 * without a capacity is not scaled.
 */

/** A period adds at most max(current, this): doubling, but small roles need not creep up by ones. */
const MIN_STEP_OUT = 4;

interface RoleHistory {
  /** The start of the current unbroken run of observations of this role. */
  observedSince: number;
  /** Recommendations (bounded desired counts) of the last window, oldest first. */
  readonly recent: { at: number; desired: number }[];
}

/**
 * Rounds up, forgiving the last bits of a sum of shares: 6 × (14,000 / 6) is 14,000.000000000002,
 * which must not want a fifth instance of 3,500.
 */
const ceil = (x: number) => Math.ceil(x - 1e-9 * Math.max(1, Math.abs(x)));

const messages = (n: number) => `${Math.round(n).toLocaleString('en-US')} msg/s`;
const seconds = (ms: number) => `${Number((ms / 1000).toFixed(1)).toLocaleString('en-US')} s`;
const instances = (n: number) => `${n} instance${n === 1 ? '' : 's'}`;

function checkSettings(settings: PolicySettings): void {
  const bad = (what: string) => {
    throw new RangeError(`ScalingPolicy: ${what}`);
  };
  const { targetUtilization: u, tolerance: t, stabilizationWindowMs: w, readyTimeoutMs: r } = settings;
  if (!(u > 0 && u <= 1)) bad(`targetUtilization must be in (0, 1], got ${u}`);
  if (!(t >= 0 && t < 1)) bad(`tolerance must be in [0, 1), got ${t}`);
  if (!(w >= 0 && Number.isFinite(w))) bad(`stabilizationWindowMs must be >= 0, got ${w}`);
  if (!(r > 0)) bad(`readyTimeoutMs must be > 0, got ${r}`);
  for (const [role, window] of Object.entries(settings.roleStabilizationWindowMs ?? {})) {
    if (!(window >= 0 && Number.isFinite(window)))
      bad(`stabilization window of ${role} must be >= 0 ms, got ${window}`);
  }
  for (const role of SCALED_ROLES) {
    const capacity = settings.capacity[role]?.messagesPerSecond;
    const optional = !(PROCESS_ROLES as readonly ScaledRole[]).includes(role);
    if (optional && settings.capacity[role] === undefined) continue;
    if (capacity === undefined || !(capacity > 0 && Number.isFinite(capacity))) {
      bad(`capacity of ${role} must be a positive number of messages per second, got ${capacity}`);
    }
    const bounds = settings.bounds[role];
    if (bounds === undefined) bad(`bounds of ${role} are missing`);
    else if (
      !(Number.isInteger(bounds.min) && Number.isInteger(bounds.max) && Math.max(1, bounds.min) <= bounds.max)
    ) {
      bad(`bounds of ${role} must be integers with max >= max(min, 1), got [${bounds.min}, ${bounds.max}]`);
    }
  }
}

/** A rate the policy can use: a missing, negative or non-finite one (a counter reset) is a gap. */
function rateOf(instance: InstanceObservation): number | null {
  const r = instance.messagesPerSecond;
  return r !== null && Number.isFinite(r) && r >= 0 ? r : null;
}

export class ScalingPolicy {
  private readonly settings: PolicySettings;
  private readonly history = new Map<ScaledRole, RoleHistory>();
  /** Per role, the stuck instances (`name@since`) already reported, so each is reported once. */
  private readonly reported = new Map<ScaledRole, ReadonlySet<string>>();
  private lastNow: number | null = null;

  constructor(settings: PolicySettings) {
    checkSettings(settings);
    this.settings = settings;
  }

  /**
   * One period. `observations` holds each role once; a role left out (its instances could not be
   * listed) gets no recommendation and no decision, and its stabilization starts over, since a
   * window with a hole in it does not show the load stayed low.
   */
  decide(now: number, observations: readonly RoleObservation[]): PolicyOutput {
    if (this.lastNow !== null && now < this.lastNow) {
      // A clock that went back makes every age meaningless; start observing afresh (which only
      // delays scale-in) instead of acting on negative durations.
      this.history.clear();
    }
    this.lastNow = now;
    const seen = new Set<ScaledRole>();
    for (const { role } of observations) {
      if (seen.has(role)) throw new Error(`ScalingPolicy.decide: role ${role} observed twice`);
      seen.add(role);
    }
    for (const role of this.history.keys()) if (!seen.has(role)) this.history.delete(role);

    const decisions: Decision[] = [];
    const recommendations: RoleRecommendation[] = [];
    for (const observation of observations) {
      // A role without a measured capacity is not scaled (the controller says so once).
      if (this.settings.capacity[observation.role] === undefined) continue;
      const { recommendation, decisions: roleDecisions } = this.decideRole(now, observation);
      recommendations.push(recommendation);
      decisions.push(...roleDecisions);
    }
    return { decisions, recommendations };
  }

  private decideRole(
    now: number,
    { role, instances: all, busy = false }: RoleObservation,
  ): { recommendation: RoleRecommendation; decisions: Decision[] } {
    const capacity = this.settings.capacity[role]?.messagesPerSecond ?? Number.NaN;
    const windowMs = this.settings.roleStabilizationWindowMs?.[role] ?? this.settings.stabilizationWindowMs;
    const reconfigured = RECONFIGURED_ROLES.includes(role);
    // A role with no instance stops every command, whatever the settings say.
    const min = Math.max(1, this.settings.bounds[role].min);
    const max = this.settings.bounds[role].max;
    const bounded = (n: number) => Math.min(max, Math.max(min, n));
    const perInstance = capacity * this.settings.targetUtilization;

    const starting = all.filter((i) => i.phase === 'starting');
    const ready = all.filter((i) => i.phase === 'ready');
    const current = starting.length + ready.length;
    // Draining instances still carry load they are handing over, so it is load, not capacity.
    const serving = all.filter((i) => i.phase !== 'starting');
    const loadForScaleOut = serving.reduce((sum, i) => sum + (rateOf(i) ?? 0), 0);
    const loadForScaleIn = serving.reduce((sum, i) => sum + (rateOf(i) ?? capacity), 0);

    const want = (load: number) =>
      bounded(
        current > 0 && Math.abs(load / (current * perInstance) - 1) <= this.settings.tolerance
          ? current
          : ceil(load / perInstance),
      );
    const wantOut = want(loadForScaleOut);
    const wantIn = want(loadForScaleIn);
    // wantOut <= wantIn (more load never wants fewer): the count moves only when it lies outside
    // [wantOut, wantIn], and then to the nearer end.
    const desired = Math.max(wantOut, Math.min(wantIn, current));

    const history = this.historyOf(role, now);
    history.recent.push({ at: now, desired });
    const windowStart = now - windowMs;
    while (history.recent.length > 0 && (history.recent[0]?.at ?? now) < windowStart) history.recent.shift();

    const decisions: Decision[] = [];
    const reportedBefore = this.reported.get(role);
    // Rebuilt from the instances still starting, so one that became ready or left is forgotten.
    const reported = new Set<string>();
    // A reconfigured role's instance (a group) is not replaced: its acceptors are, one at a time.
    for (const instance of reconfigured ? [] : starting) {
      const key = `${instance.name}@${instance.since}`;
      const age = now - instance.since;
      if (reportedBefore?.has(key)) reported.add(key);
      else if (age > this.settings.readyTimeoutMs) {
        reported.add(key);
        decisions.push({
          kind: 'replace',
          role,
          instance: instance.name,
          reason: `${instance.name} has been starting for ${seconds(age)}, longer than the ready timeout of ${seconds(this.settings.readyTimeoutMs)}`,
        });
      }
    }
    this.reported.set(role, reported);

    const scale = (direction: 'out' | 'in', to: number, reason: string) =>
      decisions.push({ kind: 'scale', role, direction, from: current, to, reason });
    const against = (load: number) =>
      current > 0
        ? `load ${messages(load)} is ${(load / (current * perInstance)).toFixed(2)}× the target of ${current} × ${messages(perInstance)}`
        : `load ${messages(load)} with no ${role} running (target ${messages(perInstance)} each)`;

    if (busy) {
      // The previous action has not returned: its result is not in these figures yet.
    } else if (current < min) {
      const to = Math.max(min, Math.min(wantOut, current + Math.max(current, MIN_STEP_OUT)));
      scale('out', to, `${instances(current)} is below the minimum of ${min}; ${against(loadForScaleOut)}`);
    } else if (current > max) {
      scale('in', max, `${instances(current)} is above the maximum of ${max}`);
    } else if (wantOut > current) {
      const step = Math.max(current, MIN_STEP_OUT);
      const to = Math.min(wantOut, current + step);
      const limited = to < wantOut ? `; ${wantOut} wanted, at most ${step} more per period` : '';
      scale('out', to, `${against(loadForScaleOut)}${limited}`);
    } else if (wantIn < current && starting.length === 0) {
      const covered = history.observedSince <= windowStart;
      const highest = Math.max(...history.recent.map((r) => r.desired));
      if (covered && highest < current) {
        const unread = serving.filter((i) => rateOf(i) === null).length;
        const assumed = unread > 0 ? ` (${unread} unread counted as fully loaded)` : '';
        scale(
          'in',
          current - 1,
          `${against(loadForScaleIn)}${assumed}; at most ${highest} wanted for ${seconds(windowMs)}, one fewer per period`,
        );
      }
    }

    const utilization = ready.length > 0 ? loadForScaleOut / (ready.length * capacity) : null;
    return {
      recommendation: { role, current, desired, max, loadForScaleOut, loadForScaleIn, utilization },
      decisions,
    };
  }

  private historyOf(role: ScaledRole, now: number): RoleHistory {
    let history = this.history.get(role);
    if (history === undefined) {
      history = { observedSince: now, recent: [] };
      this.history.set(role, history);
    }
    return history;
  }
}
