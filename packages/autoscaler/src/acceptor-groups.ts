/**
 * Acceptor groups as the controller sees them, whatever runs them (local processes, EC2
 * instances): one instance per group of the configuration the cluster serves or moves to.
 */
import { acceptorName } from '@paxos/launcher';
import type { ObservedInstance } from './controller.ts';
import type { InstancePhase } from './types.ts';

/**
 * One instance per group (`acceptor-g<id>`, role `acceptor-group`). Its members are its acceptors
 * that run: one whose phase is unknown (not running: retired ones are stopped and no longer in a
 * target) or draining is left out. A group is ready once it has members and all are ready, and
 * starting otherwise; its load is its busiest member's (the controller reads the members).
 */
export function acceptorGroupInstances(
  groups: readonly { readonly groupId: number; readonly acceptorIds: readonly number[] }[],
  phaseOf: (acceptor: string) => InstancePhase | null | undefined,
  metricsUrl: (acceptor: string) => string | null,
): ObservedInstance[] {
  return groups.map(({ groupId, acceptorIds }) => {
    const members = acceptorIds
      .map((a) => acceptorName(groupId, a))
      .flatMap((name) => {
        const phase = phaseOf(name);
        return phase === undefined || phase === null || phase === 'draining' ? [] : [{ name, phase }];
      });
    const ready = members.length > 0 && members.every((m) => m.phase === 'ready');
    return {
      name: `acceptor-g${groupId}`,
      role: 'acceptor-group' as const,
      phase: ready ? ('ready' as const) : ('starting' as const),
      metricsUrl: null,
      members: members.map(({ name }) => ({ name, metricsUrl: metricsUrl(name) })),
    };
  });
}
