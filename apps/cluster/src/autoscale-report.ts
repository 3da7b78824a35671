/**
 * The figures of an autoscaling run, from its per-second timeline: how fast the cluster reacted
 * to each load step, the instance-seconds it used against an ideal, how long it took to return to
 * its floor, and whether it flapped. Pure: the demo and the end-to-end test record the timeline,
 * this turns it into numbers.
 */
import type { Decision, ProcessRole } from '@paxos/autoscaler';
import { PROCESS_ROLES } from '@paxos/autoscaler';
import type { ProfilePoint } from '@paxos/client/profile';

export interface RoleCount {
  readonly ready: number;
  readonly starting: number;
  readonly draining: number;
}

/** One second of the run. */
export interface TimelineSecond {
  /** Seconds since the load started. */
  readonly t: number;
  /** Commands/s the load profile asked for. */
  readonly offered: number;
  /** Commands/s acknowledged. */
  readonly throughput: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly instances: Readonly<Record<ProcessRole, RoleCount>>;
}

export interface TimedDecision {
  readonly t: number;
  readonly decision: Decision;
}

/** A rise of the offered load: where the profile starts climbing. */
export interface LoadStep {
  readonly t: number;
  readonly from: number;
  readonly to: number;
}

export interface StepReaction {
  readonly step: LoadStep;
  /** Seconds from the step to the first scale-out decision (null: none came). */
  readonly decisionS: number | null;
  /** To the first second the instances of that first decision were all ready. */
  readonly servingS: number | null;
  /** To the first second, after the new instances served, with p99 at or under the target. */
  readonly p99BackS: number | null;
}

export interface AutoscaleFigures {
  readonly reactions: readonly StepReaction[];
  readonly instanceSeconds: { readonly used: number; readonly ideal: number; readonly ratio: number };
  /** Seconds from the load's return to its lowest level to every role back at its minimum (null: never). */
  readonly backAtFloorS: number | null;
  /**
   * Seconds from the same moment to every role back at the size it had under that load before
   * the first rise (the floor the low load itself needs; null: never).
   */
  readonly backAtStartS: number | null;
  /** Scale decisions during the flat stretches above the lowest load, and how many reversed the one before. */
  readonly hold: { readonly decisions: number; readonly reversals: number };
  readonly decisions: { readonly out: number; readonly in: number; readonly replace: number };
  readonly peakInstances: Readonly<Record<ProcessRole, number>>;
}

/**
 * The sudden rises of a profile: from one point to the next within `withinS` seconds, by at
 * least a fifth. A ramp is not a step: what the cluster does on it shows in the decisions.
 */
export function loadSteps(profile: readonly ProfilePoint[], withinS = 2): LoadStep[] {
  const steps: LoadStep[] = [];
  for (let i = 0; i + 1 < profile.length; i++) {
    const a = profile[i] as ProfilePoint;
    const b = profile[i + 1] as ProfilePoint;
    if (b.t - a.t <= withinS && b.rate >= a.rate * 1.2 && b.rate > a.rate) {
      steps.push({ t: a.t, from: a.rate, to: b.rate });
    }
  }
  return steps;
}

/** Instances that cost something this second: ready, starting and draining. */
function total(c: RoleCount): number {
  return c.ready + c.starting + c.draining;
}

