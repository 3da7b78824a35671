/**
 * What the scaling policy reads and decides. Pure data: the controller fills it from metrics and
 * the launcher, the unit tests from fake clocks.
 */

/**
 * The roles whose unit is one process, sized by their count: every target sizes them. Proposers
 * are not among them: the leader is the one sequencer of the log and a second proposer is only
 * its standby, so there are always two.
 */
export type ProcessRole = 'batcher' | 'proxy-leader' | 'unbatcher';
export const PROCESS_ROLES: readonly ProcessRole[] = ['batcher', 'proxy-leader', 'unbatcher'];

/**
 * The roles the autoscaler sizes: the process roles, and acceptor groups, whose unit is a group
 * of 2f+1 acceptors, changed by reconfiguring the cluster (only a target that can, and with the
 * acceptor's capacity measured). A role is a unit of capacity to the policy, so both fit the
 * same rule.
 */
export type ScaledRole = ProcessRole | 'acceptor-group';
export const SCALED_ROLES: readonly ScaledRole[] = [...PROCESS_ROLES, 'acceptor-group'];

/**
 * Roles whose action is a reconfiguration (a new target configuration the leader moves to, which
 * takes seconds): at most one in flight, run beside the periods rather than in them; an instance
 * is never replaced by the policy; scale-in waits for the role's own, longer stabilization window.
 */
export const RECONFIGURED_ROLES: readonly ScaledRole[] = ['acceptor-group'];

/**
 * What measures each role's work, and the capacity figure (of capacity.json) it is compared
 * with. Batchers take one message per command and proxy leaders pay a fixed cost per message
 * (phase-2a, phase-2b), so their handled messages are the load. An unbatcher's cost is the
 * reply it sends per command, while the batches it handles vary in size with the load (partial
 * batches when it is light), so its sent messages are its load, against its commands per second.
 * An acceptor pays a fixed cost per message handled (phase-2a, phase-1a); a group's load is its
 * busiest member's (a group is saturated when one of its acceptors is), against one acceptor's
 * measured messages per second. `entry` is the role's entry in capacity.json's `roles`.
 */
export const LOAD_SIGNALS: Readonly<
  Record<
    ScaledRole,
    {
      readonly counter: 'num_processed_messages' | 'num_outgoing_messages';
      readonly capacity: 'messagesPerSecond' | 'commandsPerSecond';
      readonly entry: string;
    }
  >
> = {
  batcher: { counter: 'num_processed_messages', capacity: 'messagesPerSecond', entry: 'batcher' },
  'proxy-leader': { counter: 'num_processed_messages', capacity: 'messagesPerSecond', entry: 'proxy-leader' },
  unbatcher: { counter: 'num_outgoing_messages', capacity: 'commandsPerSecond', entry: 'unbatcher' },
  'acceptor-group': { counter: 'num_processed_messages', capacity: 'messagesPerSecond', entry: 'acceptor' },
};

/** Where an instance is in its life, as far as capacity goes. */
export type InstancePhase = 'starting' | 'ready' | 'draining';

export interface InstanceObservation {
  readonly name: string;
  readonly phase: InstancePhase;
  /** When it entered `phase`, on the policy's clock (ms). */
  readonly since: number;
  /**
   * Its load over the last interval in messages per second (the rate of its role's counter in
   * LOAD_SIGNALS); null when its metrics could not be read.
   */
  readonly messagesPerSecond: number | null;
}

export interface RoleObservation {
  readonly role: ScaledRole;
  readonly instances: readonly InstanceObservation[];
  /** An action on the role has not returned yet (a reconfiguration): nothing more is decided for it. */
  readonly busy?: boolean;
}

/**
 * What one instance of a role handles at full load (from `bench:components`' capacity.json), in
 * the unit of its load signal (LOAD_SIGNALS).
 */
export interface RoleCapacity {
  readonly messagesPerSecond: number;
}

export interface RoleBounds {
  readonly min: number;
  readonly max: number;
}

export interface PolicySettings {
  /** The share of an instance's capacity the rule aims for, in (0, 1]. */
  readonly targetUtilization: number;
  /** No change while load / (instances × capacity × target) is within 1 ± this. */
  readonly tolerance: number;
  /** Scale in only when every recommendation of this long was lower than the current size. */
  readonly stabilizationWindowMs: number;
  /** A role's own window, in place of `stabilizationWindowMs` (acceptor groups wait longer). */
  readonly roleStabilizationWindowMs?: Readonly<Partial<Record<ScaledRole, number>>>;
  /** An instance still starting after this long is replaced (and reported). */
  readonly readyTimeoutMs: number;
  /** Every process role's; a role without one (acceptor groups unmeasured) is not scaled. */
  readonly capacity: Readonly<Record<ProcessRole, RoleCapacity> & Partial<Record<ScaledRole, RoleCapacity>>>;
  readonly bounds: Readonly<Record<ScaledRole, RoleBounds>>;
}

export type Decision =
  | {
      readonly kind: 'scale';
      readonly role: ScaledRole;
      readonly direction: 'out' | 'in';
      /** Instances that count now: starting and ready (draining ones are on their way out). */
      readonly from: number;
      readonly to: number;
      readonly reason: string;
    }
  | {
      readonly kind: 'replace';
      readonly role: ScaledRole;
      readonly instance: string;
      readonly reason: string;
    };

/** What the policy computed for one role this period, whether or not it acted (for displays and metrics). */
export interface RoleRecommendation {
  readonly role: ScaledRole;
  /** Starting + ready instances. */
  readonly current: number;
  /** The proportional rule's answer, bounded by min/max (before the step limit and stabilization). */
  readonly desired: number;
  /** The role's upper bound (its `max` setting), where the policy has one. */
  readonly max?: number;
  /** Load in messages/s with unreadable instances counted as idle (what scale-out sees). */
  readonly loadForScaleOut: number;
  /** Load with unreadable instances counted as fully loaded (what scale-in sees). */
  readonly loadForScaleIn: number;
  /** loadForScaleOut / (ready instances × capacity); null with no ready instance. */
  readonly utilization: number | null;
}

export interface PolicyOutput {
  readonly decisions: readonly Decision[];
  readonly recommendations: readonly RoleRecommendation[];
}