export function autoscaleFigures(o: {
  readonly seconds: readonly TimelineSecond[];
  readonly decisions: readonly TimedDecision[];
  readonly profile: readonly ProfilePoint[];
  /** Commands/s one instance of each role handles at full load. */
  readonly commandsPerSecond: Readonly<Record<ProcessRole, number>>;
  readonly targetUtilization: number;
  readonly minimum: Readonly<Record<ProcessRole, number>>;
  readonly p99TargetMs: number;
}): AutoscaleFigures {
  const { seconds, decisions } = o;
  const reactions = loadSteps(o.profile).map((step): StepReaction => {
    // The timeline counts the process roles' instances (acceptor groups' decisions are left out).
    const outs = decisions.filter(
      (d) =>
        d.t >= step.t &&
        d.decision.kind === 'scale' &&
        d.decision.direction === 'out' &&
        PROCESS_ROLES.includes(d.decision.role as ProcessRole),
    );
    const first = outs[0];
    if (first === undefined || first.decision.kind !== 'scale') {
      return { step, decisionS: null, servingS: null, p99BackS: null };
    }
    const { to } = first.decision;
    const role = first.decision.role as ProcessRole;
    const serving = seconds.find((s) => s.t >= first.t && s.instances[role].ready >= to);
    const back =
      serving === undefined
        ? undefined
        : seconds.find((s) => s.t >= serving.t && s.p99Ms !== null && s.p99Ms <= o.p99TargetMs);
    const since = (t: number | undefined) => (t === undefined ? null : round(t - step.t));
    return { step, decisionS: since(first.t), servingS: since(serving?.t), p99BackS: since(back?.t) };
  });

  let used = 0;
  let ideal = 0;
  for (const s of seconds) {
    for (const role of PROCESS_ROLES) {
      used += total(s.instances[role]);
      const need = Math.ceil(s.offered / (o.commandsPerSecond[role] * o.targetUtilization));
      ideal += Math.max(o.minimum[role], need);
    }
  }

  const lowest = Math.min(...o.profile.map((p) => p.rate));
  const lastPeakEnd = [...o.profile].reverse().find((p) => p.rate > lowest);
  const lowFrom =
    lastPeakEnd === undefined ? null : o.profile.find((p) => p.t > lastPeakEnd.t && p.rate === lowest);
  const backTo = (size: (r: ProcessRole) => number) =>
    lowFrom == null
      ? undefined
      : seconds.find(
          (s) =>
            s.t >= lowFrom.t &&
            PROCESS_ROLES.every((r) => total(s.instances[r]) === size(r) && s.instances[r].ready === size(r)),
        );
  const atFloor = backTo((r) => o.minimum[r]);
  const firstRise = o.profile.find((p, i) => (o.profile[i + 1]?.rate ?? 0) > p.rate);
  const before = firstRise === undefined ? undefined : [...seconds].reverse().find((s) => s.t <= firstRise.t);
  const atStart =
    before === undefined ? undefined : backTo((r) => Math.max(o.minimum[r], total(before.instances[r])));

  const holds = flatStretches(o.profile).filter((h) => h.rate > lowest);
  const inHold = decisions.filter(
    (d) => d.decision.kind === 'scale' && holds.some((h) => d.t > h.from + 2 && d.t <= h.to),
  );
  let reversals = 0;
  for (const role of PROCESS_ROLES) {
    const directions = inHold.flatMap((d) =>
      d.decision.kind === 'scale' && d.decision.role === role ? [d.decision.direction] : [],
    );
    for (let i = 1; i < directions.length; i++) if (directions[i] !== directions[i - 1]) reversals++;
  }

  const count = (pred: (d: Decision) => boolean) => decisions.filter((d) => pred(d.decision)).length;
  return {
    reactions,
    instanceSeconds: { used, ideal, ratio: ideal === 0 ? 0 : round(used / ideal) },
    backAtFloorS: atFloor === undefined || lowFrom == null ? null : round(atFloor.t - lowFrom.t),
    backAtStartS: atStart === undefined || lowFrom == null ? null : round(atStart.t - lowFrom.t),
    hold: { decisions: inHold.length, reversals },
    decisions: {
      out: count((d) => d.kind === 'scale' && d.direction === 'out'),
      in: count((d) => d.kind === 'scale' && d.direction === 'in'),
      replace: count((d) => d.kind === 'replace'),
    },
    peakInstances: Object.fromEntries(
      PROCESS_ROLES.map((r) => [r, Math.max(0, ...seconds.map((s) => total(s.instances[r])))]),
    ) as Record<ProcessRole, number>,
  };
}

/** Stretches where the profile holds one rate (two consecutive points with the same rate). */
function flatStretches(profile: readonly ProfilePoint[]): { from: number; to: number; rate: number }[] {
  const out: { from: number; to: number; rate: number }[] = [];
  for (let i = 0; i + 1 < profile.length; i++) {
    const a = profile[i] as ProfilePoint;
    const b = profile[i + 1] as ProfilePoint;
    if (a.rate === b.rate) out.push({ from: a.t, to: b.t, rate: a.rate });
  }
  return out;
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
